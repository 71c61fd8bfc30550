//! Given events, when a command, then events or a refusal.

use jiff::Timestamp;

use super::*;
use crate::actor::Actor;
use crate::codes::{CommunityCode, IdentityNumber};
use crate::fixture::{actor as actor_of, days, later, policy, registry};
use crate::policy::Policy;
use crate::refusal::Refusal;
use crate::registry::Registry;

const ID: &str = "11010519491231002X";

fn register_in(community: &str) -> RegisterCare {
    RegisterCare {
        care_id: CareId::new("k1"),
        name: "张三".into(),
        identity_number: IdentityNumber::parse(ID).expect("identity number"),
        category: CareCategory::ElderlyInHardship,
        community: CommunityCode::parse(community).expect("community code"),
        risk_level: RiskLevel::Medium,
        phone: "13812345678".into(),
        address: "漕溪北路88号".into(),
    }
}

fn register() -> CareCommand {
    CareCommand::Register(register_in("310104001002"))
}

fn visit(visited_at: Timestamp) -> CareCommand {
    CareCommand::LogVisit {
        visited_at,
        visitor: "staff-8".into(),
        notes: "heating works".into(),
    }
}

fn change(to: RiskLevel) -> CareCommand {
    CareCommand::ChangeRiskLevel {
        to,
        reason: "lives alone since october".into(),
    }
}

fn close() -> CareCommand {
    CareCommand::Close {
        reason: "moved to a care home".into(),
    }
}

/// A scenario: the events so far, and the state they fold to.
struct Care {
    events: Vec<CareEvent>,
    registry: Registry,
    policy: Policy,
}

impl Care {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            registry: registry(),
            policy: policy(),
        }
    }

    fn state(&self) -> Option<CareState> {
        self.events.iter().fold(None, apply)
    }

    fn when(
        &self,
        actor: &str,
        command: CareCommand,
        now: Timestamp,
    ) -> Result<Vec<CareEvent>, Refusal> {
        let actor: Actor = actor_of(actor);
        let ctx = Ctx {
            actor: &actor,
            now,
            registry: &self.registry,
            policy: &self.policy,
        };
        decide(self.state().as_ref(), command, ctx)
    }

    fn given(mut self, actor: &str, command: CareCommand, now: Timestamp) -> Self {
        let events = self
            .when(actor, command, now)
            .expect("given command succeeds");
        self.events.extend(events);
        self
    }

    fn registered(self) -> Self {
        self.given(CIVIL_AFFAIRS, register(), later(0))
    }
}

fn forbidden(result: Result<Vec<CareEvent>, Refusal>) {
    assert!(
        matches!(result, Err(Refusal::Forbidden(_))),
        "expected permission denied, got {result:?}"
    );
}

fn illegal(result: Result<Vec<CareEvent>, Refusal>) -> String {
    match result {
        Err(Refusal::Illegal(reason)) => reason,
        other => panic!("expected an illegal transition, got {other:?}"),
    }
}

fn invalid_fields(result: Result<Vec<CareEvent>, Refusal>) -> Vec<String> {
    match result {
        Err(Refusal::Invalid(v)) => v.into_vec().into_iter().map(|v| v.field).collect(),
        other => panic!("expected invalid arguments, got {other:?}"),
    }
}

#[test]
fn a_record_is_registered_visited_reassessed_and_closed() {
    let care = Care::new()
        .registered()
        .given(CIVIL_AFFAIRS, visit(later(50)), later(60))
        .given(CIVIL_AFFAIRS, change(RiskLevel::High), later(70))
        .given(CIVIL_AFFAIRS, close(), later(80));
    let [
        CareEvent::Registered(r),
        CareEvent::VisitLogged(v),
        CareEvent::RiskLevelChanged(c),
        CareEvent::Closed(_),
    ] = care.events.as_slice()
    else {
        panic!("{:?}", care.events)
    };
    assert_eq!((r.name.as_str(), r.identity_number.expose()), ("张三", ID));
    assert_eq!(r.district.as_str(), "310104");
    assert_eq!((v.visited_at, v.logged_at), (later(50), later(60)));
    assert_eq!((c.from, c.to), (RiskLevel::Medium, RiskLevel::High));
    let state = care.state().expect("record exists");
    assert_eq!(
        (state.status, state.risk_level, state.visits, state.events),
        (CareStatus::Closed, RiskLevel::High, 1, 4)
    );
}

