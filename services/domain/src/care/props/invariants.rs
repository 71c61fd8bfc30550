//! Checks of the states a sequence goes through: every state is legal and reached by a legal
//! transition, and a refusal is of the kind the rules give. (That the kept state is the fold
//! of the accepted events, and that a refusal changes nothing, the shared harness checks.)

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::generate::LEVELS;
use super::{Turn, world};
use crate::care::*;
use crate::refusal::Refusal;

// ---------------------------------------------------------------------------------------------
// No sequence reaches an illegal state or makes an illegal transition.

/// The lifecycle's edges (and staying put): registered open, closed for good.
fn legal_transition(from: Option<CareStatus>, to: Option<CareStatus>) -> bool {
    use CareStatus::*;
    from == to || matches!((from, to), (None, Some(Open)) | (Some(Open), Some(Closed)))
}

/// Each event is what its command asked, by civil affairs, at the step's time.
fn check_event(turn: &Turn, event: &CareEvent) -> Result<(), TestCaseError> {
    let (registry, _) = world();
    let by = |code: &crate::codes::DepartmentCode| code.as_str() == CIVIL_AFFAIRS;
    match (event, &turn.command) {
        (CareEvent::Registered(e), CareCommand::Register(r)) => {
            prop_assert!(turn.before.is_none(), "registered twice");
            prop_assert!(by(&e.registered_by) && e.registered_at == turn.now);
            prop_assert_eq!(&e.district, &r.community.division());
            prop_assert!(registry.district(&e.district).is_some(), "unknown district");
            prop_assert!(!e.name.trim().is_empty(), "registered without a name");
            prop_assert!(e.name == r.name && e.identity_number == r.identity_number);
            prop_assert!(e.category == r.category && e.risk_level == r.risk_level);
            prop_assert_eq!(&e.community, &r.community);
        }
        (CareEvent::VisitLogged(e), CareCommand::LogVisit { visited_at, .. }) => {
            prop_assert!(by(&e.logged_by) && e.logged_at == turn.now);
            prop_assert_eq!(e.visited_at, *visited_at);
            prop_assert!(
                e.visited_at <= e.logged_at,
                "a visit logged before it happened"
            );
        }
        (CareEvent::RiskLevelChanged(e), CareCommand::ChangeRiskLevel { to, .. }) => {
            prop_assert!(by(&e.changed_by) && e.changed_at == turn.now);
            let before = turn.before.as_ref().map(|s| s.risk_level);
            prop_assert_eq!(Some(e.from), before, "changed from another level");
            prop_assert!(e.to == *to && e.from != e.to, "{:?} -> {:?}", e.from, e.to);
        }
        (CareEvent::Closed(e), CareCommand::Close { .. }) => {
            prop_assert!(by(&e.closed_by) && e.closed_at == turn.now);
        }
        (event, command) => prop_assert!(false, "{command:?} yielded {event:?}"),
    }
    Ok(())
}

pub(super) fn check_states(turns: &[Turn]) -> Result<(), TestCaseError> {
    let (registry, _) = world();
    let (mut visits, mut level, mut closed) = (0u32, None, false);
    for turn in turns {
        for event in turn.result.as_deref().unwrap_or_default() {
            check_event(turn, event)?;
            match event {
                CareEvent::Registered(e) => level = Some(e.risk_level),
                CareEvent::VisitLogged(_) => visits += 1,
                CareEvent::RiskLevelChanged(e) => level = Some(e.to),
                CareEvent::Closed(_) => closed = true,
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
        prop_assert_eq!(
            s.visits,
            visits,
            "every visit logged is counted, and only those"
        );
        prop_assert_eq!(Some(s.risk_level), level, "the risk level is the last set");
        prop_assert!(LEVELS.contains(&s.risk_level));
        prop_assert_eq!(
            s.status == CareStatus::Closed,
            closed,
            "closed iff a Closed event"
        );
        prop_assert!(
            registry.district(&s.community.division()).is_some(),
            "a record in a district the registry lacks"
        );
        if let Some(before) = &turn.before {
            prop_assert_eq!(&before.id, &s.id);
            prop_assert_eq!(before.category, s.category);
            prop_assert_eq!(&before.community, &s.community);
            prop_assert!(s.visits >= before.visits && s.events >= before.events);
            if before.status == CareStatus::Closed {
                prop_assert_eq!(before, s, "a closed record changed");
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A refusal is of the kind the rules give (beyond not found and already exists, which the
// shared check asks of every aggregate).

/// Whether a care record refuses the turn's command with `refusal`: anyone but civil affairs
/// as forbidden, whatever the state (who asks is checked first); else an invalid registration
/// of a new record, anything on a closed record as illegal, a visit as invalid (it lies ahead)
/// and a risk level or a closing as illegal.
pub(super) fn refusal_fits(turn: &Turn, refusal: &Refusal) -> bool {
    if matches!(refusal, Refusal::Forbidden(_)) {
        return true;
    }
    let closed = turn
        .before
        .as_ref()
        .is_some_and(|s| s.status == CareStatus::Closed);
    match (&turn.before, &turn.command) {
        (None, CareCommand::Register(_)) => matches!(refusal, Refusal::Invalid(_)),
        (None, _) | (Some(_), CareCommand::Register(_)) => false,
        _ if closed => matches!(refusal, Refusal::Illegal(_)),
        (Some(_), CareCommand::LogVisit { .. }) => matches!(refusal, Refusal::Invalid(_)),
        (Some(_), _) => matches!(refusal, Refusal::Illegal(_)),
    }
}
