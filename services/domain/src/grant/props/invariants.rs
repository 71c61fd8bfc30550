//! Checks of the states a sequence goes through: every state is legal and reached by a legal
//! transition, and a refusal is of the kind the rules give. (That the kept state is the fold
//! of the accepted events, and that a refusal changes nothing, the shared harness checks.)

use std::collections::BTreeSet;

use jiff::SignedDuration;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{Turn, world};
use crate::grant::*;
use crate::refusal::Refusal;

// ---------------------------------------------------------------------------------------------
// No sequence reaches an illegal state or makes an illegal transition.

/// The lifecycle's edges (and staying put); rejected, revoked and expired are terminal.
fn legal_transition(from: Option<GrantStatus>, to: Option<GrantStatus>) -> bool {
    use GrantStatus::*;
    from == to
        || matches!(
            (from, to),
            (None, Some(Requested))
                | (Some(Requested), Some(Approved | Rejected | Expired))
                | (Some(Approved), Some(Revoked | Expired))
        )
}

/// Each event is what its command asked, by the owner where one answers, at the step's time.
fn check_event(turn: &Turn, event: &GrantEvent) -> Result<(), TestCaseError> {
    let (registry, _) = world();
    let now = turn.now;
    let owner = turn.before.as_ref().map(|s| &s.owner);
    let expires_at = turn.before.as_ref().map(|s| s.expires_at);
    match (event, &turn.command) {
        (GrantEvent::Requested(e), GrantCommand::Request(r)) => {
            prop_assert!(turn.before.is_none(), "requested twice");
            let dataset = registry.dataset(&e.dataset).map(|d| &d.owner);
            prop_assert_eq!(Some(&e.owner), dataset, "the owner is the dataset's");
            prop_assert!(e.requester == r.requester && e.dataset == r.dataset);
            prop_assert!(e.fields == r.fields && e.purpose == r.purpose);
            prop_assert!(e.expires_at == r.expires_at && e.requested_at == now);
            prop_assert!(!e.purpose.trim().is_empty(), "requested without a purpose");
            let longest = SignedDuration::from_hours(MAX_VALIDITY_DAYS * 24);
            prop_assert!(
                e.requested_at < e.expires_at && e.expires_at <= e.requested_at + longest,
                "expiry {} for a request at {}",
                e.expires_at,
                e.requested_at
            );
        }
        (GrantEvent::Approved(e), GrantCommand::Approve) => {
            prop_assert!(Some(&e.by) == owner && e.at == now);
            prop_assert!(
                expires_at.is_some_and(|x| now < x),
                "approved past its expiry"
            );
        }
        (GrantEvent::Rejected(e), GrantCommand::Reject { reason }) => {
            prop_assert!(Some(&e.by) == owner && e.at == now && &e.reason == reason);
        }
        (GrantEvent::Revoked(e), GrantCommand::Revoke { reason }) => {
            prop_assert!(Some(&e.by) == owner && e.at == now && &e.reason == reason);
        }
        (GrantEvent::Expired(e), GrantCommand::Expire) => {
            prop_assert_eq!(e.at, now);
            prop_assert!(
                expires_at.is_some_and(|x| x <= now),
                "expired before its expiry"
            );
        }
        (event, command) => prop_assert!(false, "{command:?} yielded {event:?}"),
    }
    Ok(())
}

fn check_invariants(s: &GrantState) -> Result<(), TestCaseError> {
    let (registry, _) = world();
    let Some(dataset) = registry.dataset(&s.dataset) else {
        let outside = format!("a grant on {} outside the catalogue", s.dataset);
        return Err(TestCaseError::fail(outside));
    };
    prop_assert_eq!(&s.owner, &dataset.owner, "the owner is the dataset's");
    prop_assert_ne!(&s.requester, &s.owner, "a grant of one's own dataset");
    prop_assert!(registry.unit(&s.requester).is_some(), "unknown requester");
    prop_assert!(!s.fields.is_empty(), "a grant of no field");
    let unique: BTreeSet<&String> = s.fields.iter().collect();
    prop_assert_eq!(unique.len(), s.fields.len(), "a field granted twice");
    for field in &s.fields {
        prop_assert!(
            dataset.field(field).is_some(),
            "{field} not in {}",
            s.dataset
        );
    }
    Ok(())
}

pub(super) fn check_states(turns: &[Turn]) -> Result<(), TestCaseError> {
    let mut requested = None;
    for turn in turns {
        for event in turn.result.as_deref().unwrap_or_default() {
            check_event(turn, event)?;
            if let GrantEvent::Requested(e) = event {
                requested = Some(e.clone());
            }
        }
        let from = turn.before.as_ref().map(|s| s.status);
        let to = turn.after.as_ref().map(|s| s.status);
        prop_assert!(
            legal_transition(from, to),
            "{from:?} -> {to:?} by {:?}",
            turn.command
        );
        let Some(s) = &turn.after else { continue };
        check_invariants(s)?;
        let requested = requested.as_ref().expect("a grant was requested");
        prop_assert_eq!(s.expires_at, requested.expires_at, "the expiry moved");
        prop_assert!(s.requester == requested.requester && s.fields == requested.fields);
        if s.in_force(turn.now) {
            prop_assert!(s.status == GrantStatus::Approved && turn.now < s.expires_at);
        }
        if let Some(before) = &turn.before {
            prop_assert_eq!(&before.id, &s.id);
            prop_assert_eq!(&before.owner, &s.owner);
            prop_assert_eq!(&before.dataset, &s.dataset);
            prop_assert_eq!(before.expires_at, s.expires_at);
            if before.status != s.status && s.status == GrantStatus::Expired {
                prop_assert!(turn.now >= s.expires_at, "expired at {} early", turn.now);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A refusal is of the kind the rules give (beyond not found and already exists, which the
// shared check asks of every aggregate).

/// Whether a grant refuses the turn's command with `refusal`: a request of a new grant as
/// forbidden (not in the requester's name) or invalid, an answer, a revocation or an expiry as
/// forbidden or illegal.
pub(super) fn refusal_fits(turn: &Turn, refusal: &Refusal) -> bool {
    match (&turn.before, &turn.command) {
        (None, GrantCommand::Request(_)) => {
            matches!(refusal, Refusal::Forbidden(_) | Refusal::Invalid(_))
        }
        (None, _) | (Some(_), GrantCommand::Request(_)) => false,
        (Some(_), _) => matches!(refusal, Refusal::Forbidden(_) | Refusal::Illegal(_)),
    }
}
