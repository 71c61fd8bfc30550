//! The care aggregate: key-population care records (重点人群), owned by civil affairs.
//!
//! registered -> visits logged, risk level changed -> closed. The records are sensitive
//! personal information: only civil affairs issues commands, the state keeps neither name
//! nor identity number, and other departments see the roster only through a grant.

mod decide;
mod events;
mod state;

pub use crate::Ctx;
pub use decide::{authorise, decide};
pub use events::*;
pub use state::{CareState, CareStatus, apply};

use jiff::Timestamp;

use crate::codes::{CommunityCode, IdentityNumber};

/// The department that owns care records and alone issues their commands.
pub const CIVIL_AFFAIRS: &str = "civil-affairs";

/// A care record's id, assigned by the hub.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct CareId(String);

impl CareId {
    /// Wraps an id the hub generated (or read back from its own log).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CareId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which key population a person belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CareCategory {
    /// Community drug rehabilitation (社区戒毒康复).
    DrugRehabilitation,
    /// Severe mental disorder (严重精神障碍).
    SevereMentalDisorder,
    /// Elderly in hardship (困难老人).
    ElderlyInHardship,
    /// Left-behind child (留守儿童).
    LeftBehindChild,
}

impl CareCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DrugRehabilitation => "drug_rehabilitation",
            Self::SevereMentalDisorder => "severe_mental_disorder",
            Self::ElderlyInHardship => "elderly_in_hardship",
            Self::LeftBehindChild => "left_behind_child",
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Low,
    Medium,
    High,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// Command: register a person for care. Its `Debug` hides the person.
#[derive(Clone, PartialEq)]
pub struct RegisterCare {
    pub care_id: CareId,
    pub name: String,
    pub identity_number: IdentityNumber,
    pub category: CareCategory,
    pub community: CommunityCode,
    pub risk_level: RiskLevel,
    /// Validated at the edge; empty when none was given.
    pub phone: String,
    /// Validated at the edge; empty when none was given.
    pub address: String,
}

impl std::fmt::Debug for RegisterCare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterCare")
            .field("care_id", &self.care_id)
            .field("name", &"***")
            .field("identity_number", &self.identity_number)
            .field("category", &self.category)
            .field("community", &self.community)
            .field("risk_level", &self.risk_level)
            .field("phone", &"****")
            .field("address", &"****")
            .finish()
    }
}

/// Everything that can be asked of a care record, by civil affairs only. Free text (visitor,
/// notes, reason) is validated at the edge.
#[derive(Debug, Clone, PartialEq)]
pub enum CareCommand {
    Register(RegisterCare),
    LogVisit {
        visited_at: Timestamp,
        /// The visiting staff member's id.
        visitor: String,
        notes: String,
    },
    ChangeRiskLevel {
        to: RiskLevel,
        reason: String,
    },
    Close {
        reason: String,
    },
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
