//! Supervision: the commands the hub sends by itself when their time comes. A case past its
//! deadline is escalated (督办) one tier at a time, exactly once per breach and tier, and a
//! grant past its expiry lapses, across restarts and with several hub instances.
//!
//! The instance that holds the supervision lease (`hub_log::lease`) scans the due index of
//! its `command_state` read model and sends the hub's own command through the ordinary
//! executor; the others stand by and take over when it stops renewing. The command's request
//! id is derived from what fell due (case, deadline, due time, tier), so even two instances
//! that briefly both believe they hold the lease send the same command: one append wins, the
//! other finds its record and appends nothing.

use std::sync::Arc;
use std::time::Duration;

use hub_api::ApiError;
use hub_api::aggregate::{Aggregate, Case, Grant};
use hub_domain::Actor;
use hub_domain::case::{self, CaseCommand, DeadlineKind};
use hub_domain::grant::{GrantCommand, GrantStatus};
use hub_log::names::SYSTEM_SOURCE;
use hub_projector::ReadModel;
use hub_projector::command_state::due::due_page;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::execute::{Executor, Submitted};

/// Due entries read at a time; a scan pages through all that are due.
const PAGE: usize = 256;

pub struct Supervisor {
    cases: Arc<Executor<Case>>,
    grants: Arc<Executor<Grant>>,
    command_state: ReadModel,
    interval: Duration,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hub's own command for what fell due, with a request id and hash derived from it, so
/// every instance sends the same command for the same breach.
fn system_command<A: Aggregate>(
    executor: &Executor<A>,
    id: &str,
    owner: String,
    what: &str,
    command: A::Command,
) -> Submitted<A> {
    let digest = Sha256::digest(format!("{}\n{id}\n{what}", A::TYPE).as_bytes());
    let request_id = format!("{what}-{}", hex(&digest[..12]));
    Submitted {
        source: SYSTEM_SOURCE.to_owned(),
        actor: Actor::System,
        owner,
        request_id: request_id.clone(),
        hash: executor
            .hasher()
            .hash_parts(&[A::TYPE.as_bytes(), id.as_bytes(), what.as_bytes()]),
        id: id.to_owned(),
        expected_version: None,
        command,
        correlation_id: request_id,
        traceparent: String::new(),
        person: String::new(),
        decided_at: None,
    }
}

impl Supervisor {
    pub fn new(
        cases: Arc<Executor<Case>>,
        grants: Arc<Executor<Grant>>,
        command_state: ReadModel,
        interval: Duration,
    ) -> Self {
        Self {
            cases,
            grants,
            command_state,
            interval,
        }
    }

    /// Scans every `interval` while `held` says this instance holds the duty (not 0), until
    /// `stop`.
    pub async fn run(self, held: watch::Receiver<u64>, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
            if *held.borrow() == 0 {
                continue;
            }
            // While command_state is too far behind for new commands (a rebuild), the hub's
            // own commands would only wait and fail one by one: skip the scan.
            if !self.cases.index_fresh() {
                continue;
            }
            if let Err(err) = self.scan(&stop).await {
                warn!(error = %err, "supervision scan failed");
            }
        }
    }

    /// Acts on everything due now, page by page through the whole due index, until `stop`;
    /// returns how many commands were appended or found done.
    pub async fn scan(&self, stop: &CancellationToken) -> Result<usize, ApiError> {
        let now = self.cases.now();
        let mut cursor: Option<Vec<u8>> = None;
        let mut done = 0;
        loop {
            let model = self.command_state.clone();
            let after = cursor.take();
            let (page, next) = tokio::task::spawn_blocking(move || {
                due_page(&*model.store(), now, after.as_deref(), PAGE)
            })
            .await
            .map_err(|e| {
                warn!(error = %e, "supervision read task failed");
                ApiError::Internal
            })?
            .map_err(|e| {
                warn!(error = %e, "supervision could not read the due index");
                ApiError::Internal
            })?;
            for due in page {
                if stop.is_cancelled() {
                    return Ok(done);
                }
                // One aggregate that cannot be acted on must not hold up the rest.
                let acted = match due.aggregate_type.as_str() {
                    Case::TYPE => self.escalate(&due.id).await,
                    Grant::TYPE => self.expire(&due.id).await,
                    _ => Ok(false),
                };
                match acted {
                    Ok(acted) => done += usize::from(acted),
                    Err(err) => {
                        warn!(aggregate_type = %due.aggregate_type, error = %err, "supervision could not act")
                    }
                }
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(done),
            }
        }
    }

    async fn escalate(&self, case_id: &str) -> Result<bool, ApiError> {
        let row = self.cases.current(case_id).await?;
        let Some(state) = row.as_ref().and_then(|r| r.state.as_ref()) else {
            return Ok(false);
        };
        let Some((tier, at, deadline, due)) = case::next_escalation(state, self.cases.policy())
        else {
            return Ok(false);
        };
        if at > self.cases.now() {
            return Ok(false);
        }
        let deadline = match deadline {
            DeadlineKind::Accept => "accept",
            DeadlineKind::Resolve => "resolve",
        };
        let breach = format!("escalate-{deadline}-{}-{tier}", due.as_second());
        let submitted = system_command::<Case>(
            &self.cases,
            case_id,
            state.holder.to_string(),
            &breach,
            CaseCommand::Escalate,
        );
        finish(self.cases.execute(submitted).await, "case escalated")
    }
}

impl Supervisor {
    async fn expire(&self, grant_id: &str) -> Result<bool, ApiError> {
        let row = self.grants.current(grant_id).await?;
        let Some(state) = row.as_ref().and_then(|r| r.state.as_ref()) else {
            return Ok(false);
        };
        let open = matches!(state.status, GrantStatus::Requested | GrantStatus::Approved);
        if !open || state.expires_at > self.grants.now() {
            return Ok(false);
        }
        let what = format!("expire-{}", state.expires_at.as_second());
        let submitted = system_command::<Grant>(
            &self.grants,
            grant_id,
            state.owner.to_string(),
            &what,
            GrantCommand::Expire,
        );
        finish(self.grants.execute(submitted).await, "grant expired")
    }
}

/// A supervision command's outcome: done (now or earlier), or no longer due.
fn finish(
    outcome: Result<crate::Executed, ApiError>,
    what: &'static str,
) -> Result<bool, ApiError> {
    match outcome {
        Ok(executed) => {
            if executed.appended {
                info!(position = executed.record.position, "{what}");
            }
            Ok(true)
        }
        // The log had moved on (accepted, resolved, or done by another command).
        Err(ApiError::FailedPrecondition(reason)) => {
            debug!(reason = %reason, "no longer due");
            Ok(false)
        }
        Err(err) => Err(err),
    }
}
