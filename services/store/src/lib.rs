//! Read-model storage.
//!
//! A projection reads rows through a [`Batch`] (which sees its own earlier writes) and
//! hands the batch's writes to a [`ReadModelStore`], which applies them together with the new
//! checkpoint atomically and durably. The checkpoint is the last stream sequence applied; it
//! is the only position that counts when a projector restarts.
//!
//! [`SledStore`] is the real store: one sled database per read model, in its own folder,
//! with its cache size set explicitly. [`MemStore`] exists for unit tests of projections (and
//! the scratch models built to answer one question) and passes the same suite (`tests` below).

mod batch;
mod digest;
pub mod failpoint;
mod mem;
mod sled_store;

pub use batch::Batch;
pub use digest::{Digest, digest};
pub use mem::MemStore;
pub use sled_store::{
    COMPRESSED_CACHE_SHARE, COMPRESSION_LEVEL, FLUSH_EVERY_MS, Opened, SledStore,
    created_compressed,
};

/// Rows as a scan returns them: (key, value) in key order.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

/// One change to a read model's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    Put { key: Vec<u8>, value: Vec<u8> },
    Delete { key: Vec<u8> },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("read-model storage failed: {0}")]
    Io(String),
    #[error("checkpoint {new} would move backwards from {current}")]
    Backwards { current: u64, new: u64 },
    #[error("stored checkpoint is corrupt")]
    CorruptCheckpoint,
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> Self {
        StoreError::Io(err.to_string())
    }
}

/// Meta: which log the rows were built from (the events stream's creation time).
pub const LOG_IDENTITY: &str = "log";
/// Meta: the version of the code that built the rows.
pub const MODEL_VERSION: &str = "version";

/// Rows of a read model plus its checkpoint.
pub trait ReadModelStore: Send + Sync {
    /// The last stream sequence applied (0: none).
    fn checkpoint(&self) -> Result<u64, StoreError>;

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Rows whose key starts with `prefix`, in key order, strictly after `after` when given.
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<KeyValues, StoreError>;

    /// Applies `writes` and moves the checkpoint to `checkpoint` in one atomic step: after a
    /// crash, both are there or neither. Durable only once [`ReadModelStore::flush`] returns.
    /// A checkpoint never moves backwards.
    fn write(&self, writes: Vec<Write>, checkpoint: u64) -> Result<(), StoreError>;

    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StoreError>;

    /// A fact about the rows kept beside the checkpoint and outside the rows (so digests and
    /// scans never see it): [`LOG_IDENTITY`], [`MODEL_VERSION`]. `None` until recorded.
    fn meta(&self, name: &str) -> Result<Option<String>, StoreError>;

    /// Records a fact about the rows, durably.
    fn set_meta(&self, name: &str, value: &str) -> Result<(), StoreError>;

    /// Removes rows outside the checkpoint's atomic step, durable at the next flush. Only for
    /// bookkeeping whose survival or loss in a crash is harmless either way (an outbox entry
    /// already sent is sent again, and de-duplicated by its receiver).
    fn forget(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError>;

    /// Bytes the store takes on disk, for a store kept on disk.
    fn disk_bytes(&self) -> Option<u64> {
        None
    }

    /// [`ReadModelStore::write`], then [`ReadModelStore::flush`].
    fn commit(&self, writes: Vec<Write>, checkpoint: u64) -> Result<(), StoreError> {
        self.write(writes, checkpoint)?;
        self.flush()
    }
}

#[cfg(test)]
mod tests;
