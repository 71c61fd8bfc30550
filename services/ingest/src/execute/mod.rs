//! Executing a command: one linear pipeline for every aggregate type.
//!
//! 1. **View**: the aggregate's row and the caller's record under the request id, read
//!    together from `command_state` (never a replay of the aggregate), with whether the index
//!    was fresh enough (see 7) just before.
//! 2. **Retry or reuse**: the caller's own record answers a retry with the first result
//!    (completed from the log when the index may hold only part of a multi-event command), or
//!    refuses a request id reused for other content. It tells the caller only of its own
//!    commands, so it may come before the next step.
//! 3. **Who asks**: a caller with no role on the aggregate gets one refusal, the same whether
//!    the aggregate exists or not, before its version, existence or state is looked at.
//! 4. **Blocked**: an aggregate with an event this version cannot read takes no commands.
//! 5. **Version**: a command naming a version gets ABORTED, with the current one, when the
//!    aggregate moved on.
//! 6. **Decide** in the domain.
//! 7. **Fresh enough**: the index the record was looked up in must have been less than the
//!    stream's duplicate window (less a margin) behind the log (see `index`), so that no
//!    earlier use of the request id on another aggregate can be missed.
//! 8. **Append** with the expected subject sequence, and answer.
//!
//! The invariant the order keeps: *a command is appended only once every request record that
//! could hold it has been looked at*: this aggregate's, up to the version the append expects
//! (from the index, which has applied at least that far, or from the events read from the log
//! after it); every other aggregate's, from the index as far as it had applied the log and,
//! for what it had not, from the log's duplicate check. A refusal decided on a view the index
//! may have left behind is confirmed by reading the log first ("verify"); a conflicting
//! append is resolved the same way, and a duplicate acknowledgement by the event stored under
//! the command's first event id. So a retry is answered with its first result at any later
//! time, after the duplicate window, while the index lags or rebuilds, after a crash at any
//! instant, and is never stored twice.
//!
//! What this rests on: the log is read as the stream's leader holds it (on a cluster a
//! direct get may be answered by a replica a little behind, so the log adapter asks the
//! leader where the aggregate's subject ends and reads what the batch stopped short of from
//! the leader, and reads a position from the leader), and the hub's and the servers' clocks
//! agree within a second (the margin).

mod import;

pub use import::ImportError;
#[cfg(test)]
mod memlog;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use hub_api::ApiError;
use hub_api::aggregate::Aggregate;
use hub_domain::clock::Clock;
use hub_domain::policy::Policy;
use hub_domain::registry::{Registry, Sensitivity};
use hub_domain::{Actor, FieldViolation, Refusal};
use hub_log::names::event_subject;
use hub_log::{AppendError, Classification, Entry, Envelope, NewEvent, StoredEvent};
use hub_projector::command_state::{AggregateRow, RequestRecord};
use jiff::Timestamp;
use tracing::debug;

use crate::hash::{CommandHash, CommandHasher};
use crate::index::Index;
use crate::log::CommandLog;
use crate::view::View;
use crate::{append_error, ids};

/// How often a command is decided again after another writer got there first.
const ATTEMPTS: usize = 3;
/// Bound on the pipeline's steps, however the index and the log move under it.
const MAX_STEPS: usize = 12;

/// A validated command with everything around it.
#[derive(Debug)]
pub struct Submitted<A: Aggregate> {
    /// CloudEvents `source`: who issued it (`/departments/<code>` or the hub itself).
    pub source: String,
    pub actor: Actor,
    /// The department owning the aggregate when no state says (`ce-department` is the
    /// aggregate's owner after each event, see [`Aggregate::owner`]).
    pub owner: String,
    pub request_id: String,
    /// Keyed hash of the command's content.
    pub hash: CommandHash,
    /// The aggregate's id.
    pub id: String,
    pub expected_version: Option<u64>,
    pub command: A::Command,
    pub correlation_id: String,
    pub traceparent: String,
    /// The person who acted for the department; empty for the hub's own commands.
    pub person: String,
    /// When the decision counts as made; `None`: now. Set for historic imports.
    pub decided_at: Option<Timestamp>,
}

impl<A: Aggregate> Submitted<A> {
    fn aggregate(&self) -> String {
        format!("{}/{}", A::TYPE, self.id)
    }
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// Its first result.
    pub record: RequestRecord,
    /// Whether this execution appended its events (else an earlier one had).
    pub appended: bool,
}

