//! The case aggregate: grid incidents and property complaints share one lifecycle
//! (reported -> dispatched -> ...). This slice holds the report; the rest of the loop
//! (accept, transfer, escalate, resolve, rate, close, reopen) comes with the command side.

mod types;

use jiff::Timestamp;

pub use types::*;

use crate::codes::{DepartmentCode, DivisionCode};
use crate::registry::Registry;
use crate::violation::Violations;

/// A case's id, assigned by the hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CaseId(String);

impl CaseId {
    /// Wraps an id the hub generated (or read back from its own log).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Command: report a case.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportCase {
    pub case_id: CaseId,
    pub kind: CaseKind,
    pub description: String,
    pub reporter: Reporter,
    /// The department whose system submitted the report.
    pub reported_by: DepartmentCode,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseCommand {
    Report(ReportCase),
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseReported {
    pub case_id: CaseId,
    pub kind: CaseKind,
    pub description: String,
    pub reporter: Reporter,
    pub district: DivisionCode,
    pub dispatch_unit: DepartmentCode,
    pub urgency: Urgency,
    pub reported_at: Timestamp,
    pub reported_by: DepartmentCode,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseDispatched {
    pub case_id: CaseId,
    pub department: DepartmentCode,
    pub dispatched_by: DepartmentCode,
    pub dispatched_at: Timestamp,
    pub accept_by: Timestamp,
    pub resolve_by: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseEvent {
    Reported(CaseReported),
    Dispatched(CaseDispatched),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    Reported,
    Dispatched,
}

/// What command handling needs to know of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseState {
    pub id: CaseId,
    pub status: CaseStatus,
    /// The department or dispatch unit holding the case.
    pub holder: DepartmentCode,
    pub urgency: Urgency,
    /// Number of events applied.
    pub version: u64,
}

/// A refusal of a command that was well-formed but is not allowed now.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CaseError {
    #[error("invalid command: {0}")]
    Invalid(Violations),
    #[error("case already exists")]
    AlreadyExists,
}

/// Decides what a command does to a case (`None`: the case does not exist yet).
pub fn decide(
    state: Option<&CaseState>,
    command: CaseCommand,
    registry: &Registry,
    now: Timestamp,
) -> Result<Vec<CaseEvent>, CaseError> {
    match command {
        CaseCommand::Report(report) => decide_report(state, report, registry, now),
    }
}

fn decide_report(
    state: Option<&CaseState>,
    report: ReportCase,
    registry: &Registry,
    now: Timestamp,
) -> Result<Vec<CaseEvent>, CaseError> {
    if state.is_some() {
        return Err(CaseError::AlreadyExists);
    }
    let mut violations = Violations::new();
    if let CaseKind::GridIncident(incident) = &report.kind
        && !registry.has_grid(&incident.grid)
    {
        violations.push("grid_incident.grid_code", "no such grid in the registry");
    }
    let district = report.kind.district();
    let centre = registry
        .district(&district)
        .map(|d| d.command_centre.clone());
    if centre.is_none() && matches!(report.kind, CaseKind::PropertyComplaint(_)) {
        violations.push(
            "property_complaint.district_code",
            "no such district in the registry",
        );
    }
    if registry.unit(&report.reported_by).is_none() {
        violations.push("x-hub-department", "no such department in the registry");
    }
    let Some(dispatch_unit) = centre.filter(|_| violations.is_empty()) else {
        return Err(CaseError::Invalid(violations));
    };
    Ok(vec![CaseEvent::Reported(CaseReported {
        urgency: report.kind.urgency(),
        case_id: report.case_id,
        kind: report.kind,
        description: report.description,
        reporter: report.reporter,
        district,
        dispatch_unit,
        reported_at: now,
        reported_by: report.reported_by,
    })])
}

/// Applies an event to a case (`None`: the case does not exist yet).
pub fn apply(state: Option<CaseState>, event: &CaseEvent) -> Option<CaseState> {
    match (state, event) {
        (None, CaseEvent::Reported(e)) => Some(CaseState {
            id: e.case_id.clone(),
            status: CaseStatus::Reported,
            holder: e.dispatch_unit.clone(),
            urgency: e.urgency,
            version: 1,
        }),
        (Some(mut s), CaseEvent::Dispatched(e)) => {
            s.status = CaseStatus::Dispatched;
            s.holder = e.department.clone();
            s.version += 1;
            Some(s)
        }
        // Events come from the log, where decide put them; anything else is left as it was.
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests;
