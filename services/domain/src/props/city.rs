//! The fixture city the care and grant properties play in (the case properties have a city of
//! their own, with grids): its registry and policy, everyone who may send a command, and the
//! steps of a sequence there: who sends what, after how long.

use std::fmt::Debug;
use std::sync::OnceLock;

use proptest::prelude::*;

use super::sequence;
use crate::actor::Actor;
use crate::fixture::{STRANGER, UNITS, dept, policy, registry};
use crate::policy::Policy;
use crate::registry::Registry;

/// The fixture registry and policy, built once for every sequence.
pub(crate) fn world() -> &'static (Registry, Policy) {
    static WORLD: OnceLock<(Registry, Policy)> = OnceLock::new();
    WORLD.get_or_init(fresh_world)
}

pub(crate) fn fresh_world() -> (Registry, Policy) {
    (registry(), policy())
}

/// Every actor: each unit, a code the registry does not know, the hub.
pub(crate) fn every_actor() -> Vec<Actor> {
    UNITS
        .iter()
        .chain([&STRANGER])
        .map(|c| Actor::Department(dept(c)))
        .chain([Actor::System])
        .collect()
}

/// Who sends a command: any unit of the registry, a well-formed code the registry does not
/// know, the hub itself, or (`Expected`) the party the rules name for the command, resolved
/// when the step is played so that sequences get past the creation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Sender {
    Expected,
    Unit(usize),
    Stranger,
    System,
}

impl Sender {
    /// The actor, `expected` being the party the rules name.
    pub(crate) fn actor(self, expected: impl FnOnce() -> Actor) -> Actor {
        match self {
            Sender::Expected => expected(),
            Sender::Unit(i) => Actor::Department(dept(UNITS[i])),
            Sender::Stranger => Actor::Department(dept(STRANGER)),
            Sender::System => Actor::System,
        }
    }
}

/// Who sends a command: the party the rules name, a unit, a stranger or the hub, weighted
/// `expected`, `unit`, 1 and 1.
fn sender(expected: u32, unit: u32) -> impl Strategy<Value = Sender> {
    prop_oneof![
        expected => Just(Sender::Expected),
        unit => (0..UNITS.len()).prop_map(Sender::Unit),
        1 => Just(Sender::Stranger),
        1 => Just(Sender::System),
    ]
}

/// A drawn step: who sends the command `pick` draws, after the clock moves by `advance`.
#[derive(Debug, Clone)]
pub(crate) struct Step<Pick, Advance> {
    pub(crate) sender: Sender,
    pub(crate) pick: Pick,
    pub(crate) advance: Advance,
}

fn step<P: Clone + Debug, A: Clone + Debug>(
    sender: impl Strategy<Value = Sender>,
    pick: impl Strategy<Value = P>,
    advance: impl Strategy<Value = A>,
) -> impl Strategy<Value = Step<P, A>> {
    (sender, pick, advance).prop_map(|(sender, pick, advance)| Step {
        sender,
        pick,
        advance,
    })
}

/// Up to `most` steps: the creation (`first`: valid or not, almost always sent by the party
/// the rules name), then steps drawn from `pick`, mostly sent by that party.
pub(crate) fn steps<P: Clone + Debug, A: Clone + Debug, D: Strategy<Value = A>>(
    first: impl Strategy<Value = P>,
    pick: impl Strategy<Value = P>,
    advance: impl Fn() -> D,
    most: usize,
) -> impl Strategy<Value = Vec<Step<P, A>>> {
    let first = step(sender(8, 1), first, advance());
    sequence(first, step(sender(3, 2), pick, advance()), most)
}
