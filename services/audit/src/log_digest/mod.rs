//! The event log's chained digest: a running SHA-256 over every message of `GOV_EVENTS`, in
//! stream order, computed after the fact by one task off the ingest path (appends are never
//! serialised behind it). Auditors get proof the log was not altered: a signed head commits to
//! every message up to its position, and a run of [`DigestEntry`]s lets anyone recompute the
//! chain over one aggregate's events and the leaves between them.
//!
//! # Definitions
//!
//! An offline verifier calls these functions; it re-implements nothing. Numbers are
//! big-endian, `||` is concatenation, `H` is SHA-256.
//!
//! ```text
//! subject_hash(subject)             = H(subject as UTF-8 bytes)
//!
//! content_hash(time, headers, payload) =
//!     H( "gov-event-content-v1"
//!     || i64(time)                         the stored time, unix nanoseconds
//!     || u32(n)                            n = number of header entries kept, below
//!     || for each kept (name, value):  u32(len name) || name || u32(len value) || value
//!     || u64(len payload) || payload )
//!
//!   kept: every (name, value) entry whose name does not start with "Nats-" (ASCII
//!   case-insensitive: those are set or added by NATS itself, e.g. Nats-Msg-Id, the
//!   Nats-Expected-* headers, and the Nats-Stream/-Sequence/-Time-Stamp/-Subject a direct
//!   get adds) and is not `hub-stored-at`, sorted by name (bytewise, as stored, case
//!   kept), the values of one name in their stored order.
//!
//! leaf(position, subject_hash, content_hash) =
//!     H("gov-event-leaf-v1" || u64(position) || subject_hash || content_hash)
//!
//! next(previous, leaf) = H(previous || leaf)
//!
//! EMPTY = 32 zero bytes, the digest before any message.
//! The digest after the message at position p is next(digest before it, leaf(p, ...)).
//! ```
//!
//! A message's position is its stream sequence (from 1); its time is the time the stream
//! stored it: `info().published` of a consumer-delivered message, `time` of a message read
//! by direct or raw get ([`Stored`] reads both; they agree to the nanosecond) — unless the
//! message was imported from a backup of the log, whose `hub-stored-at` header keeps the time
//! the original log stored it: that time is the message's, and the header is not covered, so
//! an imported log digests exactly as the log it came from. Headers are a
//! multimap, unordered in `async_nats::HeaderMap`, hence the sort. Headers are covered as
//! the client parses them: names as stored, values with surrounding whitespace trimmed.
//!
//! # Parts
//!
//! - this module: the definitions, [`LogHead`], [`DigestEntry`], [`Stored`];
//! - [`LogDigest`] (`store`): the digest's sled store, one entry per message and the head;
//! - `task`: [`LogDigest::start`], the task that keeps it up to date, and [`compute`], the
//!   digest recomputed from the stream alone.

mod store;
mod task;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::StreamMessage};
use sha2::{Digest, Sha256};

pub use store::LogDigest;
pub use task::{MAX_BATCH, compute};

use hub_log::names::headers::HUB_STORED_AT;
use hub_log::stored::stored_nanos;

use crate::AuditError;

/// The digest before any message.
pub const EMPTY: [u8; 32] = [0u8; 32];

const CONTENT_TAG: &[u8] = b"gov-event-content-v1";
const LEAF_TAG: &[u8] = b"gov-event-leaf-v1";
/// Headers with this prefix (ASCII case-insensitive) are NATS's own and not covered.
const NATS_PREFIX: &str = "nats-";

/// Where the digest stands: the position of the last message folded and the digest after it.
/// Position 0 with [`EMPTY`]: nothing folded yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    pub position: u64,
    pub digest: [u8; 32],
}

impl Default for LogHead {
    fn default() -> Self {
        Self {
            position: 0,
            digest: EMPTY,
        }
    }
}

/// One message's part of the chain: its hashes and the running digest after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestEntry {
    pub position: u64,
    pub subject_hash: [u8; 32],
    pub content_hash: [u8; 32],
    pub digest: [u8; 32],
}

impl DigestEntry {
    /// This entry's leaf.
    pub fn leaf(&self) -> [u8; 32] {
        leaf(self.position, &self.subject_hash, &self.content_hash)
    }
}

/// SHA-256 of the subject's bytes.
pub fn subject_hash(subject: &str) -> [u8; 32] {
    Sha256::digest(subject.as_bytes()).into()
}

/// The content hash of a message stored at `time_nanos` with `headers` and `payload` (see
/// the module doc). `Nats-*` headers are left out, so a consumer's copy and a direct get's
/// copy (which adds some) hash the same.
pub fn content_hash(time_nanos: i64, headers: &HeaderMap, payload: &[u8]) -> [u8; 32] {
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .flat_map(|(name, values)| {
            let name: &str = name.as_ref();
            values.iter().map(move |value| (name, value.as_str()))
        })
        .collect();
    content_hash_of(time_nanos, &pairs, payload)
}

/// [`content_hash`] over headers given as (name, value) pairs, in any order of names; the
/// values of one name must be in their stored order.
pub fn content_hash_of(time_nanos: i64, headers: &[(&str, &str)], payload: &[u8]) -> [u8; 32] {
    let mut kept: Vec<(&str, &str)> = headers
        .iter()
        .copied()
        .filter(|(name, _)| !is_nats_header(name) && !name.eq_ignore_ascii_case(HUB_STORED_AT))
        .collect();
    // Stable: the values of one name keep their order.
    kept.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Sha256::new();
    hasher.update(CONTENT_TAG);
    hasher.update(time_nanos.to_be_bytes());
    hasher.update(len_u32(kept.len()));
    for (name, value) in kept {
        hasher.update(len_u32(name.len()));
        hasher.update(name.as_bytes());
        hasher.update(len_u32(value.len()));
        hasher.update(value.as_bytes());
    }
    hasher.update((payload.len() as u64).to_be_bytes());
    hasher.update(payload);
    hasher.finalize().into()
}

