//! Executing a command: idempotency, current state, decision, append, and the retry when
//! another writer got there first.

use std::sync::Arc;

use futures::StreamExt;
use hub_api::ApiError;
use hub_api::aggregate::Aggregate;
use hub_domain::clock::Clock;
use hub_domain::policy::Policy;
use hub_domain::registry::Registry;
use hub_domain::registry::Sensitivity;
use hub_domain::{Actor, FieldViolation, Refusal};
use hub_log::names::event_subject;
use hub_log::{AppendError, Appender, Classification, Envelope, NewEvent, StoredEvent};
use hub_projector::ReadModel;
use hub_projector::command_state::RequestRecord;
use jiff::Timestamp;
use tracing::{debug, info, warn};

use crate::aggregates::{Aggregates, Known};
use crate::{append_error, ids};

/// How often a command without an expected version is decided again after losing a race.
const ATTEMPTS: usize = 3;

/// Atomic batches of one import in flight at once (the server allows 50 per stream).
const IMPORT_BATCHES_IN_FLIGHT: usize = 4;

/// A validated command with everything around it.
#[derive(Debug)]
pub struct Submitted<A: Aggregate> {
    /// CloudEvents `source`: who issued it (`/departments/<code>` or the hub itself).
    pub source: String,
    pub actor: Actor,
    /// The department that owns the resulting data (`ce-department`).
    pub owner: String,
    pub request_id: String,
    /// Hash of the command's content.
    pub hash: String,
    /// The aggregate's id.
    pub id: String,
    pub expected_version: Option<u64>,
    pub command: A::Command,
    pub correlation_id: String,
    pub traceparent: String,
    /// When the decision counts as made; `None`: now. Set for historic imports.
    pub decided_at: Option<Timestamp>,
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Executed {
    /// Its first result.
    pub record: RequestRecord,
    /// Whether this execution appended its events (else an earlier one had).
    pub appended: bool,
}

/// Executes the commands of one aggregate type.
pub struct Executor<A: Aggregate> {
    appender: Appender,
    cases: Aggregates<A>,
    registry: Arc<Registry>,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
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

/// The first result again for a retry; a refusal for a request id reused for other content.
fn same_or_refuse(record: RequestRecord, hash: &str) -> Result<Executed, ApiError> {
    if record.hash == hash {
        Ok(Executed {
            record,
            appended: false,
        })
    } else {
        Err(reused_request_id())
    }
}

fn reused_request_id() -> ApiError {
    ApiError::InvalidArgument(vec![FieldViolation::new(
        "request_id",
        "was used before by this department for a different command",
    )])
}

/// The record of `submitted`'s own events among the events known, if there.
fn own_record<A: Aggregate>(known: &Known<A>, submitted: &Submitted<A>) -> Option<RequestRecord> {
    known
        .request(&submitted.source, &submitted.request_id)
        .cloned()
}

impl<A: Aggregate> Executor<A> {
    pub fn new(
        appender: Appender,
        cases: Aggregates<A>,
        registry: Arc<Registry>,
        policy: Arc<Policy>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            appender,
            cases,
            registry,
            policy,
            clock,
        }
    }

