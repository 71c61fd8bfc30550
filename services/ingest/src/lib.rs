//! The command side: validate at the edge, decide in the domain, append to the log.
//!
//! Nothing is appended on any refusal. Event ids derive from (source, client request id),
//! and the first result of every accepted command is kept (projected from the log), so a
//! command sent again at any later time returns that result and appends nothing.

mod aggregates;
mod caller;
mod care;
mod cases;
mod execute;
mod grant;
mod hash;
mod ids;
mod import;
mod submit;
mod supervision;

pub use aggregates::{Aggregates, Known};
pub use caller::{Caller, DEPARTMENT_HEADER, caller, caller_department};
pub use care::CareCommands;
pub use cases::CaseCommands;
pub use execute::{Executed, Executor, Submitted};
pub use grant::GrantCommands;
pub use hash::command_hash;
pub use ids::{aggregate_id, case_id, event_id};
pub use supervision::Supervisor;

use hub_api::ApiError;
use hub_log::AppendError;
use tracing::{error, warn};

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl hub_domain::clock::Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

pub(crate) fn append_error(err: AppendError) -> ApiError {
    match err {
        AppendError::Conflict => ApiError::Aborted {
            reason: "another writer changed the case".into(),
            current: 0,
        },
        AppendError::Unavailable(reason) => {
            warn!(reason = %reason, "event log unavailable");
            ApiError::Unavailable(
                "the event log did not confirm the append; retry with the same request_id".into(),
            )
        }
        AppendError::Refused(reason) => {
            error!(reason = %reason, "event log refused");
            ApiError::Internal
        }
    }
}
