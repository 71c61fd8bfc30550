//! The grant aggregate: a conditional-sharing request (有条件共享) from one department for
//! fields of another's dataset, for a purpose, until an expiry.
//!
//! requested -> approved or rejected by the dataset's owner; approved -> revoked by the
//! owner; requested or approved -> expired by the hub once the expiry is reached.

mod decide;
mod events;
mod state;

pub use crate::Ctx;
pub use decide::{MAX_VALIDITY_DAYS, authorise, decide};
pub use events::*;
pub use state::{GrantState, GrantStatus, apply};

use jiff::Timestamp;

use crate::codes::DepartmentCode;

/// A grant's id, assigned by the hub.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct GrantId(String);

impl GrantId {
    /// Wraps an id the hub generated (or read back from its own log).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Command: ask for fields of another department's dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestGrant {
    pub grant_id: GrantId,
    pub requester: DepartmentCode,
    /// The dataset's id in the catalogue.
    pub dataset: String,
    /// The fields asked for (minimum necessary), each a field of the dataset.
    pub fields: Vec<String>,
    pub purpose: String,
    pub expires_at: Timestamp,
}

/// Everything that can be asked of a grant. Free text (reason) is validated at the edge.
#[derive(Debug, Clone, PartialEq)]
pub enum GrantCommand {
    /// By the requesting department, in its own name.
    Request(RequestGrant),
    /// By the dataset's owner.
    Approve,
    /// By the dataset's owner.
    Reject { reason: String },
    /// By the dataset's owner, of an approved grant.
    Revoke { reason: String },
    /// By the hub, once the expiry is reached.
    Expire,
}

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
