//! Opening the read models, and what each needs done before its projector starts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use hub_api::aggregate::{Aggregate, Care, Case, Grant};
use hub_domain::policy::Policy;
use hub_projector::case_queue;
use hub_projector::command_state;
use hub_projector::datasets::care::{self, CareDataset, CareModel};
use hub_projector::datasets::case_model::CaseModel;
use hub_projector::datasets::case_timeline::{self, CaseTimeline};
use hub_projector::datasets::complaint_stats::{self, ComplaintStats};
use hub_projector::datasets::grant_register::{self, GrantRegister};
use hub_projector::datasets::incident_stats::{self, IncidentStats};
use hub_projector::datasets::response_efficiency::{self, ResponseEfficiency};
use hub_projector::datasets::transfer_ledger::{self, TransferLedger};
use hub_projector::datasets::{Dataset, common};
use hub_projector::{Alarms, Projection, ReadModel};
use hub_store::{MODEL_VERSION, Opened, ReadModelStore, SledStore};
use jiff::tz::TimeZone;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// What is done with a read model's store before its projector starts: given the model's
/// name, its store, the policy and the alarms.
pub type Prepare = fn(&str, &SledStore, &Policy, &Alarms) -> anyhow::Result<()>;

/// The catalogue's datasets, each with the projection that builds it.
pub fn dataset_projections(
    tz: &TimeZone,
    alarms: &Alarms,
) -> Vec<(&'static Dataset, Arc<dyn Projection>)> {
    let case = |rows| -> Arc<dyn Projection> { rows };
    let tz = tz.clone();
    vec![
        (
            &incident_stats::DATASET,
            case(Arc::new(CaseModel::new(
                IncidentStats,
                tz.clone(),
                alarms.clone(),
            ))),
        ),
        (
            &response_efficiency::DATASET,
            case(Arc::new(CaseModel::new(
                ResponseEfficiency,
                tz.clone(),
                alarms.clone(),
            ))),
        ),
        (
            &complaint_stats::DATASET,
            case(Arc::new(CaseModel::new(
                ComplaintStats,
                tz.clone(),
                alarms.clone(),
            ))),
        ),
        (
            &care::COUNTS,
            Arc::new(CareModel::new(CareDataset::Counts, alarms.clone())),
        ),
        (
            &case_timeline::DATASET,
            case(Arc::new(CaseModel::new(
                CaseTimeline,
                tz.clone(),
                alarms.clone(),
            ))),
        ),
        (
            &transfer_ledger::DATASET,
            case(Arc::new(CaseModel::new(TransferLedger, tz, alarms.clone()))),
        ),
        (
            &care::ROSTER,
            Arc::new(CareModel::new(CareDataset::Roster, alarms.clone())),
        ),
        (
            &grant_register::DATASET,
            Arc::new(GrantRegister::new(alarms.clone())),
        ),
    ]
}

/// Before a dataset's projector starts: the alarms of the events it passed over raised again.
pub fn prepare_dataset(
    name: &str,
    store: &SledStore,
    _: &Policy,
    alarms: &Alarms,
) -> anyhow::Result<()> {
    for (id, block) in common::passed_over(store)? {
        let (key, text) = common::passed_alarm(name, &id, &block);
        alarms.raise(key, text);
    }
    Ok(())
}

/// Raises an alarm (`halted/<model>`) when a read model halts rather than serve wrong data.
pub async fn alarm_when_halted(model: ReadModel, alarms: Alarms, stop: CancellationToken) {
    let key = format!("halted/{}", model.name());
    alarm_as_when_halted(model, (alarms, key), stop).await;
}

/// Raises the alarm `key` when `model` halts.
pub async fn alarm_as_when_halted(
    model: ReadModel,
    (alarms, key): (Alarms, String),
    stop: CancellationToken,
) {
    let mut state = model.subscribe();
    tokio::select! {
        _ = stop.cancelled() => {}
        halted = state.wait_for(|s| s.halted.is_some()) => {
            if let Ok(s) = halted {
                let reason = s.halted.clone().unwrap_or_default();
                alarms.raise(key, format!("read model {} halted: {reason}", model.name()));
            }
        }
    }
}

/// The folder of a read model's live database: `read-models/<name>`, unless a rebuild was
/// swapped in, which `read-models/<name>.current` then names.
pub fn read_model_dir(data_dir: &Path, name: &str) -> PathBuf {
    let root = data_dir.join("read-models");
    match std::fs::read_to_string(root.join(format!("{name}.current"))) {
        Ok(folder) if is_model_folder(name, folder.trim()) => root.join(folder.trim()),
        _ => root.join(name),
    }
}

/// A folder of read model `name`: `<name>`, a rebuild for a new version's `<name>.v<version>`
/// or an operator's rebuild's `<name>.r<number>`.
fn is_model_folder(name: &str, folder: &str) -> bool {
    folder == name
        || folder
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix(".v").or_else(|| rest.strip_prefix(".r")))
            .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// Makes `folder` the live database of read model `name`, atomically: the pointer file is
