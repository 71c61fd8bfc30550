//! Playing a sequence through `decide` and `apply`, and the trace a failure report prints.

use jiff::Timestamp;
use proptest::test_runner::TestCaseError;

use super::Subject;
use crate::Ctx;
use crate::actor::Actor;
use crate::fixture::later;
use crate::refusal::Refusal;

/// One played step: what was decided on which state, and the state it left.
#[derive(Debug)]
pub(crate) struct Turn<S: Subject> {
    pub(crate) before: Option<S::State>,
    pub(crate) actor: Actor,
    pub(crate) command: S::Command,
    pub(crate) now: Timestamp,
    pub(crate) result: Result<Vec<S::Event>, Refusal>,
    /// The state passed to `decide`, as it was after the call.
    pub(crate) after_decide: Option<S::State>,
    pub(crate) after: Option<S::State>,
}

/// Decides each step on the state kept so far and applies the events of accepted ones, from
/// the fixture's monday morning on.
pub(crate) fn play<S: Subject>(steps: &[S::Step]) -> Vec<Turn<S>> {
    let (registry, policy) = S::world();
    let mut state: Option<S::State> = None;
    let mut now = later(0);
    let mut turns = Vec::with_capacity(steps.len());
    for step in steps {
        now = S::time(step, now, state.as_ref());
        let command = S::command(step, state.as_ref(), now);
        let actor = S::actor(step, state.as_ref(), &command);
        let before = state.clone();
        let ctx = Ctx {
            actor: &actor,
            now,
            registry,
            policy,
        };
        let result = S::decide(state.as_ref(), command.clone(), ctx);
        let after_decide = state.clone();
        if let Ok(events) = &result {
            for event in events {
                state = S::apply(state, event);
            }
        }
        turns.push(Turn {
            before,
            actor,
            command,
            now,
            result,
            after_decide,
            after: state.clone(),
        });
    }
    turns
}

/// The trace as a reader wants it in a failure report: one line per command.
pub(crate) fn trace<S: Subject>(turns: &[Turn<S>]) -> String {
    let mut out = String::new();
    for (i, turn) in turns.iter().enumerate() {
        let actor = match &turn.actor {
            Actor::Department(code) => code.as_str(),
            Actor::System => "system",
        };
        let outcome = match &turn.result {
            Ok(events) => {
                let events: Vec<String> = events.iter().map(S::show_event).collect();
                format!("=> {}", events.join(", "))
            }
            Err(refusal) => format!("refused: {refusal}"),
        };
        out.push_str(&format!(
            "{i:>3} {} {actor}: {} {outcome}\n",
            turn.now,
            S::show_command(&turn.command)
        ));
    }
    out
}

/// `checked`, with the played trace appended to a failure.
pub(crate) fn explain<S: Subject>(
    turns: &[Turn<S>],
    checked: Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    checked.map_err(|e| TestCaseError::fail(format!("{e}\ntrace:\n{}", trace(turns))))
}

/// Plays `steps` and checks the turns, explaining a failure: the body of every property.
pub(crate) fn holds<S: Subject>(
    steps: &[S::Step],
    check: impl FnOnce(&[Turn<S>]) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let turns = play(steps);
    explain(&turns, check(&turns))
}
