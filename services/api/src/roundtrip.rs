//! Every case event survives encode then decode unchanged.

use hub_domain::case::*;
use hub_domain::codes::{CreditCode, DepartmentCode, DivisionCode, GridCode};

use crate::{CASE_EVENT_TYPES, decode_case_event, encode_case_event};

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department")
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

fn every_event() -> Vec<CaseEvent> {
    let id = || CaseId::new("c-1");
    let now = t("2026-11-23T02:00:00.123456789Z");
    vec![
        CaseEvent::Reported(CaseReported {
            case_id: id(),
            kind: CaseKind::GridIncident(GridIncident {
                grid: GridCode::parse("310104001001001").expect("grid"),
                category: IncidentCategory::GroupRenting,
                location: Some(Location {
                    longitude: 121.4,
                    latitude: 31.2,
                    address: "3号楼".into(),
                }),
            }),
            description: "群租".into(),
            reporter: Reporter::GridWorker { id: "GW-1".into() },
            channel: ReportChannel::GridPatrol,
            district: DivisionCode::parse("310104").expect("district"),
            dispatch_unit: dept("dcc-310104"),
            urgency: Urgency::Important,
            reported_at: now,
            reported_by: dept("urban-management"),
        }),
        CaseEvent::Reported(CaseReported {
            case_id: id(),
            kind: CaseKind::PropertyComplaint(PropertyComplaint {
                company: CreditCode::parse("91350100M000100Y43").expect("credit code"),
                compound: "华阳花园".into(),
                category: ComplaintCategory::MaintenanceFund,
                district: DivisionCode::parse("310105").expect("district"),
            }),
            description: "fund".into(),
            reporter: Reporter::Resident,
            channel: ReportChannel::Hotline,
            district: DivisionCode::parse("310105").expect("district"),
            dispatch_unit: dept("dcc-310105"),
            urgency: Urgency::General,
            reported_at: now,
            reported_by: dept("housing"),
        }),
        CaseEvent::Dispatched(CaseDispatched {
            case_id: id(),
            department: dept("housing"),
            dispatched_by: dept("dcc-310105"),
            dispatched_at: now,
            accept_by: now,
            resolve_by: now,
        }),
        CaseEvent::Accepted(CaseAccepted {
            case_id: id(),
            department: dept("housing"),
            accepted_at: now,
        }),
        CaseEvent::TransferRequested(TransferRequested {
            case_id: id(),
            from: dept("housing"),
            to: dept("civil-affairs"),
            reason: "r".into(),
            requested_at: now,
        }),
        CaseEvent::TransferAccepted(TransferAccepted {
            case_id: id(),
            from: dept("housing"),
            to: dept("civil-affairs"),
            accepted_at: now,
            resolve_by: now,
        }),
        CaseEvent::TransferRejected(TransferRejected {
            case_id: id(),
            from: dept("housing"),
            to: dept("civil-affairs"),
            reason: "no".into(),
            rejected_at: now,
        }),
        CaseEvent::Escalated(CaseEscalated {
            case_id: id(),
            tier: 2,
            deadline: DeadlineKind::Resolve,
            due: now,
            holder: dept("housing"),
            escalated_at: now,
        }),
        CaseEvent::Resolved(CaseResolved {
            case_id: id(),
            department: dept("housing"),
            outcome: "done".into(),
            resolved_at: now,
        }),
        CaseEvent::Rated(CaseRated {
            case_id: id(),
            rating: 2,
            rated_by: dept("housing"),
            rated_at: now,
        }),
        CaseEvent::Reopened(CaseReopened {
            case_id: id(),
            holder: dept("housing"),
            reopened_at: now,
            resolve_by: now,
        }),
        CaseEvent::Closed(CaseClosed {
            case_id: id(),
            closed_by: dept("dcc-310105"),
            closed_at: now,
        }),
    ]
}

#[test]
fn every_case_event_round_trips_and_every_type_is_covered() {
    let mut seen = std::collections::BTreeSet::new();
    for event in every_event() {
        let (event_type, body) = encode_case_event(&event);
        seen.insert(event_type.name);
        let decoded = decode_case_event(event_type.name, &body)
            .expect("decodes")
            .expect("known type");
        assert_eq!(decoded, event);
    }
    assert_eq!(
        seen.len(),
        CASE_EVENT_TYPES.len(),
        "a case event type without a round-trip test"
    );
}

#[test]
fn unknown_types_are_skipped_and_broken_bodies_refused() {
    assert_eq!(
        decode_case_event("gov.hub.case.future.v9", b"\x01"),
        Ok(None)
    );
    let err = decode_case_event("gov.hub.case.accepted.v1", b"\xff\xff").expect_err("broken body");
    assert_eq!(err.event_type, "gov.hub.case.accepted.v1");
    let (_, body) = encode_case_event(&every_event()[3]);
    let mut accepted: crate::v1::CaseAccepted =
        prost::Message::decode(body.as_slice()).expect("body");
    accepted.department = "Not A Code".into();
    let err = decode_case_event(
        "gov.hub.case.accepted.v1",
        &prost::Message::encode_to_vec(&accepted),
    )
    .expect_err("bad code");
    assert!(err.reason.starts_with("department"), "{err}");
}
