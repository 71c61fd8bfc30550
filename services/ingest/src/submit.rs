//! A validated command with the caller's context, ready for an executor.

use hub_api::aggregate::Aggregate;

use crate::caller::Caller;
use crate::execute::Submitted;

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
