//! The hub's domain: what a case is, which commands are legal, which identifiers are valid.
//!
//! Pure code: no I/O, no clock of its own (time is passed in), no knowledge of NATS, sled
//! or gRPC. Aggregates are written as `decide` (command and current state -> events, or a
//! refusal with its reason) and `apply` (state and event -> next state).

pub mod case;
pub mod clock;
pub mod codes;
pub mod registry;
pub mod violation;

pub use violation::{FieldViolation, Violations};
