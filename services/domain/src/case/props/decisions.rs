//! Checks of the decisions a sequence meets: closed is terminal, escalation follows its
//! tiers, and only the party the rules name may act. (That decisions are deterministic the
//! shared harness checks.)

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::generate::party;
use super::{Case, STRANGER, Turn, UNITS, world};
use crate::actor::Actor;
use crate::case::tests::{dept, incident, report_by};
use crate::case::*;
use crate::policy::TOP_TIER;
use crate::props::check_every_decision;
use crate::refusal::Refusal;

// ---------------------------------------------------------------------------------------------
// Closed is terminal.

/// Every command, in every variant the generators use.
fn every_command() -> Vec<CaseCommand> {
    let codes = || UNITS.iter().chain([&STRANGER]).map(|c| dept(c));
    let mut commands = vec![
        report_by(
            "urban-management",
            incident("310104001001001", IncidentCategory::FireHazard),
        ),
        CaseCommand::Accept,
        CaseCommand::AcceptTransfer,
        CaseCommand::RejectTransfer { reason: "x".into() },
        CaseCommand::Escalate,
        CaseCommand::Resolve {
            outcome: "x".into(),
        },
        CaseCommand::Close,
    ];
    commands.extend(codes().map(|department| CaseCommand::Dispatch { department }));
    commands.extend(codes().map(|to| CaseCommand::RequestTransfer {
        to,
        reason: "x".into(),
    }));
    commands.extend((0..=6).map(|rating| CaseCommand::Rate { rating }));
    commands
}

fn every_actor() -> Vec<Actor> {
    UNITS
        .iter()
        .map(|c| Actor::Department(dept(c)))
        .chain([Actor::System])
        .collect()
}

