//! A grant's current state, as command handling and masking need it, and how events change it.

use jiff::Timestamp;

use super::GrantId;
use super::events::GrantEvent;
use crate::codes::DepartmentCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum GrantStatus {
    /// Waiting for the owner's answer.
    Requested,
    /// In force until revoked or expired.
    Approved,
    Rejected,
    Revoked,
    Expired,
}

impl GrantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GrantState {
    pub id: GrantId,
    pub status: GrantStatus,
    pub requester: DepartmentCode,
    pub owner: DepartmentCode,
    pub dataset: String,
    pub fields: Vec<String>,
    pub expires_at: Timestamp,
    /// Number of events applied.
    pub events: u64,
}

impl GrantState {
    /// Whether the grant lets its requester see the fields at `now`.
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.status == GrantStatus::Approved && now < self.expires_at
    }
}

/// Applies an event (`None`: the grant does not exist yet). Events are facts decided
/// earlier; one that does not fit the state (which `decide` never produces) leaves it as is.
pub fn apply(state: Option<GrantState>, event: &GrantEvent) -> Option<GrantState> {
    let mut s = match (state, event) {
        (None, GrantEvent::Requested(e)) => {
            return Some(GrantState {
                id: e.grant_id.clone(),
                status: GrantStatus::Requested,
                requester: e.requester.clone(),
                owner: e.owner.clone(),
                dataset: e.dataset.clone(),
                fields: e.fields.clone(),
                expires_at: e.expires_at,
                events: 1,
            });
        }
        (None, _) => return None,
        (Some(s), GrantEvent::Requested(_)) => return Some(s),
        (Some(s), _) => s,
    };
    s.status = match event {
        GrantEvent::Requested(_) => s.status,
        GrantEvent::Approved(_) => GrantStatus::Approved,
        GrantEvent::Rejected(_) => GrantStatus::Rejected,
        GrantEvent::Revoked(_) => GrantStatus::Revoked,
        GrantEvent::Expired(_) => GrantStatus::Expired,
    };
    s.events += 1;
    Some(s)
}
