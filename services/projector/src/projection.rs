//! What a read model does with an event.

use hub_log::{StoredEvent, Unreadable};
use hub_store::{Batch, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// The event cannot be read: the read model halts rather than serve wrong data.
    #[error("event at position {position} cannot be decoded: {reason}")]
    Decode { position: u64, reason: String },
    /// The event contradicts the read model (e.g. an update to a row that does not exist).
    #[error("event at position {position} does not fit the read model: {reason}")]
    Inconsistent { position: u64, reason: String },
    /// A row or record the model stored earlier does not decode: the model halts (it is
    /// rebuilt from the log), the rest of the hub goes on.
    #[error("a stored row of the read model is corrupt: {0}")]
    CorruptRow(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A read model's rules: which events it consumes and how each changes its rows.
pub trait Projection: Send + Sync + 'static {
    /// The read model's name: its folder, its consumer, its dataset id.
    fn name(&self) -> &'static str;

    /// The subjects it consumes, e.g. `gov.events.case.>`.
    fn filter_subject(&self) -> String;

    /// The version of the code that builds the rows: raised when the rows change, so a store
    /// built by older code is rebuilt beside the live one.
    fn version(&self) -> u32 {
        1
    }

    /// Applies one event. Reads through `batch` see the writes of earlier events of the batch.
    /// Event types the model does not know are ignored.
    fn apply(&self, event: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError>;

    /// A message of the log whose envelope cannot be read. By default the read model halts;
    /// a model that can work around one unreadable event says how.
    fn apply_unreadable(
        &self,
        unreadable: &Unreadable,
        _batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        Err(ProjectionError::Decode {
            position: unreadable.position,
            reason: unreadable.reason.clone(),
        })
    }
}
