//! Executing a command: idempotency, current state, decision, append, and the retry when
//! another writer got there first.

use std::sync::Arc;

use hub_api::{ApiError, encode_case_event};
use hub_domain::Actor;
use hub_domain::FieldViolation;
use hub_domain::case::{self, CaseCommand, CaseId};
use hub_domain::clock::Clock;
use hub_domain::policy::Policy;
use hub_domain::registry::Registry;
use hub_log::names::{AggregateType, event_subject};
use hub_log::{AppendError, Appender, Classification, Envelope, NewEvent, StoredEvent};
use hub_projector::command_state::RequestRecord;
use tracing::{debug, info};

use crate::aggregates::{Cases, Known};
use crate::{append_error, ids};

/// How often a command without an expected version is decided again after losing a race.
const ATTEMPTS: usize = 3;

/// A validated command with everything around it.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// CloudEvents `source`: who issued it (`/departments/<code>` or the hub itself).
    pub source: String,
    pub actor: Actor,
    /// The department that owns the resulting data (`ce-department`).
    pub owner: String,
    pub request_id: String,
    /// Hash of the command's content.
    pub hash: String,
    pub case_id: CaseId,
    pub expected_version: Option<u64>,
    pub command: CaseCommand,
    pub correlation_id: String,
    pub traceparent: String,
}

pub struct Executor {
    appender: Appender,
    cases: Cases,
    registry: Arc<Registry>,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
}

/// The first result again for a retry; a refusal for a request id reused for other content.
fn same_or_refuse(record: RequestRecord, hash: &str) -> Result<RequestRecord, ApiError> {
    if record.hash == hash {
        Ok(record)
    } else {
        Err(ApiError::InvalidArgument(vec![FieldViolation::new(
            "request_id",
            "was used before by this department for a different command",
        )]))
    }
}

/// The record of `submitted`'s own events among events read from the log, if there.
fn own_record(known: &Known, submitted: &Submitted) -> Option<RequestRecord> {
    known
        .request(&submitted.source, &submitted.request_id)
        .cloned()
}

impl Executor {
    pub fn new(
        appender: Appender,
        cases: Cases,
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

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// The case as this hub knows it now (cache, else the read model).
    pub async fn known(&self, case_id: &str) -> Result<Known, ApiError> {
        self.cases
            .load(case_id, "", "")
            .await
            .map(|(known, _)| known)
    }

    pub async fn execute(&self, submitted: Submitted) -> Result<RequestRecord, ApiError> {
        let case_id = submitted.case_id.as_str();
        let (mut known, record) = self
            .cases
            .load(case_id, &submitted.source, &submitted.request_id)
            .await?;
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
            let (fresh, _) = self.cases.refresh(case_id, known).await?;
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
            let now = self.clock.now();
            let ctx = case::Ctx {
                actor: &submitted.actor,
                now,
                registry: &self.registry,
                policy: &self.policy,
            };
            let events = match case::decide(known.state(), submitted.command.clone(), ctx) {
                Ok(events) => events,
                // A refusal decided on a view that may be behind the log is checked against
                // the log first: the case may exist, or have moved, or hold this command.
                Err(refusal) if !refreshed => {
                    let (fresh, missed) = self.cases.refresh(case_id, known).await?;
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
            let subject = event_subject(AggregateType::Case, case_id);
            let stored: Vec<StoredEvent> = events
                .iter()
                .enumerate()
                .map(|(index, event)| {
                    let (event_type, body) = encode_case_event(event);
                    StoredEvent {
                        position: 0,
                        subject: subject.clone(),
                        envelope: Envelope {
                            id: ids::event_id(&submitted.source, &submitted.request_id, index),
                            source: submitted.source.clone(),
                            event_type: event_type.name.to_owned(),
                            subject: format!("case/{case_id}"),
                            time: now,
                            dataschema: event_type.dataschema.to_owned(),
                            department: submitted.owner.clone(),
                            classification: Classification::Internal,
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
                .collect();
            let version = known.version();
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
            match self.appender.append_all(batch).await {
                Ok(appended) => {
                    let stored: Vec<StoredEvent> = stored
                        .into_iter()
                        .zip(&appended)
                        .map(|(mut e, a)| {
                            e.position = a.position;
                            e
                        })
                        .collect();
                    let known = self.cases.appended(case_id, known, &stored)?;
                    let record = own_record(&known, &submitted).ok_or(ApiError::Internal)?;
                    info!(source = %submitted.source, position = record.position, events = record.event_ids.len(), "command accepted");
                    return Ok(record);
                }
                Err(AppendError::Conflict) => {
                    let (fresh, missed) = self.cases.refresh(case_id, known).await?;
                    refreshed = true;
                    if let Some(record) = own_record(&fresh, &submitted) {
                        // An earlier attempt of this very command is in the log.
                        return same_or_refuse(record, &submitted.hash);
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
}
