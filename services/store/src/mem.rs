//! An in-memory store for unit tests of projections, and for the scratch models the hub
//! builds to answer a question and then drops (an auditor's row as of a position). Not
//! durable; never a read model's storage.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::{KeyValues, ReadModelStore, StoreError, Write};

/// The rows and the checkpoint.
type Rows = (BTreeMap<Vec<u8>, Vec<u8>>, u64);

#[derive(Debug, Default)]
pub struct MemStore {
    inner: Mutex<Rows>,
    meta: Mutex<BTreeMap<String, String>>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rows> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ReadModelStore for MemStore {
    fn checkpoint(&self) -> Result<u64, StoreError> {
        Ok(self.lock().1)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.lock().0.get(key).cloned())
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<KeyValues, StoreError> {
        let guard = self.lock();
        Ok(guard
            .0
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| after.is_none_or(|a| k.as_slice() > a))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn forget(&self, keys: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let mut guard = self.lock();
        for key in keys {
            guard.0.remove(&key);
        }
        Ok(())
    }

    fn meta(&self, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .meta
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned())
    }

    fn set_meta(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.meta
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    fn write(&self, writes: Vec<Write>, checkpoint: u64) -> Result<(), StoreError> {
        let mut guard = self.lock();
        if checkpoint < guard.1 {
            return Err(StoreError::Backwards {
                current: guard.1,
                new: checkpoint,
            });
        }
        for write in writes {
            match write {
                Write::Put { key, value } => {
                    guard.0.insert(key, value);
                }
                Write::Delete { key } => {
                    guard.0.remove(&key);
                }
            }
        }
        guard.1 = checkpoint;
        Ok(())
    }
}
