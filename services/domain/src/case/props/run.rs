//! Playing a sequence through `decide` and `apply`, and the trace a failure report prints.

use jiff::{SignedDuration, Timestamp};
use proptest::test_runner::TestCaseError;

use super::generate::Step;
use super::{start, world};
use crate::actor::Actor;
use crate::case::*;
use crate::refusal::Refusal;

#[derive(Debug)]
pub(super) struct Turn {
    pub(super) before: Option<CaseState>,
    pub(super) actor: Actor,
    pub(super) command: CaseCommand,
    pub(super) now: Timestamp,
    pub(super) result: Result<Vec<CaseEvent>, Refusal>,
    /// The state passed to `decide`, as it was after the call.
    pub(super) after_decide: Option<CaseState>,
    pub(super) after: Option<CaseState>,
}

/// Decides each step on the state kept so far and applies the events of accepted ones.
pub(super) fn play(steps: &[Step]) -> Vec<Turn> {
    let (registry, policy) = world();
    let mut state: Option<CaseState> = None;
    let mut now = start();
    let mut turns = Vec::with_capacity(steps.len());
    for step in steps {
        now += SignedDuration::from_mins(step.advance);
        let command = step.pick.command(state.as_ref());
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
fn show_command(command: &CaseCommand) -> String {
    match command {
        CaseCommand::Report(r) => {
            let what = match &r.kind {
                CaseKind::GridIncident(i) => format!("{:?} on grid {}", i.category, i.grid),
                CaseKind::PropertyComplaint(c) => {
                    format!("{:?} complaint in {}", c.category, c.district)
                }
            };
            format!("Report {} ({what}) by {}", r.case_id, r.reported_by)
        }
        CaseCommand::Dispatch { department } => format!("Dispatch to {department}"),
        CaseCommand::RequestTransfer { to, .. } => format!("RequestTransfer to {to}"),
        CaseCommand::RejectTransfer { .. } => "RejectTransfer".into(),
        CaseCommand::Resolve { .. } => "Resolve".into(),
        CaseCommand::Rate { rating } => format!("Rate {rating}"),
        other => format!("{other:?}"),
    }
}

/// An event in a few words.
fn show_event(event: &CaseEvent) -> String {
    match event {
        CaseEvent::Reported(e) => format!("Reported (queue {}, {:?})", e.dispatch_unit, e.urgency),
        CaseEvent::Dispatched(e) => format!(
            "Dispatched (to {}, accept by {}, resolve by {})",
            e.department, e.accept_by, e.resolve_by
        ),
        CaseEvent::Accepted(_) => "Accepted".into(),
        CaseEvent::TransferRequested(e) => format!("TransferRequested (to {})", e.to),
        CaseEvent::TransferAccepted(e) => {
            format!(
                "TransferAccepted (to {}, resolve by {})",
                e.to, e.resolve_by
            )
        }
        CaseEvent::TransferRejected(_) => "TransferRejected".into(),
        CaseEvent::Escalated(e) => format!(
            "Escalated (tier {}, {:?} deadline due {})",
            e.tier, e.deadline, e.due
        ),
        CaseEvent::Resolved(_) => "Resolved".into(),
        CaseEvent::Rated(e) => format!("Rated ({})", e.rating),
        CaseEvent::Reopened(e) => format!("Reopened (resolve by {})", e.resolve_by),
        CaseEvent::Closed(_) => "Closed".into(),
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
