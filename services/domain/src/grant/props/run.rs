//! Playing a sequence through `decide` and `apply`, and the trace a failure report prints.

use jiff::Timestamp;
use proptest::test_runner::TestCaseError;

use super::generate::Step;
use super::world;
use crate::actor::Actor;
use crate::fixture::later;
use crate::grant::*;
use crate::refusal::Refusal;

#[derive(Debug)]
pub(super) struct Turn {
    pub(super) before: Option<GrantState>,
    pub(super) actor: Actor,
    pub(super) command: GrantCommand,
    pub(super) now: Timestamp,
    pub(super) result: Result<Vec<GrantEvent>, Refusal>,
    /// The state passed to `decide`, as it was after the call.
    pub(super) after_decide: Option<GrantState>,
    pub(super) after: Option<GrantState>,
}

/// Decides each step on the state kept so far and applies the events of accepted ones.
pub(super) fn play(steps: &[Step]) -> Vec<Turn> {
    let (registry, policy) = world();
    let mut state: Option<GrantState> = None;
    let mut now = later(0);
    let mut turns = Vec::with_capacity(steps.len());
    for step in steps {
        now = step.advance.from(now, state.as_ref());
        let command = step.pick.command(state.as_ref(), now);
        let actor = step.sender.actor(state.as_ref(), &command);
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

/// A command in a few words.
fn show_command(command: &GrantCommand) -> String {
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
fn show_event(event: &GrantEvent) -> String {
    match event {
        GrantEvent::Requested(e) => format!("Requested (owner {})", e.owner),
        GrantEvent::Approved(_) => "Approved".into(),
        GrantEvent::Rejected(_) => "Rejected".into(),
        GrantEvent::Revoked(_) => "Revoked".into(),
        GrantEvent::Expired(_) => "Expired".into(),
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
