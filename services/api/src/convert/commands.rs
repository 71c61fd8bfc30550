//! Case command requests -> domain commands, validated.

use hub_domain::Violations;
use hub_domain::case::{CaseCommand, CaseId};
use hub_domain::codes::DepartmentCode;

use super::{MAX_DESCRIPTION_CHARS, MAX_REASON_CHARS, text};
use crate::v1;

/// A validated command on an existing case.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCaseCommand {
    pub request_id: String,
    pub case_id: CaseId,
    pub expected_version: Option<u64>,
    pub command: CaseCommand,
}

/// Validates a case id as the hub issues them: 1 to 64 ASCII letters, digits or dashes.
pub fn case_id(violations: &mut Violations, value: &str) -> Option<CaseId> {
    super::hub_id(violations, "case_id", value, "ReportCase").map(CaseId::new)
}

fn department(violations: &mut Violations, field: &str, value: &str) -> Option<DepartmentCode> {
    violations.check(field, DepartmentCode::parse(value))
}

/// The fields every case command has, then the command's own, validated together so every
/// problem is reported at once.
fn validate(
    request_id_value: &str,
    case_id_value: &str,
    expected_version: Option<u64>,
    command: impl FnOnce(&mut Violations) -> Option<CaseCommand>,
) -> Result<ValidCaseCommand, Violations> {
    let id = |v: &mut Violations| super::hub_id(v, "case_id", case_id_value, "ReportCase");
    let (request_id, id, expected_version, command) = super::command_parts(
        request_id_value,
        id,
        expected_version,
        "a case has had (its last_position)",
        command,
    )?;
    Ok(ValidCaseCommand {
        request_id,
        case_id: CaseId::new(id),
        expected_version,
        command,
    })
}

impl TryFrom<&v1::DispatchCaseRequest> for ValidCaseCommand {
    type Error = Violations;
    fn try_from(r: &v1::DispatchCaseRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.case_id, r.expected_version, |v| {
            department(v, "department", &r.department)
                .map(|department| CaseCommand::Dispatch { department })
        })
    }
}

impl TryFrom<&v1::AcceptCaseRequest> for ValidCaseCommand {
    type Error = Violations;
    fn try_from(r: &v1::AcceptCaseRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.case_id, r.expected_version, |_| {
            Some(CaseCommand::Accept)
        })
    }
}

impl TryFrom<&v1::RequestCaseTransferRequest> for ValidCaseCommand {
    type Error = Violations;
    fn try_from(r: &v1::RequestCaseTransferRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.case_id, r.expected_version, |v| {
            let to = department(v, "to_department", &r.to_department);
            let reason = text(v, "reason", &r.reason, MAX_REASON_CHARS);
            Some(CaseCommand::RequestTransfer {
                to: to?,
                reason: reason?,
            })
        })
    }
}

impl TryFrom<&v1::AcceptCaseTransferRequest> for ValidCaseCommand {
    type Error = Violations;
    fn try_from(r: &v1::AcceptCaseTransferRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.case_id, r.expected_version, |_| {
            Some(CaseCommand::AcceptTransfer)
        })
    }
}

impl TryFrom<&v1::RejectCaseTransferRequest> for ValidCaseCommand {
    type Error = Violations;
    fn try_from(r: &v1::RejectCaseTransferRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.case_id, r.expected_version, |v| {
            text(v, "reason", &r.reason, MAX_REASON_CHARS)
                .map(|reason| CaseCommand::RejectTransfer { reason })
        })
    }
}

impl TryFrom<&v1::ResolveCaseRequest> for ValidCaseCommand {
    type Error = Violations;
    fn try_from(r: &v1::ResolveCaseRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.case_id, r.expected_version, |v| {
            text(v, "outcome", &r.outcome, MAX_DESCRIPTION_CHARS)
                .map(|outcome| CaseCommand::Resolve { outcome })
        })
    }
}

impl TryFrom<&v1::RateCaseRequest> for ValidCaseCommand {
    type Error = Violations;
    fn try_from(r: &v1::RateCaseRequest) -> Result<Self, Violations> {
        validate(
            &r.request_id,
            &r.case_id,
            r.expected_version,
            |v| match u8::try_from(r.rating) {
                Ok(rating @ 1..=5) => Some(CaseCommand::Rate { rating }),
                _ => {
                    v.push("rating", "must be 1 to 5");
                    None
                }
            },
        )
    }
}

impl TryFrom<&v1::CloseCaseRequest> for ValidCaseCommand {
    type Error = Violations;
    fn try_from(r: &v1::CloseCaseRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.case_id, r.expected_version, |_| {
            Some(CaseCommand::Close)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_of_a_command_is_named() {
        let request = v1::RequestCaseTransferRequest {
            request_id: String::new(),
            case_id: "a/b".into(),
            expected_version: Some(0),
            to_department: "Housing".into(),
            reason: " ".into(),
        };
        let violations = ValidCaseCommand::try_from(&request).expect_err("five problems");
        let fields: Vec<&str> = violations
            .as_slice()
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "request_id",
                "case_id",
                "expected_version",
                "to_department",
                "reason"
            ]
        );

        let good = v1::RequestCaseTransferRequest {
            request_id: "r-1".into(),
            case_id: "c-1".into(),
            expected_version: Some(7),
            to_department: "housing".into(),
            reason: "property matter".into(),
        };
        let valid = ValidCaseCommand::try_from(&good).expect("valid");
        assert_eq!(valid.expected_version, Some(7));
        assert!(matches!(valid.command, CaseCommand::RequestTransfer { .. }));
    }

    #[test]
    fn ratings_are_one_to_five() {
        let rate = |rating| v1::RateCaseRequest {
            request_id: "r".into(),
            case_id: "c".into(),
            expected_version: None,
            rating,
        };
        assert!(ValidCaseCommand::try_from(&rate(0)).is_err());
        assert!(ValidCaseCommand::try_from(&rate(6)).is_err());
        assert!(ValidCaseCommand::try_from(&rate(256 + 3)).is_err());
        assert_eq!(
            ValidCaseCommand::try_from(&rate(5)).expect("valid").command,
            CaseCommand::Rate { rating: 5 }
        );
    }
}
