//! The case aggregate: grid incidents and property complaints share one lifecycle.
//!
//! reported -> dispatched (to a department, with deadlines from the category's service level)
//! -> accepted -> resolved -> rated -> closed; a transfer requested by the holder is accepted
//! or rejected by the receiver (custody moves only on acceptance, and the new holder's clock
//! restarts); a missed deadline is escalated in tiers; a rating of 1 or 2 reopens the case
//! with its holder.

mod decide;
mod events;
mod state;
mod types;

pub use crate::Ctx;
pub use decide::{authorise, decide, next_escalation};
pub use events::*;
pub use state::{CaseState, CaseStatus, apply};
pub use types::*;

use crate::codes::DepartmentCode;

/// A case's id, assigned by the hub.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
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

impl std::fmt::Display for CaseId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Command: report a case.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportCase {
    pub case_id: CaseId,
    pub kind: CaseKind,
    pub description: String,
    pub reporter: Reporter,
    /// How the report reached the hub.
    pub channel: ReportChannel,
    /// The department whose system submitted the report.
    pub reported_by: DepartmentCode,
}

/// Everything that can be asked of a case. Free text (reason, outcome) is validated at the edge.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseCommand {
    Report(ReportCase),
    /// By the district command centre: hand the case to a department.
    Dispatch {
        department: DepartmentCode,
    },
    /// By the holder.
    Accept,
    /// By the holder: ask another department to take the case.
    RequestTransfer {
        to: DepartmentCode,
        reason: String,
    },
    /// By the department asked.
    AcceptTransfer,
    /// By the department asked.
    RejectTransfer {
        reason: String,
    },
    /// By the hub: the running deadline's next tier is due.
    Escalate,
    /// By the holder.
    Resolve {
        outcome: String,
    },
    /// By the reporting department, 1 to 5.
    Rate {
        rating: u8,
    },
    /// By the district command centre.
    Close,
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
