//! Sends a plan to a hub: the commands in plan order, each as soon as the command it waits
//! for was accepted (the hub's answer names the aggregate the later ones act on), at most
//! `concurrency` at a time. A refused command's followers are skipped, not sent.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use hub_api::identity::{DEPARTMENT_HEADER, PERSON_HEADER, PURPOSE_HEADER};
use hub_api::v1::CommandResult;
use hub_api::v1::care_command_service_client::CareCommandServiceClient;
use hub_api::v1::case_command_service_client::CaseCommandServiceClient;
use hub_api::v1::grant_command_service_client::GrantCommandServiceClient;
use indicatif::ProgressBar;
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::plan::{Command, Plan, Step};

/// The client's correlation id, which the hub carries into the events' headers: one per
/// simulated aggregate, so its whole life is found by it.
const CORRELATION_HEADER: &str = "x-correlation-id";
/// How long one command may take, retries aside.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries of a command the hub could not answer (UNAVAILABLE, DEADLINE_EXCEEDED): safe,
/// since a repeated request id is answered with the first result.
const TRIES: u32 = 5;
/// Refusal messages kept for the summary.
const SAMPLES: usize = 5;

/// How one RPC fared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub sent: u64,
    pub accepted: u64,
    pub refused: u64,
    /// Not sent: the command it waits for was refused.
    pub skipped: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub by_rpc: BTreeMap<&'static str, Counts>,
    /// Refusals by gRPC code (its name, e.g. `FailedPrecondition`).
    pub refused_by_code: BTreeMap<String, u64>,
    /// Commands refused as INVALID_ARGUMENT: the simulator sent something the hub does not
    /// take (a bug, or another city than the hub's).
    pub invalid_input: u64,
    /// Commands the hub did not answer after every try.
    pub unanswered: u64,
    pub retries: u64,
    /// Events in the hub's answers (a repeated command is answered with its first events).
    pub events: u64,
    /// The highest position in the answers: read with it as `min_position` to see the run.
    pub last_position: u64,
    /// The first refusals, each with its RPC, request id, code and message.
    pub refusals: Vec<String>,
    pub elapsed: Duration,
}

impl Summary {
    pub fn total(&self) -> Counts {
        let mut total = Counts::default();
        for c in self.by_rpc.values() {
            total.sent += c.sent;
            total.accepted += c.accepted;
            total.refused += c.refused;
            total.skipped += c.skipped;
        }
        total
    }

    pub fn commands_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.total().sent as f64 / secs
        } else {
            0.0
        }
    }
}

/// An accepted command: the aggregate's id, its events and the last one's position.
struct Answer {
    id: String,
    events: usize,
    position: u64,
}

impl Answer {
    fn of(result: Option<CommandResult>) -> Answer {
        let result = result.unwrap_or_default();
        Answer {
            id: result.id,
            events: result.event_ids.len(),
            position: result.position,
        }
    }
}

