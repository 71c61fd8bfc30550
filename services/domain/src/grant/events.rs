//! What happened to a grant. Events are facts: `apply` never refuses one.

use jiff::Timestamp;

use super::GrantId;
use crate::codes::DepartmentCode;

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRequested {
    pub grant_id: GrantId,
    pub requester: DepartmentCode,
    /// The dataset's owner when the grant was asked for: it alone answers.
    pub owner: DepartmentCode,
    pub dataset: String,
    pub fields: Vec<String>,
    pub purpose: String,
    pub expires_at: Timestamp,
    pub requested_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantApproved {
    pub grant_id: GrantId,
    pub by: DepartmentCode,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRejected {
    pub grant_id: GrantId,
    pub by: DepartmentCode,
    pub reason: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantRevoked {
    pub grant_id: GrantId,
    pub by: DepartmentCode,
    pub reason: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GrantExpired {
    pub grant_id: GrantId,
    pub at: Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GrantEvent {
    Requested(GrantRequested),
    Approved(GrantApproved),
    Rejected(GrantRejected),
    Revoked(GrantRevoked),
    Expired(GrantExpired),
}

impl GrantEvent {
    pub fn grant_id(&self) -> &GrantId {
        match self {
            Self::Requested(e) => &e.grant_id,
            Self::Approved(e) => &e.grant_id,
            Self::Rejected(e) => &e.grant_id,
            Self::Revoked(e) => &e.grant_id,
            Self::Expired(e) => &e.grant_id,
        }
    }
}
