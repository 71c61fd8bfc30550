//! Property tests of the case aggregate: random sequences of commands on one case, each sent
//! by a random actor at a time that moves forward by random steps, checked against the
//! lifecycle's rules (those `decide` documents).
//!
//! The shared harness (`crate::props`) plays the sequences, prints the trace of a failure and
//! checks what every aggregate must hold. Here: `generate` draws the sequences, `show` words
//! them for a trace, `invariants` checks the states they go through and `decisions` the
//! decisions they meet; this module holds the fixture world, the case as the harness sees it,
//! the properties and the generators' coverage test.

mod decisions;
mod generate;
mod invariants;
mod show;

use std::sync::OnceLock;

use jiff::{SignedDuration, Timestamp};

use super::tests::{policy, registry};
use super::*;
use crate::actor::Actor;
use crate::policy::{Policy, TOP_TIER};
use crate::props::{self, Subject, check_reach, each};
use crate::refusal::Refusal;
use crate::registry::Registry;
use decisions::{check_authority, check_closed_is_terminal, check_escalation};
use generate::{Step, steps};
use invariants::check_states;

type Turn = props::Turn<Case>;

// ---------------------------------------------------------------------------------------------
// The world: the case tests' registry (with grids) and policy, built once.

/// Every unit of the fixture registry: two dispatch units, then three departments.
const UNITS: [&str; 5] = [
    "dcc-310104",
    "dcc-310105",
    "urban-management",
    "housing",
    "civil-affairs",
];

/// A well-formed department code that is not in the registry.
const STRANGER: &str = "water-board";

fn world() -> &'static (Registry, Policy) {
    static WORLD: OnceLock<(Registry, Policy)> = OnceLock::new();
    WORLD.get_or_init(Case::fresh_world)
}

// ---------------------------------------------------------------------------------------------
// The case as the harness plays it.

#[derive(Debug)]
struct Case;

impl Subject for Case {
    const NAME: &'static str = "case";
    type State = CaseState;
    type Command = CaseCommand;
    type Event = CaseEvent;
    type Id = CaseId;
    type Step = Step;

    fn decide(
        state: Option<&CaseState>,
        command: CaseCommand,
        ctx: Ctx<'_>,
    ) -> Result<Vec<CaseEvent>, Refusal> {
        decide(state, command, ctx)
    }

    fn apply(state: Option<CaseState>, event: &CaseEvent) -> Option<CaseState> {
        apply(state, event)
    }

    fn authorise(
        state: Option<&CaseState>,
        command: &CaseCommand,
        actor: &Actor,
    ) -> Result<(), Refusal> {
        authorise(state, command, actor)
    }

    fn world() -> &'static (Registry, Policy) {
        world()
    }

    fn fresh_world() -> (Registry, Policy) {
        (registry(), policy())
    }

    fn time(step: &Step, before: Timestamp, _: Option<&CaseState>) -> Timestamp {
        before + SignedDuration::from_mins(step.advance)
    }

    fn command(step: &Step, state: Option<&CaseState>, _: Timestamp) -> CaseCommand {
        step.pick.command(state)
    }

    fn actor(step: &Step, state: Option<&CaseState>, command: &CaseCommand) -> Actor {
        step.sender.actor(state, command)
    }

    fn creates(command: &CaseCommand) -> Option<&CaseId> {
        match command {
            CaseCommand::Report(report) => Some(&report.case_id),
            _ => None,
        }
    }

    fn created(event: &CaseEvent) -> Option<&CaseId> {
        match event {
            CaseEvent::Reported(e) => Some(&e.case_id),
            _ => None,
        }
    }

    fn event_id(event: &CaseEvent) -> &CaseId {
        event.case_id()
    }

    fn id(state: &CaseState) -> &CaseId {
        &state.id
    }

    fn events(state: &CaseState) -> u64 {
        state.events
    }

    fn status(state: &CaseState) -> &'static str {
        state.status.as_str()
    }

    fn refusal_fits(turn: &Turn, refusal: &Refusal) -> bool {
        invariants::refusal_fits(turn, refusal)
    }

    fn show_command(command: &CaseCommand) -> String {
        show::command(command)
    }

    fn show_event(event: &CaseEvent) -> String {
        show::event(event)
    }
}

// ---------------------------------------------------------------------------------------------
// The properties.

props::properties! { Case, steps();
    no_sequence_reaches_an_illegal_state => check_states,
    closed_is_terminal => check_closed_is_terminal,
    escalation_is_by_the_hub_once_per_tier_of_each_breach => check_escalation,
    only_the_party_the_rules_name_may_act => check_authority,
}

/// The generators are worth something only if they reach the whole lifecycle: every event,
/// status, refusal kind and escalation tier of both deadlines occurs.
#[test]
fn the_generators_reach_the_whole_lifecycle() {
    let mut wanted = each(
        "event",
        &[
            "Reported",
            "Dispatched",
            "Accepted",
            "TransferRequested",
            "TransferAccepted",
            "TransferRejected",
            "Escalated",
            "Resolved",
            "Rated",
            "Reopened",
            "Closed",
        ],
    );
    let statuses = [
        "reported",
        "dispatched",
        "accepted",
        "resolved",
        "rated",
        "closed",
    ];
    wanted.extend(each("status", &statuses));
    for tier in 1..=TOP_TIER {
        for deadline in ["Accept", "Resolve"] {
            wanted.push(format!("tier {tier} {deadline}"));
        }
    }
    let tiers = |turn: &Turn| -> Vec<String> {
        let events = turn.result.as_deref().unwrap_or_default();
        let escalations = events.iter().filter_map(|event| match event {
            CaseEvent::Escalated(e) => Some(format!("tier {} {:?}", e.tier, e.deadline)),
            _ => None,
        });
        escalations.collect()
    };
    check_reach::<Case>(steps(), tiers, wanted);
}
