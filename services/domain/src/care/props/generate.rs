//! Generators: who sends each command, what it asks, how far the clock moves before it, and
//! the sequences of such steps the properties play.
//!
//! `Sender::Expected` (the shared `props::city::Sender`; here civil affairs) and `Pick::Next`
//! are resolved when a step is played, and a visit's time is drawn relative to the step's
//! `now`, so that random sequences register a record and then live with it.

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use proptest::sample::select;

use crate::care::*;
use crate::codes::{CommunityCode, IdentityNumber};
use crate::fixture::days;
use crate::props::city;

const SURNAMES: [char; 12] = [
    '王', '李', '张', '刘', '陈', '杨', '赵', '黄', '周', '吴', '徐', '孙',
];
const GIVEN: [char; 12] = [
    '伟', '芳', '娜', '秀', '英', '敏', '静', '丽', '强', '磊', '军', '洋',
];

/// A person's name, distinctive enough that finding it in `Debug` output means it leaked:
/// Chinese (nothing else the aggregate prints is), or Latin behind a `Qz` no type name or
/// field has.
fn person() -> impl Strategy<Value = String> {
    let latin = prop::collection::vec(select(&['k', 'w', 'x', 'j', 'v', 'q', 'y', 'h'][..]), 6);
    prop_oneof![
        3 => (select(&SURNAMES[..]), prop::collection::vec(select(&GIVEN[..]), 1..=2))
            .prop_map(|(surname, given)| std::iter::once(surname).chain(given).collect()),
        1 => latin.prop_map(|letters| format!("Qz{}", letters.into_iter().collect::<String>())),
    ]
}

/// A name as a registration gives it: a person's, now and then blank (refused).
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => person(),
        1 => select(&["", " ", "\u{3000}", "\t"][..]).prop_map(String::from),
    ]
}

/// A valid identity number: a region, a birth date, a sequence, and the one check character
/// that `IdentityNumber::parse` accepts.
fn identity_number() -> impl Strategy<Value = IdentityNumber> {
    (
        select(&["110105", "310104", "440106"][..]),
        1930u32..=2020,
        1u32..=12,
        1u32..=28,
        0u32..1000,
    )
        .prop_map(|(region, year, month, day, sequence)| {
            let body = format!("{region}{year:04}{month:02}{day:02}{sequence:03}");
            "0123456789X"
                .chars()
                .find_map(|check| IdentityNumber::parse(&format!("{body}{check}")).ok())
                .expect("one check character fits")
        })
}

/// A community mostly in the registry's one district, now and then in a district it lacks.
fn community() -> impl Strategy<Value = CommunityCode> {
    prop_oneof![
        4 => select(&["310104001002", "310104003001", "310104012005"][..]),
        1 => select(&["110101001001", "310105001001"][..]),
    ]
    .prop_map(|code| CommunityCode::parse(code).expect("community code"))
}

fn category() -> impl Strategy<Value = CareCategory> {
    select(
        &[
            CareCategory::DrugRehabilitation,
            CareCategory::SevereMentalDisorder,
            CareCategory::ElderlyInHardship,
            CareCategory::LeftBehindChild,
        ][..],
    )
}

pub(super) const LEVELS: [RiskLevel; 3] = [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High];

fn level() -> impl Strategy<Value = RiskLevel> {
    select(&LEVELS[..])
}

fn register(name: impl Strategy<Value = String>) -> impl Strategy<Value = RegisterCare> {
    (
        select(&["k1", "k2"][..]),
        name,
        identity_number(),
        category(),
        community(),
        level(),
    )
        .prop_map(
            |(id, name, identity_number, category, community, risk_level)| RegisterCare {
                care_id: CareId::new(id),
                name,
                identity_number,
                category,
                community,
                risk_level,
                phone: String::new(),
                address: String::new(),
            },
        )
}