/// What every executor works with.
#[derive(Clone)]
pub struct ExecutorContext {
    pub log: Arc<dyn CommandLog>,
    pub index: Index,
    pub registry: Arc<Registry>,
    pub policy: Arc<Policy>,
    pub clock: Arc<dyn Clock>,
    pub hasher: Arc<CommandHasher>,
}

/// Executes the commands of one aggregate type.
pub struct Executor<A: Aggregate> {
    log: Arc<dyn CommandLog>,
    index: Index,
    registry: Arc<Registry>,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
    hasher: Arc<CommandHasher>,
    _aggregate: std::marker::PhantomData<fn() -> A>,
}

/// `ce-classification` of an aggregate type's events.
fn classification(sensitivity: Sensitivity) -> Classification {
    match sensitivity {
        Sensitivity::Public => Classification::Public,
        Sensitivity::Internal => Classification::Internal,
        Sensitivity::Personal => Classification::Personal,
        Sensitivity::Sensitive => Classification::Sensitive,
    }
}

fn reused_request_id() -> ApiError {
    ApiError::InvalidArgument(vec![FieldViolation::new(
        "request_id",
        "was used before by this department for a different command",
    )])
}

/// The first result again for a retry; a refusal for a request id reused for other content.
fn same_or_refuse<A: Aggregate>(
    record: RequestRecord,
    submitted: &Submitted<A>,
) -> Result<Executed, ApiError> {
    if submitted.hash.matches(&record.hash) {
        debug!(
            position = record.position,
            "command answered from its first result"
        );
        Ok(Executed {
            record,
            appended: false,
        })
    } else {
        Err(reused_request_id())
    }
}

/// What an append did.
enum Appended {
    Stored(RequestRecord),
    /// The log holds the command's first event id already, at `position`.
    Duplicate {
        position: u64,
    },
}

/// What a step of the pipeline leads to.
enum Step<A: Aggregate> {
    Done(Result<Executed, ApiError>),
    /// Look again with this view.
    Again(View<A>),
}

