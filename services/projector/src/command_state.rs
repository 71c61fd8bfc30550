//! Read model `command_state`: what command handling needs, projected from the log.
//!
//! Rows, all written in the same sled batch as the checkpoint:
//! - `a/<aggregate_type>/<id>`: the aggregate's current state and version (the position of
//!   its last event), so a handler never replays an aggregate;
//! - `r/<source>\0<request_id>`: the first result of every accepted command (its events and
//!   position, and the hash of its content), so a retry at any later time, after NATS's
//!   duplicate window and after restarts, returns that result instead of acting again.
//!
//! State and requests live in one model so that a state that includes a command's events
//! always comes with that command's record: a handler reads the state first, then the record.

use hub_api::decode_case_event;
use hub_domain::case::{self, CaseState};
use hub_log::StoredEvent;
use hub_store::{Batch, ReadModelStore, StoreError};
use serde::{Deserialize, Serialize};

use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = "command_state";

#[derive(Debug, Default)]
pub struct CommandState;

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
        let state = case::apply(old.map(|row| row.state), &case_event).ok_or_else(|| {
            ProjectionError::Inconsistent {
                position,
                reason: "case event before the case's report".to_owned(),
            }
        })?;
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
