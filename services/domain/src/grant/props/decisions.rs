//! Checks of the decisions a sequence meets: settled grants stay settled, and only the party
//! the rules name may act (and is not refused its due). (That decisions are deterministic the
//! shared harness checks.)

use jiff::SignedDuration;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::generate::party;
use super::{Grant, Turn, every_actor, world};
use crate::actor::Actor;
use crate::fixture::{UNITS, dept};
use crate::grant::*;
use crate::props::check_every_decision;
use crate::refusal::Refusal;

// ---------------------------------------------------------------------------------------------
// Rejected, revoked and expired are terminal.

fn settled(s: &GrantState) -> bool {
    matches!(
        s.status,
        GrantStatus::Rejected | GrantStatus::Revoked | GrantStatus::Expired
    )
}

/// Every command: a request in every unit's name of each dataset, and every answer.
fn every_command(now: jiff::Timestamp) -> Vec<GrantCommand> {
    let (registry, _) = world();
    let mut commands = vec![
        GrantCommand::Approve,
        GrantCommand::Reject { reason: "x".into() },
        GrantCommand::Revoke { reason: "x".into() },
        GrantCommand::Expire,
    ];
    for dataset in registry.datasets() {
        for requester in UNITS {
            commands.push(GrantCommand::Request(RequestGrant {
                grant_id: GrantId::new("g9"),
                requester: dept(requester),
                dataset: dataset.id.clone(),
                fields: dataset.fields.iter().map(|f| f.name.clone()).collect(),
                purpose: "x".into(),
                expires_at: now + SignedDuration::from_hours(24),
            }));
        }
    }
    commands
}

pub(super) fn check_settled_is_terminal(turns: &[Turn]) -> Result<(), TestCaseError> {
    for turn in turns {
        let Some(s) = &turn.after else { continue };
        let was_settled = turn.before.as_ref().is_some_and(settled);
        if was_settled {
            prop_assert!(turn.result.is_err(), "accepted on a settled grant");
        }
        if !settled(s) || was_settled {
            continue;
        }
        // Just settled: everything, by everyone, now and a year later, is refused.
        let times = [turn.now, turn.now + SignedDuration::from_hours(400 * 24)];
        let refused = |actor: &Actor, command: &GrantCommand, result: Result<_, _>| {
            prop_assert!(
                result.is_err(),
                "{command:?} by {actor:?} accepted when {}: {result:?}",
                s.status.as_str()
            );
            Ok(())
        };
        check_every_decision::<Grant>(s, &times, &every_actor(), every_command, refused)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Only the party the rules name may act, and it is not refused its due.

/// Whether a request follows the rules: a known requester, another department's dataset of the
/// catalogue, some of its fields once each, a purpose, an expiry within the longest validity.
fn valid_request(r: &RequestGrant, now: jiff::Timestamp) -> bool {
    let (registry, _) = world();
    let Some(dataset) = registry.dataset(&r.dataset) else {
        return false;
    };
    let fields: std::collections::BTreeSet<&String> = r.fields.iter().collect();
    let longest = SignedDuration::from_hours(MAX_VALIDITY_DAYS * 24);
    registry.unit(&r.requester).is_some()
        && dataset.owner != r.requester
        && !r.fields.is_empty()
        && fields.len() == r.fields.len()
        && r.fields.iter().all(|f| dataset.field(f).is_some())
        && !r.purpose.trim().is_empty()
        && now < r.expires_at
        && r.expires_at <= now + longest
}

pub(super) fn check_authority(turns: &[Turn]) -> Result<(), TestCaseError> {
    use GrantStatus::*;
    for turn in turns {
        let party = party(turn.before.as_ref(), &turn.command);
        let forbidden = matches!(turn.result, Err(Refusal::Forbidden(_)));
        if turn.result.is_ok() {
            prop_assert_eq!(&turn.actor, &party, "{:?} accepted", turn.command);
        }
        // Authority is asked first, except whether the grant exists (its id is the hub's).
        let exists = turn.before.is_some();
        let asks_authority = matches!(turn.command, GrantCommand::Request(_)) != exists;
        if asks_authority {
            prop_assert_eq!(
                forbidden,
                turn.actor != party,
                "{:?} by {:?} (the party is {:?}): {:?}",
                turn.command,
                turn.actor,
                party,
                turn.result
            );
        } else {
            prop_assert!(!forbidden, "{:?}", turn.result);
        }
        // The named party, when the state allows the command, is not refused.
        let Some(s) = &turn.before else {
            if let GrantCommand::Request(r) = &turn.command
                && turn.actor == party
            {
                let valid = valid_request(r, turn.now);
                prop_assert_eq!(turn.result.is_ok(), valid, "{:?}", turn.result);
            }
            continue;
        };
        let due = turn.now >= s.expires_at;
        let allowed = match (&turn.command, s.status) {
            (GrantCommand::Approve, Requested) => !due,
            (GrantCommand::Reject { .. }, Requested) => true,
            (GrantCommand::Revoke { .. }, Approved) => true,
            (GrantCommand::Expire, Requested | Approved) => due,
            _ => false,
        };
        if allowed && turn.actor == party {
            prop_assert!(turn.result.is_ok(), "{:?}", turn.result);
        }
        if !allowed && !matches!(turn.command, GrantCommand::Request(_)) {
            prop_assert!(turn.result.is_err(), "{:?} accepted", turn.command);
        }
    }
    Ok(())
}
