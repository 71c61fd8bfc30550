//! The vocabulary of cases: what was reported, where, by whom, and how urgent it is.

use crate::codes::{CreditCode, DivisionCode, GridCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentCategory {
    SafetyHazard,
    Dispute,
    Sanitation,
    IllegalConstruction,
    GroupRenting,
    FireHazard,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComplaintCategory {
    Fees,
    PublicRevenue,
    MaintenanceFund,
    ServiceQuality,
    Other,
}

/// Service level of a case: how fast it must be accepted and resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Urgency {
    Urgent,
    Important,
    General,
}

impl IncidentCategory {
    pub fn urgency(self) -> Urgency {
        match self {
            Self::FireHazard | Self::SafetyHazard => Urgency::Urgent,
            Self::Dispute | Self::GroupRenting | Self::IllegalConstruction => Urgency::Important,
            Self::Sanitation | Self::Other => Urgency::General,
        }
    }
}

/// A point and a description of a place.
#[derive(Debug, Clone, PartialEq)]
pub struct Location {
    pub longitude: f64,
    pub latitude: f64,
    pub address: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GridIncident {
    pub grid: GridCode,
    pub category: IncidentCategory,
    pub location: Option<Location>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PropertyComplaint {
    pub company: CreditCode,
    pub compound: String,
    pub category: ComplaintCategory,
    pub district: DivisionCode,
}

/// What kind of case was reported.
#[derive(Debug, Clone, PartialEq)]
pub enum CaseKind {
    GridIncident(GridIncident),
    PropertyComplaint(PropertyComplaint),
}

impl CaseKind {
    /// The district whose command centre dispatches the case.
    pub fn district(&self) -> DivisionCode {
        match self {
            Self::GridIncident(incident) => incident.grid.division(),
            Self::PropertyComplaint(complaint) => complaint.district.clone(),
        }
    }

    pub fn urgency(&self) -> Urgency {
        match self {
            Self::GridIncident(incident) => incident.category.urgency(),
            // Property complaints are general by default: no complaint is an emergency.
            Self::PropertyComplaint(_) => Urgency::General,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reporter {
    GridWorker { id: String },
    Resident,
}

/// How a report reached the hub (上报渠道).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ReportChannel {
    /// A grid worker's patrol (网格员巡查上报).
    GridPatrol,
    /// The citizen service hotline 12345.
    Hotline,
    /// Online self-service: an app, a mini program or a web portal.
    Online,
    /// In person at a service counter.
    WalkIn,
    /// Found by a department's own inspection or sensors and passed on by its system.
    Department,
    /// Not recorded.
    Unrecorded,
}

impl ReportChannel {
    /// The channel of a report that names none: a grid worker reports what the patrol found;
    /// how a resident's report came in is not known. Reports stored before the hub recorded
    /// channels are read with the same rule.
    pub fn default_for(reporter: &Reporter) -> Self {
        match reporter {
            Reporter::GridWorker { .. } => Self::GridPatrol,
            Reporter::Resident => Self::Unrecorded,
        }
    }

    /// Whether `reporter` can have reported through this channel: only a grid worker patrols.
    pub fn fits(self, reporter: &Reporter) -> bool {
        self != Self::GridPatrol || matches!(reporter, Reporter::GridWorker { .. })
    }
}

/// Which deadline a case can miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeadlineKind {
    Accept,
    Resolve,
}
