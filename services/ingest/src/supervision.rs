//! Deadline supervision (督办): escalates every case past its deadline, one tier at a time,
//! exactly once per breach and tier, across restarts and with several hub instances.
//!
//! Each instance scans the escalation index of its `command_state` read model and sends the
//! hub's own Escalate command through the ordinary executor. The command's request id is
//! derived from (case, deadline, due time, tier), so instances that race for the same breach
//! send the same command: one append wins, the others find its record and append nothing.

use std::sync::Arc;
use std::time::Duration;

use hub_api::ApiError;
use hub_domain::Actor;
use hub_domain::case::{self, CaseCommand, CaseId, DeadlineKind};
use hub_log::names::SYSTEM_SOURCE;
use hub_projector::ReadModel;
use hub_projector::command_state::due_escalations;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::execute::{Executor, Submitted};

/// Most due cases handled per scan.
const SCAN_LIMIT: usize = 256;

pub struct Supervisor {
    executor: Arc<Executor>,
    command_state: ReadModel,
    interval: Duration,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Supervisor {
    pub fn new(executor: Arc<Executor>, command_state: ReadModel, interval: Duration) -> Self {
        Self {
            executor,
            command_state,
            interval,
        }
    }

    /// Scans every `interval` until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.interval) => {}
            }
            if let Err(err) = self.scan().await {
                warn!(error = %err, "deadline supervision scan failed");
            }
        }
    }

    /// Escalates every case due now; returns how many escalations were appended or found done.
    pub async fn scan(&self) -> Result<usize, ApiError> {
        let now = self.executor.now();
        let model = self.command_state.clone();
        let due =
            tokio::task::spawn_blocking(move || due_escalations(model.store(), now, SCAN_LIMIT))
                .await
                .map_err(|_| ApiError::Internal)?
                .map_err(|_| ApiError::Internal)?;
        let mut done = 0;
        for case_id in due {
            if self.escalate(&case_id).await? {
                done += 1;
            }
        }
        Ok(done)
    }

    async fn escalate(&self, case_id: &str) -> Result<bool, ApiError> {
        let known = self.executor.known(case_id).await?;
        let Some(state) = known.state() else {
            return Ok(false);
        };
        let now = self.executor.now();
        let Some((tier, at, deadline, due)) = case::next_escalation(state, self.executor.policy())
        else {
            return Ok(false);
        };
        if at > now {
            return Ok(false);
        }
        let deadline = match deadline {
            DeadlineKind::Accept => "accept",
            DeadlineKind::Resolve => "resolve",
        };
        let breach = format!("{case_id}\n{deadline}\n{}\n{tier}", due.as_second());
        let digest = Sha256::digest(breach.as_bytes());
        let request_id = format!("escalate-{}", hex(&digest[..12]));
        let submitted = Submitted {
            source: SYSTEM_SOURCE.to_owned(),
            actor: Actor::System,
            owner: state.holder.to_string(),
            request_id: request_id.clone(),
            hash: hex(&digest[12..28]),
            case_id: CaseId::new(case_id),
            expected_version: None,
            command: CaseCommand::Escalate,
            correlation_id: request_id,
            traceparent: String::new(),
            decided_at: None,
        };
        match self.executor.execute(submitted).await {
            Ok(executed) => {
                if executed.appended {
                    info!(
                        tier,
                        deadline,
                        position = executed.record.position,
                        "case escalated"
                    );
                }
                Ok(true)
            }
            // The log had moved on (accepted, resolved, or escalated by another command).
            Err(ApiError::FailedPrecondition(reason)) => {
                debug!(reason = %reason, "escalation no longer due");
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }
}
