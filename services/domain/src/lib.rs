//! The hub's domain: what a case, a care record and a grant are, which commands are legal,
//! which identifiers are valid.
//!
//! Pure code: no I/O, no clock of its own (time is passed in), no knowledge of NATS, sled
//! or gRPC. Aggregates are written as `decide` (command and current state -> events, or a
//! refusal with its reason) and `apply` (state and event -> next state).

pub mod actor;
pub mod calendar;
pub mod care;
pub mod case;
pub mod clock;
pub mod codes;
#[cfg(test)]
mod fixture;
pub mod grant;
pub mod masking;
pub mod policy;
#[cfg(test)]
mod props;
pub mod refusal;
pub mod registry;
pub mod violation;

pub use actor::Actor;
pub use refusal::Refusal;
pub use violation::{FieldViolation, Violations};

/// What a decision may consult besides the aggregate's state: who asks, when, and the
/// city's reference data and rules.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub actor: &'a Actor,
    pub now: jiff::Timestamp,
    pub registry: &'a registry::Registry,
    pub policy: &'a policy::Policy,
}
