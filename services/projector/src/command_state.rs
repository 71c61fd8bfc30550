//! Read model `command_state`: what command handling needs, projected from the log.
//!
//! Rows, all written in the same sled batch as the checkpoint:
//! - `a/<aggregate_type>/<id>`: the aggregate's current state and version (the position of
//!   its last event), so a handler never replays an aggregate;
//! - `r/<source>\0<request_id>`: the first result of every accepted command (its events and
//!   position, and the hash of its content), so a retry at any later time, after NATS's
//!   duplicate window and after restarts, returns that result instead of acting again;
//! - `e/<when, 8 bytes><case_id>`: when each case's next escalation tier is due, in time
//!   order, for deadline supervision.
//!
//! State and requests live in one model so that a state that includes a command's events
//! always comes with that command's record: a handler reads the state first, then the record.

use std::sync::Arc;

use hub_api::decode_case_event;
use hub_domain::case::{self, CaseState};
use hub_domain::policy::Policy;
use hub_log::StoredEvent;
use hub_store::{Batch, ReadModelStore, StoreError};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = "command_state";

pub struct CommandState {
    policy: Arc<Policy>,
}

impl std::fmt::Debug for CommandState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandState").finish_non_exhaustive()
    }
}

impl CommandState {
    /// The policy decides when escalations are due.
    pub fn new(policy: Arc<Policy>) -> Self {
        Self { policy }
    }

    fn next_escalation(&self, state: Option<&CaseState>) -> Option<Timestamp> {
        state
            .and_then(|s| case::next_escalation(s, &self.policy))
            .map(|(_, at, _, _)| at)
    }
}

/// A case as command handling sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRow {
    /// Position of the case's last event: what `Nats-Expected-Last-Subject-Sequence` checks.
    pub version: u64,
    pub state: CaseState,
}

/// The first result of an accepted command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Hash of the command's content.
    pub hash: String,
    /// The aggregate the command acted on, e.g. `case/<id>`.
    pub aggregate: String,
    pub event_ids: Vec<String>,
    /// Position of the command's last event.
    pub position: u64,
}

pub fn case_key(case_id: &str) -> Vec<u8> {
    [b"a/case/", case_id.as_bytes()].concat()
}

const ESCALATION_PREFIX: &[u8] = b"e/";

/// Orders instants as unsigned big-endian bytes (the sign bit flipped).
fn instant_bytes(at: Timestamp) -> [u8; 8] {
    ((at.as_second() as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn escalation_key(at: Timestamp, case_id: &str) -> Vec<u8> {
    [ESCALATION_PREFIX, &instant_bytes(at), case_id.as_bytes()].concat()
}

/// Cases with an escalation due at or before `now`, earliest first, at most `limit`.
pub fn due_escalations(
    store: &dyn ReadModelStore,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let now = instant_bytes(now);
    Ok(store
        .scan(ESCALATION_PREFIX, None, limit)?
        .into_iter()
        .map(|(key, _)| key[ESCALATION_PREFIX.len()..].to_vec())
        .take_while(|rest| rest.len() > 8 && rest[..8] <= now[..])
        .map(|rest| String::from_utf8_lossy(&rest[8..]).into_owned())
        .collect())
}

pub fn request_key(source: &str, request_id: &str) -> Vec<u8> {
    [b"r/", source.as_bytes(), b"\0", request_id.as_bytes()].concat()
}

fn json_error(position: u64) -> impl Fn(serde_json::Error) -> ProjectionError {
    move |e| ProjectionError::Decode {
        position,
        reason: format!("stored row: {e}"),
    }
}

fn store_error(e: serde_json::Error) -> StoreError {
    StoreError::Io(format!("stored row: {e}"))
}

pub fn get_case(store: &dyn ReadModelStore, case_id: &str) -> Result<Option<CaseRow>, StoreError> {
    store
        .get(&case_key(case_id))?
        .map(|b| serde_json::from_slice(&b).map_err(store_error))
        .transpose()
}

pub fn get_request(
    store: &dyn ReadModelStore,
    source: &str,
    request_id: &str,
) -> Result<Option<RequestRecord>, StoreError> {
    store
        .get(&request_key(source, request_id))?
        .map(|b| serde_json::from_slice(&b).map_err(store_error))
        .transpose()
}

impl Projection for CommandState {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter_subject(&self) -> String {
        hub_log::names::EVENTS_SUBJECTS.to_owned()
    }

    fn apply(&self, event: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let position = event.position;
        let envelope = &event.envelope;
        let Some(case_event) =
            decode_case_event(&envelope.event_type, &event.body).map_err(|e| {
                ProjectionError::Decode {
                    position,
                    reason: e.to_string(),
                }
            })?
        else {
            return Ok(()); // not a case event: no state kept for it yet
        };
        let case_id = case_event.case_id().as_str().to_owned();
        let key = case_key(&case_id);
        let old = batch
            .get(&key)?
            .map(|b| serde_json::from_slice::<CaseRow>(&b))
            .transpose()
            .map_err(json_error(position))?;
        let old_state = old.map(|row| row.state);
        let old_due = self.next_escalation(old_state.as_ref());
        let state =
            case::apply(old_state, &case_event).ok_or_else(|| ProjectionError::Inconsistent {
                position,
                reason: "case event before the case's report".to_owned(),
            })?;
        let new_due = self.next_escalation(Some(&state));
        if old_due != new_due {
            if let Some(at) = old_due {
                batch.delete(escalation_key(at, &case_id));
            }
            if let Some(at) = new_due {
                batch.put(escalation_key(at, &case_id), Vec::new());
            }
        }
        let row = CaseRow {
            version: position,
            state,
        };
        batch.put(key, serde_json::to_vec(&row).map_err(json_error(position))?);

        if !envelope.request_id.is_empty() {
            let key = request_key(&envelope.source, &envelope.request_id);
            let mut record = match batch.get(&key)? {
                Some(bytes) => {
                    serde_json::from_slice::<RequestRecord>(&bytes).map_err(json_error(position))?
                }
                None => RequestRecord {
                    hash: envelope.command_hash.clone(),
                    aggregate: format!("case/{case_id}"),
                    event_ids: Vec::new(),
                    position,
                },
            };
            if !record.event_ids.contains(&envelope.id) {
                record.event_ids.push(envelope.id.clone());
                record.position = position;
            }
            batch.put(
                key,
                serde_json::to_vec(&record).map_err(json_error(position))?,
            );
        }
        Ok(())
    }
}
