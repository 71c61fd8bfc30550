//! A care record's state, as command handling needs it, and how events change it.
//!
//! Deliberately without the person's name or identity number: states are cached as JSON,
//! and decisions never need them.

use super::events::CareEvent;
use super::{CareCategory, CareId, RiskLevel};
use crate::codes::CommunityCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CareStatus {
    Open,
    Closed,
}

impl CareStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CareState {
    pub id: CareId,
    pub status: CareStatus,
    pub risk_level: RiskLevel,
    pub category: CareCategory,
    pub community: CommunityCode,
    /// Number of visits logged.
    pub visits: u32,
    /// Number of events applied.
    pub events: u64,
}

/// Applies an event (`None`: the record does not exist yet). Events are facts decided
/// earlier; one that does not fit the state (which `decide` never produces) leaves it as is.
pub fn apply(state: Option<CareState>, event: &CareEvent) -> Option<CareState> {
    let mut s = match (state, event) {
        (None, CareEvent::Registered(e)) => {
            return Some(CareState {
                id: e.care_id.clone(),
                status: CareStatus::Open,
                risk_level: e.risk_level,
                category: e.category,
                community: e.community.clone(),
                visits: 0,
                events: 1,
            });
        }
        (None, _) => return None,
        (Some(s), CareEvent::Registered(_)) => return Some(s),
        (Some(s), _) => s,
    };
    match event {
        CareEvent::Registered(_) => {}
        CareEvent::VisitLogged(_) => s.visits += 1,
        CareEvent::RiskLevelChanged(e) => s.risk_level = e.to,
        CareEvent::Closed(_) => s.status = CareStatus::Closed,
    }
    s.events += 1;
    Some(s)
}
