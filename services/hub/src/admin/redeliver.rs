//! RedeliverFeed: a department's view of a selection of the log, sent into its feed again
//! (`hubctl replay --into-feed DEPT`).
//!
//! The feed publisher's own code decides again, from position 1 into a scratch sled database
//! under `<data_dir>/scratch`, what the department was sent of each event up to the end of
//! the selection ([`hub_projector::feed::redeliver::Deciding`]); what the selection takes is
//! then sent, a message masked under a grant that has ended since withheld
//! ([`hub_projector::feed::redeliver::send`]). One scratch build runs at a time (a verify
//! is one too).

use std::sync::Arc;

use hub_api::ApiError;
use hub_api::v1::{RedeliverFeedRequest, RedeliverFeedResponse};
use hub_domain::Violations;
use hub_domain::clock::Clock;
use hub_log::Appender;
use hub_projector::Projection as _;
use hub_projector::feed::FEED_MODEL;
use hub_projector::feed::redeliver::{Deciding, Redelivery, Sent, send};
use hub_projector::replay::{ReplayError, build_to};
use hub_store::ReadModelStore;
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::Admin;
use super::replay::{self, Planned};
use super::verify::scratch_store;

/// Positions decided between two progress reports.
const DECIDE_STEP: u64 = 4096;
/// The longest re-delivery id.
const MAX_ID: usize = 64;

/// A re-delivery, checked.
pub(super) struct Redeliver {
    pub(super) department: String,
    pub(super) selection: Planned,
    id: String,
}

/// Checks `request` (every field at once), the selection as a replay's.
pub(super) async fn plan(
    admin: &Admin,
    request: &RedeliverFeedRequest,
) -> Result<Redeliver, ApiError> {
    let mut violations = Violations::new();
    if request.department.is_empty() {
        violations.push("department", "is required");
    } else if !admin.p.units.contains(&request.department) {
        violations.push("department", "names no unit of the registry");
    }
    let id = &request.redelivery_id;
    let well_formed = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if id.is_empty() || id.len() > MAX_ID || !well_formed {
        violations.push(
            "redelivery_id",
            "must be 1 to 64 letters, digits, '-', '_' or '.'",
        );
    }
    let selection = request.selection.clone().unwrap_or_default();
    let selection = match replay::plan(&admin.p.log, &selection).await {
        Ok(planned) => Some(planned),
        Err(ApiError::InvalidArgument(found)) => {
            for v in found {
                violations.push(format!("selection.{}", v.field), v.reason);
            }
            None
        }
        Err(other) => return Err(other),
    };
    violations.finish(|| ())?;
    Ok(Redeliver {
        department: request.department.clone(),
        // Present: a selection that failed added a violation.
        selection: selection.ok_or(ApiError::Internal)?,
        id: id.clone(),
    })
}

/// What a re-delivery runs with.
pub(super) struct Running {
    pub(super) log: Appender,
    pub(super) audit: hub_audit::Audit,
    pub(super) clock: Arc<dyn Clock>,
    /// The live feed publisher's store: its record of the grants.
    pub(super) live: Arc<dyn ReadModelStore>,
    pub(super) scratch: (std::path::PathBuf, u64),
    pub(super) turn: Arc<tokio::sync::Semaphore>,
}

impl Admin {
    /// What a re-delivery runs with; refused while the feed publisher is halted (its purges
    /// would not run, and a re-delivery leans on them).
    pub(super) fn running(&self) -> Result<Running, ApiError> {
        let publisher = self
            .p
            .models
            .iter()
            .find(|(_, m)| m.model.name() == FEED_MODEL)
            .map(|(_, m)| &m.model)
            .ok_or_else(|| {
                ApiError::FailedPrecondition("this hub runs no feed publisher".into())
            })?;
        if let Some(reason) = publisher.state().halted {
            return Err(ApiError::FailedPrecondition(format!(
                "the feed publisher is halted ({reason}): mend it first (hubctl status)"
            )));
        }
        let live = publisher.store();
        Ok(Running {
            log: self.p.log.clone(),
            audit: self.p.audit.clone(),
            clock: self.p.clock.clone(),
            live,
            scratch: self.p.scratch.clone(),
            turn: self.scratch_turn.clone(),
        })
    }
}

