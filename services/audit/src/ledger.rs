//! The disclosure ledger: which department received which care record (by care id, never by
//! identity number), under which grants and purpose, with which personal fields in clear,
//! and when. It is a read model over `GOV_AUDIT`, kept in sled (`<data_dir>/disclosure-ledger`)
//! by a task of its own that follows every chain in stream order, so a query by care record
//! or by department reads an index, not the whole audit log.
//!
//! An answered record naming persons (`AuditRecord.persons`) becomes one entry per person.
//! A feed delivery (`PUBLISH FEED_<DEPT>`) recorded twice (the publisher records before it
//! sends, and sends again after a crash) is entered once, by department, event id and person.
//!
//! One tree, key prefixes that cannot collide (a place is the record's batch sequence, u64
//! BE, its index in the batch, u32 BE, and the person's index in the record, u16 BE):
//!
//! - `e/` + place → the batch's stored time (unix nanoseconds, i64 BE) and the
//!   [`Disclosure`] (protobuf);
//! - `c/` + care id + `/` + place → empty: the index by care record;
//! - `d/` + department + `/` + place → empty: the index by department (`d//`: the public);
//! - `f/` + department + `/` + event id + `/` + care id → empty: a feed delivery entered;
//! - `m/position` → the last `GOV_AUDIT` sequence applied (u64 BE);
//! - `m/stream` → the stream's creation time, to tell a stream created again.
//!
//! Each delivered run of batches and the new position go in one sled batch (atomic within a
//! tree), so a crash leaves a consistent prefix and applying again from there gives the same
//! keys. When the audit log was created again, or is shorter than the ledger, the ledger
//! halts as it stands (it may then be the only copy of what the log held) and says why
//! ([`Ledger::alarm`]); queries are refused until an operator has looked. Removing the
//! ledger's folder builds it again from the log.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use hub_api::v1::{AuditBatch, Disclosure};
use hub_log::names::AUDIT_STREAM;
use jiff::Timestamp;
use prost::Message as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{AuditError, OK};

/// The action of a record the feed publisher makes for an event it places in a feed stream.
pub const FEED_ACTION_PREFIX: &str = "PUBLISH ";

const ENTRY: &[u8] = b"e/";
const BY_CARE: &[u8] = b"c/";
const BY_DEPARTMENT: &[u8] = b"d/";
const FEED_SEEN: &[u8] = b"f/";
const POSITION_KEY: &[u8] = b"m/position";
const STREAM_KEY: &[u8] = b"m/stream";

/// Most batches applied in one sled batch.
const MAX_APPLY: usize = 1000;

/// Most entries one page looks at; a page that ends there has a token to go on from,
/// however few entries it holds.
pub const MAX_SCANNED: usize = 20_000;

/// Batches stored this long after `to` can hold no record made before it (the hub's clock
/// and the server's may differ).
const STORE_DELAY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

enum Stop {
    Shutdown,
    /// The ledger cannot follow this log.
    Halt(String),
}

/// Why a consume run ends when its consumer delivers what is applied already.
const STARTED_OVER: &str = "the consumer started over from the log's beginning";

/// A record's place in the audit log: its batch's stream sequence and its index in the
/// batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub sequence: u64,
    pub index: u32,
}

/// Which index a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Department<'a> {
    Any,
    /// The anonymous public.
    Public,
    Code(&'a str),
}

/// What a ledger query asks for.
#[derive(Debug, Clone)]
pub struct LedgerQuery<'a> {
    pub care_id: Option<&'a str>,
    pub department: Department<'a>,
    /// Made at or after `from`, before `to`.
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Records after this place only (a page token).
    pub after: Option<Place>,
    /// Stop after the record whose entries reach this many.
    pub limit: usize,
}

/// One page: the entries, oldest first, and where the next page starts (`None`: the end as
/// the ledger stands).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LedgerPage {
    pub disclosures: Vec<Disclosure>,
    pub next: Option<Place>,
}

/// Where the ledger stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct State {
    /// The last `GOV_AUDIT` sequence applied.
    position: u64,
    /// Whether the log was found to be the one the ledger was built from, in this process.
    checked: bool,
    /// Why the ledger follows the log no more.
    halted: Option<String>,
}

