//! Playing a sequence through `decide` and `apply`, and the trace a failure report prints.

use jiff::{SignedDuration, Timestamp};
use proptest::test_runner::TestCaseError;

use super::generate::Step;
use super::world;
use crate::actor::Actor;
use crate::care::*;
use crate::fixture::later;
use crate::refusal::Refusal;

#[derive(Debug)]
pub(super) struct Turn {
    pub(super) before: Option<CareState>,
    pub(super) actor: Actor,
    pub(super) command: CareCommand,
    pub(super) now: Timestamp,
    pub(super) result: Result<Vec<CareEvent>, Refusal>,
    /// The state passed to `decide`, as it was after the call.
    pub(super) after_decide: Option<CareState>,
    pub(super) after: Option<CareState>,
}

/// Decides each step on the state kept so far and applies the events of accepted ones.
pub(super) fn play(steps: &[Step]) -> Vec<Turn> {
    let (registry, policy) = world();
    let mut state: Option<CareState> = None;
    let mut now = later(0);
    let mut turns = Vec::with_capacity(steps.len());
    for step in steps {
        now += SignedDuration::from_mins(step.advance);
        let command = step.pick.command(state.as_ref(), now);
        let actor = step.sender.actor();
        let before = state.clone();
        let ctx = Ctx {
            actor: &actor,
            now,
            registry,
            policy,
        };
        let result = decide(state.as_ref(), command.clone(), ctx);
        let after_decide = state.clone();
        if let Ok(events) = &result {
            for event in events {
                state = apply(state, event);
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

/// A command in a few words (never the person).
fn show_command(command: &CareCommand) -> String {
    match command {
        CareCommand::Register(r) => format!(
            "Register {} ({:?} in {}, {}{})",
            r.care_id,
            r.category,
            r.community,
            r.risk_level.as_str(),
            if r.name.trim().is_empty() {
                ", blank name"
            } else {
                ""
            }
        ),
        CareCommand::LogVisit { visited_at, .. } => format!("LogVisit (visited {visited_at})"),
        CareCommand::ChangeRiskLevel { to, .. } => format!("ChangeRiskLevel to {}", to.as_str()),
        CareCommand::Close { .. } => "Close".into(),
    }
}

/// An event in a few words.
fn show_event(event: &CareEvent) -> String {
    match event {
        CareEvent::Registered(e) => format!("Registered ({})", e.risk_level.as_str()),
        CareEvent::VisitLogged(_) => "VisitLogged".into(),
        CareEvent::RiskLevelChanged(e) => {
            format!(
                "RiskLevelChanged ({} -> {})",
                e.from.as_str(),
                e.to.as_str()
            )
        }
        CareEvent::Closed(_) => "Closed".into(),
    }
}

/// The trace as a reader wants it in a failure report: one line per command.
fn trace(turns: &[Turn]) -> String {
    let mut out = String::new();
    for (i, turn) in turns.iter().enumerate() {
        let actor = match &turn.actor {
            Actor::Department(code) => code.as_str(),
            Actor::System => "system",
        };
        let outcome = match &turn.result {
            Ok(events) => {
                let events: Vec<String> = events.iter().map(show_event).collect();
                format!("=> {}", events.join(", "))
            }
            Err(refusal) => format!("refused: {refusal}"),
        };
        out.push_str(&format!(
            "{i:>3} {} {actor}: {} {outcome}\n",
            turn.now,
            show_command(&turn.command)
        ));
    }
    out
}

/// `checked`, with the played trace appended to a failure.
pub(super) fn explain(
    turns: &[Turn],
    checked: Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    checked.map_err(|e| TestCaseError::fail(format!("{e}\ntrace:\n{}", trace(turns))))
}
