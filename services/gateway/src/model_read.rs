//! Reading a read model from a request: wait for the position it names, then read the store
//! off the async threads.

use std::time::Duration;

use hub_api::ApiError;
use hub_projector::{ReadModel, WaitError};
use hub_store::ReadModelStore;
use tracing::error;

/// Waits, within `wait`, until `model` has applied the log up to `min_position`; returns the
/// position it stands at.
pub(crate) async fn reach(
    model: &ReadModel,
    min_position: u64,
    wait: Duration,
) -> Result<u64, ApiError> {
    model
        .wait_for(min_position, wait)
        .await
        .map_err(|err| match err {
            WaitError::NotReached { reached } => ApiError::PositionNotReached {
                read_model: model.name(),
                reached,
                wanted: min_position,
            },
            WaitError::Halted(_) => {
                ApiError::Unavailable(format!("read model {} is halted", model.name()))
            }
        })
}

/// Runs a read of the store off the async threads (sled may block on disk).
pub(crate) async fn blocking<T: Send + 'static>(
    model: &ReadModel,
    f: impl FnOnce(&dyn ReadModelStore) -> Result<T, hub_store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    let name = model.name();
    let model = model.clone();
    tokio::task::spawn_blocking(move || f(&*model.store()))
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()))
        .map_err(|reason| {
            error!(read_model = name, reason = %reason, "read failed");
            ApiError::Internal
        })
}
