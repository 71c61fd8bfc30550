//! The sled store: one database per read model, in its own folder.
//!
//! Rows and the checkpoint live in one tree under distinct key prefixes, so one sled batch
//! (atomic within a tree) carries both, and a flush makes both durable before the projector
//! acknowledges the events to NATS. A crash anywhere leaves rows and checkpoint in agreement.

use std::path::{Path, PathBuf};

use crate::{KeyValues, ReadModelStore, StoreError, Write};

const ROW_PREFIX: &[u8] = b"r/";
const CHECKPOINT_KEY: &[u8] = b"m/checkpoint";

/// How a store came to be open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The existing database opened.
    Existing,
    /// The folder was empty or absent; a new database was created.
    New,
    /// The database failed to open; its folder was moved to `moved_to` and a new one created,
    /// to be rebuilt from the log.
    Reset { moved_to: PathBuf, reason: String },
}

pub struct SledStore {
    db: sled::Db,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

/// Meta facts live beside the checkpoint (`m/checkpoint`), outside the rows.
fn meta_key(name: &str) -> Vec<u8> {
    [b"m/", name.as_bytes(), b"/"].concat()
}

fn row_key(key: &[u8]) -> Vec<u8> {
    [ROW_PREFIX, key].concat()
}

impl SledStore {
    /// Opens the database in `dir` with a page cache of `cache_bytes`; a new one keeps its
    /// pages uncompressed.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        Self::open_with(dir, cache_bytes, false)
    }

    /// Opens the database in `dir`; a new one compresses its pages if `compress_new` (an
    /// existing one keeps what it was made with: sled cannot change it).
    pub fn open_with(dir: &Path, cache_bytes: u64, compress_new: bool) -> Result<Self, StoreError> {
        Ok(Self {
            db: open_db(dir, cache_bytes, compress_new)?,
        })
    }

    /// Opens the database, or, if it cannot be opened, moves the folder aside and starts an
    /// empty one: read models are disposable and rebuilt from the log; the log is not.
    pub fn open_or_reset(dir: &Path, cache_bytes: u64) -> Result<(Self, Opened), StoreError> {
        Self::open_or_reset_with(dir, cache_bytes, false)
    }

