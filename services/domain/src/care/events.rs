//! What happened to a care record. Events are facts: `apply` never refuses one.

use std::fmt;

use jiff::Timestamp;

use super::{CareCategory, CareId, RiskLevel};
use crate::codes::{CommunityCode, DepartmentCode, DivisionCode, IdentityNumber};

/// The one event that names the person. Its `Debug` hides the name (the identity number
/// hides itself), so logging an event never leaks who it is about.
#[derive(Clone, PartialEq)]
pub struct CareRegistered {
    pub care_id: CareId,
    pub name: String,
    pub identity_number: IdentityNumber,
    pub category: CareCategory,
    pub community: CommunityCode,
    pub district: DivisionCode,
    pub risk_level: RiskLevel,
    pub registered_by: DepartmentCode,
    pub registered_at: Timestamp,
    /// Empty when none was given.
    pub phone: String,
    /// Empty when none was given.
    pub address: String,
}

impl fmt::Debug for CareRegistered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CareRegistered")
            .field("care_id", &self.care_id)
            .field("name", &"****")
            .field("identity_number", &self.identity_number)
            .field("category", &self.category)
            .field("community", &self.community)
            .field("district", &self.district)
            .field("risk_level", &self.risk_level)
            .field("registered_by", &self.registered_by)
            .field("registered_at", &self.registered_at)
            .field("phone", &"****")
            .field("address", &"****")
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CareVisitLogged {
    pub care_id: CareId,
    pub visited_at: Timestamp,
    pub visitor: String,
    pub notes: String,
    pub logged_by: DepartmentCode,
    pub logged_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CareRiskLevelChanged {
    pub care_id: CareId,
    pub from: RiskLevel,
    pub to: RiskLevel,
    pub reason: String,
    pub changed_by: DepartmentCode,
    pub changed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CareClosed {
    pub care_id: CareId,
    pub reason: String,
    pub closed_by: DepartmentCode,
    pub closed_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum CareEvent {
    Registered(CareRegistered),
    VisitLogged(CareVisitLogged),
    RiskLevelChanged(CareRiskLevelChanged),
    Closed(CareClosed),
}

impl CareEvent {
    pub fn care_id(&self) -> &CareId {
        match self {
            Self::Registered(e) => &e.care_id,
            Self::VisitLogged(e) => &e.care_id,
            Self::RiskLevelChanged(e) => &e.care_id,
            Self::Closed(e) => &e.care_id,
        }
    }
}
