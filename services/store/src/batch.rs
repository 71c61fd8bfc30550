//! The writes of one projector batch, readable before they are committed.

use std::collections::BTreeMap;

use crate::{KeyValues, ReadModelStore, StoreError, Write};

/// Pending writes over a store. Reads see the batch's own writes first; several writes to one
/// key collapse into the last, so a row touched by many events of a batch is written once.
pub struct Batch<'a> {
    store: &'a dyn ReadModelStore,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> Batch<'a> {
    pub fn new(store: &'a dyn ReadModelStore) -> Self {
        Self {
            store,
            pending: BTreeMap::new(),
        }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        match self.pending.get(key) {
            Some(value) => Ok(value.clone()),
            None => self.store.get(key),
        }
    }

    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.pending.insert(key.into(), Some(value.into()));
    }

    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.pending.insert(key.into(), None);
    }

    /// Every row under `prefix`, the batch's own writes included, in key order. For small
    /// sets of bookkeeping rows: it reads them all.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<KeyValues, StoreError> {
        let mut rows: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        let mut after: Option<Vec<u8>> = None;
        loop {
            let chunk = self.store.scan(prefix, after.as_deref(), 1024)?;
            let done = chunk.len() < 1024;
            after = chunk.last().map(|(k, _)| k.clone());
            rows.extend(chunk);
            if done {
                break;
            }
        }
        for (key, value) in self.pending.range(prefix.to_vec()..) {
            if !key.starts_with(prefix) {
                break;
            }
            match value {
                Some(value) => rows.insert(key.clone(), value.clone()),
                None => rows.remove(key),
            };
        }
        Ok(rows.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn into_writes(self) -> Vec<Write> {
        self.pending
            .into_iter()
            .map(|(key, value)| match value {
                Some(value) => Write::Put { key, value },
                None => Write::Delete { key },
            })
            .collect()
    }
}
