//! How a grant's commands and events read in a failure's trace.

use crate::grant::*;

/// A command in a few words.
pub(super) fn command(command: &GrantCommand) -> String {
    match command {
        GrantCommand::Request(r) => format!(
            "Request {} by {} of {} {:?} ({:?}) until {}",
            r.grant_id, r.requester, r.dataset, r.fields, r.purpose, r.expires_at
        ),
        GrantCommand::Reject { .. } => "Reject".into(),
        GrantCommand::Revoke { .. } => "Revoke".into(),
        other => format!("{other:?}"),
    }
}

/// An event in a few words.
pub(super) fn event(event: &GrantEvent) -> String {
    match event {
        GrantEvent::Requested(e) => format!("Requested (owner {})", e.owner),
        GrantEvent::Approved(_) => "Approved".into(),
        GrantEvent::Rejected(_) => "Rejected".into(),
        GrantEvent::Revoked(_) => "Revoked".into(),
        GrantEvent::Expired(_) => "Expired".into(),
    }
}
