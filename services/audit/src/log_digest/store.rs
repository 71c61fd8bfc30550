//! The digest's sled store, in a folder of its own.
//!
//! One tree, two key prefixes that cannot collide:
//!
//! - `d/` + position (u64-BE) → subject_hash || content_hash || digest (96 bytes), one per
//!   message folded;
//! - `m/head` → position (u64-BE) || digest (40 bytes); absent: nothing folded yet;
//! - `m/stream` → the identity of the log folded (its stream's creation time, unix
//!   nanoseconds, decimal), recorded on first start.
//!
//! Each batch's entries and the head go in one sled batch (atomic within a tree), so a crash
//! leaves a consistent prefix of the chain; folding again from there gives the same digests.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use super::{DigestEntry, EMPTY, LogHead};
use crate::AuditError;

const ENTRY_PREFIX: &[u8] = b"d/";
const HEAD_KEY: &[u8] = b"m/head";
const STREAM_KEY: &[u8] = b"m/stream";

const ENTRY_LEN: usize = 96;
const HEAD_LEN: usize = 40;

/// The digest's store. Clones share the database, the head and the one task
/// ([`LogDigest::start`]) allowed to write it.
#[derive(Clone)]
pub struct LogDigest {
    db: sled::Db,
    /// The stored head; updated only once a batch is durable.
    head: Arc<watch::Sender<LogHead>>,
    /// Whether a task is writing this store.
    pub(super) running: Arc<AtomicBool>,
    /// Why the task halted, once it has.
    pub(super) halted: Arc<watch::Sender<Option<String>>>,
}

impl std::fmt::Debug for LogDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDigest")
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

fn store_error(what: &str, err: impl std::fmt::Display) -> AuditError {
    AuditError::Unavailable(format!("log digest store: {what}: {err}"))
}

fn entry_key(position: u64) -> [u8; 10] {
    let mut key = [0u8; 10];
    key[..2].copy_from_slice(ENTRY_PREFIX);
    key[2..].copy_from_slice(&position.to_be_bytes());
    key
}

fn hash_at(bytes: &[u8], at: usize) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[at..at + 32]);
    hash
}

fn decode_entry(key: &[u8], value: &[u8]) -> Result<DigestEntry, AuditError> {
    let position = key
        .strip_prefix(ENTRY_PREFIX)
        .and_then(|p| <[u8; 8]>::try_from(p).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| store_error("corrupt", "an entry key is not a position"))?;
    if value.len() != ENTRY_LEN {
        return Err(store_error(
            "corrupt",
            format!("the entry at position {position} has {} bytes", value.len()),
        ));
    }
    Ok(DigestEntry {
        position,
        subject_hash: hash_at(value, 0),
        content_hash: hash_at(value, 32),
        digest: hash_at(value, 64),
    })
}

fn encode_entry(entry: &DigestEntry) -> [u8; ENTRY_LEN] {
    let mut value = [0u8; ENTRY_LEN];
    value[..32].copy_from_slice(&entry.subject_hash);
    value[32..64].copy_from_slice(&entry.content_hash);
    value[64..].copy_from_slice(&entry.digest);
    value
}

fn encode_head(head: &LogHead) -> [u8; HEAD_LEN] {
    let mut value = [0u8; HEAD_LEN];
    value[..8].copy_from_slice(&head.position.to_be_bytes());
    value[8..].copy_from_slice(&head.digest);
    value
}

