//! Checks of the states a sequence goes through: the kept state is the fold of the accepted
//! events, every state is legal and reached by a legal transition, and a refusal changes
//! nothing.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::generate::LEVELS;
use super::run::Turn;
use super::world;
use crate::care::*;
use crate::refusal::Refusal;

// ---------------------------------------------------------------------------------------------
// 1. The state kept step by step is the fold of the accepted events.

pub(super) fn check_fold(turns: &[Turn]) -> Result<(), TestCaseError> {
    let mut events: Vec<CareEvent> = Vec::new();
    for turn in turns {
        if let Ok(new) = &turn.result {
            if let CareCommand::Register(register) = &turn.command {
                prop_assert!(
                    matches!(new.as_slice(), [CareEvent::Registered(e)] if e.care_id == register.care_id),
                    "a registration yields one Registered event with the command's id: {new:?}"
                );
            }
            events.extend(new.iter().cloned());
        }
        let folded = events.iter().fold(None, apply);
        prop_assert_eq!(&turn.after, &folded, "kept state differs from the fold");
        match &turn.after {
            None => prop_assert!(events.is_empty(), "events accepted but no record"),
            Some(s) => {
                prop_assert_eq!(s.events, events.len() as u64, "event count");
                prop_assert!(
                    matches!(events.first(), Some(CareEvent::Registered(_))),
                    "the first event is the registration"
                );
                let registrations = events
                    .iter()
                    .filter(|e| matches!(e, CareEvent::Registered(_)))
                    .count();
                prop_assert_eq!(registrations, 1, "a record is registered once");
                for event in &events {
                    prop_assert_eq!(event.care_id(), &s.id);
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 2. No sequence reaches an illegal state or makes an illegal transition.

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
// 3. A refusal changes nothing; an acceptance yields events that all apply.

pub(super) fn check_refusals(turns: &[Turn]) -> Result<(), TestCaseError> {
    for turn in turns {
        prop_assert_eq!(&turn.before, &turn.after_decide, "decide changed its input");
        match &turn.result {
            Err(refusal) => {
                prop_assert_eq!(&turn.after, &turn.before, "a refusal changed the state");
                let forbidden = matches!(refusal, Refusal::Forbidden(_));
                let closed = turn
                    .before
                    .as_ref()
                    .is_some_and(|s| s.status == CareStatus::Closed);
                let expected = match (&turn.before, &turn.command) {
                    (None, CareCommand::Register(_)) => matches!(refusal, Refusal::Invalid(_)),
                    (None, _) => refusal == &Refusal::NotFound("care record"),
                    (Some(_), CareCommand::Register(_)) => {
                        refusal == &Refusal::AlreadyExists("care record")
                    }
                    _ if closed => matches!(refusal, Refusal::Illegal(_)),
                    (Some(_), CareCommand::LogVisit { .. }) => {
                        matches!(refusal, Refusal::Invalid(_))
                    }
                    (Some(_), _) => matches!(refusal, Refusal::Illegal(_)),
                };
                prop_assert!(
                    forbidden || expected,
                    "{:?} refused with {refusal:?}",
                    turn.command
                );
            }
            Ok(events) => {
                prop_assert!(!events.is_empty(), "accepted without events");
                let count = turn.before.as_ref().map_or(0, |s| s.events);
                let after = turn.after.as_ref().map_or(0, |s| s.events);
                prop_assert_eq!(
                    after,
                    count + events.len() as u64,
                    "an event did not fit the state"
                );
            }
        }
    }
    Ok(())
}
