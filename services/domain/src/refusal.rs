//! Why a command was refused. Each kind maps to one gRPC status code at the edge.

use crate::violation::Violations;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// The command is malformed or names things that do not exist (INVALID_ARGUMENT).
    #[error("invalid command: {0}")]
    Invalid(Violations),
    /// The aggregate does not exist (NOT_FOUND).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The aggregate exists already (ALREADY_EXISTS).
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The command is not allowed in the aggregate's current state (FAILED_PRECONDITION).
    #[error("{0}")]
    Illegal(String),
    /// The caller may not do this (PERMISSION_DENIED).
    #[error("{0}")]
    Forbidden(String),
}

impl Refusal {
    /// The refusal for a caller with no role on an aggregate (`noun`: "case", "grant"). The
    /// same text whether the aggregate exists or not, so it tells a stranger nothing.
    pub fn no_role(noun: &str) -> Self {
        Refusal::Forbidden(format!(
            "the calling department has no role on this {noun}, or there is no such {noun}"
        ))
    }

    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        let mut violations = Violations::new();
        violations.push(field, reason);
        Refusal::Invalid(violations)
    }
}

impl From<Violations> for Refusal {
    fn from(violations: Violations) -> Self {
        Refusal::Invalid(violations)
    }
}