impl LogDigest {
    /// Opens (or creates) the store in `dir` and checks that its head and its last entry
    /// agree. A folder held by this process's previous handle (its threads still letting go)
    /// is waited for a little; one held by another process is refused.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        let db = crate::open_sled(dir)
            .map_err(|err| store_error(&format!("open {}", dir.display()), err))?;
        let head = read_head(&db)?;
        let last = db
            .scan_prefix(ENTRY_PREFIX)
            .next_back()
            .transpose()
            .map_err(|e| store_error("read", e))?
            .map(|(key, value)| decode_entry(&key, &value))
            .transpose()?;
        let consistent = match &last {
            None => head == LogHead::default(),
            Some(last) => last.position == head.position && last.digest == head.digest,
        };
        if !consistent {
            return Err(store_error(
                "corrupt",
                format!(
                    "the head (position {}) does not match the last entry (position {})",
                    head.position,
                    last.map(|l| l.position).unwrap_or_default()
                ),
            ));
        }
        let (head, _) = watch::channel(head);
        Ok(Self {
            db,
            head: Arc::new(head),
            running: Arc::new(AtomicBool::new(false)),
            halted: Arc::new(watch::channel(None).0),
        })
    }

    /// Where the stored digest stands.
    pub fn head(&self) -> LogHead {
        *self.head.borrow()
    }

    /// The head now and at every batch stored from now on.
    pub fn subscribe(&self) -> watch::Receiver<LogHead> {
        self.head.subscribe()
    }

    /// The entry of the message at `position`; `None` if not folded (yet).
    pub fn entry(&self, position: u64) -> Result<Option<DigestEntry>, AuditError> {
        let key = entry_key(position);
        self.db
            .get(key)
            .map_err(|e| store_error("read", e))?
            .map(|value| decode_entry(&key, &value))
            .transpose()
    }

    /// The entries from `from` to `to_inclusive`, in order (empty when `from > to_inclusive`).
    pub fn range(&self, from: u64, to_inclusive: u64) -> Result<Vec<DigestEntry>, AuditError> {
        if from > to_inclusive {
            return Ok(Vec::new());
        }
        self.db
            .range(entry_key(from)..=entry_key(to_inclusive))
            .map(|item| {
                let (key, value) = item.map_err(|e| store_error("read", e))?;
                decode_entry(&key, &value)
            })
            .collect()
    }

    /// The head as stored (the task re-reads it before each consumer it creates).
    pub(super) fn stored_head(&self) -> Result<LogHead, AuditError> {
        read_head(&self.db)
    }

    /// The identity of the log this store has folded, if recorded.
    pub(super) fn stream_identity(&self) -> Result<Option<String>, AuditError> {
        self.db
            .get(STREAM_KEY)
            .map_err(|e| store_error("read", e))?
            .map(|v| {
                String::from_utf8(v.to_vec()).map_err(|_| store_error("corrupt", "stream identity"))
            })
            .transpose()
    }

    /// Records the identity of the log being folded, durably.
    pub(super) fn set_stream_identity(&self, identity: &str) -> Result<(), AuditError> {
        self.db
            .insert(STREAM_KEY, identity.as_bytes())
            .map_err(|e| store_error("write", e))?;
        self.db.flush().map_err(|e| store_error("flush", e))?;
        Ok(())
    }

    /// Stores `entries` (in position order, each folded on the one before) and the head
    /// after the last in one atomic batch, flushes, and only then publishes the new head.
    ///
    /// The flush is synchronous: a head handed out (to be signed into an audit checkpoint)
    /// must never be ahead of what the store holds after a crash, or a proof for a signed
    /// position could not be served. One fsync per batch costs little here: batches grow
    /// with the backlog (up to 1,000 messages) and this runs off the ingest path.
    pub(super) fn write(&self, entries: &[DigestEntry]) -> Result<(), AuditError> {
        let Some(last) = entries.last() else {
            return Ok(());
        };
        let head = LogHead {
            position: last.position,
            digest: last.digest,
        };
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(&entry_key(entry.position)[..], &encode_entry(entry)[..]);
        }
        batch.insert(HEAD_KEY, &encode_head(&head)[..]);
        self.db
            .apply_batch(batch)
            .map_err(|e| store_error("write", e))?;
        self.db.flush().map_err(|e| store_error("flush", e))?;
        self.head.send_replace(head);
        Ok(())
    }

    /// Marks the store as written by a task; false if one already is.
    /// Why the task halted (`None` while it has not): it folds nothing more, and checkpoints
    /// go on signing the head it stopped at, so an operator must be told.
    pub fn halted(&self) -> watch::Receiver<Option<String>> {
        self.halted.subscribe()
    }

    pub(super) fn claim(&self) -> bool {
        !self.running.swap(true, Ordering::AcqRel)
    }
}

fn read_head(db: &sled::Db) -> Result<LogHead, AuditError> {
    match db.get(HEAD_KEY).map_err(|e| store_error("read", e))? {
        None => Ok(LogHead {
            position: 0,
            digest: EMPTY,
        }),
        Some(value) if value.len() == HEAD_LEN => {
            let mut position = [0u8; 8];
            position.copy_from_slice(&value[..8]);
            Ok(LogHead {
                position: u64::from_be_bytes(position),
                digest: hash_at(&value, 8),
            })
        }
        Some(value) => Err(store_error(
            "corrupt",
            format!("the head has {} bytes", value.len()),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::log_digest::{leaf, next};

    fn entries(from: u64, to: u64, mut previous: [u8; 32]) -> Vec<DigestEntry> {
        (from..=to)
            .map(|position| {
                let subject_hash = [position as u8; 32];
                let content_hash = [!(position as u8); 32];
                previous = next(&previous, &leaf(position, &subject_hash, &content_hash));
                DigestEntry {
                    position,
                    subject_hash,
                    content_hash,
                    digest: previous,
                }
            })
            .collect()
    }

    #[test]
    fn batches_are_stored_with_their_head_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogDigest::open(dir.path()).unwrap();
        assert_eq!(store.head(), LogHead::default());
        assert_eq!(store.entry(1).unwrap(), None);
        assert!(store.range(1, 10).unwrap().is_empty());

        let first = entries(1, 3, EMPTY);
        store.write(&first).unwrap();
        let second = entries(4, 5, first[2].digest);
        store.write(&second).unwrap();
        let all: Vec<_> = first.iter().chain(&second).copied().collect();
        let head = LogHead {
            position: 5,
            digest: all[4].digest,
        };
        assert_eq!(store.head(), head);
        assert_eq!(store.entry(4).unwrap(), Some(all[3]));
        assert_eq!(store.range(2, 4).unwrap(), all[1..4].to_vec());
        assert_eq!(store.range(1, u64::MAX).unwrap(), all);
        assert!(store.range(4, 2).unwrap().is_empty());
        store.set_stream_identity("123").unwrap();
        drop(store);

        let reopened = LogDigest::open(dir.path()).unwrap();
        assert_eq!(reopened.head(), head);
        assert_eq!(reopened.range(1, 5).unwrap(), all);
        assert_eq!(reopened.stream_identity().unwrap().as_deref(), Some("123"));
    }

    #[test]
    fn a_head_that_disagrees_with_the_last_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogDigest::open(dir.path()).unwrap();
        store.write(&entries(1, 3, EMPTY)).unwrap();
        // An entry past the head, as no batch ever writes.
        let stray = entries(4, 4, [7; 32]);
        store
            .db
            .insert(&entry_key(4)[..], &encode_entry(&stray[0])[..])
            .unwrap();
        store.db.flush().unwrap();
        drop(store);
        let err = LogDigest::open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn only_one_task_claims_a_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogDigest::open(dir.path()).unwrap();
        let clone = store.clone();
        assert!(store.claim());
        assert!(!clone.claim());
    }
}