/// The digest after a message given in parts (a backup's copy of it): stored at
/// `time_nanos`, with `headers` in stored order, folded onto `previous`.
pub fn fold_parts(
    previous: &[u8; 32],
    (position, subject): (u64, &str),
    time_nanos: i64,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> [u8; 32] {
    let content = content_hash_of(time_nanos, headers, payload);
    next(previous, &leaf(position, &subject_hash(subject), &content))
}

/// The leaf of the message at `position`.
pub fn leaf(position: u64, subject_hash: &[u8; 32], content_hash: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(LEAF_TAG);
    hasher.update(position.to_be_bytes());
    hasher.update(subject_hash);
    hasher.update(content_hash);
    hasher.finalize().into()
}

/// The digest after `leaf`, given the digest before it.
pub fn next(previous: &[u8; 32], leaf: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(leaf);
    hasher.finalize().into()
}

/// Whether a header is NATS's own (`Nats-*`, any case): set or added by NATS, not covered
/// by the digest.
pub fn is_nats_header(name: &str) -> bool {
    name.get(..NATS_PREFIX.len())
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(NATS_PREFIX))
}

/// A length as u32-BE. Header names and values are far below 4 GiB (NATS refuses messages
/// past its payload limit, 64 MiB at most), so saturating never happens in practice.
fn len_u32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes()
}

/// A stored message as the digest sees it, read from a consumer's delivery or from a direct
/// or raw get; both give the same hashes for the same message.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub position: u64,
    pub subject: &'a str,
    /// When the stream stored it, unix nanoseconds.
    pub time_nanos: i64,
    pub headers: Option<&'a HeaderMap>,
    pub payload: &'a [u8],
}

impl<'a> Stored<'a> {
    /// A message delivered by a consumer: position and time from its reply subject.
    pub fn from_message(message: &'a jetstream::Message) -> Result<Self, AuditError> {
        let info = message.info().map_err(|e| {
            AuditError::Unavailable(format!("a delivered message is not from JetStream: {e}"))
        })?;
        Ok(Self {
            position: info.stream_sequence,
            subject: message.subject.as_str(),
            time_nanos: nanos(
                info.stream_sequence,
                stored_nanos(
                    message.headers.as_ref(),
                    info.published.unix_timestamp_nanos(),
                ),
            )?,
            headers: message.headers.as_ref(),
            payload: &message.payload,
        })
    }

    /// A message read by direct or raw get (a direct get's extra `Nats-*` headers are not
    /// covered). Beware: async-nats 0.51 parses a raw get's headers (`get_raw_message`,
    /// `get_last_raw_message_by_subject`) keeping only the last value of a repeated name, so
    /// such a copy of a message that repeats a header name does not hash as stored; read
    /// messages to hash by direct get or with a consumer.
    pub fn from_stream_message(message: &'a StreamMessage) -> Result<Self, AuditError> {
        Ok(Self {
            position: message.sequence,
            subject: message.subject.as_str(),
            time_nanos: nanos(
                message.sequence,
                stored_nanos(Some(&message.headers), message.time.unix_timestamp_nanos()),
            )?,
            headers: Some(&message.headers),
            payload: &message.payload,
        })
    }

    pub fn subject_hash(&self) -> [u8; 32] {
        subject_hash(self.subject)
    }

    pub fn content_hash(&self) -> [u8; 32] {
        match self.headers {
            Some(headers) => content_hash(self.time_nanos, headers, self.payload),
            None => content_hash_of(self.time_nanos, &[], self.payload),
        }
    }

    /// This message's entry, folded onto `previous`.
    pub fn entry_after(&self, previous: &[u8; 32]) -> DigestEntry {
        let subject_hash = self.subject_hash();
        let content_hash = self.content_hash();
        DigestEntry {
            position: self.position,
            subject_hash,
            content_hash,
            digest: next(previous, &leaf(self.position, &subject_hash, &content_hash)),
        }
    }
}

/// Unix nanoseconds as i64 (years 1678 to 2262; a stored time outside is not a real one).
fn nanos(position: u64, nanos: i128) -> Result<i64, AuditError> {
    i64::try_from(nanos).map_err(|_| {
        AuditError::Unavailable(format!(
            "the message at position {position} has a stored time outside the i64 nanosecond range"
        ))
    })
}

/// Folds messages onto a head: the one rule the task and [`compute`] share.
#[derive(Debug, Clone, Copy)]
struct Fold {
    head: LogHead,
}

/// What folding one message did.
enum Folded {
    /// At or below the head: already folded (a redelivery), left out.
    Repeated,
    /// Folded; `expected` is false when its position was not head + 1.
    Entry { entry: DigestEntry, expected: bool },
}

impl Fold {
    fn fold(&mut self, message: &Stored<'_>) -> Folded {
        if message.position <= self.head.position {
            return Folded::Repeated;
        }
        let expected = message.position == self.head.position + 1;
        let entry = message.entry_after(&self.head.digest);
        self.head = LogHead {
            position: entry.position,
            digest: entry.digest,
        };
        Folded::Entry { entry, expected }
    }
}

#[cfg(test)]
mod tests;
