//! VerifyReadModel: the live read model's digest against a fresh build's at the same
//! position.
//!
//! The live model's projector stops just long enough to digest its rows where it stands, at
//! position P (reads go on meanwhile); the fresh build then replays the model's subjects from
//! position 1 up to P with the projector's own code into a scratch sled database under
//! `<data_dir>/scratch` (removed afterwards, and at every start), is prepared as the live
//! store was before its projector ran, and is digested the same way. Rows are compared, not
//! checkpoints: a live checkpoint may stand past a fresh build's last matching event.

use std::path::PathBuf;
use std::sync::Arc;

use hub_api::ApiError;
use hub_api::v1::VerifyReadModelResponse;
use hub_audit::signing::hex;
use hub_log::Appender;
use hub_projector::replay::{ReplayError, build_to};
use hub_store::SledStore;
use tracing::{error, info, warn};

use crate::model_control::Managed;

/// Removes what verifies left in `<data_dir>/scratch` (a crash in the middle of one).
pub fn clear_scratch(data_dir: &std::path::Path) {
    let scratch = data_dir.join("scratch");
    if scratch.exists()
        && let Err(err) = std::fs::remove_dir_all(&scratch)
    {
        warn!(dir = %scratch.display(), error = %err, "could not clear the scratch folder");
    }
}

/// A sled database in a new folder under `<data_dir>/scratch` (named `<prefix>…`), which
/// goes when the folder is dropped.
pub(super) async fn scratch_store(
    (data_dir, cache_mb): (&std::path::Path, u64),
    prefix: &'static str,
) -> Result<(tempfile::TempDir, Arc<SledStore>), ApiError> {
    let scratch = data_dir.join("scratch");
    let dir = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&scratch)?;
        tempfile::Builder::new().prefix(prefix).tempdir_in(&scratch)
    })
    .await
    .map_err(|_| ApiError::Internal)?
    .map_err(|err| {
        error!(error = %err, "no scratch folder");
        ApiError::Internal
    })?;
    let path = dir.path().to_owned();
    let store = tokio::task::spawn_blocking(move || SledStore::open(&path, cache_mb << 20))
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|err| {
            error!(error = %err, "the scratch database cannot be opened");
            ApiError::Internal
        })?;
    Ok((dir, Arc::new(store)))
}

pub(super) async fn verify(
    log: &Appender,
    managed: &Managed,
    (data_dir, cache_mb): &(PathBuf, u64),
) -> Result<VerifyReadModelResponse, ApiError> {
    let name = managed.model.name();
    let (live, position) = managed.digest().await?;
    let (dir, store) = scratch_store((data_dir, *cache_mb), "verify-").await?;
    let projection = managed.projection.clone();
    let filter = projection.filter_subject();
    let started = std::time::Instant::now();
    match build_to(log, store.clone(), (projection, &filter), position).await {
        Ok(_) => {}
        Err(ReplayError::Log(err)) => {
            warn!(read_model = name, error = %err, "verify: the log cannot be read");
            return Err(ApiError::Unavailable(
                "the event log cannot be read now; retry later".into(),
            ));
        }
        Err(ReplayError::Apply(err)) => {
            return Err(ApiError::FailedPrecondition(format!(
                "a fresh build of {name} stops short of position {position}: {err}"
            )));
        }
        Err(err) => {
            error!(read_model = name, error = %err, "verify: the fresh build failed");
            return Err(ApiError::Internal);
        }
    }
    // Prepared as the live store was before its projector ran (command_state records the
    // policy its due index was built with); alarms of its own, never the hub's.
    let fresh = {
        let store = store.clone();
        let (prepare, policy) = managed.prepare.clone();
        tokio::task::spawn_blocking(move || {
            prepare(name, &store, &policy, &hub_projector::Alarms::default())?;
            anyhow::Ok(hub_store::digest(&*store)?)
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|err| {
            error!(error = %format!("{err:#}"), "verify: preparing or digesting the fresh build failed");
            ApiError::Internal
        })?
    };
    drop(store);
    // The scratch database goes with its folder.
    let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
    let matches = live.sha256 == fresh.sha256;
    info!(
        read_model = name,
        position,
        matches,
        rows = live.rows,
        seconds = started.elapsed().as_secs_f64(),
        "verified a read model against a fresh build"
    );
    Ok(VerifyReadModelResponse {
        read_model: name.to_owned(),
        position,
        live_digest: hex(&live.sha256),
        fresh_digest: hex(&fresh.sha256),
        matches,
        live_rows: live.rows,
        fresh_rows: fresh.rows,
    })
}