pub(super) fn check_closed_is_terminal(turns: &[Turn]) -> Result<(), TestCaseError> {
    let mut closed = false;
    for turn in turns {
        if closed {
            prop_assert!(
                turn.result.is_err(),
                "{:?} by {:?} accepted on a closed case: {:?}",
                turn.command,
                turn.actor,
                turn.result
            );
        }
        let now_closed = turn
            .after
            .as_ref()
            .is_some_and(|s| s.status == CaseStatus::Closed);
        prop_assert_eq!(
            now_closed,
            closed || (turn.result.is_ok() && matches!(turn.command, CaseCommand::Close)),
            "closed other than by Close, or reopened"
        );
        if now_closed
            && !closed
            && let Some(s) = &turn.after
        {
            // Everything, by everyone, now and a month later, is refused.
            let times = [turn.now, turn.now + SignedDuration::from_hours(30 * 24)];
            let refused = |actor: &Actor, command: &CaseCommand, result: Result<_, _>| {
                prop_assert!(
                    result.is_err(),
                    "{command:?} by {actor:?} accepted on a closed case: {result:?}"
                );
                Ok(())
            };
            check_every_decision::<Case>(s, &times, &every_actor(), |_| every_command(), refused)?;
        }
        closed = now_closed;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Escalation: by the hub only, once per tier per breach, never early, never skipped when due.

pub(super) fn check_escalation(turns: &[Turn]) -> Result<(), TestCaseError> {
    let (_, policy) = world();
    // Tiers escalated since the running deadline last (re)started.
    let mut epoch: Vec<u8> = Vec::new();
    // Every breach escalated so far: (deadline, due) and its tiers, across restarts too.
    let mut breaches: Vec<((DeadlineKind, Timestamp), Vec<u8>)> = Vec::new();
    for turn in turns {
        let is_escalate = matches!(turn.command, CaseCommand::Escalate);
        if is_escalate && turn.actor != Actor::System && turn.before.is_some() {
            prop_assert!(
                matches!(turn.result, Err(Refusal::Forbidden(_))),
                "escalated by {:?}: {:?}",
                turn.actor,
                turn.result
            );
        }
        // Liveness: when the next tier of the running deadline is due, the hub may escalate.
        if is_escalate
            && turn.actor == Actor::System
            && let Some(s) = &turn.before
            && let Some((_, due)) = s.running_deadline()
            && s.escalation_tier < TOP_TIER
            && policy.tier_at(due, s.escalation_tier + 1) <= turn.now
        {
            prop_assert!(
                turn.result.is_ok(),
                "tier {} was due at {} but escalating at {} was refused: {:?}",
                s.escalation_tier + 1,
                policy.tier_at(due, s.escalation_tier + 1),
                turn.now,
                turn.result
            );
        }
        let Ok(events) = &turn.result else { continue };
        for event in events {
            match event {
                CaseEvent::Escalated(e) => {
                    prop_assert!(is_escalate, "escalated by {:?}", turn.command);
                    prop_assert_eq!(&turn.actor, &Actor::System);
                    let before = turn.before.as_ref().expect("an escalated case exists");
                    prop_assert_eq!(
                        before.running_deadline(),
                        Some((e.deadline, e.due)),
                        "escalated a deadline that is not running"
                    );
                    prop_assert_eq!(&e.holder, &before.holder);
                    prop_assert!(e.tier >= 1 && e.tier <= TOP_TIER, "tier {}", e.tier);
                    prop_assert!(
                        policy.tier_at(e.due, e.tier) <= e.escalated_at,
                        "tier {} escalated at {} before it was due",
                        e.tier,
                        e.escalated_at
                    );
                    prop_assert_eq!(e.escalated_at, turn.now);
                    epoch.push(e.tier);
                    let expected: Vec<u8> = (1..=epoch.len() as u8).collect();
                    prop_assert_eq!(&epoch, &expected, "tiers within one running deadline");
                    let key = (e.deadline, e.due);
                    match breaches.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, tiers)) => tiers.push(e.tier),
                        None => breaches.push((key, vec![e.tier])),
                    }
                    let tiers = &breaches.iter().find(|(k, _)| *k == key).expect("kept").1;
                    prop_assert!(
                        tiers.windows(2).all(|w| w[0] < w[1]),
                        "breach {:?} escalated to tiers {:?}",
                        key,
                        tiers
                    );
                }
                CaseEvent::Dispatched(_)
                | CaseEvent::Accepted(_)
                | CaseEvent::TransferAccepted(_)
                | CaseEvent::Reopened(_) => epoch.clear(),
                _ => {}
            }
        }
        if let Some(s) = &turn.after {
            prop_assert_eq!(
                s.escalation_tier,
                epoch.last().copied().unwrap_or(0),
                "the state's tier is the last escalated since the deadline restarted"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Only the party the rules name may act.

pub(super) fn check_authority(turns: &[Turn]) -> Result<(), TestCaseError> {
    for turn in turns {
        let Some(before) = &turn.before else { continue };
        let party = party(Some(before), &turn.command);
        let answers_transfer = matches!(
            turn.command,
            CaseCommand::AcceptTransfer | CaseCommand::RejectTransfer { .. }
        );
        if matches!(turn.command, CaseCommand::Report(_)) {
            continue;
        }
        if turn.actor != party {
            if answers_transfer && before.pending_transfer.is_none() {
                // Nothing to answer: refused as illegal before anyone's authority is asked.
                prop_assert!(
                    matches!(turn.result, Err(Refusal::Illegal(_))),
                    "{:?}",
                    turn.result
                );
            } else {
                prop_assert!(
                    matches!(turn.result, Err(Refusal::Forbidden(_))),
                    "{:?} by {:?} (not {:?}): {:?}",
                    turn.command,
                    turn.actor,
                    party,
                    turn.result
                );
            }
        }
    }
    for turn in turns {
        if turn.result.is_ok() {
            prop_assert_eq!(
                &turn.actor,
                &party(turn.before.as_ref(), &turn.command),
                "{:?} accepted",
                turn.command
            );
        }
    }
    Ok(())
}
