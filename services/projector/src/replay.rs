//! A read model built from the log up to a position into a store of the caller's, outside
//! the projector's consumer: the auditors' rows as of a position and the operators' verify
//! (a fresh build to compare with the live one) replay through this.

use std::sync::Arc;

use hub_log::{AppendError, Appender, Entry};
use hub_store::{Batch, ReadModelStore};

use crate::projection::{Projection, ProjectionError};
use crate::runner::apply_entries;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] AppendError),
    /// The projection could not apply an event (it names the position), or the store failed.
    #[error(transparent)]
    Apply(#[from] ProjectionError),
    #[error("the replay's task failed: {0}")]
    Task(String),
}

/// Applies to `store` the messages on `filter` (a subject, wildcards allowed) after the
/// store's checkpoint up to position `up_to`, read a batch of direct gets at a time and
/// applied and committed batch by batch by the projector's own code, as the live projector
/// commits them. Returns the store's checkpoint after the last batch: the last position
/// applied (below `up_to` when the filter's last message is).
pub async fn build_to(
    log: &Appender,
    store: Arc<dyn ReadModelStore>,
    (projection, filter): (Arc<dyn Projection>, &str),
    up_to: u64,
) -> Result<u64, ReplayError> {
    let mut after = checkpoint(&store).await?;
    while after < up_to {
        let mut entries = log.read_filter_batch(filter, after).await?;
        let Some(last) = entries.last().map(Entry::position) else {
            break; // nothing more on the filter's subjects
        };
        entries.retain(|e| e.position() <= up_to);
        after = last;
        let (store, projection) = (store.clone(), projection.clone());
        tokio::task::spawn_blocking(move || -> Result<(), ProjectionError> {
            let checkpoint = store.checkpoint()?;
            let mut batch = Batch::new(&*store);
            let applied = apply_entries(&*projection, &mut batch, &entries, checkpoint)?;
            if applied > checkpoint {
                store.write(batch.into_writes(), applied)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| ReplayError::Task(e.to_string()))??;
    }
    checkpoint(&store).await
}

async fn checkpoint(store: &Arc<dyn ReadModelStore>) -> Result<u64, ReplayError> {
    let store = store.clone();
    Ok(tokio::task::spawn_blocking(move || store.checkpoint())
        .await
        .map_err(|e| ReplayError::Task(e.to_string()))?
        .map_err(ProjectionError::from)?)
}
