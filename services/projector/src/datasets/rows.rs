//! The rows of a dataset inside a projector batch, with the count the catalogue shows.

use hub_store::{Batch, ReadModelStore, StoreError};
use serde_json::{Map, Value};

use super::{DATA_PREFIX, Dataset};
use crate::projection::ProjectionError;

/// A row: a JSON object whose members are the dataset's fields.
pub type Row = Map<String, Value>;

/// Where the number of rows is kept, beside them.
const COUNT_KEY: &[u8] = b"#rows";

pub fn data_key(key: &[u8]) -> Vec<u8> {
    [DATA_PREFIX, key].concat()
}

/// Where a party's rows are indexed: `p/<party>/`.
pub fn party_prefix(party: &str) -> Vec<u8> {
    [b"p/", party.as_bytes(), b"/"].concat()
}

/// The index entry of row `key` under `party`.
pub fn party_key(party: &str, key: &[u8]) -> Vec<u8> {
    [party_prefix(party).as_slice(), key].concat()
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(format!("stored {what} is corrupt: {e}"))
}

pub fn decode_row(bytes: &[u8]) -> Result<Row, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt("row", e))
}

/// Rows the dataset holds, as its last commit left them.
pub fn row_count(store: &dyn ReadModelStore) -> Result<u64, StoreError> {
    match store.get(COUNT_KEY)? {
        None => Ok(0),
        Some(bytes) => bytes
            .as_slice()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| corrupt("row count", "not 8 bytes")),
    }
}

/// A dataset's rows within one batch. Puts and deletes keep the row count in the same batch.
pub struct Rows<'b, 'a> {
    batch: &'b mut Batch<'a>,
}

impl<'b, 'a> Rows<'b, 'a> {
    pub fn new(batch: &'b mut Batch<'a>) -> Self {
        Self { batch }
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Row>, ProjectionError> {
        match self.batch.get(&data_key(key))? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ProjectionError::CorruptRow(e.to_string())),
        }
    }

    pub fn put(&mut self, key: &[u8], row: &Row) -> Result<(), ProjectionError> {
        let key = data_key(key);
        if self.batch.get(&key)?.is_none() {
            self.add_to_count(1)?;
        }
        let bytes = serde_json::to_vec(row).map_err(|e| corrupt("row", e))?;
        self.batch.put(key, bytes);
        Ok(())
    }

    pub fn delete(&mut self, key: &[u8]) -> Result<(), ProjectionError> {
        let key = data_key(key);
        if self.batch.get(&key)?.is_some() {
            self.add_to_count(-1)?;
            self.batch.delete(key);
        }
        Ok(())
    }

    /// Puts a row of a dataset whose rows belong to parties (see [`Dataset::parties`]), and
    /// indexes it under each party it names, so a party's reads walk its own rows only.
    /// A row's parties never change once it is written.
    pub fn put_for_parties(
        &mut self,
        dataset: &Dataset,
        key: &[u8],
        row: &Row,
    ) -> Result<(), ProjectionError> {
        self.put(key, row)?;
        for field in dataset.parties {
            if let Some(party) = row.get(*field).and_then(Value::as_str) {
                self.batch.put(party_key(party, key), Vec::new());
            }
        }
        Ok(())
    }

    /// Adds `by` to the integer field `field` of the row at `key`, creating the row from
    /// `new` when there is none. Counters touched many times in a batch are written once.
    pub fn add(
        &mut self,
        key: &[u8],
        new: impl FnOnce() -> Row,
        field: &str,
        by: i64,
    ) -> Result<(), ProjectionError> {
        let mut row = self.get(key)?.unwrap_or_else(new);
        let now = row.get(field).and_then(Value::as_i64).unwrap_or(0);
        row.insert(field.to_owned(), Value::from(now + by));
        self.put(key, &row)
    }

    /// The model's own bookkeeping (not rows of the dataset), under a prefix of its choosing.
    pub fn batch(&mut self) -> &mut Batch<'a> {
        self.batch
    }

    fn add_to_count(&mut self, by: i64) -> Result<(), ProjectionError> {
        let now = match self.batch.get(COUNT_KEY)? {
            None => 0,
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| ProjectionError::CorruptRow("row count: not 8 bytes".into()))?,
            ),
        };
        let next = now.saturating_add_signed(by);
        self.batch.put(COUNT_KEY, next.to_be_bytes().to_vec());
        Ok(())
    }
}
