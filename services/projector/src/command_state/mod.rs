//! Read model `command_state`: what command handling needs, projected from the log.
//!
//! Rows, all written in the same sled batch as the checkpoint:
//! - `a/<aggregate_type>/<id>`: every aggregate's current state and version (the position of
//!   its subject's last event, whatever that event), the due time it scheduled, and whether an
//!   event it cannot read blocks it; so a handler never replays an aggregate;
//! - `r/<source>\0<request_id>`: the first result of every accepted command (its events and
//!   position, and the keyed hash of its content), so a retry at any later time, after NATS's
//!   duplicate window and after restarts, returns that result instead of acting again;
//! - `d/<when, 8 bytes><aggregate_type>/<id>`: when the hub must next act on an aggregate by
//!   itself (escalate a case, expire a grant), in time order, for supervision;
//! - `b/<aggregate_type>/<id>`: the aggregates an unreadable event blocks, for the alarms;
//! - `p/policy`: the policy the due times were computed with (see [`due::reschedule`]).

mod apply;
pub mod due;
#[cfg(test)]
mod tests;

use hub_api::aggregate::Aggregate;
use hub_log::{StoredEvent, Unreadable};
use hub_store::{ReadModelStore, StoreError};
use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use apply::CommandState;

pub const NAME: &str = "command_state";

/// An aggregate as command handling sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "S: DeserializeOwned"))]
pub struct AggregateRow<S> {
    /// Position of the subject's last event: what `Nats-Expected-Last-Subject-Sequence` checks.
    pub version: u64,
    /// `None` while no event has created it (only possible with `blocked` set).
    #[serde(default)]
    pub state: Option<S>,
    /// The due time this row scheduled in the due index, if any.
    #[serde(default)]
    pub due: Option<Timestamp>,
    /// The first event this version could not apply; the aggregate takes no commands after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<Blocked>,
}

impl<S> Default for AggregateRow<S> {
    fn default() -> Self {
        Self {
            version: 0,
            state: None,
            due: None,
            blocked: None,
        }
    }
}

/// An event that stops an aggregate: later events move its version, never its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    pub event_type: String,
    pub position: u64,
    /// Why, in words that never carry the event's content.
    pub why: String,
}

impl Blocked {
    /// The alarm and refusal text for an aggregate called `noun` (e.g. "care record").
    pub fn describe(&self, noun: &str) -> String {
        let event_type = if self.event_type.is_empty() {
            "without a type"
        } else {
            &self.event_type
        };
        format!(
            "the {noun} takes no commands: its event {event_type} at position {} {}",
            self.position, self.why
        )
    }
}

impl<S: Clone> AggregateRow<S> {
    /// Folds one event of the aggregate's subject into the row: the version moves to the
    /// event's position whatever the event is; an event this version cannot decode, or one
    /// that does not fit the state, blocks the aggregate. Returns the block when this event
    /// caused it.
    pub fn fold<A: Aggregate<State = S>>(
        &mut self,
        event: Result<&StoredEvent, &Unreadable>,
    ) -> Option<&Blocked> {
        let (position, event_type) = match event {
            Ok(e) => (e.position, e.envelope.event_type.as_str()),
            Err(u) => (u.position, u.event_type.as_str()),
        };
        self.version = self.version.max(position);
        if self.blocked.is_some() {
            return None;
        }
        let why = match event {
            Err(_) => Some("has an envelope this version cannot read".to_owned()),
            Ok(e) => match A::decode(&e.envelope.event_type, &e.body) {
                Ok(Some(decoded)) => match A::apply(self.state.take(), &decoded) {
                    Some(state) => {
                        self.state = Some(state);
                        None
                    }
                    None => Some(format!("does not fit the {}'s state", A::NOUN)),
                },
                Ok(None) => Some("has a type this version does not know".to_owned()),
                Err(_) => Some("has a body this version cannot decode".to_owned()),
            },
        };
        let why = why?;
        self.blocked = Some(Blocked {
            event_type: event_type.to_owned(),
            position,
            why,
        });
        self.blocked.as_ref()
    }
}

