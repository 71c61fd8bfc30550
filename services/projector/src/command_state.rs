//! Read model `command_state`: what command handling needs, projected from the log.
//!
//! Rows, all written in the same sled batch as the checkpoint:
//! - `a/<aggregate_type>/<id>`: every aggregate's current state and version (the position
//!   of its last event), so a handler never replays an aggregate;
//! - `r/<source>\0<request_id>`: the first result of every accepted command (its events and
//!   position, and the hash of its content), so a retry at any later time, after NATS's
//!   duplicate window and after restarts, returns that result instead of acting again;
//! - `d/<when, 8 bytes><aggregate_type>/<id>`: when the hub must next act on an aggregate
//!   by itself (escalate a case, expire a grant), in time order, for supervision.
//!
//! State and records live in one model so that a state that includes a command's events
//! always comes with that command's record: a handler reads the state first, then the record.

use std::sync::Arc;

use hub_api::aggregate::{Aggregate, Care, Case, Grant};
use hub_domain::policy::Policy;
use hub_log::StoredEvent;
use hub_log::names::{EVENTS_SUBJECTS, parse_event_subject};
use hub_store::{Batch, ReadModelStore, StoreError};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = "command_state";

/// An aggregate as command handling sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AggregateRow<S> {
    /// Position of the aggregate's last event: what `Nats-Expected-Last-Subject-Sequence` checks.
    pub version: u64,
    pub state: S,
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

pub fn aggregate_key(aggregate_type: &str, id: &str) -> Vec<u8> {
    [b"a/", aggregate_type.as_bytes(), b"/", id.as_bytes()].concat()
}

pub fn request_key(source: &str, request_id: &str) -> Vec<u8> {
    [b"r/", source.as_bytes(), b"\0", request_id.as_bytes()].concat()
}

const DUE_PREFIX: &[u8] = b"d/";

/// Orders instants as unsigned big-endian bytes (the sign bit flipped).
fn instant_bytes(at: Timestamp) -> [u8; 8] {
    ((at.as_second() as u64) ^ (1 << 63)).to_be_bytes()
}

pub fn due_key(at: Timestamp, aggregate_type: &str, id: &str) -> Vec<u8> {
    [
        DUE_PREFIX,
        &instant_bytes(at),
        aggregate_type.as_bytes(),
        b"/",
        id.as_bytes(),
    ]
    .concat()
}

/// Aggregates the hub must act on at or before `now`, earliest first, at most `limit`, as
/// (aggregate type, id).
pub fn due(
    store: &dyn ReadModelStore,
    now: Timestamp,
    limit: usize,
) -> Result<Vec<(String, String)>, StoreError> {
    let now = instant_bytes(now);
    Ok(store
        .scan(DUE_PREFIX, None, limit)?
        .into_iter()
        .map(|(key, _)| key[DUE_PREFIX.len()..].to_vec())
        .take_while(|rest| rest.len() > 8 && rest[..8] <= now[..])
        .filter_map(|rest| {
            let rest = String::from_utf8(rest[8..].to_vec()).ok()?;
            let (aggregate_type, id) = rest.split_once('/')?;
            Some((aggregate_type.to_owned(), id.to_owned()))
        })
        .collect())
}

fn read<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    bytes
        .map(|b| serde_json::from_slice(&b).map_err(|e| StoreError::Io(format!("stored row: {e}"))))
        .transpose()
}

pub fn get_aggregate<A: Aggregate>(
    store: &dyn ReadModelStore,
    id: &str,
) -> Result<Option<AggregateRow<A::State>>, StoreError> {
    read(store.get(&aggregate_key(A::TYPE, id))?)
}

pub fn get_request(
    store: &dyn ReadModelStore,
    source: &str,
    request_id: &str,
) -> Result<Option<RequestRecord>, StoreError> {
    read(store.get(&request_key(source, request_id))?)
}

pub struct CommandState {
    policy: Arc<Policy>,
}

impl std::fmt::Debug for CommandState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandState").finish_non_exhaustive()
    }
}

impl CommandState {
    /// The policy decides when the hub must act on an aggregate.
    pub fn new(policy: Arc<Policy>) -> Self {
        Self { policy }
    }

    /// Applies an event of aggregate type `A`: its state row and its due entry. Returns
    /// whether the event was one of `A`'s.
    fn apply_row<A: Aggregate>(
        &self,
        id: &str,
        event: &StoredEvent,
        batch: &mut Batch<'_>,
    ) -> Result<bool, ProjectionError> {
        let position = event.position;
        let decode_error = |reason: String| ProjectionError::Decode { position, reason };
        let Some(decoded) = A::decode(&event.envelope.event_type, &event.body)
            .map_err(|e| decode_error(e.to_string()))?
        else {
            return Ok(false);
        };
        let key = aggregate_key(A::TYPE, id);
        let old: Option<AggregateRow<A::State>> = read(batch.get(&key)?)?;
        let old_state = old.map(|row| row.state);
        let old_due = old_state.as_ref().and_then(|s| A::due(s, &self.policy));
        let state = A::apply(old_state, &decoded).ok_or_else(|| ProjectionError::Inconsistent {
            position,
            reason: format!("{} event before the {} exists", A::TYPE, A::TYPE),
        })?;
        let new_due = A::due(&state, &self.policy);
        if old_due != new_due {
            if let Some(at) = old_due {
                batch.delete(due_key(at, A::TYPE, id));
            }
            if let Some(at) = new_due {
                batch.put(due_key(at, A::TYPE, id), Vec::new());
            }
        }
        let row = AggregateRow {
            version: position,
            state,
        };
        batch.put(
            key,
            serde_json::to_vec(&row).map_err(|e| decode_error(e.to_string()))?,
        );
        Ok(true)
    }

    fn record_request(
        &self,
        aggregate: String,
        event: &StoredEvent,
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        let envelope = &event.envelope;
        if envelope.request_id.is_empty() {
            return Ok(());
        }
        let key = request_key(&envelope.source, &envelope.request_id);
        let mut record =
            read::<RequestRecord>(batch.get(&key)?)?.unwrap_or_else(|| RequestRecord {
                hash: envelope.command_hash.clone(),
                aggregate,
                event_ids: Vec::new(),
                position: event.position,
            });
        if !record.event_ids.contains(&envelope.id) {
            record.event_ids.push(envelope.id.clone());
            record.position = event.position;
        }
        let bytes = serde_json::to_vec(&record).map_err(|e| ProjectionError::Decode {
            position: event.position,
            reason: e.to_string(),
        })?;
        batch.put(key, bytes);
        Ok(())
    }
}

impl Projection for CommandState {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter_subject(&self) -> String {
        EVENTS_SUBJECTS.to_owned()
    }

    fn apply(&self, event: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let Some((aggregate_type, id)) = parse_event_subject(&event.subject) else {
            return Ok(());
        };
        let known = match aggregate_type {
            Case::TYPE => self.apply_row::<Case>(id, event, batch)?,
            Care::TYPE => self.apply_row::<Care>(id, event, batch)?,
            Grant::TYPE => self.apply_row::<Grant>(id, event, batch)?,
            // Aggregate types this version keeps no state for.
            _ => false,
        };
        if known {
            self.record_request(format!("{aggregate_type}/{id}"), event, batch)?;
        }
        Ok(())
    }
}
