//! Given events, when a command, then events or a refusal.

use super::*;
use crate::codes::{CreditCode, GridCode};
use crate::registry::RegistryData;

fn registry() -> Registry {
    let data: RegistryData = toml::from_str(
        r#"
        [[units]]
        code = "dcc-310104"
        name = "xuhui command centre"
        kind = "dispatch_unit"
        [[units]]
        code = "urban-management"
        name = "urban management"
        kind = "department"
        [[districts]]
        code = "310104"
        name = "xuhui"
        command_centre = "dcc-310104"
        grids = [{ code = "310104001001001", name = "g1" }]
        "#,
    )
    .expect("fixture parses");
    Registry::new(data).expect("fixture is consistent")
}

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department code")
}

fn report(kind: CaseKind) -> CaseCommand {
    CaseCommand::Report(ReportCase {
        case_id: CaseId::new("c1"),
        kind,
        description: "blocked fire exit".into(),
        reporter: Reporter::GridWorker { id: "gw-17".into() },
        reported_by: dept("urban-management"),
    })
}

fn incident(grid: &str, category: IncidentCategory) -> CaseKind {
    CaseKind::GridIncident(GridIncident {
        grid: GridCode::parse(grid).expect("grid code"),
        category,
        location: None,
    })
}

fn given(events: &[CaseEvent]) -> Option<CaseState> {
    events.iter().fold(None, apply)
}

const NOW: Timestamp = Timestamp::UNIX_EPOCH;

#[test]
fn a_report_goes_to_its_districts_command_centre_with_the_categorys_urgency() {
    let events = decide(
        None,
        report(incident("310104001001001", IncidentCategory::FireHazard)),
        &registry(),
        NOW,
    )
    .expect("report accepted");
    let [CaseEvent::Reported(reported)] = events.as_slice() else {
        panic!("expected one CaseReported, got {events:?}");
    };
    assert_eq!(reported.dispatch_unit.as_str(), "dcc-310104");
    assert_eq!(reported.district.as_str(), "310104");
    assert_eq!(reported.urgency, Urgency::Urgent);
    assert_eq!(reported.reported_at, NOW);

    let state = given(&events).expect("case exists after its report");
    assert_eq!(state.status, CaseStatus::Reported);
    assert_eq!(state.holder.as_str(), "dcc-310104");
    assert_eq!(state.version, 1);
}

#[test]
fn a_grid_missing_from_the_registry_is_refused_by_field() {
    let err = decide(
        None,
        report(incident("310104009009009", IncidentCategory::Dispute)),
        &registry(),
        NOW,
    )
    .expect_err("unknown grid refused");
    let CaseError::Invalid(violations) = err else {
        panic!("expected Invalid, got {err:?}")
    };
    assert_eq!(violations.as_slice()[0].field, "grid_incident.grid_code");
}

#[test]
fn a_complaint_in_an_unknown_district_is_refused_and_a_known_one_accepted() {
    let complaint = |district: &str| {
        CaseKind::PropertyComplaint(PropertyComplaint {
            company: CreditCode::parse("91350100M000100Y43").expect("credit code"),
            compound: "garden estate".into(),
            category: ComplaintCategory::Fees,
            district: DivisionCode::parse(district).expect("division code"),
        })
    };
    let err =
        decide(None, report(complaint("110101")), &registry(), NOW).expect_err("unknown district");
    let CaseError::Invalid(violations) = err else {
        panic!("expected Invalid, got {err:?}")
    };
    assert_eq!(
        violations.as_slice()[0].field,
        "property_complaint.district_code"
    );

    let events =
        decide(None, report(complaint("310104")), &registry(), NOW).expect("known district");
    let state = given(&events).expect("case exists");
    assert_eq!(state.urgency, Urgency::General);
}

#[test]
fn a_case_is_reported_once() {
    let registry = registry();
    let first = decide(
        None,
        report(incident("310104001001001", IncidentCategory::Sanitation)),
        &registry,
        NOW,
    )
    .expect("first report");
    let state = given(&first);
    let err = decide(
        state.as_ref(),
        report(incident("310104001001001", IncidentCategory::Sanitation)),
        &registry,
        NOW,
    )
    .expect_err("second report of the same case");
    assert_eq!(err, CaseError::AlreadyExists);
}

#[test]
fn a_dispatch_moves_the_case_to_the_department() {
    let registry = registry();
    let mut events = decide(
        None,
        report(incident("310104001001001", IncidentCategory::Dispute)),
        &registry,
        NOW,
    )
    .expect("report");
    events.push(CaseEvent::Dispatched(CaseDispatched {
        case_id: CaseId::new("c1"),
        department: dept("urban-management"),
        dispatched_by: dept("dcc-310104"),
        dispatched_at: NOW,
        accept_by: NOW,
        resolve_by: NOW,
    }));
    let state = given(&events).expect("case exists");
    assert_eq!(state.status, CaseStatus::Dispatched);
    assert_eq!(state.holder.as_str(), "urban-management");
    assert_eq!(state.version, 2);
}
