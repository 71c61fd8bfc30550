//! The command side: validate at the edge, decide in the domain, append to the log.
//!
//! Nothing is appended on any refusal. Event ids derive from (source, client request id),
//! and the first result of every accepted command is kept (projected from the log), so a
//! command sent again at any later time returns that result and appends nothing.

mod caller;
mod care;
mod cases;
mod execute;
mod grant;
mod hash;
mod ids;
mod import;
mod index;
mod log;
mod service;
mod supervision;
mod view;

pub use caller::{Caller, DEPARTMENT_HEADER, caller_of};
pub use care::CareCommands;
pub use cases::CaseCommands;
pub use execute::{Executed, Executor, ExecutorContext, Submitted};
pub use grant::GrantCommands;
pub use hash::{CommandHash, CommandHasher, HashKey, ShortKey};
pub use service::Commands;

/// Shortest command hash key accepted, in bytes.
pub fn hash_key_min() -> usize {
    hash::MIN_SECRET
}
pub use ids::{aggregate_id, case_id, event_id};
pub use index::{Freshness, Index};
pub use log::CommandLog;
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
        // The executor resolves conflicts itself; one reaching here is retried by the client.
        AppendError::Conflict => ApiError::Unavailable(
            "the event log refused the append as a conflict; retry with the same request_id".into(),
        ),
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