/// Seconds before the step that a visit took place: mostly in the past (up to a month), at
/// the very second, or (refused) in the future, by a second or by hours.
fn ago() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0..=days(30) * 60,
        1 => Just(0i64),
        1 => Just(-1i64),
        1 => -36_000i64..=-2,
    ]
}

/// A command as drawn: complete but for a visit's time, which depends on when it is sent.
#[derive(Debug, Clone)]
pub(super) enum Draw {
    Register(RegisterCare),
    LogVisit { ago: i64 },
    ChangeRiskLevel(RiskLevel),
    Close,
}

impl Draw {
    fn command(&self, now: Timestamp) -> CareCommand {
        match self {
            Draw::Register(register) => CareCommand::Register(register.clone()),
            Draw::LogVisit { ago } => CareCommand::LogVisit {
                visited_at: now - SignedDuration::from_secs(*ago),
                visitor: "staff-8".into(),
                notes: "heating works".into(),
            },
            Draw::ChangeRiskLevel(to) => CareCommand::ChangeRiskLevel {
                to: *to,
                reason: "lives alone since october".into(),
            },
            Draw::Close => CareCommand::Close {
                reason: "moved to a care home".into(),
            },
        }
    }
}

fn draw() -> impl Strategy<Value = Draw> {
    prop_oneof![
        1 => register(name()).prop_map(Draw::Register),
        5 => ago().prop_map(|ago| Draw::LogVisit { ago }),
        4 => level().prop_map(Draw::ChangeRiskLevel),
        1 => Just(Draw::Close),
    ]
}

/// What a step asks: a command drawn blind, or the next sensible command for the record as it
/// is when the step is played: register it (`register`) if it does not exist; if it is open,
/// by `choice` (0 to 9) log a visit `ago` seconds back, move the risk level towards `to`, or
/// now and then close it; if it is closed, close it again.
#[derive(Debug, Clone)]
pub(super) enum Pick {
    Blind(Draw),
    Next {
        register: RegisterCare,
        choice: u8,
        ago: i64,
        to: RiskLevel,
    },
}

impl Pick {
    pub(super) fn command(&self, state: Option<&CareState>, now: Timestamp) -> CareCommand {
        let (register, choice, ago, to) = match self {
            Pick::Blind(draw) => return draw.command(now),
            Pick::Next {
                register,
                choice,
                ago,
                to,
            } => (register, *choice, *ago, *to),
        };
        let draw = match state {
            None => Draw::Register(register.clone()),
            Some(s) if s.status == CareStatus::Closed => Draw::Close,
            Some(_) if choice < 5 => Draw::LogVisit { ago: ago.max(0) },
            Some(s) if choice < 9 => {
                let other = LEVELS.iter().copied().find(|l| *l != s.risk_level);
                let to = if to == s.risk_level { other } else { Some(to) };
                Draw::ChangeRiskLevel(to.expect("three levels"))
            }
            Some(_) => Draw::Close,
        };
        draw.command(now)
    }
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        3 => draw().prop_map(Pick::Blind),
        1 => (register(person()), 0u8..10, ago(), level()).prop_map(|(register, choice, ago, to)| {
            let register = RegisterCare {
                community: CommunityCode::parse("310104001002").expect("community code"),
                ..register
            };
            Pick::Next {
                register,
                choice,
                ago,
                to,
            }
        }),
    ]
}

/// Minutes the clock moves before a step: minutes, hours, days, or weeks to months.
pub(super) fn advance() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => 0i64..=60,
        3 => 60i64..=days(1),
        2 => days(1)..=days(14),
        1 => days(14)..=days(120),
    ]
}

/// Who sends what, after how many minutes.
pub(super) type Step = city::Step<Pick, i64>;

/// Up to 30 steps; the first is a registration (valid or not, mostly by civil affairs).
pub(super) fn steps() -> impl Strategy<Value = Vec<Step>> {
    let first = register(name()).prop_map(|register| Pick::Blind(Draw::Register(register)));
    city::steps(first, pick(), advance, 30)
}
