//! Checks of the decisions a sequence meets: closed is terminal, only civil affairs may act,
//! and nothing prints the person. (That decisions are deterministic the shared harness
//! checks.)

use jiff::SignedDuration;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::generate::LEVELS;
use super::{Care, Turn, every_actor, world};
use crate::actor::Actor;
use crate::care::*;
use crate::codes::{CommunityCode, IdentityNumber};
use crate::fixture::dept;
use crate::props::{check_every_decision, trace};
use crate::refusal::Refusal;

// ---------------------------------------------------------------------------------------------
// Closed is terminal.

/// Every command, in every variant the generators use.
fn every_command(now: jiff::Timestamp) -> Vec<CareCommand> {
    let mut commands = vec![
        CareCommand::Register(RegisterCare {
            care_id: CareId::new("k9"),
            name: "赵六".into(),
            identity_number: IdentityNumber::parse("11010519491231002X").expect("number"),
            category: CareCategory::LeftBehindChild,
            community: CommunityCode::parse("310104001002").expect("community code"),
            risk_level: RiskLevel::Low,
            phone: "13812345678".into(),
            address: "徐汇区漕溪北路88号".into(),
        }),
        CareCommand::Close { reason: "x".into() },
    ];
    for ago in [0, 60] {
        commands.push(CareCommand::LogVisit {
            visited_at: now - SignedDuration::from_mins(ago),
            visitor: "staff-8".into(),
            notes: "x".into(),
        });
    }
    commands.extend(LEVELS.map(|to| CareCommand::ChangeRiskLevel {
        to,
        reason: "x".into(),
    }));
    commands
}

pub(super) fn check_closed_is_terminal(turns: &[Turn]) -> Result<(), TestCaseError> {
    for turn in turns {
        let Some(s) = &turn.after else { continue };
        let was_closed = turn
            .before
            .as_ref()
            .is_some_and(|b| b.status == CareStatus::Closed);
        if was_closed {
            prop_assert!(turn.result.is_err(), "accepted on a closed record");
        }
        if s.status != CareStatus::Closed || was_closed {
            continue;
        }
        // Just closed: everything, by everyone, now and months later, is refused.
        let times = [turn.now, turn.now + SignedDuration::from_hours(120 * 24)];
        let refused = |actor: &Actor, command: &CareCommand, result: Result<_, _>| {
            let register = matches!(command, CareCommand::Register(_));
            let expected = match &result {
                Err(Refusal::Forbidden(_)) => !actor.is(&dept(CIVIL_AFFAIRS)),
                Err(Refusal::AlreadyExists(_)) => register,
                Err(Refusal::Illegal(_)) => !register,
                _ => false,
            };
            prop_assert!(expected, "{command:?} by {actor:?} when closed: {result:?}");
            Ok(())
        };
        check_every_decision::<Care>(s, &times, &every_actor(), every_command, refused)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Only civil affairs may act, and it is refused nothing the record's state allows.

pub(super) fn check_authority(turns: &[Turn]) -> Result<(), TestCaseError> {
    let (registry, _) = world();
    let civil_affairs = Actor::Department(dept(CIVIL_AFFAIRS));
    for turn in turns {
        // Civil affairs is accepted exactly when the record's state allows the command.
        let open = |s: &CareState| s.status == CareStatus::Open;
        let allowed = match (&turn.before, &turn.command) {
            (None, CareCommand::Register(r)) => {
                let district = registry.district(&r.community.division());
                !r.name.trim().is_empty() && district.is_some()
            }
            (Some(s), CareCommand::LogVisit { visited_at, .. }) => {
                open(s) && *visited_at <= turn.now
            }
            (Some(s), CareCommand::ChangeRiskLevel { to, .. }) => open(s) && *to != s.risk_level,
            (Some(s), CareCommand::Close { .. }) => open(s),
            _ => false,
        };
        if turn.actor == civil_affairs {
            prop_assert_eq!(turn.result.is_ok(), allowed, "{:?}", turn.result);
        }
        let forbidden = matches!(turn.result, Err(Refusal::Forbidden(_)));
        // Who asks is checked first: whatever the record's state, a stranger learns nothing.
        prop_assert_eq!(
            forbidden,
            turn.actor != civil_affairs,
            "{:?} by {:?}: {:?}",
            turn.command,
            turn.actor,
            turn.result
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Nothing prints the person.

/// What must never be printed: each registered person's name and identity number (whole, and
/// its birth date and sequence, which no code or time the aggregate prints contains).
fn secrets(turns: &[Turn]) -> Vec<String> {
    let mut secrets = Vec::new();
    for turn in turns {
        if let CareCommand::Register(r) = &turn.command {
            if !r.name.trim().is_empty() {
                secrets.push(r.name.clone());
            }
            let number = r.identity_number.expose();
            secrets.push(number.to_owned());
            secrets.push(number[6..17].to_owned());
        }
    }
    secrets
}

pub(super) fn check_secrets(turns: &[Turn]) -> Result<(), TestCaseError> {
    let secrets = secrets(turns);
    let leaks = |what: &str, shown: &str| -> Result<(), TestCaseError> {
        for secret in &secrets {
            prop_assert!(
                !shown.contains(secret.as_str()),
                "{what} shows {secret:?}: {shown}"
            );
        }
        Ok(())
    };
    for turn in turns {
        leaks("a command", &format!("{:?}", turn.command))?;
        match &turn.result {
            Ok(events) => {
                for event in events {
                    leaks("an event", &format!("{event:?}"))?;
                }
            }
            Err(refusal) => leaks("a refusal", &format!("{refusal:?} / {refusal}"))?,
        }
        leaks("a state", &format!("{:?}", turn.after))?;
    }
    leaks("the whole trace", &format!("{turns:?}"))?;
    leaks("the trace a failure prints", &trace(turns))
}