/// The first result of an accepted command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Keyed hash of the command's content.
    pub hash: String,
    /// The aggregate the command acted on, e.g. `case/<id>`.
    pub aggregate: String,
    pub event_ids: Vec<String>,
    /// Position of the command's last event.
    pub position: u64,
}

impl RequestRecord {
    /// Adds one stored event of the command to its record (or starts the record).
    pub fn extend(
        record: &mut Option<Self>,
        aggregate: impl FnOnce() -> String,
        event: &StoredEvent,
    ) {
        let record = record.get_or_insert_with(|| RequestRecord {
            hash: keyed_or_marker(&event.envelope.command_hash),
            aggregate: aggregate(),
            event_ids: Vec::new(),
            position: event.position,
        });
        if !record.event_ids.contains(&event.envelope.id) {
            record.event_ids.push(event.envelope.id.clone());
            record.position = record.position.max(event.position);
        }
    }
}

/// What a record keeps of an event's command hash: a keyed hash (`<key id>.<32 hex>`) as it
/// is; anything else (a plain digest written before hashes were keyed) only as a marker,
/// since such a digest of a care registration would let its reader confirm a guessed person.
/// A retry of such a command cannot be told from a reuse and is refused.
fn keyed_or_marker(hash: &str) -> String {
    let keyed = hash.split_once('.').is_some_and(|(id, mac)| {
        id.len() == 8
            && mac.len() == 32
            && id.bytes().chain(mac.bytes()).all(|b| b.is_ascii_hexdigit())
    });
    if keyed {
        hash.to_owned()
    } else {
        "unkeyed".to_owned()
    }
}

pub fn aggregate_key(aggregate_type: &str, id: &str) -> Vec<u8> {
    [b"a/", aggregate_type.as_bytes(), b"/", id.as_bytes()].concat()
}

pub fn request_key(source: &str, request_id: &str) -> Vec<u8> {
    [b"r/", source.as_bytes(), b"\0", request_id.as_bytes()].concat()
}

const BLOCKED_PREFIX: &[u8] = b"b/";

fn blocked_key(aggregate_type: &str, id: &str) -> Vec<u8> {
    [
        BLOCKED_PREFIX,
        aggregate_type.as_bytes(),
        b"/",
        id.as_bytes(),
    ]
    .concat()
}

fn read<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Result<Option<T>, StoreError> {
    bytes
        .map(|b| serde_json::from_slice(&b).map_err(|e| StoreError::Io(format!("stored row: {e}"))))
        .transpose()
}

fn write<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Io(format!("row: {e}")))
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

/// Every blocked aggregate, as (aggregate type, id, block), for the alarms at start.
pub fn blocked(store: &dyn ReadModelStore) -> Result<Vec<(String, String, Blocked)>, StoreError> {
    Ok(blocks_under(store, BLOCKED_PREFIX)?
        .into_iter()
        .filter_map(|(rest, block)| {
            let (aggregate_type, id) = rest.split_once('/')?;
            Some((aggregate_type.to_owned(), id.to_owned(), block))
        })
        .collect())
}

/// Every [`Blocked`] row under `prefix`, as (the key after the prefix, block), a page at a time.
pub(crate) fn blocks_under(
    store: &dyn ReadModelStore,
    prefix: &[u8],
) -> Result<Vec<(String, Blocked)>, StoreError> {
    let mut found = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let rows = store.scan(prefix, after.as_deref(), 256)?;
        let Some((last, _)) = rows.last() else {
            return Ok(found);
        };
        after = Some(last.clone());
        for (key, value) in rows {
            let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if let Some(block) = read::<Blocked>(Some(value))? {
                found.push((rest, block));
            }
        }
    }
}

/// The alarm key of a blocked aggregate.
pub fn blocked_alarm(aggregate_type: &str, id: &str) -> String {
    format!("blocked/{aggregate_type}/{id}")
}
