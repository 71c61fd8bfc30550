//! Checks of the states a sequence goes through: every state is legal and reached by a legal
//! transition, and a refusal is of the kind the rules give. (That the kept state is the fold
//! of the accepted events, and that a refusal changes nothing, the shared harness checks.)

use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{Turn, world};
use crate::case::*;
use crate::codes::DepartmentCode;
use crate::policy::{Policy, TOP_TIER};
use crate::refusal::Refusal;
use crate::registry::{Registry, UnitKind};

// ---------------------------------------------------------------------------------------------
// No sequence reaches an illegal state or makes an illegal transition.

fn check_invariants(
    s: &CaseState,
    now: Timestamp,
    registry: &Registry,
    policy: &Policy,
) -> Result<(), TestCaseError> {
    use CaseStatus::*;
    let kind = |code: &DepartmentCode| registry.unit(code).map(|u| u.kind);
    prop_assert_eq!(kind(&s.dispatch_unit), Some(UnitKind::DispatchUnit));
    prop_assert!(
        kind(&s.reported_by).is_some(),
        "reported by an unknown unit"
    );
    if s.status == Reported {
        prop_assert_eq!(
            &s.holder,
            &s.dispatch_unit,
            "a reported case is in its queue"
        );
        prop_assert_eq!((s.accept_by, s.resolve_by), (None, None), "no clock yet");
        prop_assert_eq!(s.escalation_tier, 0);
        prop_assert_eq!(s.rating, None);
        prop_assert_eq!(s.reopened, 0);
    } else {
        prop_assert_eq!(
            kind(&s.holder),
            Some(UnitKind::Department),
            "held by {} while {}",
            s.holder,
            s.status.as_str()
        );
    }
    if let Some(to) = &s.pending_transfer {
        prop_assert!(
            matches!(s.status, Dispatched | Accepted),
            "transfer pending while {}",
            s.status.as_str()
        );
        prop_assert_ne!(to, &s.holder, "transfer pending to the holder");
        prop_assert_eq!(kind(to), Some(UnitKind::Department));
    }
    prop_assert!(s.escalation_tier <= TOP_TIER);
    if s.status == Dispatched {
        prop_assert!(s.accept_by.is_some() && s.resolve_by.is_some());
        prop_assert_eq!(s.rating, None);
        prop_assert_eq!(s.reopened, 0);
    }
    if s.status == Accepted {
        prop_assert!(
            s.resolve_by.is_some(),
            "accepted without a resolve deadline"
        );
    }
    if let Some(rating) = s.rating {
        prop_assert!((1..=5).contains(&rating), "rating {rating}");
        if rating <= 2 {
            prop_assert!(s.reopened >= 1, "a poor rating reopens the case");
            prop_assert!(
                matches!(s.status, Accepted | Resolved | Closed),
                "poorly rated and {}",
                s.status.as_str()
            );
        }
    }
    if s.status == Rated {
        prop_assert!(s.rating.is_some_and(|r| r >= 3), "rated {:?}", s.rating);
    }
    if let Some((_, due)) = s.running_deadline()
        && s.escalation_tier > 0
    {
        prop_assert!(
            policy.tier_at(due, s.escalation_tier) <= now,
            "tier {} reached before it was due",
            s.escalation_tier
        );
    }
    Ok(())
}

/// The lifecycle's edges (and staying put).
fn legal_transition(from: Option<CaseStatus>, to: Option<CaseStatus>) -> bool {
    use CaseStatus::*;
    from == to
        || matches!(
            (from, to),
            (None, Some(Reported))
                | (Some(Reported), Some(Dispatched))
                | (Some(Dispatched), Some(Accepted))
                | (Some(Accepted), Some(Resolved))
                | (Some(Resolved), Some(Rated | Accepted | Closed))
                | (Some(Rated), Some(Closed))
        )
}

pub(super) fn check_states(turns: &[Turn]) -> Result<(), TestCaseError> {
    let (registry, policy) = world();
    for turn in turns {
        let Some(after) = &turn.after else { continue };
        check_invariants(after, turn.now, registry, policy)?;
        let from = turn.before.as_ref().map(|s| s.status);
        prop_assert!(
            legal_transition(from, Some(after.status)),
            "{:?} -> {:?} by {:?}",
            from,
            after.status,
            turn.command
        );
        if let Some(before) = &turn.before {
            prop_assert_eq!(&before.id, &after.id);
            prop_assert_eq!(&before.dispatch_unit, &after.dispatch_unit);
            prop_assert_eq!(&before.reported_by, &after.reported_by);
            prop_assert_eq!(before.urgency, after.urgency);
            prop_assert!(after.reopened >= before.reopened);
            // Custody moves by dispatch, or to the department that accepted a transfer.
            if before.holder != after.holder {
                let dispatched = before.status == CaseStatus::Reported;
                let transferred = before.pending_transfer.as_ref() == Some(&after.holder)
                    && matches!(turn.command, CaseCommand::AcceptTransfer);
                prop_assert!(
                    dispatched || transferred,
                    "custody moved from {} to {} by {:?}",
                    before.holder,
                    after.holder,
                    turn.command
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A refusal is of the kind the rules give (beyond not found and already exists, which the
// shared check asks of every aggregate).

/// Whether a case refuses the turn's command with `refusal`: a report of a new case with any
/// kind (it is validated), a command on an existing case as illegal, forbidden or invalid.
pub(super) fn refusal_fits(turn: &Turn, refusal: &Refusal) -> bool {
    match (&turn.before, &turn.command) {
        (None, CaseCommand::Report(_)) => true,
        (None, _) | (Some(_), CaseCommand::Report(_)) => false,
        (Some(_), _) => matches!(
            refusal,
            Refusal::Illegal(_) | Refusal::Forbidden(_) | Refusal::Invalid(_)
        ),
    }
}
