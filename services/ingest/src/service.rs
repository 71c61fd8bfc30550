//! A validated command with the caller's context, ready for an executor.

use hub_api::aggregate::Aggregate;
use hub_api::v1::CommandResult;
use hub_api::{ApiError, ValidCommand};
use hub_domain::Violations;
use hub_domain::registry::Registry;
use tonic::{Request, Status};

use crate::caller::{Caller, caller};
use crate::execute::{Executor, Submitted};
use crate::hash::command_hash;

/// Builds the executor's view of a department's command.
pub fn submitted<A: Aggregate>(
    caller: &Caller,
    request_id: String,
    id: String,
    expected_version: Option<u64>,
    command: A::Command,
    hash: String,
) -> Submitted<A> {
    Submitted {
        source: caller.source(),
        actor: caller.actor(),
        owner: caller.department.to_string(),
        request_id,
        hash,
        id,
        expected_version,
        command,
        correlation_id: caller.correlation_id.clone(),
        traceparent: caller.traceparent.clone(),
        decided_at: None,
    }
}

/// One RPC on an existing aggregate: who calls, validate, hash, execute, answer.
pub async fn run_command<A, R, V>(
    executor: &Executor<A>,
    registry: &Registry,
    rpc: &str,
    request: Request<R>,
    clear_request_id: fn(&mut R),
) -> Result<Option<CommandResult>, Status>
where
    A: Aggregate,
    R: prost::Message + Clone,
    V: ValidCommand<Command = A::Command> + for<'a> TryFrom<&'a R, Error = Violations>,
{
    let caller = caller(request.metadata(), registry)?;
    let valid = V::try_from(request.get_ref()).map_err(ApiError::from)?;
    let hash = command_hash(rpc, request.get_ref(), clear_request_id);
    let (request_id, id, expected_version, command) = valid.into_parts();
    answer(
        executor,
        submitted::<A>(&caller, request_id, id, expected_version, command, hash),
    )
    .await
    .map(Some)
}

/// Executes a command and answers with its (first) result.
pub async fn answer<A: Aggregate>(
    executor: &Executor<A>,
    submitted: Submitted<A>,
) -> Result<CommandResult, Status> {
    let id = submitted.id.clone();
    let record = executor.execute(submitted).await?.record;
    Ok(CommandResult {
        id,
        event_ids: record.event_ids,
        position: record.position,
    })
}
