//! Whether the generators are worth something: a property holds only of the sequences they
//! draw, so those must reach the whole lifecycle.

use std::collections::BTreeMap;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use super::Subject;
use super::run::{Turn, play};

/// How many sequences are drawn, as many as a property plays.
const SEQUENCES: u32 = 256;

/// Draws 256 sequences as the properties draw them (from a fixed seed), plays them, and asserts
/// that each of `wanted` and every kind of refusal occurs. Counted are statuses reached, status
/// changes (`"requested -> approved"`), actors, event and refusal variants, and what `also`
/// names in a turn.
pub(crate) fn check_reach<S: Subject>(
    steps: impl Strategy<Value = Vec<S::Step>>,
    also: impl Fn(&Turn<S>) -> Vec<String>,
    mut wanted: Vec<String>,
) {
    let mut runner = TestRunner::deterministic();
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..SEQUENCES {
        let sequence = steps.new_tree(&mut runner).expect("a sequence").current();
        for turn in play::<S>(&sequence) {
            let mut saw = |what: String| *seen.entry(what).or_default() += 1;
            if let Some(s) = &turn.after {
                saw(format!("status {}", S::status(s)));
                if let Some(b) = turn
                    .before
                    .as_ref()
                    .filter(|b| S::status(b) != S::status(s))
                {
                    saw(format!("{} -> {}", S::status(b), S::status(s)));
                }
            }
            saw(format!("actor {:?}", turn.actor));
            match &turn.result {
                Ok(events) => {
                    for event in events {
                        saw(format!("event {}", variant(&format!("{event:?}"))));
                    }
                }
                Err(refusal) => saw(format!("refusal {}", variant(&format!("{refusal:?}")))),
            }
            also(&turn).into_iter().for_each(saw);
        }
    }
    let refusals = [
        "Invalid",
        "NotFound",
        "AlreadyExists",
        "Illegal",
        "Forbidden",
    ];
    wanted.extend(each("refusal", &refusals));
    eprintln!("reached over {SEQUENCES} {} sequences: {seen:#?}", S::NAME);
    let missing: Vec<&String> = wanted.iter().filter(|w| !seen.contains_key(*w)).collect();
    assert!(
        missing.is_empty(),
        "never reached: {missing:?}; seen {seen:?}"
    );
}

/// `"{what} {name}"` for each name, as `check_reach` counts them.
pub(crate) fn each(what: &str, names: &[&str]) -> Vec<String> {
    names.iter().map(|name| format!("{what} {name}")).collect()
}

/// The variant's name in a `Debug` output: what comes before the first `(`, `{` or space.
fn variant(shown: &str) -> &str {
    shown.split(['(', '{', ' ']).next().unwrap_or_default()
}