/// written aside, synced and renamed over the old one.
pub(crate) fn set_live_folder(data_dir: &Path, name: &str, folder: &str) -> std::io::Result<()> {
    let root = data_dir.join("read-models");
    let pointer = root.join(format!("{name}.current"));
    let aside = root.join(format!("{name}.current.new"));
    {
        let mut file = std::fs::File::create(&aside)?;
        std::io::Write::write_all(&mut file, folder.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&aside, &pointer)?;
    std::fs::File::open(&root)?.sync_all()
}

/// Removes the folders of read model `name` that are neither live nor in `keep`: what a swap
/// that stopped halfway (a crash after the pointer moved) left behind.
pub(crate) fn remove_stale(data_dir: &Path, name: &str, keep: &[&Path]) {
    let root = data_dir.join("read-models");
    let live = read_model_dir(data_dir, name);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let folder = entry.file_name().to_string_lossy().into_owned();
        if is_model_folder(name, &folder) && path != live && !keep.contains(&path.as_path()) {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    info!(read_model = name, folder = %folder, "removed a replaced read model")
                }
                Err(err) => {
                    warn!(read_model = name, folder = %folder, error = %err, "could not remove a replaced read model")
                }
            }
        }
    }
}

/// What a read model's start needs of its stored version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Built by this code (or new, or from before versions were kept): run it.
    Current,
    /// Built by older code: rebuild beside it, then swap.
    Older(u32),
}

/// Compares the stored version with the code's, recording the code's in a store that has none.
pub fn check_version(store: &SledStore, code: u32) -> anyhow::Result<Version> {
    let stored = store.meta(MODEL_VERSION)?;
    match stored.as_deref().map(str::parse::<u32>) {
        None => {
            store.set_meta(MODEL_VERSION, &code.to_string())?;
            Ok(Version::Current)
        }
        Some(Ok(v)) if v < code => Ok(Version::Older(v)),
        Some(Ok(_)) => Ok(Version::Current),
        // Unreadable: rebuild rather than trust it.
        Some(Err(_)) => Ok(Version::Older(0)),
    }
}

/// Opens read model `name`'s live database, first removing folders a swap left behind (but
/// not a rebuild for `version`, the code's, which a restart resumes).
pub async fn open_read_model(
    data_dir: &Path,
    name: &'static str,
    cache_mb: u64,
    version: u32,
) -> anyhow::Result<Arc<SledStore>> {
    let keep = data_dir
        .join("read-models")
        .join(format!("{name}.v{version}"));
    let data = data_dir.to_owned();
    tokio::task::spawn_blocking(move || remove_stale(&data, name, &[keep.as_path()])).await?;
    open_dir(read_model_dir(data_dir, name), name, cache_mb).await
}

/// The read models whose new databases compress their pages: the two that take most of the
/// disk (at 1M events, uncompressed: the case timeline 3.1 GiB, the feed publisher's outbox
/// 2.3 GiB, of 6.3 GiB). The others keep plain pages, which costs no CPU on the command
/// index, the slowest model to build.
const COMPRESSED: &[&str] = &[
    hub_projector::datasets::case_timeline::DATASET.id,
    hub_projector::feed::FEED_MODEL,
];

/// Whether a new database of read model `name` compresses its pages.
pub fn compressed(name: &str) -> bool {
    COMPRESSED.contains(&name)
}

pub(crate) async fn open_dir(
    dir: PathBuf,
    name: &'static str,
    cache_mb: u64,
) -> anyhow::Result<Arc<SledStore>> {
    let compress = compressed(name);
    let (store, opened) = tokio::task::spawn_blocking(move || {
        SledStore::open_or_reset_with(&dir, cache_mb << 20, compress)
    })
    .await?
    .with_context(|| format!("opening read model {name}"))?;
    if let Opened::Reset { moved_to, reason } = &opened {
        warn!(read_model = name, moved_to = %moved_to.display(), reason = %reason, "read model could not be opened; rebuilding it from the log");
    }
    Ok(Arc::new(store))
}

pub async fn store_flush(store: &Arc<SledStore>) {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => warn!(error = %err, "read model flush at shutdown"),
        Err(err) => warn!(error = %err, "read model flush task"),
    }
}

/// Before the feed publisher starts: nothing to do (what it has not sent is in its outbox).
pub fn prepare_feed(_: &str, _: &SledStore, _: &Policy, _: &Alarms) -> anyhow::Result<()> {
    Ok(())
}

/// Before case_queue's projector starts: the alarms of cases whose rows are behind raised
/// again.
pub fn prepare_case_queue(
    _: &str,
    store: &SledStore,
    _: &Policy,
    alarms: &Alarms,
) -> anyhow::Result<()> {
    for (case_id, block) in case_queue::all_behind(store)? {
        let (key, text) = case_queue::behind_alarm(&case_id, &block);
        alarms.raise(key, text);
    }
    Ok(())
}

/// Before command_state's projector starts: due times computed again if the policy changed
/// since they were, and the alarms of aggregates an unreadable event blocks raised again.
pub fn prepare_command_state(
    _: &str,
    store: &SledStore,
    policy: &Policy,
    alarms: &Alarms,
) -> anyhow::Result<()> {
    let rescheduled = command_state::due::reschedule(store, policy)?;
    if rescheduled > 0 {
        info!(
            rescheduled,
            "policy changed since the due index was built: due times computed again"
        );
    }
    for (aggregate_type, id, block) in command_state::blocked(store)? {
        let noun = match aggregate_type.as_str() {
            Care::TYPE => Care::NOUN,
            Grant::TYPE => Grant::NOUN,
            _ => Case::NOUN,
        };
        alarms.raise(
            command_state::blocked_alarm(&aggregate_type, &id),
            block.describe(noun),
        );
    }
    Ok(())
}
