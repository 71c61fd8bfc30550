//! Opening the read models, and what each needs done before its projector starts.

use std::path::Path;
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
use hub_projector::datasets::incident_stats::{self, IncidentStats};
use hub_projector::datasets::response_efficiency::{self, ResponseEfficiency};
use hub_projector::datasets::transfer_ledger::{self, TransferLedger};
use hub_projector::datasets::{Dataset, common};
use hub_projector::{Alarms, Projection, ReadModel};
use hub_store::{Opened, ReadModelStore, SledStore};
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
    let mut state = model.subscribe();
    tokio::select! {
        _ = stop.cancelled() => {}
        halted = state.wait_for(|s| s.halted.is_some()) => {
            if let Ok(s) = halted {
                let reason = s.halted.clone().unwrap_or_default();
                alarms.raise(
                    format!("halted/{}", model.name()),
                    format!("read model {} halted: {reason}", model.name()),
                );
            }
        }
    }
}

pub async fn open_read_model(
    data_dir: &Path,
    name: &'static str,
    cache_mb: u64,
) -> anyhow::Result<Arc<SledStore>> {
    let dir = data_dir.join("read-models").join(name);
    let (store, opened) =
        tokio::task::spawn_blocking(move || SledStore::open_or_reset(&dir, cache_mb << 20))
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