type Tx = mpsc::Sender<Result<RedeliverFeedResponse, ApiError>>;

fn report(phase: &str, reached: u64, last: u64, sent: &Sent) -> RedeliverFeedResponse {
    RedeliverFeedResponse {
        phase: phase.to_owned(),
        reached,
        last,
        sent: sent.sent,
        duplicates: sent.duplicates,
        withheld: sent.withheld,
        first_position: sent.first,
        last_position: sent.last,
    }
}

/// Runs `planned` and reports down `tx`. It stops between rounds once the caller has gone:
/// a re-delivery is a disclosure, and an operator who asked for the wrong one stops it so.
pub(super) async fn run(running: Running, planned: Redeliver, tx: Tx) {
    let last = planned.selection.to;
    let outcome = if planned.selection.selects_nothing() {
        Ok(Sent::default())
    } else {
        redeliver(&running, &planned, &tx).await
    };
    match outcome {
        Ok(sent) => {
            let stopped = tx.is_closed();
            info!(
                department = %planned.department,
                redelivery = %planned.id,
                sent = sent.sent,
                duplicates = sent.duplicates,
                withheld = sent.withheld,
                stopped,
                "re-delivered a stretch of the log into a department's feed"
            );
            let _ = tx.send(Ok(report("done", last, last, &sent))).await;
        }
        Err(err) => {
            let _ = tx.send(Err(err)).await;
        }
    }
}

async fn redeliver(running: &Running, planned: &Redeliver, tx: &Tx) -> Result<Sent, ApiError> {
    let turn = match running.turn.clone().try_acquire_owned() {
        Ok(turn) => turn,
        Err(_) => {
            // A verify or another re-delivery holds the scratch folder.
            let _ = tx.try_send(Ok(report(
                "waiting",
                0,
                planned.selection.to,
                &Sent::default(),
            )));
            running
                .turn
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ApiError::Internal)?
        }
    };
    let (data_dir, cache_mb) = &running.scratch;
    let (dir, store) = scratch_store((data_dir, *cache_mb), "redeliver-").await?;
    let outcome = decide_and_send(running, planned, store.clone(), tx).await;
    drop(store);
    // The scratch database goes with its folder, whatever the outcome.
    let _ = tokio::task::spawn_blocking(move || drop(dir)).await;
    drop(turn);
    outcome
}

async fn decide_and_send(
    running: &Running,
    planned: &Redeliver,
    store: Arc<hub_store::SledStore>,
    tx: &Tx,
) -> Result<Sent, ApiError> {
    let selection = planned.selection.clone();
    let projection = Arc::new(Deciding::new(
        &planned.department,
        Box::new(move |event| selection.selects(event)),
    ));
    let filter = projection.filter_subject();
    let last = planned.selection.to;
    let mut decided = 0;
    while decided < last && !tx.is_closed() {
        let up_to = (decided + DECIDE_STEP).min(last);
        match build_to(
            &running.log,
            store.clone(),
            (projection.clone(), &filter),
            up_to,
        )
        .await
        {
            Ok(_) => decided = up_to,
            Err(ReplayError::Log(err)) => return Err(hub_gateway::log_failed(err)),
            Err(err) => {
                warn!(error = %err, "re-delivery: deciding the department's view failed");
                return Err(ApiError::FailedPrecondition(format!(
                    "the department's view cannot be decided again past position {decided}: \
                     {err}"
                )));
            }
        }
        let _ = tx.try_send(Ok(report("deciding", decided, last, &Sent::default())));
    }
    let redelivery = Redelivery {
        js: running.log.context().clone(),
        audit: running.audit.clone(),
        live: running.live.clone(),
        clock: running.clock.clone(),
        id: planned.id.clone(),
    };
    let progress = |sent: &Sent| {
        let _ = tx.try_send(Ok(report("sending", sent.reached, last, sent)));
    };
    let sent = send(&redelivery, store, progress, || tx.is_closed())
        .await
        .map_err(|err| {
            warn!(error = %err, "re-delivery: sending failed");
            ApiError::Unavailable(
                "the re-delivery stopped: a feed or the audit log could not be written; ask again \
             with the same redelivery_id"
                    .into(),
            )
        })?;
    Ok(sent)
}
