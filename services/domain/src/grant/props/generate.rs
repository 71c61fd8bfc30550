//! Generators: who sends each command, what it asks, how far the clock moves before it, and
//! the sequences of such steps the properties play.
//!
//! `Sender::Expected` (the shared `props::city::Sender`; here `party`) and `Pick::Next` are
//! resolved against the grant's current state when a step is played, and an expiry is drawn
//! relative to the step's `now`, so that random sequences get a grant requested, answered, and
//! past its expiry.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

use crate::actor::Actor;
use crate::codes::DepartmentCode;
use crate::fixture::{STRANGER, UNITS, days, dept};
use crate::grant::*;
use crate::props::city::{self, world};
use crate::registry::Dataset;

/// The party the rules allow to send `command` in `state`: the requester in its own name, the
/// dataset's owner for an answer or a revocation, the hub for an expiry.
pub(super) fn party(state: Option<&GrantState>, command: &GrantCommand) -> Actor {
    match (state, command) {
        (_, GrantCommand::Request(request)) => Actor::Department(request.requester.clone()),
        (_, GrantCommand::Expire) | (None, _) => Actor::System,
        (Some(s), _) => Actor::Department(s.owner.clone()),
    }
}

/// A unit of the registry, or now and then one that is not.
fn code() -> impl Strategy<Value = DepartmentCode> {
    prop_oneof![
        6 => select(&UNITS[..]),
        1 => Just(STRANGER),
    ]
    .prop_map(dept)
}

/// The datasets of the fixture's catalogue.
fn catalogue() -> Vec<&'static Dataset> {
    world().0.datasets().collect()
}

fn field_names(dataset: &Dataset) -> Vec<String> {
    dataset.fields.iter().map(|f| f.name.clone()).collect()
}

/// A request as drawn: complete but for its expiry, `expires_in` seconds after it is sent.
#[derive(Debug, Clone)]
pub(super) struct Ask {
    grant_id: &'static str,
    requester: DepartmentCode,
    dataset: String,
    fields: Vec<String>,
    purpose: &'static str,
    expires_in: i64,
}

impl Ask {
    fn command(&self, now: Timestamp) -> GrantCommand {
        GrantCommand::Request(RequestGrant {
            grant_id: GrantId::new(self.grant_id),
            requester: self.requester.clone(),
            dataset: self.dataset.clone(),
            fields: self.fields.clone(),
            purpose: self.purpose.into(),
            expires_at: now + SignedDuration::from_secs(self.expires_in),
        })
    }
}

/// Any request: of a dataset of the catalogue or not, for its fields or for none, twice the
/// same, or fields it lacks, with or without a purpose, expiring in the past, at once, a second
/// later, within the longest validity, at its very end, or a second or more beyond it.
fn ask() -> impl Strategy<Value = Ask> {
    let dataset = prop_oneof![
        5 => select(catalogue()).prop_map(Some),
        1 => Just(None),
    ];
    let mut pool: Vec<String> = catalogue().into_iter().flat_map(field_names).collect();
    pool.push("salary".into());
    let fields = move |dataset: Option<&'static Dataset>| {
        let any = prop::collection::vec(select(pool.clone()), 0..=3);
        match dataset {
            None => any.boxed(),
            Some(d) => {
                let names = field_names(d);
                let n = names.len();
                prop_oneof![4 => subsequence(names, 1..=n), 1 => any].boxed()
            }
        }
    };
    let longest = days(MAX_VALIDITY_DAYS) * 60;
    let expires_in = prop_oneof![
        1 => -days(2) * 60..=-1,
        1 => Just(0),
        1 => Just(1),
        8 => 1..=longest,
        1 => Just(longest),
        1 => Just(longest + 1),
        1 => longest + 1..=days(400) * 60,
    ];
    dataset.prop_flat_map(move |dataset| {
        let id = dataset.map_or("tax_records".to_owned(), |d| d.id.clone());
        (
            select(&["g1", "g2"][..]),
            code(),
            fields(dataset),
            prop_oneof![6 => Just("joint visits"), 1 => Just(" ")],
            expires_in.clone(),
        )
            .prop_map(
                move |(grant_id, requester, fields, purpose, expires_in)| Ask {
                    grant_id,
                    requester,
                    dataset: id.clone(),
                    fields,
                    purpose,
                    expires_in,
                },
            )
    })
}