/// Sends `plan` through `channel`.
pub async fn drive(
    plan: &Plan,
    channel: Channel,
    concurrency: usize,
    bar: &ProgressBar,
) -> Summary {
    let started = Instant::now();
    let mut summary = Summary::default();
    let steps = &plan.steps;
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    let mut ready = BinaryHeap::new();
    for (i, step) in steps.iter().enumerate() {
        match step.after {
            Some(before) => dependents[before].push(i),
            None => ready.push(Reverse(i)),
        }
    }
    let mut ids: Vec<Option<String>> = vec![None; plan.aggregates.len()];
    let mut running: JoinSet<(usize, u32, Result<Answer, Status>)> = JoinSet::new();
    loop {
        while running.len() < concurrency.max(1) {
            let Some(Reverse(i)) = ready.pop() else { break };
            let mut step = steps[i].clone();
            let aggregate = &plan.aggregates[step.aggregate];
            let purpose = match &ids[step.aggregate] {
                Some(id) => {
                    step.command.set_target(id);
                    format!("{}:{id}", aggregate.kind.purpose_prefix())
                }
                None => "simulation".to_owned(),
            };
            let correlation = format!("{}-{}", plan.scenario, aggregate.key);
            summary.by_rpc.entry(step.command.rpc()).or_default().sent += 1;
            let channel = channel.clone();
            running.spawn(async move {
                let (tries, answer) = send(channel, &step, &purpose, &correlation).await;
                (i, tries, answer)
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        bar.inc(1);
        let (i, tries, answer) = match joined {
            Ok(done) => done,
            Err(panicked) => {
                // Not expected: count it as unanswered and go on.
                summary.unanswered += 1;
                summary
                    .refusals
                    .push(format!("a command's task failed: {panicked}"));
                continue;
            }
        };
        summary.retries += u64::from(tries.saturating_sub(1));
        let step = &steps[i];
        let rpc = step.command.rpc();
        match answer {
            Ok(answer) => {
                summary.by_rpc.entry(rpc).or_default().accepted += 1;
                summary.events += answer.events as u64;
                summary.last_position = summary.last_position.max(answer.position);
                if step.command.creates() {
                    ids[step.aggregate] = Some(answer.id);
                }
                ready.extend(dependents[i].iter().map(|&d| Reverse(d)));
            }
            Err(status) => {
                summary.by_rpc.entry(rpc).or_default().refused += 1;
                *summary
                    .refused_by_code
                    .entry(format!("{:?}", status.code()))
                    .or_default() += 1;
                match status.code() {
                    Code::InvalidArgument => summary.invalid_input += 1,
                    Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::Unknown
                    | Code::Cancelled => summary.unanswered += 1,
                    _ => {}
                }
                if summary.refusals.len() < SAMPLES {
                    summary.refusals.push(format!(
                        "{rpc} {}: {:?}: {}",
                        step.command.request_id(),
                        status.code(),
                        status.message()
                    ));
                }
                // Everything that waits for it, and what waits for that, is not sent.
                let mut skip = dependents[i].clone();
                while let Some(d) = skip.pop() {
                    summary
                        .by_rpc
                        .entry(steps[d].command.rpc())
                        .or_default()
                        .skipped += 1;
                    bar.inc(1);
                    skip.extend(dependents[d].iter().copied());
                }
            }
        }
    }
    summary.elapsed = started.elapsed();
    summary
}

/// Sends one step, trying again while the hub cannot answer; the tries it took and the answer.
async fn send(
    channel: Channel,
    step: &Step,
    purpose: &str,
    correlation: &str,
) -> (u32, Result<Answer, Status>) {
    let mut tries = 0;
    loop {
        tries += 1;
        let answer = call(channel.clone(), step, purpose, correlation).await;
        match answer {
            Err(status)
                if tries < TRIES
                    && matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded) =>
            {
                tokio::time::sleep(Duration::from_millis(100 << tries)).await;
            }
            answer => return (tries, answer),
        }
    }
}

/// `message` as the step's unit and person send it.
fn request<T>(
    message: T,
    step: &Step,
    purpose: &str,
    correlation: &str,
) -> Result<tonic::Request<T>, Status> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    let metadata = request.metadata_mut();
    for (name, value) in [
        (DEPARTMENT_HEADER, step.unit.as_str()),
        (PERSON_HEADER, step.person.as_str()),
        (PURPOSE_HEADER, purpose),
        (CORRELATION_HEADER, correlation),
    ] {
        let value = value
            .parse()
            .map_err(|_| Status::invalid_argument(format!("{name} is not plain ASCII")))?;
        metadata.insert(name, value);
    }
    Ok(request)
}

async fn call(
    channel: Channel,
    step: &Step,
    purpose: &str,
    correlation: &str,
) -> Result<Answer, Status> {
    let mut cases = CaseCommandServiceClient::new(channel.clone());
    let mut care = CareCommandServiceClient::new(channel.clone());
    let mut grants = GrantCommandServiceClient::new(channel);
    macro_rules! r {
        ($m:expr) => {
            request($m, step, purpose, correlation)?
        };
    }
    Ok(match step.command.clone() {
        Command::ReportCase(m) => {
            let answer = cases.report_case(r!(m)).await?.into_inner();
            Answer {
                id: answer.case_id,
                events: answer.event_ids.len(),
                position: answer.position,
            }
        }
        Command::DispatchCase(m) => {
            Answer::of(cases.dispatch_case(r!(m)).await?.into_inner().result)
        }
        Command::AcceptCase(m) => Answer::of(cases.accept_case(r!(m)).await?.into_inner().result),
        Command::RequestCaseTransfer(m) => Answer::of(
            cases
                .request_case_transfer(r!(m))
                .await?
                .into_inner()
                .result,
        ),
        Command::AcceptCaseTransfer(m) => {
            Answer::of(cases.accept_case_transfer(r!(m)).await?.into_inner().result)
        }
        Command::RejectCaseTransfer(m) => {
            Answer::of(cases.reject_case_transfer(r!(m)).await?.into_inner().result)
        }
        Command::ResolveCase(m) => Answer::of(cases.resolve_case(r!(m)).await?.into_inner().result),
        Command::RateCase(m) => Answer::of(cases.rate_case(r!(m)).await?.into_inner().result),
        Command::CloseCase(m) => Answer::of(cases.close_case(r!(m)).await?.into_inner().result),
        Command::RegisterCare(m) => {
            Answer::of(care.register_care(r!(m)).await?.into_inner().result)
        }
        Command::LogCareVisit(m) => {
            Answer::of(care.log_care_visit(r!(m)).await?.into_inner().result)
        }
        Command::ChangeCareRiskLevel(m) => Answer::of(
            care.change_care_risk_level(r!(m))
                .await?
                .into_inner()
                .result,
        ),
        Command::CloseCare(m) => Answer::of(care.close_care(r!(m)).await?.into_inner().result),
        Command::RequestGrant(m) => {
            Answer::of(grants.request_grant(r!(m)).await?.into_inner().result)
        }
        Command::ApproveGrant(m) => {
            Answer::of(grants.approve_grant(r!(m)).await?.into_inner().result)
        }
        Command::RejectGrant(m) => {
            Answer::of(grants.reject_grant(r!(m)).await?.into_inner().result)
        }
        Command::RevokeGrant(m) => {
            Answer::of(grants.revoke_grant(r!(m)).await?.into_inner().result)
        }
    })
}
