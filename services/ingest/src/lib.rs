//! The command side: validate at the edge, decide in the domain, append to the log.
//!
//! Nothing is appended on any refusal. Ids derive from (department, client request id), so
//! a retried command inside NATS's duplicate window lands on the same `Nats-Msg-Id` and is
//! stored once.

mod caller;
mod cases;
mod ids;

pub use caller::{DEPARTMENT_HEADER, caller_department};
pub use cases::CaseCommands;
pub use ids::{case_id, event_id};

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl hub_domain::clock::Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}