    /// [`SledStore::open_or_reset`], a new database compressing its pages if `compress_new`.
    pub fn open_or_reset_with(
        dir: &Path,
        cache_bytes: u64,
        compress_new: bool,
    ) -> Result<(Self, Opened), StoreError> {
        let existed = dir.join("db").exists();
        let started = std::time::Instant::now();
        let opened = loop {
            match open_db(dir, cache_bytes, compress_new) {
                // Held by another process, or by this one's previous handle whose threads
                // are still letting go: wait a little, never treat it as broken.
                Err(sled::Error::Io(e)) if is_lock_error(&e) => {
                    if started.elapsed() > std::time::Duration::from_secs(5) {
                        return Err(StoreError::Io(format!(
                            "{} is in use by another process",
                            dir.display()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                // An I/O fault is not a broken database: refuse rather than discard it.
                Err(sled::Error::Io(e)) => return Err(StoreError::Io(e.to_string())),
                other => break other,
            }
        };
        match opened {
            Ok(db) => {
                let store = Self { db };
                store.checkpoint()?;
                Ok((
                    store,
                    if existed {
                        Opened::Existing
                    } else {
                        Opened::New
                    },
                ))
            }
            Err(err) => {
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or_default();
                let moved_to = dir.with_extension(format!("broken-{stamp}"));
                std::fs::rename(dir, &moved_to).map_err(|e| StoreError::Io(e.to_string()))?;
                let store = Self::open_with(dir, cache_bytes, compress_new)?;
                Ok((
                    store,
                    Opened::Reset {
                        moved_to,
                        reason: err.to_string(),
                    },
                ))
            }
        }
    }
}

/// sled 0.34 reports a held file lock as an `Other` I/O error with this text.
fn is_lock_error(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::WouldBlock
        || e.to_string().starts_with("could not acquire lock")
}

/// How often sled makes what was written durable, in its own thread: writers never wait for
/// the disk. A read model's rows and checkpoint are one atomic batch, so a crash loses at most
/// this long of its latest batches, whole, and the projector applies them again from the log.
pub const FLUSH_EVERY_MS: u64 = 200;

/// zstd level of a compressed database's pages: the fastest, since a rebuild is bound by
/// the CPU; JSON rows still shrink several times over.
pub const COMPRESSION_LEVEL: i32 = 1;

/// A compressed database's cache is this share of the one asked for, so that it holds no more
/// in memory than a plain one: rows like the case timeline's, zstd level 1 over 8 KiB at a
/// time, came to an eighth of their size.
pub const COMPRESSED_CACHE_SHARE: u64 = 4;

fn open_db(dir: &Path, cache_bytes: u64, compress_new: bool) -> sled::Result<sled::Db> {
    let compress = match created_compressed(dir) {
        Some(made) => made,
        None if !dir.join("db").exists() => compress_new,
        // Guessed wrong, sled panics on the first page rather than failing: an error here
        // has `open_or_reset` move the folder aside and rebuild it.
        None => {
            return Err(sled::Error::Unsupported(
                "the database's settings (conf) do not say whether its pages are compressed"
                    .to_owned(),
            ));
        }
    };
    sled::Config::new()
        .path(dir)
        // sled counts its cache in bytes as stored: compressed pages would fill it several
        // times over once read back.
        .cache_capacity(if compress {
            cache_bytes / COMPRESSED_CACHE_SHARE
        } else {
            cache_bytes
        })
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(Some(FLUSH_EVERY_MS))
        // sled refuses to open a database with another setting than it was created with.
        .use_compression(compress)
        .compression_factor(COMPRESSION_LEVEL)
        .open()
}

/// Whether the database in `dir` was created with compression, from the settings sled
/// keeps beside it (`conf`: lines `name: value`, then a 4-byte checksum); `None` when there
/// is no such file or it does not say.
pub fn created_compressed(dir: &Path) -> Option<bool> {
    let conf = std::fs::read(dir.join("conf")).ok()?;
    String::from_utf8_lossy(&conf)
        .lines()
        .find_map(|line| line.strip_prefix("use_compression: "))
        .and_then(|value| value.trim().parse().ok())
}

impl ReadModelStore for SledStore {
    fn disk_bytes(&self) -> Option<u64> {
        self.db.size_on_disk().ok()
    }

    fn checkpoint(&self) -> Result<u64, StoreError> {
        match self.db.get(CHECKPOINT_KEY)? {
            None => Ok(0),
            Some(bytes) => {
                let array: [u8; 8] = bytes
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::CorruptCheckpoint)?;
                Ok(u64::from_be_bytes(array))
            }
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(row_key(key))?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<KeyValues, StoreError> {
        let full_prefix = row_key(prefix);
        let iter = match after {
            Some(after) => {
                let mut start = row_key(after);
                start.push(0);
                self.db.range(start..)
            }
            None => self.db.range(full_prefix.clone()..),
        };
        let mut rows = Vec::new();
        for item in iter {
            let (key, value) = item?;
            if !key.starts_with(&full_prefix) || rows.len() == limit {
                break;
            }
            rows.push((key[ROW_PREFIX.len()..].to_vec(), value.to_vec()));
        }
        Ok(rows)
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }

    fn forget(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for key in keys {
            batch.remove(row_key(&key));
        }
        self.db.apply_batch(batch)?;
        Ok(())
    }

    fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.db
            .get(meta_key(name))?
            .map(|bytes| {
                String::from_utf8(bytes.to_vec())
                    .map_err(|_| StoreError::Io(format!("stored {name} is corrupt")))
            })
            .transpose()
    }

    fn set_meta(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.db.insert(meta_key(name), value.as_bytes())?;
        self.flush()
    }

    fn write(&self, writes: Vec<Write>, checkpoint: u64) -> Result<(), StoreError> {
        let current = self.checkpoint()?;
        if checkpoint < current {
            return Err(StoreError::Backwards {
                current,
                new: checkpoint,
            });
        }
        let mut batch = sled::Batch::default();
        for write in writes {
            match write {
                Write::Put { key, value } => batch.insert(row_key(&key), value),
                Write::Delete { key } => batch.remove(row_key(&key)),
            }
        }
        batch.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes());
        self.db.apply_batch(batch)?;
        Ok(())
    }
}
