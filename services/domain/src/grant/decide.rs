//! Deciding a grant command: the events it produces, or why it is refused.

use std::collections::BTreeSet;

use jiff::SignedDuration;

use super::events::*;
use super::state::{GrantState, GrantStatus};
use super::{GrantCommand, RequestGrant};
use crate::Ctx;
use crate::actor::Actor;
use crate::refusal::Refusal;
use crate::violation::Violations;

/// The longest a grant may run, counted from its request.
pub const MAX_VALIDITY_DAYS: i64 = 366;

/// Whether `actor` may act on the grant at all: the department that asked for it, the
/// dataset's owner, and the hub itself. Checked before anything about the grant is revealed,
/// so any other department gets [`Refusal::no_role`] whether the grant exists or not. A
/// request creates the grant in the caller's own name, which `decide` checks.
pub fn authorise(
    state: Option<&GrantState>,
    command: &GrantCommand,
    actor: &Actor,
) -> Result<(), Refusal> {
    if matches!(command, GrantCommand::Request(_)) || *actor == Actor::System {
        return Ok(());
    }
    if state.is_some_and(|s| actor.is(&s.requester) || actor.is(&s.owner)) {
        Ok(())
    } else {
        Err(Refusal::no_role("grant"))
    }
}

/// Decides what a command does to a grant (`None`: it does not exist yet).
pub fn decide(
    state: Option<&GrantState>,
    command: GrantCommand,
    ctx: Ctx<'_>,
) -> Result<Vec<GrantEvent>, Refusal> {
    let s = match (state, command) {
        (None, GrantCommand::Request(request)) => {
            return request_grant(request, ctx).map(|e| vec![e]);
        }
        (Some(_), GrantCommand::Request(_)) => return Err(Refusal::AlreadyExists("grant")),
        (None, _) => return Err(Refusal::NotFound("grant")),
        (Some(s), command) => (s, command),
    };
    let (s, command) = s;
    let grant_id = s.id.clone();
    let now = ctx.now;
    let event = match command {
        GrantCommand::Request(_) => return Err(Refusal::AlreadyExists("grant")),
        GrantCommand::Approve => {
            owner(s, ctx.actor, "approves")?;
            require_status(s, "approve", &[GrantStatus::Requested])?;
            if now >= s.expires_at {
                return Err(Refusal::Illegal(format!(
                    "cannot approve a grant whose expiry has passed: it was due to expire at {}",
                    s.expires_at
                )));
            }
            GrantEvent::Approved(GrantApproved {
                grant_id,
                by: s.owner.clone(),
                at: now,
            })
        }
        GrantCommand::Reject { reason } => {
            owner(s, ctx.actor, "rejects")?;
            require_status(s, "reject", &[GrantStatus::Requested])?;
            GrantEvent::Rejected(GrantRejected {
                grant_id,
                by: s.owner.clone(),
                reason,
                at: now,
            })
        }
        GrantCommand::Revoke { reason } => {
            owner(s, ctx.actor, "revokes")?;
            require_status(s, "revoke", &[GrantStatus::Approved])?;
            GrantEvent::Revoked(GrantRevoked {
                grant_id,
                by: s.owner.clone(),
                reason,
                at: now,
            })
        }
        GrantCommand::Expire => {
            if *ctx.actor != Actor::System {
                return Err(Refusal::Forbidden(
                    "only the hub's expiry supervision expires a grant".into(),
                ));
            }
            require_status(
                s,
                "expire",
                &[GrantStatus::Requested, GrantStatus::Approved],
            )?;
            if now < s.expires_at {
                return Err(Refusal::Illegal(format!(
                    "cannot expire the grant yet: it is due to expire at {}",
                    s.expires_at
                )));
            }
            GrantEvent::Expired(GrantExpired { grant_id, at: now })
        }
    };
    Ok(vec![event])
}

fn request_grant(request: RequestGrant, ctx: Ctx<'_>) -> Result<GrantEvent, Refusal> {
    if !ctx.actor.is(&request.requester) {
        return Err(Refusal::Forbidden(
            "a department requests grants in its own name only".into(),
        ));
    }
    let mut violations = Violations::new();
    if ctx.registry.unit(&request.requester).is_none() {
        violations.push("requester", "no such department in the registry");
    }
    let dataset = ctx.registry.dataset(&request.dataset);
    match dataset {
        None => violations.push("dataset", "no such dataset in the catalogue"),
        Some(d) if d.owner == request.requester => violations.push(
            "dataset",
            "is the requester's own dataset: no grant is needed",
        ),
        Some(_) => {}
    }
    let mut seen = BTreeSet::new();
    if request.fields.is_empty() {
        violations.push("fields", "must name at least one field");
    } else if !request.fields.iter().all(|f| seen.insert(f.as_str())) {
        violations.push("fields", "must not name a field twice");
    } else if let Some(d) = dataset
        && request.fields.iter().any(|f| d.field(f).is_none())
    {
        violations.push("fields", "names a field the dataset does not have");
    }
    if request.purpose.trim().is_empty() {
        violations.push("purpose", "must not be empty");
    }
    if request.expires_at <= ctx.now {
        violations.push("expires_at", "must be in the future");
    } else if ctx
        .now
        .checked_add(SignedDuration::from_hours(MAX_VALIDITY_DAYS * 24))
        .is_ok_and(|limit| request.expires_at > limit)
    {
        violations.push(
            "expires_at",
            format!("must be at most {MAX_VALIDITY_DAYS} days ahead"),
        );
    }
    let Some(dataset) = dataset.filter(|_| violations.is_empty()) else {
        return Err(Refusal::Invalid(violations));
    };
    Ok(GrantEvent::Requested(GrantRequested {
        grant_id: request.grant_id,
        requester: request.requester,
        owner: dataset.owner.clone(),
        dataset: request.dataset,
        fields: request.fields,
        purpose: request.purpose,
        expires_at: request.expires_at,
        requested_at: ctx.now,
    }))
}

fn owner(s: &GrantState, actor: &Actor, verb: &str) -> Result<(), Refusal> {
    if actor.is(&s.owner) {
        Ok(())
    } else {
        Err(Refusal::Forbidden(format!(
            "only the dataset's owning department {verb} a grant"
        )))
    }
}

fn require_status(s: &GrantState, action: &str, allowed: &[GrantStatus]) -> Result<(), Refusal> {
    if allowed.contains(&s.status) {
        return Ok(());
    }
    let wanted: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
    Err(Refusal::Illegal(format!(
        "cannot {action} a grant that is {}: it must be {}",
        s.status.as_str(),
        wanted.join(" or ")
    )))
}