/// A request the rules accept when its requester sends it: another department's dataset,
/// some of its fields, a purpose, an expiry mostly weeks ahead.
fn sensible_ask() -> impl Strategy<Value = Ask> {
    select(catalogue()).prop_flat_map(|d| {
        let others: Vec<&str> = UNITS
            .iter()
            .copied()
            .filter(|u| *u != d.owner.as_str())
            .collect();
        let names = field_names(d);
        let n = names.len();
        let expires_in = prop_oneof![4 => 1..=days(60) * 60, 1 => 1..=days(366) * 60];
        (select(others), subsequence(names, 1..=n), expires_in).prop_map(
            move |(requester, fields, expires_in)| Ask {
                grant_id: "g1",
                requester: dept(requester),
                dataset: d.id.clone(),
                fields,
                purpose: "joint visits",
                expires_in,
            },
        )
    })
}

/// A command as drawn.
#[derive(Debug, Clone)]
pub(super) enum Draw {
    Request(Ask),
    Approve,
    Reject,
    Revoke,
    Expire,
}

impl Draw {
    fn command(&self, now: Timestamp) -> GrantCommand {
        match self {
            Draw::Request(ask) => ask.command(now),
            Draw::Approve => GrantCommand::Approve,
            Draw::Reject => GrantCommand::Reject {
                reason: "not necessary".into(),
            },
            Draw::Revoke => GrantCommand::Revoke {
                reason: "case closed".into(),
            },
            Draw::Expire => GrantCommand::Expire,
        }
    }
}

fn draw() -> impl Strategy<Value = Draw> {
    prop_oneof![
        1 => ask().prop_map(Draw::Request),
        3 => Just(Draw::Approve),
        1 => Just(Draw::Reject),
        2 => Just(Draw::Revoke),
        3 => Just(Draw::Expire),
    ]
}

/// What a step asks: a command drawn blind, or the next sensible command for the grant as it
/// is when the step is played: request it (`ask`) if it does not exist; expire it once due;
/// else answer a request (reject if `answer` is 0, else approve), revoke an approved grant (if
/// `answer` is 0; else try to expire it); a settled grant is expired again, in vain.
#[derive(Debug, Clone)]
pub(super) enum Pick {
    Blind(Draw),
    Next { ask: Ask, answer: u8 },
}

impl Pick {
    pub(super) fn command(&self, state: Option<&GrantState>, now: Timestamp) -> GrantCommand {
        let (ask, answer) = match self {
            Pick::Blind(draw) => return draw.command(now),
            Pick::Next { ask, answer } => (ask, *answer),
        };
        let live =
            |s: &GrantState| matches!(s.status, GrantStatus::Requested | GrantStatus::Approved);
        let draw = match state {
            None => Draw::Request(ask.clone()),
            Some(s) if live(s) && now >= s.expires_at => Draw::Expire,
            Some(s) if s.status == GrantStatus::Requested && answer == 0 => Draw::Reject,
            Some(s) if s.status == GrantStatus::Requested => Draw::Approve,
            Some(s) if s.status == GrantStatus::Approved && answer == 0 => Draw::Revoke,
            Some(_) => Draw::Expire,
        };
        draw.command(now)
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        3 => draw().prop_map(Pick::Blind),
        1 => (sensible_ask(), 0u8..4).prop_map(|(ask, answer)| Pick::Next { ask, answer }),
    ]
}

/// How the clock moves before a step: by minutes, hours, days, or weeks to months (so that
/// grants reach their expiry), or now and then to a second around the grant's expiry (never
/// back), to meet its boundary exactly.
#[derive(Debug, Clone, Copy)]
pub(super) enum Advance {
    Minutes(i64),
    ToExpiry(i64),
}

impl Advance {
    pub(super) fn from(self, now: Timestamp, state: Option<&GrantState>) -> Timestamp {
        match (self, state) {
            (Advance::Minutes(minutes), _) => now + SignedDuration::from_mins(minutes),
            (Advance::ToExpiry(seconds), Some(s)) => {
                now.max(s.expires_at + SignedDuration::from_secs(seconds))
            }
            (Advance::ToExpiry(_), None) => now,
        }
    }
}

fn advance() -> impl Strategy<Value = Advance> {
    prop_oneof![
        4 => (0i64..=60).prop_map(Advance::Minutes),
        3 => (60i64..=days(1)).prop_map(Advance::Minutes),
        2 => (days(1)..=days(14)).prop_map(Advance::Minutes),
        1 => (days(14)..=days(120)).prop_map(Advance::Minutes),
        1 => (-1i64..=1).prop_map(Advance::ToExpiry),
    ]
}

/// Who sends what, after the clock moves how.
pub(super) type Step = city::Step<Pick, Advance>;

/// Up to 30 steps; the first is a request (valid or not, mostly in the requester's name).
pub(super) fn steps() -> impl Strategy<Value = Vec<Step>> {
    let first = prop_oneof![ask(), sensible_ask()].prop_map(|ask| Pick::Blind(Draw::Request(ask)));
    city::steps(first, pick(), advance, 30)
}
