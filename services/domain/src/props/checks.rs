//! The checks every aggregate's sequences pass, whatever its rules: the kept state is the fold
//! of the accepted events, a refusal changes nothing, and decisions are deterministic; and a
//! helper of the checks that a settled aggregate stays settled.

use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{Subject, Turn};
use crate::Ctx;
use crate::actor::Actor;
use crate::refusal::Refusal;

// ---------------------------------------------------------------------------------------------
// The state kept step by step is the fold of the accepted events.

pub(crate) fn check_fold<S: Subject>(turns: &[Turn<S>]) -> Result<(), TestCaseError> {
    let mut events: Vec<S::Event> = Vec::new();
    for turn in turns {
        if let Ok(new) = &turn.result {
            if let Some(id) = S::creates(&turn.command) {
                prop_assert!(
                    matches!(new.as_slice(), [e] if S::created(e) == Some(id)),
                    "a creation yields one creation event with the command's id: {new:?}"
                );
            }
            events.extend(new.iter().cloned());
        }
        let folded = events.iter().fold(None, S::apply);
        prop_assert_eq!(&turn.after, &folded, "kept state differs from the fold");
        match &turn.after {
            None => prop_assert!(events.is_empty(), "events accepted but no {}", S::NAME),
            Some(s) => {
                prop_assert_eq!(S::events(s), events.len() as u64, "event count");
                prop_assert!(
                    events.first().and_then(S::created).is_some(),
                    "the first event is the creation"
                );
                let creations = events.iter().filter(|e| S::created(e).is_some()).count();
                prop_assert_eq!(creations, 1, "a {} is created once", S::NAME);
                for event in &events {
                    prop_assert_eq!(S::event_id(event), S::id(s));
                }
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A refusal changes nothing; an acceptance yields events that all apply.

pub(crate) fn check_refusals<S: Subject>(turns: &[Turn<S>]) -> Result<(), TestCaseError> {
    for turn in turns {
        prop_assert_eq!(&turn.before, &turn.after_decide, "decide changed its input");
        match &turn.result {
            Err(refusal) => {
                prop_assert_eq!(&turn.after, &turn.before, "a refusal changed the state");
                // Any aggregate: nothing but the creation finds one that does not exist, and
                // a second creation finds it exists; its rules say which refusals fit the rest
                // (and may allow others here, where who asks is checked first).
                let exists = turn.before.is_some();
                let fits = match (exists, S::creates(&turn.command).is_some()) {
                    (false, false) => *refusal == Refusal::NotFound(S::NAME),
                    (true, true) => *refusal == Refusal::AlreadyExists(S::NAME),
                    _ => false,
                };
                prop_assert!(
                    fits || S::refusal_fits(turn, refusal),
                    "{:?} refused with {refusal:?}",
                    turn.command
                );
            }
            Ok(events) => {
                prop_assert!(!events.is_empty(), "accepted without events");
                let count = turn.before.as_ref().map_or(0, S::events);
                let after = turn.after.as_ref().map_or(0, S::events);
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

// ---------------------------------------------------------------------------------------------
// Decisions are deterministic: the same command on the same state, twice, on the refolded
// state, and with a registry and policy built anew, is decided as it was when played.

pub(crate) fn check_determinism<S: Subject>(turns: &[Turn<S>]) -> Result<(), TestCaseError> {
    let (registry, policy) = S::world();
    let (fresh_registry, fresh_policy) = S::fresh_world();
    let mut events: Vec<S::Event> = Vec::new();
    for turn in turns {
        let folded = events.iter().fold(None, S::apply);
        let again = |state: Option<&S::State>, registry, policy| {
            let ctx = Ctx {
                actor: &turn.actor,
                now: turn.now,
                registry,
                policy,
            };
            S::decide(state, turn.command.clone(), ctx)
        };
        let once = again(turn.before.as_ref(), registry, policy);
        let twice = again(turn.before.as_ref(), registry, policy);
        prop_assert_eq!(&once, &twice);
        prop_assert_eq!(&once, &turn.result);
        let rebuilt = again(folded.as_ref(), &fresh_registry, &fresh_policy);
        prop_assert_eq!(&rebuilt, &turn.result, "on the refolded state");
        if let Ok(new) = &turn.result {
            events.extend(new.iter().cloned());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// A helper of the aggregates' own checks that a settled state stays settled.

/// Decides each of `commands` (drawn for the time) by each of `actors` on `state`, at each of
/// `times`, and checks each outcome.
pub(crate) fn check_every_decision<S: Subject>(
    state: &S::State,
    times: &[Timestamp],
    actors: &[Actor],
    commands: impl Fn(Timestamp) -> Vec<S::Command>,
    check: impl Fn(&Actor, &S::Command, Result<Vec<S::Event>, Refusal>) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let (registry, policy) = S::world();
    for &now in times {
        for actor in actors {
            for command in commands(now) {
                let ctx = Ctx {
                    actor,
                    now,
                    registry,
                    policy,
                };
                let result = S::decide(Some(state), command.clone(), ctx);
                check(actor, &command, result)?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Who asks is answered alike whatever the aggregate: its existence, version and state.

/// For every command and actor of the sequence, `authorise` in any state the sequence went
/// through (and before the aggregate existed) either lets the actor on or gives one refusal,
/// the same in every state: a caller without a role learns nothing from it.
pub(crate) fn check_who_asks<S: Subject>(turns: &[Turn<S>]) -> Result<(), TestCaseError> {
    let mut states: Vec<Option<&S::State>> = vec![None];
    states.extend(turns.iter().map(|t| t.after.as_ref()));
    for turn in turns {
        let mut refusals = states
            .iter()
            .filter_map(|state| S::authorise(*state, &turn.command, &turn.actor).err());
        if let Some(first) = refusals.next() {
            prop_assert!(
                matches!(first, Refusal::Forbidden(_)),
                "who asks is refused as forbidden: {first:?}"
            );
            for other in refusals {
                prop_assert_eq!(&other, &first, "the refusal depends on the state");
            }
        }
    }
    Ok(())
}
