//! Conversions between the wire (protobuf) and the domain, validating on the way in.
//!
//! Field paths in violations are the request's own field names, so a client can point at
//! the input that was wrong. Texts never repeat the value.

mod care;
mod commands;
mod enums;
mod events;
mod grant;
mod report;

pub use care::*;
pub use commands::*;
pub use enums::{report_channel, report_channel_to_proto, urgency_to_proto};
pub use events::*;
pub use grant::*;
pub use report::ValidReport;

use hub_domain::Violations;

/// A validated command on an existing aggregate, in the parts an executor needs.
pub trait ValidCommand {
    type Command;
    /// (request id, aggregate id, expected version, command).
    fn into_parts(self) -> (String, String, Option<u64>, Self::Command);
}

impl ValidCommand for ValidCaseCommand {
    type Command = hub_domain::case::CaseCommand;
    fn into_parts(self) -> (String, String, Option<u64>, Self::Command) {
        (
            self.request_id,
            self.case_id.to_string(),
            self.expected_version,
            self.command,
        )
    }
}

impl ValidCommand for ValidCareCommand {
    type Command = hub_domain::care::CareCommand;
    fn into_parts(self) -> (String, String, Option<u64>, Self::Command) {
        (
            self.request_id,
            self.care_id.to_string(),
            self.expected_version,
            self.command,
        )
    }
}

impl ValidCommand for ValidGrantCommand {
    type Command = hub_domain::grant::GrantCommand;
    fn into_parts(self) -> (String, String, Option<u64>, Self::Command) {
        (
            self.request_id,
            self.grant_id.to_string(),
            self.expected_version,
            self.command,
        )
    }
}

/// A validated command that creates an aggregate, whose id the hub derives from the calling
/// department and the request id.
pub trait ValidCreation {
    type Command;
    fn request_id(&self) -> &str;
    /// The domain command creating the aggregate `id`, issued by `department`.
    fn into_creation(
        self,
        id: String,
        department: hub_domain::codes::DepartmentCode,
    ) -> Self::Command;
}

impl ValidCreation for ValidReport {
    type Command = hub_domain::case::CaseCommand;
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn into_creation(
        self,
        id: String,
        department: hub_domain::codes::DepartmentCode,
    ) -> Self::Command {
        hub_domain::case::CaseCommand::Report(
            self.into_command(hub_domain::case::CaseId::new(id), department),
        )
    }
}

impl ValidCreation for ValidRegisterCare {
    type Command = hub_domain::care::CareCommand;
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn into_creation(self, id: String, _: hub_domain::codes::DepartmentCode) -> Self::Command {
        hub_domain::care::CareCommand::Register(
            self.into_command(hub_domain::care::CareId::new(id)),
        )
    }
}

impl ValidCreation for ValidRequestGrant {
    type Command = hub_domain::grant::GrantCommand;
    fn request_id(&self) -> &str {
        &self.request_id
    }
    fn into_creation(
        self,
        id: String,
        department: hub_domain::codes::DepartmentCode,
    ) -> Self::Command {
        hub_domain::grant::GrantCommand::Request(
            self.into_command(hub_domain::grant::GrantId::new(id), department),
        )
    }
}

/// Longest free text accepted in a description or an outcome.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest free text accepted in a reason.
pub const MAX_REASON_CHARS: usize = 500;
/// Longest free text accepted in a short text field (address, compound, staff number).
pub const MAX_SHORT_TEXT_CHARS: usize = 200;

pub fn timestamp(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(t.seconds, t.nanos).ok()
}

/// Free text: trimmed, 1 to `max` characters, no control characters but newlines.
pub(crate) fn text(
    violations: &mut Violations,
    field: &str,
    value: &str,
    max: usize,
) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        violations.push(field, "must not be empty");
        None
    } else if trimmed.chars().count() > max {
        violations.push(field, format!("must be at most {max} characters"));
        None
    } else if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        violations.push(field, "must not contain control characters");
        None
    } else {
        Some(trimmed.to_owned())
    }
}

/// Validates an id the hub issued: 1 to 64 ASCII letters, digits or dashes. `issued_by`
/// names the RPC that returns such ids, for the error text.
pub(crate) fn hub_id(
    violations: &mut Violations,
    field: &str,
    value: &str,
    issued_by: &str,
) -> Option<String> {
    if value.is_empty() {
        violations.push(field, "must not be empty");
        None
    } else if value.len() > 64
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        violations.push(
            field,
            format!(
                "must be a {} as returned by {issued_by}",
                field.replace('_', " ")
            ),
        );
        None
    } else {
        Some(value.to_owned())
    }
}

/// The fields every command on an existing aggregate has (request id, the aggregate's id,
/// expected version), then the command's own, validated together so every problem is
/// reported at once. `version_hint` says what a valid expected version is.
pub(crate) fn command_parts<C>(
    request_id_value: &str,
    id: impl FnOnce(&mut Violations) -> Option<String>,
    expected_version: Option<u64>,
    version_hint: &str,
    command: impl FnOnce(&mut Violations) -> Option<C>,
) -> Result<(String, String, Option<u64>, C), Violations> {
    let mut violations = Violations::new();
    let request_id = request_id(&mut violations, "request_id", request_id_value);
    let id = id(&mut violations);
    if expected_version == Some(0) {
        violations.push(
            "expected_version",
            format!("must be a version {version_hint}, above 0"),
        );
    }
    let command = command(&mut violations);
    match (request_id, id, command) {
        (Some(request_id), Some(id), Some(command)) if violations.is_empty() => {
            Ok((request_id, id, expected_version, command))
        }
        _ => Err(violations),
    }
}

/// Longest client request id.
pub const MAX_REQUEST_ID: usize = 64;

/// Whether `value` is an id safe to carry in headers and keys: 1 to `max` ASCII letters,
/// digits, `-`, `_`, `.` or `:`.
pub fn is_safe_id(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Validates a client request id, which travels in the events' headers: 1 to 64 ASCII
/// letters, digits, `-`, `_`, `.` or `:`.
pub fn request_id(violations: &mut Violations, field: &str, value: &str) -> Option<String> {
    if value.is_empty() {
        violations.push(field, "must not be empty");
        None
    } else if !is_safe_id(value, MAX_REQUEST_ID) {
        violations.push(
            field,
            "must be 1 to 64 ascii letters, digits, '-', '_', '.' or ':'",
        );
        None
    } else {
        Some(value.to_owned())
    }
}