/// The ledger's store. Clones share the database, the state and the one task allowed to
/// write it.
#[derive(Clone)]
pub struct Ledger {
    db: sled::Db,
    state: Arc<watch::Sender<State>>,
    /// What an operator must look at: a halt, or a batch whose records could not be entered.
    alarm: Arc<watch::Sender<Option<String>>>,
    running: Arc<AtomicBool>,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

fn store_error(what: &str, err: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(format!("disclosure ledger: {what}: {err}"))
}

fn place_bytes(place: Place, person: u16) -> [u8; 14] {
    let mut bytes = [0u8; 14];
    bytes[..8].copy_from_slice(&place.sequence.to_be_bytes());
    bytes[8..12].copy_from_slice(&place.index.to_be_bytes());
    bytes[12..].copy_from_slice(&person.to_be_bytes());
    bytes
}

fn key(prefix: &[u8], middle: &[&str], place: Option<[u8; 14]>) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for part in middle {
        key.extend_from_slice(part.as_bytes());
        key.push(b'/');
    }
    if let Some(place) = place {
        key.extend_from_slice(&place);
    }
    key
}

/// The place an index key ends with.
fn place_of(key: &[u8]) -> Option<(Place, [u8; 14])> {
    let tail: [u8; 14] = key.get(key.len().checked_sub(14)?..)?.try_into().ok()?;
    let sequence = u64::from_be_bytes(tail[..8].try_into().ok()?);
    let index = u32::from_be_bytes(tail[8..12].try_into().ok()?);
    Some((Place { sequence, index }, tail))
}

type KeyValue = (Vec<u8>, Vec<u8>);

/// The keys and values of one delivered batch: its entries and their index keys. `seen`
/// says whether a feed delivery is entered already (stored, or earlier in the same run).
fn entries(
    sequence: u64,
    stored_nanos: i64,
    batch: &AuditBatch,
    seen: &mut dyn FnMut(&[u8]) -> Result<bool, AuditError>,
) -> Result<Vec<KeyValue>, AuditError> {
    let mut out = Vec::new();
    for (index, record) in batch.records.iter().enumerate() {
        // Only answered requests disclosed anything.
        if record.outcome != OK || record.persons.is_empty() {
            continue;
        }
        let place = Place {
            sequence,
            index: index as u32,
        };
        let feed = record.action.starts_with(FEED_ACTION_PREFIX);
        let mut persons: Vec<&String> = Vec::new();
        for person in &record.persons {
            if !persons.contains(&person) {
                persons.push(person);
            }
        }
        for (n, person) in persons.into_iter().enumerate() {
            let event_id = if feed {
                record.event_ids.first().cloned().unwrap_or_default()
            } else {
                String::new()
            };
            // A delivery is known again by its event id; without one, nothing tells two apart.
            if feed && !event_id.is_empty() {
                let delivered = key(FEED_SEEN, &[&record.department, &event_id, person], None);
                if seen(&delivered)? {
                    continue;
                }
                out.push((delivered, Vec::new()));
            }
            let tail = place_bytes(place, u16::try_from(n).unwrap_or(u16::MAX));
            let disclosure = Disclosure {
                care_id: person.clone(),
                department: record.department.clone(),
                acting_person: record.acting_person.clone(),
                purpose: record.purpose.clone(),
                grants: record.grants.clone(),
                clear_fields: record.clear_fields.clone(),
                time: record.time,
                action: record.action.clone(),
                instance: batch.instance.clone(),
                sequence,
                index: index as u32,
                event_id,
                position: if feed { record.position } else { 0 },
            };
            let mut value = stored_nanos.to_be_bytes().to_vec();
            disclosure
                .encode(&mut value)
                .map_err(|e| store_error("encode", e))?;
            out.push((key(ENTRY, &[], Some(tail)), value));
            out.push((key(BY_CARE, &[person], Some(tail)), Vec::new()));
            out.push((
                key(BY_DEPARTMENT, &[&record.department], Some(tail)),
                Vec::new(),
            ));
        }
    }
    Ok(out)
}

