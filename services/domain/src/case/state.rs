//! A case's current state, as command handling needs it, and how events change it.

use jiff::Timestamp;

use super::events::CaseEvent;
use super::{CaseId, DeadlineKind, Urgency};
use crate::codes::DepartmentCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CaseStatus {
    /// In the district command centre's dispatch queue.
    Reported,
    /// With a department that has not accepted it yet.
    Dispatched,
    /// Being handled by its holder.
    Accepted,
    Resolved,
    /// Rated 3 to 5 (1 or 2 reopens it).
    Rated,
    Closed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reported => "reported",
            Self::Dispatched => "dispatched",
            Self::Accepted => "accepted",
            Self::Resolved => "resolved",
            Self::Rated => "rated",
            Self::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseState {
    pub id: CaseId,
    pub status: CaseStatus,
    /// The department or dispatch unit holding the case.
    pub holder: DepartmentCode,
    pub dispatch_unit: DepartmentCode,
    pub reported_by: DepartmentCode,
    pub urgency: Urgency,
    pub accept_by: Option<Timestamp>,
    pub resolve_by: Option<Timestamp>,
    /// A transfer asked of another department, not yet answered.
    pub pending_transfer: Option<DepartmentCode>,
    /// Highest tier reached for the deadline now running (0: not escalated).
    pub escalation_tier: u8,
    pub rating: Option<u8>,
    pub reopened: u32,
    /// Number of events applied.
    pub events: u64,
}

impl CaseState {
    /// The deadline the holder can miss now, if any.
    pub fn running_deadline(&self) -> Option<(DeadlineKind, Timestamp)> {
        match self.status {
            CaseStatus::Dispatched => self.accept_by.map(|t| (DeadlineKind::Accept, t)),
            CaseStatus::Accepted => self.resolve_by.map(|t| (DeadlineKind::Resolve, t)),
            _ => None,
        }
    }
}

/// Applies an event (`None`: the case does not exist yet). Events are facts decided
/// earlier; one that does not fit the state (which `decide` never produces) leaves it as is.
pub fn apply(state: Option<CaseState>, event: &CaseEvent) -> Option<CaseState> {
    let mut s = match (state, event) {
        (None, CaseEvent::Reported(e)) => {
            return Some(CaseState {
                id: e.case_id.clone(),
                status: CaseStatus::Reported,
                holder: e.dispatch_unit.clone(),
                dispatch_unit: e.dispatch_unit.clone(),
                reported_by: e.reported_by.clone(),
                urgency: e.urgency,
                accept_by: None,
                resolve_by: None,
                pending_transfer: None,
                escalation_tier: 0,
                rating: None,
                reopened: 0,
                events: 1,
            });
        }
        (None, _) => return None,
        // A second report of one case never comes from decide; the case stays as it was.
        (Some(s), CaseEvent::Reported(_)) => return Some(s),
        (Some(s), _) => s,
    };
    match event {
        CaseEvent::Reported(_) => {}
        CaseEvent::Dispatched(e) => {
            s.status = CaseStatus::Dispatched;
            s.holder = e.department.clone();
            s.accept_by = Some(e.accept_by);
            s.resolve_by = Some(e.resolve_by);
            s.escalation_tier = 0;
        }
        CaseEvent::Accepted(_) => {
            s.status = CaseStatus::Accepted;
            s.escalation_tier = 0;
        }
        CaseEvent::TransferRequested(e) => s.pending_transfer = Some(e.to.clone()),
        CaseEvent::TransferAccepted(e) => {
            s.holder = e.to.clone();
            s.status = CaseStatus::Accepted;
            s.pending_transfer = None;
            s.accept_by = None;
            s.resolve_by = Some(e.resolve_by);
            s.escalation_tier = 0;
        }
        CaseEvent::TransferRejected(_) => s.pending_transfer = None,
        CaseEvent::Escalated(e) => s.escalation_tier = s.escalation_tier.max(e.tier),
        CaseEvent::Resolved(_) => s.status = CaseStatus::Resolved,
        CaseEvent::Rated(e) => {
            s.status = CaseStatus::Rated;
            s.rating = Some(e.rating);
        }
        CaseEvent::Reopened(e) => {
            s.status = CaseStatus::Accepted;
            s.resolve_by = Some(e.resolve_by);
            s.escalation_tier = 0;
            s.reopened += 1;
        }
        CaseEvent::Closed(_) => s.status = CaseStatus::Closed,
    }
    s.events += 1;
    Some(s)
}
