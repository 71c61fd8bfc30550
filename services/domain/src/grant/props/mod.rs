//! Property tests of the grant aggregate: random sequences of commands on one grant, each sent
//! by a random actor (every unit of the fixture, a code the registry does not know, the hub) at
//! a time that moves forward by minutes to months, so that grants cross their expiry, checked
//! against the rules `decide` documents: a department requests in its own name, the dataset's
//! owner alone answers and revokes, the hub alone expires, and settled grants stay settled.
//!
//! The shared harness (`crate::props`) plays the sequences, prints the trace of a failure and
//! checks what every aggregate must hold. Here: `generate` draws the sequences, `show` words
//! them for a trace, `invariants` checks the states they go through and `decisions` the
//! decisions they meet; this module holds the grant as the harness sees it, the properties and
//! the generators' coverage test.

mod decisions;
mod generate;
mod invariants;
mod show;

use jiff::Timestamp;

use super::*;
use crate::actor::Actor;
use crate::policy::Policy;
use crate::props::city::{self, every_actor, world};
use crate::props::{self, Subject, check_reach, each};
use crate::refusal::Refusal;
use crate::registry::Registry;
use decisions::{check_authority, check_settled_is_terminal};
use generate::{Step, party, steps};
use invariants::check_states;

type Turn = props::Turn<Grant>;

/// The grant as the harness plays it.
#[derive(Debug)]
struct Grant;

impl Subject for Grant {
    const NAME: &'static str = "grant";
    type State = GrantState;
    type Command = GrantCommand;
    type Event = GrantEvent;
    type Id = GrantId;
    type Step = Step;

    fn decide(
        state: Option<&GrantState>,
        command: GrantCommand,
        ctx: Ctx<'_>,
    ) -> Result<Vec<GrantEvent>, Refusal> {
        decide(state, command, ctx)
    }

    fn apply(state: Option<GrantState>, event: &GrantEvent) -> Option<GrantState> {
        apply(state, event)
    }

    fn authorise(
        state: Option<&GrantState>,
        command: &GrantCommand,
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

    fn time(step: &Step, before: Timestamp, state: Option<&GrantState>) -> Timestamp {
        step.advance.from(before, state)
    }

    fn command(step: &Step, state: Option<&GrantState>, now: Timestamp) -> GrantCommand {
        step.pick.command(state, now)
    }

    fn actor(step: &Step, state: Option<&GrantState>, command: &GrantCommand) -> Actor {
        step.sender.actor(|| party(state, command))
    }

    fn creates(command: &GrantCommand) -> Option<&GrantId> {
        match command {
            GrantCommand::Request(request) => Some(&request.grant_id),
            _ => None,
        }
    }

    fn created(event: &GrantEvent) -> Option<&GrantId> {
        match event {
            GrantEvent::Requested(e) => Some(&e.grant_id),
            _ => None,
        }
    }

    fn event_id(event: &GrantEvent) -> &GrantId {
        event.grant_id()
    }

    fn id(state: &GrantState) -> &GrantId {
        &state.id
    }

    fn events(state: &GrantState) -> u64 {
        state.events
    }

    fn status(state: &GrantState) -> &'static str {
        state.status.as_str()
    }

    fn refusal_fits(turn: &Turn, refusal: &Refusal) -> bool {
        invariants::refusal_fits(turn, refusal)
    }

    fn show_command(command: &GrantCommand) -> String {
        show::command(command)
    }

    fn show_event(event: &GrantEvent) -> String {
        show::event(event)
    }
}

props::properties! { Grant, steps();
    no_sequence_reaches_an_illegal_state => check_states,
    rejected_revoked_and_expired_are_terminal => check_settled_is_terminal,
    only_the_party_the_rules_name_may_act => check_authority,
}

/// The generators are worth something only if they reach the whole lifecycle: every event,
/// status, transition, refusal kind and actor occurs.
#[test]
fn the_generators_reach_the_whole_lifecycle() {
    let mut wanted = each(
        "event",
        &["Requested", "Approved", "Rejected", "Revoked", "Expired"],
    );
    let statuses = ["requested", "approved", "rejected", "revoked", "expired"];
    wanted.extend(each("status", &statuses));
    wanted.extend(
        [
            "requested -> approved",
            "requested -> rejected",
            "requested -> expired",
            "approved -> revoked",
            "approved -> expired",
        ]
        .map(String::from),
    );
    wanted.extend(every_actor().iter().map(|a| format!("actor {a:?}")));
    check_reach::<Grant>(steps(), |_| Vec::new(), wanted);
}