#[test]
fn the_state_and_the_events_debug_keep_the_person_out() {
    let care = Care::new().registered();
    let state = care.state().expect("state");
    let cached = toml::to_string(&state).expect("state serialises");
    assert!(
        !cached.contains("张三") && !cached.contains("19491231"),
        "{cached}"
    );
    let back: CareState = toml::from_str(&cached).expect("state deserialises");
    assert_eq!(back, state);
    let shown = format!("{:?}", care.events);
    assert!(
        !shown.contains("张三") && !shown.contains("19491231"),
        "{shown}"
    );
}

#[test]
fn only_civil_affairs_issues_care_commands() {
    let care = Care::new();
    forbidden(care.when("public-security", register(), later(0)));
    forbidden(care.when("system", register(), later(0)));
    let care = care.registered();
    for command in [visit(later(1)), change(RiskLevel::Low), close()] {
        forbidden(care.when("housing", command.clone(), later(2)));
        assert!(care.when(CIVIL_AFFAIRS, command, later(2)).is_ok());
    }
}

#[test]
fn a_registration_names_someone_in_a_known_district_and_happens_once() {
    let care = Care::new();
    let nameless = RegisterCare {
        name: "  ".into(),
        ..register_in("310104001002")
    };
    assert_eq!(
        invalid_fields(care.when(CIVIL_AFFAIRS, CareCommand::Register(nameless), later(0))),
        ["name"]
    );
    let elsewhere = CareCommand::Register(register_in("110101001001"));
    assert_eq!(
        invalid_fields(care.when(CIVIL_AFFAIRS, elsewhere, later(0))),
        ["community_code"]
    );
    let care = care.registered();
    assert_eq!(
        care.when(CIVIL_AFFAIRS, register(), later(1)),
        Err(Refusal::AlreadyExists("care record"))
    );
}

#[test]
fn commands_on_a_missing_record_are_not_found() {
    let care = Care::new();
    assert_eq!(
        care.when(CIVIL_AFFAIRS, close(), later(0)),
        Err(Refusal::NotFound("care record"))
    );
    assert!(
        care.registered()
            .when(CIVIL_AFFAIRS, close(), later(0))
            .is_ok()
    );
}

#[test]
fn a_visit_is_logged_after_it_happened() {
    let care = Care::new().registered();
    assert_eq!(
        invalid_fields(care.when(CIVIL_AFFAIRS, visit(later(61)), later(60))),
        ["visited_at"]
    );
    let care = care.given(CIVIL_AFFAIRS, visit(later(60)), later(60));
    let care = care.given(CIVIL_AFFAIRS, visit(later(10)), later(days(1)));
    assert_eq!(care.state().expect("state").visits, 2);
}

#[test]
fn the_risk_level_changes_to_another_level_only() {
    let care = Care::new().registered();
    let reason = illegal(care.when(CIVIL_AFFAIRS, change(RiskLevel::Medium), later(1)));
    assert!(reason.contains("medium already"), "{reason}");
    let care = care.given(CIVIL_AFFAIRS, change(RiskLevel::Low), later(1));
    assert_eq!(care.state().expect("state").risk_level, RiskLevel::Low);
    illegal(care.when(CIVIL_AFFAIRS, change(RiskLevel::Low), later(2)));
}

#[test]
fn a_closed_record_refuses_everything() {
    let care = Care::new().registered();
    assert!(care.when(CIVIL_AFFAIRS, visit(later(1)), later(2)).is_ok());
    let care = care.given(CIVIL_AFFAIRS, close(), later(3));
    for command in [visit(later(1)), change(RiskLevel::High), close()] {
        let reason = illegal(care.when(CIVIL_AFFAIRS, command, later(4)));
        assert!(reason.contains("closed"), "{reason}");
    }
    assert_eq!(
        care.when(CIVIL_AFFAIRS, register(), later(4)),
        Err(Refusal::AlreadyExists("care record"))
    );
    forbidden(care.when("public-security", close(), later(4)));
}
