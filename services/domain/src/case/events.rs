//! What happened to a case. Events are facts: `apply` never refuses one.

use jiff::Timestamp;

use super::{CaseId, CaseKind, DeadlineKind, ReportChannel, Reporter, Urgency};
use crate::codes::{DepartmentCode, DivisionCode};

#[derive(Debug, Clone, PartialEq)]
pub struct CaseReported {
    pub case_id: CaseId,
    pub kind: CaseKind,
    pub description: String,
    pub reporter: Reporter,
    pub channel: ReportChannel,
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
pub struct CaseAccepted {
    pub case_id: CaseId,
    pub department: DepartmentCode,
    pub accepted_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferRequested {
    pub case_id: CaseId,
    pub from: DepartmentCode,
    pub to: DepartmentCode,
    pub reason: String,
    pub requested_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferAccepted {
    pub case_id: CaseId,
    pub from: DepartmentCode,
    pub to: DepartmentCode,
    pub accepted_at: Timestamp,
    /// The new holder's clock: it must resolve by then.
    pub resolve_by: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferRejected {
    pub case_id: CaseId,
    pub from: DepartmentCode,
    pub to: DepartmentCode,
    pub reason: String,
    pub rejected_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseEscalated {
    pub case_id: CaseId,
    /// 1: district command centre; 2: district leadership; 3: the city.
    pub tier: u8,
    pub deadline: DeadlineKind,
    /// The deadline that was missed.
    pub due: Timestamp,
    pub holder: DepartmentCode,
    pub escalated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseResolved {
    pub case_id: CaseId,
    pub department: DepartmentCode,
    pub outcome: String,
    pub resolved_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseRated {
    pub case_id: CaseId,
    pub rating: u8,
    pub rated_by: DepartmentCode,
    pub rated_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseReopened {
    pub case_id: CaseId,
    pub holder: DepartmentCode,
    pub reopened_at: Timestamp,
    pub resolve_by: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseClosed {
    pub case_id: CaseId,
    pub closed_by: DepartmentCode,
    pub closed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CaseEvent {
    Reported(CaseReported),
    Dispatched(CaseDispatched),
    Accepted(CaseAccepted),
    TransferRequested(TransferRequested),
    TransferAccepted(TransferAccepted),
    TransferRejected(TransferRejected),
    Escalated(CaseEscalated),
    Resolved(CaseResolved),
    Rated(CaseRated),
    Reopened(CaseReopened),
    Closed(CaseClosed),
}

impl CaseEvent {
    pub fn case_id(&self) -> &CaseId {
        match self {
            Self::Reported(e) => &e.case_id,
            Self::Dispatched(e) => &e.case_id,
            Self::Accepted(e) => &e.case_id,
            Self::TransferRequested(e) => &e.case_id,
            Self::TransferAccepted(e) => &e.case_id,
            Self::TransferRejected(e) => &e.case_id,
            Self::Escalated(e) => &e.case_id,
            Self::Resolved(e) => &e.case_id,
            Self::Rated(e) => &e.case_id,
            Self::Reopened(e) => &e.case_id,
            Self::Closed(e) => &e.case_id,
        }
    }
}
