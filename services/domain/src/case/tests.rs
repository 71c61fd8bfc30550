//! Given events, when a command, then events or a refusal.

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::actor::Actor;
use crate::calendar::Calendar;
use crate::codes::{CreditCode, DivisionCode, GridCode};
use crate::policy::Policy;
use crate::refusal::Refusal;
use crate::registry::{Registry, RegistryData};

pub(super) fn registry() -> Registry {
    let data: RegistryData = toml::from_str(
        r#"
        [[units]]
        code = "dcc-310104"
        name = "xuhui command centre"
        kind = "dispatch_unit"
        [[units]]
        code = "dcc-310105"
        name = "changning command centre"
        kind = "dispatch_unit"
        [[units]]
        code = "urban-management"
        name = "urban management"
        kind = "department"
        [[units]]
        code = "housing"
        name = "housing"
        kind = "department"
        [[units]]
        code = "civil-affairs"
        name = "civil affairs"
        kind = "department"
        [[districts]]
        code = "310104"
        name = "xuhui"
        command_centre = "dcc-310104"
        grids = [{ code = "310104001001001", name = "g1" }]
        [[districts]]
        code = "310105"
        name = "changning"
        command_centre = "dcc-310105"
        "#,
    )
    .expect("fixture parses");
    Registry::new(data).expect("fixture is consistent")
}

pub(super) fn policy() -> Policy {
    Policy::with_defaults(Calendar::weekdays(jiff::tz::TimeZone::fixed(
        jiff::tz::offset(8),
    )))
}

pub(super) fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department code")
}

/// Monday 2026-11-23 10:00 in Shanghai.
pub(super) const MONDAY: &str = "2026-11-23T02:00:00Z";

