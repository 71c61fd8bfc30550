//! A digest of a read model at its checkpoint: SHA-256 over every row, key and value, in
//! key order. The rows a model holds after applying the same events are the same whatever
//! the batch sizes were (writes within a batch collapse to the last), so two builds of a
//! model, or a department's replica, compare by digest at the same position.

use sha2::{Digest as _, Sha256};

use crate::{ReadModelStore, StoreError};

/// A read model's digest and the checkpoint it was taken at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Digest {
    pub checkpoint: u64,
    pub sha256: [u8; 32],
    /// The rows digested.
    pub rows: u64,
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@", self.checkpoint)?;
        self.sha256.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Digests every row of `store`. Take it while nothing writes (a stopped or held model):
/// rows and checkpoint are read separately.
pub fn digest(store: &dyn ReadModelStore) -> Result<Digest, StoreError> {
    let checkpoint = store.checkpoint()?;
    let mut hash = Sha256::new();
    let mut after: Option<Vec<u8>> = None;
    let mut count = 0;
    loop {
        let rows = store.scan(b"", after.as_deref(), 1024)?;
        let Some((last, _)) = rows.last() else {
            break;
        };
        after = Some(last.clone());
        count += rows.len() as u64;
        for (key, value) in &rows {
            // Lengths first, so no two row sets hash alike by shifting bytes between rows.
            hash.update((key.len() as u64).to_be_bytes());
            hash.update(key);
            hash.update((value.len() as u64).to_be_bytes());
            hash.update(value);
        }
    }
    Ok(Digest {
        checkpoint,
        sha256: hash.finalize().into(),
        rows: count,
    })
}