    /// An executor with its own cache of `capacity` aggregates over `command_state`.
    pub fn over(
        command_state: &ReadModel,
        appender: &Appender,
        capacity: usize,
        registry: &Arc<Registry>,
        policy: &Arc<Policy>,
        clock: &Arc<dyn Clock>,
    ) -> Self {
        let cache = Aggregates::new(command_state.clone(), appender.clone(), capacity);
        Self::new(
            appender.clone(),
            cache,
            registry.clone(),
            policy.clone(),
            clock.clone(),
        )
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The records of (aggregate id, request id) of `source`, in order, as far as known.
    pub async fn requests(
        &self,
        source: &str,
        items: Vec<(String, String)>,
    ) -> Result<Vec<Option<RequestRecord>>, ApiError> {
        self.cases.requests(source, items).await
    }

    /// The aggregate as this hub knows it now (cache, else the read model).
    pub async fn known(&self, id: &str) -> Result<Known<A>, ApiError> {
        self.cases.load(id, "", "").await.map(|(known, _)| known)
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
    fn stored_events(&self, submitted: &Submitted<A>, events: &[A::Event]) -> Vec<StoredEvent> {
        let id = submitted.id.as_str();
        let subject = event_subject(A::TYPE, id);
        let time = self.clock.now();
        events
            .iter()
            .enumerate()
            .map(|(index, event)| {
                let (event_type, body) = A::encode(event);
                StoredEvent {
                    position: 0,
                    subject: subject.clone(),
                    envelope: Envelope {
                        id: ids::event_id(&submitted.source, &submitted.request_id, index),
                        source: submitted.source.clone(),
                        event_type: event_type.name.to_owned(),
                        subject: format!("{}/{id}", A::TYPE),
                        time,
                        dataschema: event_type.dataschema.to_owned(),
                        department: submitted.owner.clone(),
                        classification: classification(A::SENSITIVITY),
                        schema_version: event_type.schema_version,
                        correlation_id: submitted.correlation_id.clone(),
                        causation_id: submitted.request_id.clone(),
                        traceparent: submitted.traceparent.clone(),
                        request_id: submitted.request_id.clone(),
                        command_hash: submitted.hash.clone(),
                    },
                    body: body.into(),
                }
            })
            .collect()
    }

    /// Appends the events of one command, the first expecting the case at `version`.
    async fn append(
        &self,
        stored: Vec<StoredEvent>,
        version: u64,
    ) -> Result<Vec<StoredEvent>, AppendError> {
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
        let appended = self.appender.append_all(batch).await?;
        // A duplicate acknowledgement means these event ids were stored before (inside the
        // duplicate window): by an earlier attempt, or under this request id for something
        // else. The caller reads the log and decides, as for a conflict.
        if appended.iter().any(|a| a.duplicate) {
            return Err(AppendError::Conflict);
        }
        Ok(stored
            .into_iter()
            .zip(&appended)
            .map(|(mut e, a)| {
                e.position = a.position;
                e
            })
            .collect())
    }

    pub async fn execute(&self, submitted: Submitted<A>) -> Result<Executed, ApiError> {
        let id = submitted.id.as_str();
        // A command creating an aggregate skips the aggregate's row: the append expects an
        // empty subject, and a conflict brings the log's word back. Its request record is
        // still looked up: the request id may have been used before, for anything.
        let (mut known, record) =
            if A::creates(&submitted.command) && submitted.expected_version.is_none() {
                let known = self.cases.cached_or_new(id);
                let record = match known.request(&submitted.source, &submitted.request_id) {
                    Some(record) => Some(record.clone()),
                    None => {
                        self.cases
                            .request(&submitted.source, &submitted.request_id)
                            .await?
                    }
                };
                (known, record)
            } else {
                self.cases
                    .load(id, &submitted.source, &submitted.request_id)
                    .await?
            };
        if let Some(record) = record {
            debug!(
                position = record.position,
                "command answered from its first result"
            );
            return same_or_refuse(record, &submitted.hash);
        }
        let mut refreshed = false;
        if let Some(expected) = submitted.expected_version
            && expected != known.version()
        {
            // This hub's view may be behind the log; only the log's word refuses.
            let (fresh, _) = self.cases.refresh(id, known).await?;
            if let Some(record) = own_record(&fresh, &submitted) {
                return same_or_refuse(record, &submitted.hash);
            }
            if expected != fresh.version() {
                return Err(ApiError::Aborted {
                    reason: format!("expected version {expected}"),
                    current: fresh.version(),
                });
            }
            known = fresh;
            refreshed = true;
        }

        for attempt in 1..=ATTEMPTS {
            let events = match self.decide(&submitted, known.state()) {
                Ok(events) => events,
                // A refusal decided on a view that may be behind the log is checked against
                // the log first: the case may exist, or have moved, or hold this command.
                Err(refusal) if !refreshed => {
                    let (fresh, missed) = self.cases.refresh(id, known).await?;
                    refreshed = true;
                    if let Some(record) = own_record(&fresh, &submitted) {
                        return same_or_refuse(record, &submitted.hash);
                    }
                    known = fresh;
                    if missed.is_empty() {
                        return Err(refusal.into());
                    }
                    continue;
                }
                Err(refusal) => return Err(refusal.into()),
            };
            let stored = self.stored_events(&submitted, &events);
            match self.append(stored, known.version()).await {
                Ok(stored) => {
                    let known = self.cases.appended(id, known, &stored)?;
                    let record = own_record(&known, &submitted).ok_or(ApiError::Internal)?;
                    info!(source = %submitted.source, position = record.position, events = record.event_ids.len(), "command accepted");
                    return Ok(Executed {
                        record,
                        appended: true,
                    });
                }
                Err(AppendError::Conflict) => {
                    let (fresh, missed) = self.cases.refresh(id, known).await?;
                    refreshed = true;
                    if let Some(record) = own_record(&fresh, &submitted) {
                        // An earlier attempt of this very command is in the log.
                        return same_or_refuse(record, &submitted.hash);
                    }
                    if missed.is_empty() {
                        // Nothing newer on this aggregate, yet the log refused: the event
                        // ids are stored already, so the request id was used for another
                        // aggregate. Its record answers (or the id is refused as reused).
                        return match self
                            .cases
                            .request(&submitted.source, &submitted.request_id)
                            .await?
                        {
                            Some(record) => same_or_refuse(record, &submitted.hash),
                            None => Err(reused_request_id()),
                        };
                    }
                    debug!(
                        attempt,
                        missed = missed.len(),
                        "stale view of the case; deciding again"
                    );
                    if let Some(expected) = submitted.expected_version {
                        return Err(ApiError::Aborted {
                            reason: format!("expected version {expected}"),
                            current: fresh.version(),
                        });
                    }
                    known = fresh;
                }
                Err(err) => return Err(append_error(err)),
            }
        }
        Err(ApiError::Aborted {
            reason: format!("the case changed {ATTEMPTS} times while the command was decided"),
            current: known.version(),
        })
    }

    /// Decides a command that creates an aggregate, without appending: for imports, which
    /// check every item before storing any.
    pub fn prepare_new(&self, submitted: &Submitted<A>) -> Result<Vec<StoredEvent>, Refusal> {
        let events = self.decide(submitted, None)?;
        Ok(self.stored_events(submitted, &events))
    }

    /// Appends prepared creations in atomic batches of up to `batch_size` events, a few
    /// batches in flight at once, each aggregate's event expecting an empty subject. A batch
    /// the server refuses (an aggregate that exists already, from an earlier import) is
    /// executed item by item instead, which answers those with their first result.
    pub async fn import(
        &self,
        prepared: Vec<(Submitted<A>, Vec<StoredEvent>)>,
        batch_size: usize,
    ) -> Result<Vec<Executed>, ApiError> {
        let mut chunks = Vec::new();
        let mut items = prepared.into_iter().peekable();
        while items.peek().is_some() {
            let mut chunk = Vec::new();
            let mut events = 0;
            while let Some((_, stored)) = items.peek() {
                if !chunk.is_empty() && events + stored.len() > batch_size {
                    break;
                }
                events += stored.len();
                chunk.extend(items.next());
            }
            chunks.push(chunk);
        }
        let outcomes: Vec<Result<Vec<Executed>, ApiError>> = futures::stream::iter(chunks)
            .map(|chunk| self.import_batch(chunk))
            .buffered(IMPORT_BATCHES_IN_FLIGHT)
            .collect()
            .await;
        let mut done = Vec::new();
        for outcome in outcomes {
            done.extend(outcome?);
        }
        Ok(done)
    }

    async fn import_batch(
        &self,
        chunk: Vec<(Submitted<A>, Vec<StoredEvent>)>,
    ) -> Result<Vec<Executed>, ApiError> {
        let batch: Vec<NewEvent> = chunk
            .iter()
            .flat_map(|(_, stored)| {
                stored.iter().enumerate().map(|(index, e)| NewEvent {
                    subject: e.subject.clone(),
                    envelope: e.envelope.clone(),
                    body: e.body.clone(),
                    expected_last_subject_sequence: (index == 0).then_some(0),
                })
            })
            .collect();
        match self.appender.append_all(batch).await {
            Ok(appended) => {
                let mut positions = appended.iter().map(|a| a.position);
                Ok(chunk
                    .into_iter()
                    .map(|(submitted, stored)| {
                        let event_ids = stored.iter().map(|e| e.envelope.id.clone()).collect();
                        let position = positions
                            .by_ref()
                            .take(stored.len())
                            .last()
                            .unwrap_or_default();
                        let record = RequestRecord {
                            hash: submitted.hash,
                            aggregate: format!("{}/{}", A::TYPE, submitted.id),
                            event_ids,
                            position,
                        };
                        Executed {
                            record,
                            appended: true,
                        }
                    })
                    .collect())
            }
            Err(AppendError::Unavailable(reason)) => {
                Err(append_error(AppendError::Unavailable(reason)))
            }
            Err(err) => {
                warn!(error = %err, items = chunk.len(), "import batch refused; importing its items one by one");
                let mut done = Vec::with_capacity(chunk.len());
                for (submitted, _) in chunk {
                    done.push(self.execute(submitted).await?);
                }
                Ok(done)
            }
        }
    }
}