/// One batch as delivered: its stream sequence, stored time and body (`None` when it does
/// not decode).
pub(crate) struct Delivered {
    sequence: u64,
    stored_nanos: i64,
    batch: Option<AuditBatch>,
}

impl Ledger {
    /// Opens (or creates) the ledger in `dir`.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        let db = crate::open_sled(dir).map_err(|e| store_error("open", e))?;
        let position = read_position(&db)?;
        Ok(Self {
            db,
            state: Arc::new(
                watch::channel(State {
                    position,
                    ..State::default()
                })
                .0,
            ),
            alarm: Arc::new(watch::channel(None).0),
            running: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The last `GOV_AUDIT` sequence applied.
    pub fn position(&self) -> u64 {
        self.state.borrow().position
    }

    /// The last thing an operator must look at (a halt, a batch not entered), once there is
    /// one. Texts name positions, never records.
    pub fn alarm(&self) -> watch::Receiver<Option<String>> {
        self.alarm.subscribe()
    }

    /// Waits (at most `wait`) until the ledger holds every batch the audit log holds now, so
    /// a query sees every record acknowledged before it was asked; refused while the ledger
    /// has not yet checked the log it follows, or has halted.
    pub async fn caught_up(
        &self,
        js: &jetstream::Context,
        wait: Duration,
    ) -> Result<(), AuditError> {
        let unavailable = |e: &dyn std::fmt::Display| store_error("the audit log", e);
        let last = js
            .get_stream(AUDIT_STREAM)
            .await
            .map_err(|e| unavailable(&e))?
            .info()
            .await
            .map_err(|e| unavailable(&e))?
            .state
            .last_sequence;
        let mut state = self.state.subscribe();
        let ready = |s: &State| s.halted.is_some() || (s.checked && s.position >= last);
        match tokio::time::timeout(wait, state.wait_for(ready)).await {
            Ok(Ok(state)) => match &state.halted {
                None => Ok(()),
                Some(reason) => Err(AuditError::Unavailable(format!(
                    "the disclosure ledger has halted (see the hub's alarms): {reason}"
                ))),
            },
            _ => Err(AuditError::Unavailable(format!(
                "the disclosure ledger is catching up with the audit log (at {} of {last}); \
                 try again",
                self.position()
            ))),
        }
    }

    /// A page of entries, oldest first (by the place of their record).
    pub fn query(&self, query: &LedgerQuery<'_>) -> Result<LedgerPage, AuditError> {
        let prefix = match (query.care_id, query.department) {
            (Some(care), _) => key(BY_CARE, &[care], None),
            (None, Department::Code(code)) => key(BY_DEPARTMENT, &[code], None),
            (None, Department::Public) => key(BY_DEPARTMENT, &[""], None),
            (None, Department::Any) => ENTRY.to_vec(),
        };
        let start = match query.after {
            // Past every person of that record.
            Some(after) => {
                let mut start = prefix.clone();
                start.extend_from_slice(&place_bytes(after, u16::MAX));
                start.push(0);
                start
            }
            None => prefix.clone(),
        };
        let from = query
            .from
            .map(|t| t.saturating_sub(STORE_DELAY).unwrap_or(t).as_nanosecond());
        let stop_after = query
            .to
            .map(|t| t.saturating_add(STORE_DELAY).unwrap_or(t).as_nanosecond());
        let mut page = LedgerPage::default();
        let mut scanned = 0;
        // Once the page is full (or the scan long enough), the rest of that record only.
        let mut closing: Option<Place> = None;
        for item in self.db.range(start..) {
            let (key, value) = item.map_err(|e| store_error("read", e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let (place, tail) =
                place_of(&key).ok_or_else(|| store_error("corrupt", "an index key"))?;
            if let Some(closing) = closing
                && place != closing
            {
                page.next = Some(closing);
                return Ok(page);
            }
            scanned += 1;
            let value = if prefix == ENTRY {
                value
            } else {
                self.db
                    .get(self::key(ENTRY, &[], Some(tail)))
                    .map_err(|e| store_error("read", e))?
                    .ok_or_else(|| store_error("corrupt", "an index key without its entry"))?
            };
            let (stored, disclosure) = decode_entry(&value)?;
            if stop_after.is_some_and(|to| i128::from(stored) > to) {
                return Ok(page);
            }
            let made = disclosure.time.as_ref().and_then(hub_api::from_timestamp);
            let wanted = from.is_none_or(|from| i128::from(stored) >= from)
                && query
                    .from
                    .is_none_or(|from| made.is_some_and(|t| t >= from))
                && query.to.is_none_or(|to| made.is_some_and(|t| t < to))
                && query.care_id.is_none_or(|c| disclosure.care_id == c)
                && match query.department {
                    Department::Any => true,
                    Department::Public => disclosure.department.is_empty(),
                    Department::Code(code) => disclosure.department == code,
                };
            if wanted {
                page.disclosures.push(disclosure);
            }
            if closing.is_none()
                && (page.disclosures.len() >= query.limit || scanned >= MAX_SCANNED)
            {
                closing = Some(place);
            }
        }
        Ok(page)
    }

    /// Starts the task that applies every batch of `GOV_AUDIT` past the stored position,
    /// until `shutdown`. Consumer and store failures are logged and waited out.
    ///
    /// `Err` when a task already writes this ledger.
    pub fn start(
        &self,
        js: jetstream::Context,
        shutdown: CancellationToken,
    ) -> Result<JoinHandle<()>, AuditError> {
        if self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(AuditError::Unavailable(
                "the disclosure ledger task is already running".to_owned(),
            ));
        }
        let ledger = self.clone();
        Ok(tokio::spawn(async move {
            ledger.run(js, shutdown).await;
            ledger.state.send_modify(|s| s.checked = false);
            ledger.running.store(false, Ordering::Release);
        }))
    }

    async fn run(&self, js: jetstream::Context, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let before = self.position();
            let reason = match self.consume(&js, &shutdown).await {
                Ok(Stop::Shutdown) => return,
                Ok(Stop::Halt(reason)) => {
                    error!(position = before, reason = %reason, "disclosure ledger halted; it enters nothing more");
                    self.alarm.send_replace(Some(format!(
                        "the disclosure ledger halted at audit log sequence {before}: {reason}"
                    )));
                    self.state.send_modify(|s| s.halted = Some(reason));
                    shutdown.cancelled().await;
                    return;
                }
                Err(reason) => reason,
            };
            if self.position() > before {
                backoff = Duration::from_millis(50);
            }
            warn!(position = self.position(), reason = %reason, ?backoff, "disclosure ledger interrupted; going on from its position");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Applies from the stored position until shutdown, a halt, or a failure (`Err`: its
    /// text).
    async fn consume(
        &self,
        js: &jetstream::Context,
        shutdown: &CancellationToken,
    ) -> Result<Stop, String> {
        let stream = js
            .get_stream(AUDIT_STREAM)
            .await
            .map_err(|e| format!("get stream: {e}"))?;
        let info = stream.cached_info();
        let identity = info.created.unix_timestamp_nanos().to_string();
        let last = info.state.last_sequence;
        let this = self.clone();
        let checked = tokio::task::spawn_blocking(move || this.check_log(&identity, last))
            .await
            .map_err(|e| format!("store task: {e}"))?
            .map_err(|e| e.to_string())?;
        if let Err(reason) = checked {
            return Ok(Stop::Halt(reason));
        }
        self.state.send_modify(|s| s.checked = true);
        let position = self.position();
        let mut messages = crate::follow(&stream, "disclosure ledger", position).await?;
        info!(position, "disclosure ledger following the audit log");
        loop {
            let Some((run, failure)) = crate::next_run(&mut messages, MAX_APPLY, shutdown).await?
            else {
                return Ok(Stop::Shutdown);
            };
            let mut delivered = Vec::with_capacity(run.len());
            for message in &run {
                let info = message.info().map_err(|e| format!("message info: {e}"))?;
                let sequence = info.stream_sequence;
                // The ordered consumer, recreated by the client before it delivered
                // anything, starts over from the first message (async-nats 0.51): made
                // afresh from the stored position instead.
                if sequence <= self.position() {
                    return Err(STARTED_OVER.to_owned());
                }
                let batch = AuditBatch::decode(message.payload.as_ref()).ok();
                if batch.is_none() {
                    error!(
                        sequence,
                        "disclosure ledger: an audit batch does not decode; its records are not entered"
                    );
                    self.alarm.send_replace(Some(format!(
                        "the audit batch at sequence {sequence} does not decode: the disclosure \
                         ledger holds none of its records (the audit log's verifier names what \
                         changed)"
                    )));
                }
                delivered.push(Delivered {
                    sequence,
                    stored_nanos: i64::try_from(info.published.unix_timestamp_nanos())
                        .unwrap_or(i64::MAX),
                    batch,
                });
            }
            let this = self.clone();
            tokio::task::spawn_blocking(move || this.apply(&delivered))
                .await
                .map_err(|e| format!("store task: {e}"))?
                .map_err(|e| e.to_string())?;
            if let Some(failure) = failure {
                return Err(failure);
            }
        }
    }

    /// Whether the log named by `identity` (its creation time), ending at `last`, is the one
    /// the ledger was built from: `Ok(Err(why not))` when it was created again or is shorter
    /// than the ledger. A first start records the identity.
    fn check_log(&self, identity: &str, last: u64) -> Result<Result<(), String>, AuditError> {
        let recorded = self
            .db
            .get(STREAM_KEY)
            .map_err(|e| store_error("read", e))?;
        match recorded {
            Some(recorded) if recorded.as_ref() != identity.as_bytes() => {
                return Ok(Err(
                    "the audit log was created again under the same name since the ledger was \
                     begun"
                        .to_owned(),
                ));
            }
            Some(_) => {}
            None => {
                self.db
                    .insert(STREAM_KEY, identity.as_bytes())
                    .map_err(|e| store_error("write", e))?;
                self.db.flush().map_err(|e| store_error("flush", e))?;
            }
        }
        let position = self.position();
        if last < position {
            return Ok(Err(format!(
                "the audit log ends at sequence {last} but the ledger holds it up to {position}: \
                 the log was cut short or an older backup restored"
            )));
        }
        Ok(Ok(()))
    }

    /// Enters `delivered` (in stream order, past the position) and moves the position to its
    /// last batch, in one atomic write.
    pub(crate) fn apply(&self, delivered: &[Delivered]) -> Result<(), AuditError> {
        let Some(last) = delivered.last() else {
            return Ok(());
        };
        let mut batch = sled::Batch::default();
        let mut fresh: HashSet<Vec<u8>> = HashSet::new();
        for d in delivered {
            let Some(audit) = &d.batch else { continue };
            let mut seen = |key: &[u8]| -> Result<bool, AuditError> {
                if fresh.contains(key) {
                    return Ok(true);
                }
                let stored = self
                    .db
                    .contains_key(key)
                    .map_err(|e| store_error("read", e))?;
                if !stored {
                    fresh.insert(key.to_vec());
                }
                Ok(stored)
            };
            for (key, value) in entries(d.sequence, d.stored_nanos, audit, &mut seen)? {
                batch.insert(key, value);
            }
        }
        batch.insert(POSITION_KEY, &last.sequence.to_be_bytes());
        self.db
            .apply_batch(batch)
            .map_err(|e| store_error("write", e))?;
        self.state.send_modify(|s| s.position = last.sequence);
        Ok(())
    }
}

fn read_position(db: &sled::Db) -> Result<u64, AuditError> {
    match db.get(POSITION_KEY).map_err(|e| store_error("read", e))? {
        None => Ok(0),
        Some(bytes) => <[u8; 8]>::try_from(bytes.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| store_error("corrupt", "the position")),
    }
}

fn decode_entry(value: &[u8]) -> Result<(i64, Disclosure), AuditError> {
    let stored = value
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(i64::from_be_bytes)
        .ok_or_else(|| store_error("corrupt", "an entry"))?;
    let disclosure = Disclosure::decode(&value[8..]).map_err(|e| store_error("corrupt", e))?;
    Ok((stored, disclosure))
}

#[cfg(test)]
mod tests;
