//! The property-test harness the case, care and grant aggregates share.
//!
//! A property draws a random sequence of steps (each aggregate's `generate`), plays it through
//! the aggregate's `decide` and `apply` (`run`), and checks the turns it went through; a failure
//! prints the played trace, and shrinks to a minimal sequence since a sequence is data.
//!
//! An aggregate takes part by implementing `Subject`: its types, `decide` and `apply`, how a
//! drawn step becomes a time, a command and an actor, and how its commands and events read in a
//! trace. `properties!` gives it the properties every aggregate must have (`checks`) next to its
//! own, and `check_reach` its generators' coverage test; its props folder keeps only its
//! generators and its own checks.
//!
//! Failure persistence is off: a failing seed would otherwise be written to a
//! `proptest-regressions` directory in the source tree. Turn a failure into a regular test in
//! the aggregate's `tests.rs` instead.

mod checks;
pub(crate) mod city;
mod reach;
mod run;

use std::fmt::Debug;

use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::Config;

pub(crate) use checks::{
    check_determinism, check_every_decision, check_fold, check_refusals, check_who_asks,
};
pub(crate) use reach::{check_reach, each};
pub(crate) use run::{Turn, holds, trace};

use crate::Ctx;
use crate::actor::Actor;
use crate::policy::Policy;
use crate::refusal::Refusal;
use crate::registry::Registry;

/// An aggregate as the harness plays it. The methods are the aggregate's own functions or one
/// line over its types; what its rules say beyond the shared checks stays in its props folder.
pub(crate) trait Subject: Debug + Sized {
    /// What a refusal calls the aggregate: `NotFound(NAME)`, `AlreadyExists(NAME)`.
    const NAME: &'static str;
    type State: Clone + Debug + PartialEq;
    type Command: Clone + Debug;
    type Event: Clone + Debug + PartialEq;
    type Id: Debug + PartialEq;
    /// A drawn step: what to send, by whom, after how long, resolved when it is played.
    type Step: Debug;

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
        ctx: Ctx<'_>,
    ) -> Result<Vec<Self::Event>, Refusal>;
    fn apply(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State>;
    /// Whether the actor may act on the aggregate at all (checked before anything else).
    fn authorise(
        state: Option<&Self::State>,
        command: &Self::Command,
        actor: &Actor,
    ) -> Result<(), Refusal>;

    /// The registry and policy the sequences play in, built once (a static per aggregate).
    fn world() -> &'static (Registry, Policy);
    /// The same registry and policy built anew: decisions depend on their content, not on
    /// which copy they are given.
    fn fresh_world() -> (Registry, Policy);

    /// When `step` is played, given the time of the step before and the state kept so far.
    fn time(step: &Self::Step, before: Timestamp, state: Option<&Self::State>) -> Timestamp;
    fn command(step: &Self::Step, state: Option<&Self::State>, now: Timestamp) -> Self::Command;
    fn actor(step: &Self::Step, state: Option<&Self::State>, command: &Self::Command) -> Actor;

    /// The id a creating command names; `None` for every other command.
    fn creates(command: &Self::Command) -> Option<&Self::Id>;
    /// The id a creation event carries; `None` for every other event.
    fn created(event: &Self::Event) -> Option<&Self::Id>;
    fn event_id(event: &Self::Event) -> &Self::Id;
    fn id(state: &Self::State) -> &Self::Id;
    /// How many events the state has applied.
    fn events(state: &Self::State) -> u64;
    /// The status's name, as the generators' coverage test counts it.
    fn status(state: &Self::State) -> &'static str;

    /// Whether the rules refuse the turn's command in its state with `refusal`, beyond what
    /// every aggregate does (not found before the creation, already exists after it).
    fn refusal_fits(turn: &Turn<Self>, refusal: &Refusal) -> bool;

    /// A command in a few words, for a trace; never a person's name or identity number.
    fn show_command(command: &Self::Command) -> String;
    /// An event in a few words, for a trace; never a person's name or identity number.
    fn show_event(event: &Self::Event) -> String;
}

/// 256 sequences a property, and no seed written to the source tree.
pub(crate) fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// A sequence of up to `most` steps: `first` (the creation, valid or not), then steps drawn
/// from `step`.
pub(crate) fn sequence<T: Clone + Debug>(
    first: impl Strategy<Value = T>,
    step: impl Strategy<Value = T>,
    most: usize,
) -> impl Strategy<Value = Vec<T>> {
    (first, prop::collection::vec(step, 0..most)).prop_map(|(first, rest)| {
        let mut steps = vec![first];
        steps.extend(rest);
        steps
    })
}

/// The properties of one aggregate: the three every aggregate has, then its own, each a
/// proptest that plays a sequence drawn from `$steps` and checks the turns.
///
/// ```ignore
/// properties! { Care, steps();
///     closed_is_terminal => check_closed_is_terminal,
/// }
/// ```
macro_rules! properties {
    ($subject:ty, $steps:expr; $($name:ident => $check:expr),* $(,)?) => {
        ::proptest::proptest! {
            #![proptest_config($crate::props::config())]

            #[test]
            fn the_state_kept_step_by_step_is_the_fold_of_the_accepted_events(steps in $steps) {
                $crate::props::holds::<$subject>(&steps, $crate::props::check_fold)?;
            }

            #[test]
            fn a_refusal_changes_nothing_and_an_acceptance_yields_events(steps in $steps) {
                $crate::props::holds::<$subject>(&steps, $crate::props::check_refusals)?;
            }

            #[test]
            fn decisions_are_deterministic(steps in $steps) {
                $crate::props::holds::<$subject>(&steps, $crate::props::check_determinism)?;
            }

            #[test]
            fn a_caller_without_a_role_gets_one_answer_whatever_the_state(steps in $steps) {
                $crate::props::holds::<$subject>(&steps, $crate::props::check_who_asks)?;
            }

            $(
                #[test]
                fn $name(steps in $steps) {
                    $crate::props::holds::<$subject>(&steps, $check)?;
                }
            )*
        }
    };
}
pub(crate) use properties;