fn at(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn later(minutes: i64) -> Timestamp {
    at(MONDAY) + SignedDuration::from_mins(minutes)
}

pub(super) fn report_by(department: &str, kind: CaseKind) -> CaseCommand {
    CaseCommand::Report(ReportCase {
        case_id: CaseId::new("c1"),
        kind,
        description: "blocked fire exit".into(),
        reporter: Reporter::GridWorker { id: "gw-17".into() },
        channel: ReportChannel::GridPatrol,
        reported_by: dept(department),
    })
}

pub(super) fn incident(grid: &str, category: IncidentCategory) -> CaseKind {
    CaseKind::GridIncident(GridIncident {
        grid: GridCode::parse(grid).expect("grid code"),
        category,
        location: None,
    })
}

/// A scenario: the events so far, and the state they fold to.
struct Case {
    events: Vec<CaseEvent>,
    registry: Registry,
    policy: Policy,
}

impl Case {
    fn new() -> Self {
        Self {
            events: Vec::new(),
            registry: registry(),
            policy: policy(),
        }
    }

    fn state(&self) -> Option<CaseState> {
        self.events.iter().fold(None, apply)
    }

    /// When `actor` sends `command` at `now`: the events, or the refusal.
    fn when(
        &self,
        actor: &Actor,
        command: CaseCommand,
        now: Timestamp,
    ) -> Result<Vec<CaseEvent>, Refusal> {
        let ctx = Ctx {
            actor,
            now,
            registry: &self.registry,
            policy: &self.policy,
        };
        decide(self.state().as_ref(), command, ctx)
    }

    /// Given: `command` succeeded.
    fn given(mut self, actor: &str, command: CaseCommand, now: Timestamp) -> Self {
        let actor = if actor == "system" {
            Actor::System
        } else {
            Actor::Department(dept(actor))
        };
        let events = self
            .when(&actor, command, now)
            .expect("given command succeeds");
        self.events.extend(events);
        self
    }

    fn reported(self) -> Self {
        self.given(
            "urban-management",
            report_by(
                "urban-management",
                incident("310104001001001", IncidentCategory::FireHazard),
            ),
            later(0),
        )
    }

    fn dispatched(self) -> Self {
        self.reported().given(
            "dcc-310104",
            CaseCommand::Dispatch {
                department: dept("urban-management"),
            },
            later(5),
        )
    }

    fn accepted(self) -> Self {
        self.dispatched()
            .given("urban-management", CaseCommand::Accept, later(10))
    }

    fn resolved(self) -> Self {
        self.accepted().given(
            "urban-management",
            CaseCommand::Resolve {
                outcome: "exit cleared".into(),
            },
            later(60),
        )
    }
}

fn by(code: &str) -> Actor {
    Actor::Department(dept(code))
}

fn illegal(result: Result<Vec<CaseEvent>, Refusal>) -> String {
    match result {
        Err(Refusal::Illegal(reason)) => reason,
        other => panic!("expected an illegal transition, got {other:?}"),
    }
}

fn forbidden(result: Result<Vec<CaseEvent>, Refusal>) {
    assert!(
        matches!(result, Err(Refusal::Forbidden(_))),
        "expected permission denied, got {result:?}"
    );
}

#[test]
fn a_report_goes_to_its_districts_command_centre_with_the_categorys_urgency() {
    let case = Case::new().reported();
    let [CaseEvent::Reported(reported)] = case.events.as_slice() else {
        panic!("{:?}", case.events)
    };
    assert_eq!(reported.dispatch_unit.as_str(), "dcc-310104");
    assert_eq!(reported.urgency, Urgency::Urgent);
    let state = case.state().expect("case exists");
    assert_eq!(
        (state.status, state.holder.as_str(), state.events),
        (CaseStatus::Reported, "dcc-310104", 1)
    );
}

#[test]
fn a_report_is_made_in_ones_own_name_of_known_places_and_only_once() {
    let case = Case::new();
    let kind = incident("310104001001001", IncidentCategory::Dispute);
    forbidden(case.when(
        &by("housing"),
        report_by("urban-management", kind.clone()),
        later(0),
    ));
    let unknown_grid = incident("310104009009009", IncidentCategory::Dispute);
    let Err(Refusal::Invalid(v)) = case.when(
        &by("urban-management"),
        report_by("urban-management", unknown_grid),
        later(0),
    ) else {
        panic!("unknown grid accepted")
    };
    assert_eq!(v.as_slice()[0].field, "grid_incident.grid_code");
    let complaint = CaseKind::PropertyComplaint(PropertyComplaint {
        company: CreditCode::parse("91350100M000100Y43").expect("credit code"),
        compound: "garden estate".into(),
        category: ComplaintCategory::Fees,
        district: DivisionCode::parse("110101").expect("division"),
    });
    let Err(Refusal::Invalid(v)) =
        case.when(&by("housing"), report_by("housing", complaint), later(0))
    else {
        panic!("unknown district accepted")
    };
    assert_eq!(v.as_slice()[0].field, "property_complaint.district_code");

    let case = case.reported();
    let again = case.when(
        &by("urban-management"),
        report_by("urban-management", kind),
        later(1),
    );
    assert_eq!(again, Err(Refusal::AlreadyExists("case")));
}

#[test]
fn a_report_keeps_its_channel_and_only_a_grid_worker_reports_from_patrol() {
    let case = Case::new();
    let kind = || incident("310104001001001", IncidentCategory::Dispute);
    let with = |reporter: Reporter, channel: ReportChannel| {
        let CaseCommand::Report(mut report) = report_by("urban-management", kind()) else {
            unreachable!("report_by builds a report")
        };
        report.reporter = reporter;
        report.channel = channel;
        CaseCommand::Report(report)
    };
    let Err(Refusal::Invalid(v)) = case.when(
        &by("urban-management"),
        with(Reporter::Resident, ReportChannel::GridPatrol),
        later(0),
    ) else {
        panic!("a resident's patrol accepted")
    };
    assert_eq!(v.as_slice()[0].field, "channel");
    for (reporter, channel) in [
        (Reporter::Resident, ReportChannel::Hotline),
        (
            Reporter::GridWorker { id: "gw-1".into() },
            ReportChannel::GridPatrol,
        ),
        (
            Reporter::GridWorker { id: "gw-1".into() },
            ReportChannel::Online,
        ),
    ] {
        let events = case
            .when(&by("urban-management"), with(reporter, channel), later(0))
            .expect("reported");
        let [CaseEvent::Reported(reported)] = events.as_slice() else {
            panic!("{events:?}")
        };
        assert_eq!(reported.channel, channel);
    }
    assert_eq!(
        ReportChannel::default_for(&Reporter::GridWorker { id: "gw-1".into() }),
        ReportChannel::GridPatrol
    );
    assert_eq!(
        ReportChannel::default_for(&Reporter::Resident),
        ReportChannel::Unrecorded
    );
}

#[test]
fn commands_on_a_case_that_does_not_exist_are_not_found() {
    let case = Case::new();
    assert_eq!(
        case.when(&by("urban-management"), CaseCommand::Accept, later(0)),
        Err(Refusal::NotFound("case"))
    );
}

#[test]
fn the_command_centre_dispatches_with_deadlines_from_the_service_level() {
    let case = Case::new().reported();
    forbidden(case.when(
        &by("dcc-310105"),
        CaseCommand::Dispatch {
            department: dept("housing"),
        },
        later(5),
    ));
    forbidden(case.when(
        &by("urban-management"),
        CaseCommand::Dispatch {
            department: dept("housing"),
        },
        later(5),
    ));
    let to_unit = case.when(
        &by("dcc-310104"),
        CaseCommand::Dispatch {
            department: dept("dcc-310105"),
        },
        later(5),
    );
    assert!(matches!(to_unit, Err(Refusal::Invalid(_))), "{to_unit:?}");

    let case = case.given(
        "dcc-310104",
        CaseCommand::Dispatch {
            department: dept("housing"),
        },
        later(5),
    );
    let Some(CaseEvent::Dispatched(d)) = case.events.last() else {
        panic!()
    };
    // A fire hazard is urgent: accept within 30 minutes, resolve within 24 hours.
    assert_eq!(d.accept_by, later(35));
    assert_eq!(d.resolve_by, later(5 + 24 * 60));
    let state = case.state().expect("state");
    assert_eq!(
        (state.status, state.holder.as_str()),
        (CaseStatus::Dispatched, "housing")
    );
    let reason = illegal(case.when(
        &by("dcc-310104"),
        CaseCommand::Dispatch {
            department: dept("urban-management"),
        },
        later(6),
    ));
    assert!(
        reason.contains("cannot dispatch a case that is dispatched"),
        "{reason}"
    );
}

#[test]
fn general_cases_count_working_days() {
    let sanitation = incident("310104001001001", IncidentCategory::Sanitation);
    let case = Case::new()
        .given(
            "urban-management",
            report_by("urban-management", sanitation),
            later(0),
        )
        // Friday 2026-11-27 10:00 in Shanghai.
        .given(
            "dcc-310104",
            CaseCommand::Dispatch {
                department: dept("urban-management"),
            },
            at("2026-11-27T02:00:00Z"),
        );
    let Some(CaseEvent::Dispatched(d)) = case.events.last() else {
        panic!()
    };
    assert_eq!(
        d.accept_by,
        at("2026-11-30T02:00:00Z"),
        "one working day: Monday"
    );
    assert_eq!(
        d.resolve_by,
        at("2026-12-04T02:00:00Z"),
        "five working days: next Friday"
    );
}

#[test]
fn only_the_holder_accepts_and_only_once() {
    let case = Case::new().dispatched();
    forbidden(case.when(&by("housing"), CaseCommand::Accept, later(6)));
    let case = case.given("urban-management", CaseCommand::Accept, later(6));
    assert_eq!(case.state().expect("state").status, CaseStatus::Accepted);
    illegal(case.when(&by("urban-management"), CaseCommand::Accept, later(7)));
}

#[test]
fn custody_moves_only_when_the_receiver_accepts_the_transfer_and_its_clock_restarts() {
    let case = Case::new().accepted();
    let ask = |to: &str| CaseCommand::RequestTransfer {
        to: dept(to),
        reason: "property matter".into(),
    };
    forbidden(case.when(&by("housing"), ask("civil-affairs"), later(20)));
    assert!(matches!(
        case.when(&by("urban-management"), ask("urban-management"), later(20)),
        Err(Refusal::Invalid(_))
    ));

    let case = case.given("urban-management", ask("housing"), later(20));
    let state = case.state().expect("state");
    assert_eq!(
        state.holder.as_str(),
        "urban-management",
        "custody stays until the receiver accepts"
    );
    assert_eq!(state.pending_transfer, Some(dept("housing")));
    illegal(case.when(&by("urban-management"), ask("civil-affairs"), later(21)));
    illegal(case.when(
        &by("urban-management"),
        CaseCommand::Resolve {
            outcome: "done".into(),
        },
        later(21),
    ));
    forbidden(case.when(&by("civil-affairs"), CaseCommand::AcceptTransfer, later(21)));
    forbidden(case.when(
        &by("urban-management"),
        CaseCommand::AcceptTransfer,
        later(21),
    ));

    let rejected = case.clone_with(
        "housing",
        CaseCommand::RejectTransfer {
            reason: "not ours".into(),
        },
        later(30),
    );
    let state = rejected.state().expect("state");
    assert_eq!(
        (state.holder.as_str(), state.pending_transfer.clone()),
        ("urban-management", None)
    );
    illegal(rejected.when(&by("housing"), CaseCommand::AcceptTransfer, later(31)));

    let moved = case.given("housing", CaseCommand::AcceptTransfer, later(30));
    let state = moved.state().expect("state");
    assert_eq!(
        (state.holder.as_str(), state.status),
        ("housing", CaseStatus::Accepted)
    );
    assert_eq!(
        state.resolve_by,
        Some(later(30 + 24 * 60)),
        "the new holder's clock starts at the transfer"
    );
    forbidden(moved.when(
        &by("urban-management"),
        CaseCommand::Resolve {
            outcome: "done".into(),
        },
        later(40),
    ));
}

#[test]
fn a_missed_deadline_escalates_once_per_tier_and_stops_at_the_top() {
    // Dispatched Monday 10:05 Shanghai; an urgent case must be accepted by 10:35.
    let case = Case::new().dispatched();
    let escalate = |case: &Case, now| case.when(&Actor::System, CaseCommand::Escalate, now);
    illegal(escalate(&case, later(34)));
    forbidden(case.when(&by("dcc-310104"), CaseCommand::Escalate, later(40)));

    let case = case.given("system", CaseCommand::Escalate, later(36));
    let Some(CaseEvent::Escalated(e)) = case.events.last() else {
        panic!()
    };
    assert_eq!(
        (e.tier, e.deadline, e.due),
        (1, DeadlineKind::Accept, later(35))
    );
    let reason = illegal(escalate(&case, later(37)));
    assert!(
        reason.contains("tier 2 is due"),
        "the same breach is not escalated twice: {reason}"
    );

    // Tier 2 one working day after the deadline (Tuesday 10:35), tier 3 three (Thursday 10:35).
    illegal(escalate(&case, later(35 + 24 * 60 - 1)));
    let case = case.given("system", CaseCommand::Escalate, later(35 + 24 * 60));
    illegal(escalate(&case, later(35 + 3 * 24 * 60 - 1)));
    let case = case.given("system", CaseCommand::Escalate, later(35 + 3 * 24 * 60));
    assert_eq!(case.state().expect("state").escalation_tier, 3);
    let reason = illegal(escalate(&case, later(35 + 30 * 24 * 60)));
    assert!(reason.contains("top tier"), "{reason}");

    // Accepting ends the accept breach; the resolve deadline is a new one, escalated from tier 1.
    let case = case.given(
        "urban-management",
        CaseCommand::Accept,
        later(35 + 3 * 24 * 60 + 1),
    );
    let case = case.given("system", CaseCommand::Escalate, later(35 + 3 * 24 * 60 + 2));
    let Some(CaseEvent::Escalated(e)) = case.events.last() else {
        panic!()
    };
    assert_eq!((e.tier, e.deadline), (1, DeadlineKind::Resolve));
}

#[test]
fn the_reporter_rates_a_resolved_case_and_a_poor_rating_reopens_it_with_its_holder() {
    let case = Case::new().accepted();
    illegal(case.when(
        &by("urban-management"),
        CaseCommand::Rate { rating: 4 },
        later(61),
    ));
    let case = case.given(
        "urban-management",
        CaseCommand::Resolve {
            outcome: "exit cleared".into(),
        },
        later(60),
    );
    forbidden(case.when(
        &by("dcc-310104"),
        CaseCommand::Rate { rating: 4 },
        later(61),
    ));
    for bad in [0, 6] {
        assert!(matches!(
            case.when(
                &by("urban-management"),
                CaseCommand::Rate { rating: bad },
                later(61)
            ),
            Err(Refusal::Invalid(_))
        ));
    }

    let poor = case.clone_with(
        "urban-management",
        CaseCommand::Rate { rating: 2 },
        later(61),
    );
    let [.., CaseEvent::Rated(_), CaseEvent::Reopened(r)] = poor.events.as_slice() else {
        panic!("{:?}", poor.events)
    };
    assert_eq!(r.resolve_by, later(61 + 24 * 60));
    let state = poor.state().expect("state");
    assert_eq!(
        (state.status, state.holder.as_str(), state.reopened),
        (CaseStatus::Accepted, "urban-management", 1)
    );
    illegal(poor.when(&by("dcc-310104"), CaseCommand::Close, later(62)));

    let good = case.given(
        "urban-management",
        CaseCommand::Rate { rating: 5 },
        later(61),
    );
    assert_eq!(good.state().expect("state").status, CaseStatus::Rated);
    forbidden(good.when(&by("urban-management"), CaseCommand::Close, later(62)));
    let closed = good.given("dcc-310104", CaseCommand::Close, later(62));
    assert_eq!(closed.state().expect("state").status, CaseStatus::Closed);
    illegal(closed.when(&by("dcc-310104"), CaseCommand::Close, later(63)));
}

#[test]
fn a_resolved_case_may_be_closed_without_a_rating() {
    let case = Case::new()
        .resolved()
        .given("dcc-310104", CaseCommand::Close, later(70));
    assert_eq!(case.state().expect("state").status, CaseStatus::Closed);
}

impl Case {
    fn clone_with(&self, actor: &str, command: CaseCommand, now: Timestamp) -> Self {
        Self {
            events: self.events.clone(),
            registry: self.registry.clone(),
            policy: self.policy.clone(),
        }
        .given(actor, command, now)
    }
}

#[test]
fn apply_leaves_a_case_as_it_was_for_an_event_that_does_not_fit() {
    let case = Case::new().dispatched();
    let state = case.state().expect("state");
    let reported_again = case.events[0].clone();
    assert_eq!(apply(Some(state.clone()), &reported_again), Some(state));
    assert_eq!(
        apply(None, &case.events[1]),
        None,
        "no case comes from an event other than its report"
    );
}
