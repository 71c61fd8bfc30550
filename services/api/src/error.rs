//! The one place where service errors become gRPC statuses.
//!
//! Texts are lowercase and never carry a request's values (they may be personal data):
//! a field violation names the field and the rule it broke.

use hub_domain::FieldViolation;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; each violation names a field and why.
    #[error("invalid argument")]
    InvalidArgument(Vec<FieldViolation>),
    /// The caller did not say who it is.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{what} already exists")]
    AlreadyExists { what: &'static str },
    /// The command is not allowed in the aggregate's current state; says which and why.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The calling department may not do this; says which rule.
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    /// A concurrency conflict: the aggregate moved on (since the version the command
    /// expected, or too often while the command was decided).
    #[error("version conflict: {reason}; the {what} is at version {current}")]
    Aborted {
        /// The aggregate's noun: "case", "care record", "grant".
        what: &'static str,
        reason: String,
        current: u64,
    },
    /// A read waited for a position the read model had not reached by the deadline.
    #[error("read model {read_model} is at position {reached}, below the requested {wanted}")]
    PositionNotReached {
        read_model: &'static str,
        reached: u64,
        wanted: u64,
    },
    /// A dependency (NATS, a read model) cannot serve now; retrying later may succeed.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A fault of the hub's own; the details are logged, not returned.
    #[error("internal error")]
    Internal,
}

impl From<ApiError> for Status {
    fn from(err: ApiError) -> Status {
        match err {
            ApiError::InvalidArgument(violations) => {
                let summary = violations
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.reason.clone());
                }
                Status::with_error_details(
                    Code::InvalidArgument,
                    format!("invalid argument: {summary}"),
                    details,
                )
            }
            ApiError::Unauthenticated(_) => Status::unauthenticated(err.to_string()),
            ApiError::NotFound { .. } => Status::not_found(err.to_string()),
            ApiError::AlreadyExists { .. } => Status::already_exists(err.to_string()),
            ApiError::FailedPrecondition(_) => Status::failed_precondition(err.to_string()),
            ApiError::PermissionDenied(_) => Status::permission_denied(err.to_string()),
            ApiError::Aborted { current, .. } => {
                let mut details = ErrorDetails::new();
                details.set_error_info(
                    "VERSION_CONFLICT",
                    "gov.hub",
                    std::collections::HashMap::from([(
                        "current_version".to_owned(),
                        current.to_string(),
                    )]),
                );
                Status::with_error_details(Code::Aborted, err.to_string(), details)
            }
            ApiError::PositionNotReached { .. } => Status::deadline_exceeded(err.to_string()),
            ApiError::Unavailable(_) => Status::unavailable(err.to_string()),
            ApiError::Internal => Status::internal(err.to_string()),
        }
    }
}

impl From<hub_domain::Refusal> for ApiError {
    fn from(refusal: hub_domain::Refusal) -> Self {
        use hub_domain::Refusal;
        match refusal {
            Refusal::Invalid(violations) => ApiError::InvalidArgument(violations.into_vec()),
            Refusal::NotFound(what) => ApiError::NotFound { what },
            Refusal::AlreadyExists(what) => ApiError::AlreadyExists { what },
            Refusal::Illegal(reason) => ApiError::FailedPrecondition(reason),
            Refusal::Forbidden(reason) => ApiError::PermissionDenied(reason),
        }
    }
}

impl From<hub_domain::Violations> for ApiError {
    fn from(violations: hub_domain::Violations) -> Self {
        ApiError::InvalidArgument(violations.into_vec())
    }
}