impl<A: Aggregate> Executor<A> {
    pub fn new(context: ExecutorContext) -> Self {
        Self {
            log: context.log,
            index: context.index,
            registry: context.registry,
            policy: context.policy,
            clock: context.clock,
            hasher: context.hasher,
            _aggregate: std::marker::PhantomData,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Hashes commands for this executor's records.
    pub fn hasher(&self) -> &CommandHasher {
        &self.hasher
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Whether the index is fresh enough now for new commands.
    pub fn index_fresh(&self) -> bool {
        self.index.fresh()
    }

    /// The aggregate as the index has it now (for supervision, which the executor checks).
    pub async fn current(&self, id: &str) -> Result<Option<AggregateRow<A::State>>, ApiError> {
        self.index.row::<A>(id).await
    }

    pub async fn execute(&self, submitted: Submitted<A>) -> Result<Executed, ApiError> {
        let mut view = self.load(&submitted).await?;
        let mut conflicts = 0;
        for _ in 0..MAX_STEPS {
            view = match self.step(&submitted, view, &mut conflicts).await? {
                Step::Done(outcome) => return outcome,
                Step::Again(view) => view,
            };
        }
        Err(ApiError::Unavailable(format!(
            "the {} kept changing while the command was decided; retry with the same request_id",
            A::NOUN
        )))
    }

    /// 1. The view: the index's row and the caller's record.
    async fn load(&self, submitted: &Submitted<A>) -> Result<View<A>, ApiError> {
        let read = self
            .index
            .read::<A>(&submitted.id, &submitted.source, &submitted.request_id)
            .await?;
        Ok(View::from_index(read))
    }

    /// Brings the view to the log's end by reading the aggregate's subject after its version.
    async fn verify(
        &self,
        mut view: View<A>,
        submitted: &Submitted<A>,
    ) -> Result<View<A>, ApiError> {
        let subject = event_subject(A::TYPE, &submitted.id);
        let entries = self
            .log
            .read_subject(&subject, view.version())
            .await
            .map_err(append_error)?;
        view.absorb(
            &entries,
            &submitted.aggregate(),
            &submitted.source,
            &submitted.request_id,
        );
        Ok(view)
    }

    /// A refusal stands once the view is the log's; before that, the log is read first.
    async fn refuse(
        &self,
        view: View<A>,
        submitted: &Submitted<A>,
        refusal: ApiError,
    ) -> Result<Step<A>, ApiError> {
        if view.verified {
            Ok(Step::Done(Err(refusal)))
        } else {
            Ok(Step::Again(self.verify(view, submitted).await?))
        }
    }

    /// Steps 2 to 8 on one view.
    async fn step(
        &self,
        submitted: &Submitted<A>,
        view: View<A>,
        conflicts: &mut usize,
    ) -> Result<Step<A>, ApiError> {
        // 2. Retry or reuse.
        if let Some(record) = &view.own {
            // A projector batch can end inside a multi-event command: a record the index
            // holds at its checkpoint may lack the command's later events, which the log has.
            let partial = record.position >= view.checkpoint
                && record.aggregate == submitted.aggregate()
                && submitted.hash.matches(&record.hash);
            if partial && !view.verified {
                return Ok(Step::Again(self.verify(view, submitted).await?));
            }
            return Ok(Step::Done(same_or_refuse(record.clone(), submitted)));
        }
        // 3. Who asks.
        if let Err(refusal) = A::authorise(view.state(), &submitted.command, &submitted.actor) {
            return self.refuse(view, submitted, refusal.into()).await;
        }
        // 4. Blocked: no later event can unblock it, so no need to read on.
        if let Some(block) = view.blocked() {
            return Ok(Step::Done(Err(ApiError::Unavailable(
                block.describe(A::NOUN),
            ))));
        }
        // 5. Version.
        if let Some(expected) = submitted.expected_version
            && expected != view.version()
        {
            let aborted = ApiError::Aborted {
                what: A::NOUN,
                reason: format!("expected version {expected}"),
                current: view.version(),
            };
            return self.refuse(view, submitted, aborted).await;
        }
        // 6. Decide.
        let events = match self.decide(submitted, view.state()) {
            Ok(events) => events,
            Err(refusal) => return self.refuse(view, submitted, refusal.into()).await,
        };
        // 7. Fresh enough, as the index was when the record was looked up (a fresher index
        // now does not vouch for that lookup). A lagging index may still hold everything this
        // aggregate needs: read the log first, which answers a retry on this aggregate
        // whatever the index's lag; then wait for the index and look again.
        if !view.index_fresh {
            if !view.verified {
                return Ok(Step::Again(self.verify(view, submitted).await?));
            }
            if !self.index.wait_fresh().await {
                return Err(ApiError::Unavailable(
                    "the command state index is behind the log by more than the duplicate window \
                     (rebuilding?): an earlier use of this request_id cannot be ruled out yet; retry later"
                        .into(),
                ));
            }
            return Ok(Step::Again(self.load(submitted).await?));
        }
        // 8. Append.
        let version = view.version();
        match self.append(submitted, view.state(), &events, version).await {
            Ok(Appended::Duplicate { position }) => self.duplicate(view, submitted, position).await,
            Ok(Appended::Stored(record)) => {
                debug!(source = %submitted.source, position = record.position, events = record.event_ids.len(), "command accepted");
                Ok(Step::Done(Ok(Executed {
                    record,
                    appended: true,
                })))
            }
            Err(AppendError::Conflict) => {
                let view = self.verify(view, submitted).await?;
                if view.own.is_none() && view.version() == version {
                    // Nothing newer on this aggregate, yet the log refused: these event ids
                    // are stored already, so the request id was used on another aggregate.
                    let record = self
                        .index
                        .requests(&submitted.source, vec![submitted.request_id.clone()])
                        .await?
                        .pop()
                        .flatten();
                    return Ok(Step::Done(match record {
                        Some(record) => same_or_refuse(record, submitted),
                        None => Err(reused_request_id()),
                    }));
                }
                *conflicts += 1;
                if *conflicts >= ATTEMPTS && view.own.is_none() {
                    return Ok(Step::Done(Err(ApiError::Aborted {
                        what: A::NOUN,
                        reason: format!(
                            "the {} changed {ATTEMPTS} times while the command was decided",
                            A::NOUN
                        ),
                        current: view.version(),
                    })));
                }
                debug!(
                    conflicts = *conflicts,
                    "another writer got there first; deciding again"
                );
                Ok(Step::Again(view))
            }
            Err(err) => Err(append_error(err)),
        }
    }

    /// The log holds this command's first event id already (inside its duplicate window):
    /// this very command, stored by an earlier attempt whose answer was lost (answered from
    /// the log), or the request id used for another command on another aggregate (refused).
    /// The stored event says which.
    async fn duplicate(
        &self,
        view: View<A>,
        submitted: &Submitted<A>,
        position: u64,
    ) -> Result<Step<A>, ApiError> {
        let stored = self.log.read_at(position).await.map_err(append_error)?;
        match stored {
            Some(Entry::Event(event))
                if event.envelope.source == submitted.source
                    && event.envelope.request_id == submitted.request_id =>
            {
                if event.subject == event_subject(A::TYPE, &submitted.id) {
                    Ok(Step::Again(self.verify(view, submitted).await?))
                } else {
                    Ok(Step::Done(Err(reused_request_id())))
                }
            }
            _ => Err(ApiError::Unavailable(
                "the event log reported this command's event as stored but does not show it yet; \
                 retry with the same request_id"
                    .into(),
            )),
        }
    }

    fn decide(
        &self,
        submitted: &Submitted<A>,
        state: Option<&A::State>,
    ) -> Result<Vec<A::Event>, Refusal> {
        let now = submitted.decided_at.unwrap_or_else(|| self.clock.now());
        let ctx = hub_domain::Ctx {
            actor: &submitted.actor,
            now,
            registry: &self.registry,
            policy: &self.policy,
        };
        A::decide(state, submitted.command.clone(), ctx)
    }

    /// The events as they will be stored (position 0 until appended).
    /// Each event's `ce-department` is the aggregate's owner once the event is applied to
    /// `state`, the aggregate before the command.
    fn stored_events(
        &self,
        submitted: &Submitted<A>,
        state: Option<&A::State>,
        events: &[A::Event],
    ) -> Vec<StoredEvent> {
        let id = submitted.id.as_str();
        let subject = event_subject(A::TYPE, id);
        let time = self.clock.now();
        let mut state = state.cloned();
        events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                state = A::apply(state.take(), event);
                let owner = state
                    .as_ref()
                    .map_or_else(|| submitted.owner.clone(), A::owner);
                let (event_type, body) = A::encode(event);
                StoredEvent {
                    position: 0,
                    subject: subject.clone(),
                    // Not stored yet: when it is decided, as the log's stamp will be soon after.
                    stored_at: time,
                    envelope: Envelope {
                        id: ids::event_id(&submitted.source, &submitted.request_id, index),
                        source: submitted.source.clone(),
                        event_type: event_type.name.to_owned(),
                        subject: format!("{}/{id}", A::TYPE),
                        time,
                        dataschema: event_type.dataschema.to_owned(),
                        department: owner,
                        classification: classification(A::SENSITIVITY),
                        schema_version: event_type.schema_version,
                        correlation_id: submitted.correlation_id.clone(),
                        causation_id: submitted.request_id.clone(),
                        traceparent: submitted.traceparent.clone(),
                        request_id: submitted.request_id.clone(),
                        command_hash: submitted.hash.as_str().to_owned(),
                        acting_person: submitted.person.clone(),
                    },
                    body: body.into(),
                    upcast_from: None,
                }
            })
            .collect()
    }

    /// Appends the events of one command, the first expecting the aggregate at `version`,
    /// and returns the command's record, or where the log holds its first event id already.
    async fn append(
        &self,
        submitted: &Submitted<A>,
        state: Option<&A::State>,
        events: &[A::Event],
        version: u64,
    ) -> Result<Appended, AppendError> {
        let stored = self.stored_events(submitted, state, events);
        let batch = stored
            .iter()
            .enumerate()
            .map(|(index, e)| NewEvent {
                subject: e.subject.clone(),
                envelope: e.envelope.clone(),
                body: e.body.clone(),
                expected_last_subject_sequence: (index == 0).then_some(version),
            })
            .collect();
        let appended = self.log.append(batch).await?;
        hub_store::failpoint::crash("after-append");
        if let Some(duplicate) = appended.iter().find(|a| a.duplicate) {
            return Ok(Appended::Duplicate {
                position: duplicate.position,
            });
        }
        Ok(Appended::Stored(RequestRecord {
            hash: submitted.hash.as_str().to_owned(),
            aggregate: submitted.aggregate(),
            event_ids: stored.into_iter().map(|e| e.envelope.id).collect(),
            position: appended.last().map_or(0, |a| a.position),
        }))
    }
}
