//! Property tests of the care aggregate: random sequences of commands on one record, each sent
//! by a random actor (every unit of the fixture, a code the registry does not know, the hub) at
//! a time that moves forward by minutes to months, checked against the rules `decide`
//! documents: civil affairs alone acts, a closed record stays closed, visits are counted, and
//! nothing prints the person.
//!
//! The shared harness (`crate::props`) plays the sequences, prints the trace of a failure and
//! checks what every aggregate must hold. Here: `generate` draws the sequences, `show` words
//! them for a trace (never the person), `invariants` checks the states they go through and
//! `decisions` the decisions they meet; this module holds the record as the harness sees it,
//! the properties and the generators' coverage test.

mod decisions;
mod generate;
mod invariants;
mod show;

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::actor::Actor;
use crate::fixture::dept;
use crate::policy::Policy;
use crate::props::city::{self, every_actor, world};
use crate::props::{self, Subject, check_reach, each};
use crate::refusal::Refusal;
use crate::registry::Registry;
use decisions::{check_authority, check_closed_is_terminal, check_secrets};
use generate::{Step, steps};
use invariants::check_states;

type Turn = props::Turn<Care>;

/// The care record as the harness plays it.
#[derive(Debug)]
struct Care;

impl Subject for Care {
    const NAME: &'static str = "care record";
    type State = CareState;
    type Command = CareCommand;
    type Event = CareEvent;
    type Id = CareId;
    type Step = Step;

    fn decide(
        state: Option<&CareState>,
        command: CareCommand,
        ctx: Ctx<'_>,
    ) -> Result<Vec<CareEvent>, Refusal> {
        decide(state, command, ctx)
    }

    fn apply(state: Option<CareState>, event: &CareEvent) -> Option<CareState> {
        apply(state, event)
    }

    fn authorise(
        state: Option<&CareState>,
        command: &CareCommand,
        actor: &Actor,
    ) -> Result<(), Refusal> {
        authorise(state, command, actor)
    }

    fn world() -> &'static (Registry, Policy) {
        world()
    }

    fn fresh_world() -> (Registry, Policy) {
        city::fresh_world()
    }

    fn time(step: &Step, before: Timestamp, _: Option<&CareState>) -> Timestamp {
        before + SignedDuration::from_mins(step.advance)
    }

    fn command(step: &Step, state: Option<&CareState>, now: Timestamp) -> CareCommand {
        step.pick.command(state, now)
    }

    /// Civil affairs is the one party the rules name, whatever the command.
    fn actor(step: &Step, _: Option<&CareState>, _: &CareCommand) -> Actor {
        step.sender.actor(|| Actor::Department(dept(CIVIL_AFFAIRS)))
    }

    fn creates(command: &CareCommand) -> Option<&CareId> {
        match command {
            CareCommand::Register(register) => Some(&register.care_id),
            _ => None,
        }
    }

    fn created(event: &CareEvent) -> Option<&CareId> {
        match event {
            CareEvent::Registered(e) => Some(&e.care_id),
            _ => None,
        }
    }

    fn event_id(event: &CareEvent) -> &CareId {
        event.care_id()
    }

    fn id(state: &CareState) -> &CareId {
        &state.id
    }

    fn events(state: &CareState) -> u64 {
        state.events
    }

    fn status(state: &CareState) -> &'static str {
        state.status.as_str()
    }

    fn refusal_fits(turn: &Turn, refusal: &Refusal) -> bool {
        invariants::refusal_fits(turn, refusal)
    }

    fn show_command(command: &CareCommand) -> String {
        show::command(command)
    }

    fn show_event(event: &CareEvent) -> String {
        show::event(event)
    }
}

props::properties! { Care, steps();
    no_sequence_reaches_an_illegal_state => check_states,
    closed_is_terminal => check_closed_is_terminal,
    only_civil_affairs_may_act => check_authority,
    no_command_or_event_prints_the_person => check_secrets,
}

/// The generators are worth something only if they reach the whole lifecycle: every event,
/// status, risk level, refusal kind and actor occurs.
#[test]
fn the_generators_reach_the_whole_lifecycle() {
    let mut wanted = each(
        "event",
        &["Registered", "VisitLogged", "RiskLevelChanged", "Closed"],
    );
    wanted.extend(each("status", &["open", "closed"]));
    wanted.extend(each("risk", &["low", "medium", "high"]));
    wanted.extend(every_actor().iter().map(|a| format!("actor {a:?}")));
    let risk = |turn: &Turn| -> Vec<String> {
        let level = turn.after.as_ref().map(|s| s.risk_level.as_str());
        level.map(|l| format!("risk {l}")).into_iter().collect()
    };
    check_reach::<Care>(steps(), risk, wanted);
}
