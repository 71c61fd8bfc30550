//! Every care event survives encode then decode unchanged; a stored event that cannot be
//! read back says which field and why, never the person's data.

use hub_domain::care::*;
use hub_domain::codes::{CommunityCode, DepartmentCode, DivisionCode, IdentityNumber};

use crate::{CARE_EVENT_TYPES, CASE_CLOSED, decode_care_event, encode_care_event, v1};

/// A published example number (GB 11643), valid check character `X`.
const ID: &str = "11010519491231002X";
const NAME: &str = "李四";

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department")
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

fn registered(category: CareCategory, risk_level: RiskLevel) -> CareEvent {
    CareEvent::Registered(CareRegistered {
        care_id: CareId::new("care-1"),
        name: NAME.into(),
        identity_number: IdentityNumber::parse(ID).expect("identity number"),
        category,
        community: CommunityCode::parse("310104001002").expect("community"),
        district: DivisionCode::parse("310104").expect("district"),
        risk_level,
        registered_by: dept("civil-affairs"),
        registered_at: t("2026-11-23T02:00:00.123456789Z"),
        phone: "021-64870000".into(),
        address: "徐汇区漕溪北路88号3号楼501室".into(),
    })
}

fn every_event() -> Vec<CareEvent> {
    let id = || CareId::new("care-1");
    let now = t("2026-11-23T02:00:00.123456789Z");
    vec![
        registered(CareCategory::DrugRehabilitation, RiskLevel::High),
        registered(CareCategory::SevereMentalDisorder, RiskLevel::Medium),
        registered(CareCategory::ElderlyInHardship, RiskLevel::Low),
        registered(CareCategory::LeftBehindChild, RiskLevel::Low),
        CareEvent::VisitLogged(CareVisitLogged {
            care_id: id(),
            visited_at: t("2026-11-22T08:30:00Z"),
            visitor: "SW-0042".into(),
            notes: "独居，身体尚可\n下次随访：一个月后".into(),
            logged_by: dept("civil-affairs"),
            logged_at: now,
        }),
        CareEvent::VisitLogged(CareVisitLogged {
            care_id: id(),
            visited_at: now,
            visitor: "SW-7".into(),
            notes: String::new(),
            logged_by: dept("civil-affairs"),
            logged_at: now,
        }),
        CareEvent::RiskLevelChanged(CareRiskLevelChanged {
            care_id: id(),
            from: RiskLevel::Low,
            to: RiskLevel::High,
            reason: "relapse reported".into(),
            changed_by: dept("civil-affairs"),
            changed_at: now,
        }),
        CareEvent::Closed(CareClosed {
            care_id: id(),
            reason: "moved away".into(),
            closed_by: dept("civil-affairs"),
            closed_at: now,
        }),
    ]
}

#[test]
fn every_care_event_round_trips_and_every_type_is_covered() {
    let mut seen = std::collections::BTreeSet::new();
    for event in every_event() {
        let (event_type, body) = encode_care_event(&event);
        seen.insert(event_type.name);
        assert!(
            event_type.name.starts_with("gov.hub.care."),
            "{event_type:?}"
        );
        assert!(
            event_type
                .dataschema
                .starts_with("type.googleapis.com/gov.hub.v1.Care"),
            "{event_type:?}"
        );
        let decoded = decode_care_event(event_type.name, &body)
            .expect("decodes")
            .expect("known type");
        assert_eq!(decoded, event);
    }
    assert_eq!(
        seen.len(),
        CARE_EVENT_TYPES.len(),
        "a care event type without a round-trip test"
    );
}

#[test]
fn unknown_types_are_skipped_and_broken_bodies_refused() {
    assert_eq!(
        decode_care_event("gov.hub.care.future.v9", b"\x01"),
        Ok(None)
    );
    assert_eq!(decode_care_event(CASE_CLOSED.name, b""), Ok(None));
    let err = decode_care_event("gov.hub.care.closed.v1", b"\xff\xff").expect_err("broken body");
    assert_eq!(err.event_type, "gov.hub.care.closed.v1");

    let (_, body) = encode_care_event(&every_event()[7]);
    let mut closed: v1::CareClosed = prost::Message::decode(body.as_slice()).expect("body");
    closed.closed_at = None;
    let err = decode_care_event(
        "gov.hub.care.closed.v1",
        &prost::Message::encode_to_vec(&closed),
    )
    .expect_err("no time");
    assert!(err.reason.starts_with("closed_at"), "{err}");

    let (_, body) = encode_care_event(&every_event()[6]);
    let mut changed: v1::CareRiskLevelChanged =
        prost::Message::decode(body.as_slice()).expect("body");
    changed.to_risk_level = v1::RiskLevel::Unspecified as i32;
    let err = decode_care_event(
        "gov.hub.care.risk_level_changed.v1",
        &prost::Message::encode_to_vec(&changed),
    )
    .expect_err("unspecified level");
    assert!(err.reason.starts_with("to_risk_level"), "{err}");
}

#[test]
fn a_bad_stored_registration_names_the_field_not_the_person() {
    let (event_type, body) = encode_care_event(&every_event()[0]);
    let stored: v1::CareRegistered = prost::Message::decode(body.as_slice()).expect("body");
    assert_eq!(stored.identity_number, ID, "the full number is on the log");
    assert_eq!(stored.name, NAME);

    let bad_id = "110105194912310021";
    let mut broken = stored.clone();
    broken.identity_number = bad_id.into();
    let err = decode_care_event(event_type.name, &prost::Message::encode_to_vec(&broken))
        .expect_err("bad check character");
    assert!(err.reason.starts_with("identity_number"), "{err}");
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains(bad_id), "{shown}");
        assert!(!shown.contains("19491231"), "{shown}");
        assert!(!shown.contains(NAME), "{shown}");
    }

    let mut broken = stored.clone();
    broken.community_code = "3101".into();
    let err = decode_care_event(event_type.name, &prost::Message::encode_to_vec(&broken))
        .expect_err("bad community");
    assert!(err.reason.starts_with("community_code"), "{err}");
    assert!(!err.to_string().contains(NAME), "{err}");

    let mut broken = stored;
    broken.category = 42;
    let err = decode_care_event(event_type.name, &prost::Message::encode_to_vec(&broken))
        .expect_err("unknown category");
    assert!(err.reason.starts_with("category"), "{err}");
}

#[test]
fn a_decoded_registration_does_not_print_the_person() {
    let (event_type, body) = encode_care_event(&every_event()[0]);
    let decoded = decode_care_event(event_type.name, &body)
        .expect("decodes")
        .expect("known type");
    let shown = format!("{decoded:?}");
    assert!(!shown.contains(NAME), "{shown}");
    assert!(!shown.contains("19491231"), "{shown}");
}
