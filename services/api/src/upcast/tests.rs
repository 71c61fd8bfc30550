//! The upcasters: what they read, what they write, and that decoding goes through them.

use hub_domain::case::{CaseEvent, ReportChannel};
use prost::Message;

use super::*;
use crate::{CARE_EVENT_TYPES, CASE_EVENT_TYPES, GRANT_EVENT_TYPES, decode_case_event};

/// A `gov.hub.case.reported.v1` body as the hub wrote it before channels: the message
/// without its channel (proto3 leaves an unset field out, so the bytes are version 1's).
fn v1_report(reporter: v1::Reporter) -> Vec<u8> {
    v1::CaseReported {
        case_id: "c-1".into(),
        kind: Some(v1::case_reported::Kind::GridIncident(v1::GridIncident {
            grid_code: "310104001001001".into(),
            category: v1::IncidentCategory::FireHazard as i32,
            location: None,
        })),
        description: "消防通道堵塞 blocked fire exit".into(),
        reporter: Some(reporter),
        district_code: "310104".into(),
        dispatch_unit: "dcc-310104".into(),
        urgency: v1::Urgency::Urgent as i32,
        reported_at: Some(prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 0,
        }),
        reported_by: "urban-management".into(),
        channel: 0,
    }
    .encode_to_vec()
}

fn grid_worker() -> v1::Reporter {
    v1::Reporter {
        kind: v1::ReporterKind::GridWorker as i32,
        grid_worker_id: "GW-7".into(),
    }
}

fn resident() -> v1::Reporter {
    v1::Reporter {
        kind: v1::ReporterKind::Resident as i32,
        grid_worker_id: String::new(),
    }
}

fn every_current_type() -> impl Iterator<Item = &'static EventType> {
    CASE_EVENT_TYPES
        .iter()
        .chain(CARE_EVENT_TYPES)
        .chain(GRANT_EVENT_TYPES)
}

#[test]
fn every_type_names_its_version_and_every_chain_ends_at_a_current_type() {
    let names_version = |t: &EventType| t.name.ends_with(&format!(".v{}", t.schema_version));
    let family = |t: &EventType| t.name.rsplit_once(".v").map(|(f, _)| f.to_owned());
    for t in every_current_type() {
        assert!(names_version(t), "{t:?}");
        assert!(upcaster(t.name).is_none(), "{} is current", t.name);
    }
    for (i, u) in UPCASTERS.iter().enumerate() {
        assert!(names_version(&u.from) && names_version(&u.to), "{u:?}");
        assert_eq!(family(&u.from), family(&u.to), "one type's versions");
        assert!(u.to.schema_version > u.from.schema_version, "{u:?}");
        // Versions are added to: the same protobuf message, fields added.
        assert_eq!(u.from.dataschema, u.to.dataschema);
        assert!(
            UPCASTERS[i + 1..]
                .iter()
                .all(|o| o.from.name != u.from.name),
            "one upcaster per version: {}",
            u.from.name
        );
        let current = read_as(u.from.name).expect("an old version is read as a newer one");
        assert!(every_current_type().any(|t| *t == current), "{current:?}");
    }
}

#[test]
fn a_v1_report_is_read_as_v2_with_its_channel_from_the_reporter() {
    for (reporter, channel) in [
        (grid_worker(), v1::ReportChannel::GridPatrol),
        (resident(), v1::ReportChannel::Unrecorded),
    ] {
        let stored = v1_report(reporter);
        let up = upcast(CASE_REPORTED_V1.name, &stored)
            .expect("upcasts")
            .expect("v1 has an upcaster");
        assert_eq!((up.from, up.event_type), (CASE_REPORTED_V1, CASE_REPORTED));
        assert_eq!(up.event_type.name, "gov.hub.case.reported.v2");
        assert_eq!(up.event_type.schema_version, 2);
        let read = v1::CaseReported::decode(up.body.as_slice()).expect("a v2 body");
        let mut expected = v1::CaseReported::decode(stored.as_slice()).expect("a v1 body");
        expected.channel = channel as i32;
        assert_eq!(read, expected, "only the channel is added");
    }
}

#[test]
fn decoding_a_v1_report_goes_through_the_upcaster() {
    let stored = v1_report(grid_worker());
    let Some(CaseEvent::Reported(old)) =
        decode_case_event(CASE_REPORTED_V1.name, &stored).expect("decodes")
    else {
        panic!("a report")
    };
    assert_eq!(old.channel, ReportChannel::GridPatrol);
    let up = upcast(CASE_REPORTED_V1.name, &stored)
        .expect("upcasts")
        .expect("upcast");
    assert_eq!(
        decode_case_event(up.event_type.name, &up.body),
        Ok(Some(CaseEvent::Reported(old))),
        "the same event either way"
    );
    // Version 2 itself must carry its channel: only version 1 is read with a default.
    let err = decode_case_event(CASE_REPORTED.name, &stored).expect_err("v2 without channel");
    assert!(err.reason.starts_with("channel"), "{err}");
}

#[test]
fn a_channel_a_v1_body_carries_is_kept() {
    let mut body = v1::CaseReported::decode(v1_report(resident()).as_slice()).expect("body");
    body.channel = v1::ReportChannel::Hotline as i32;
    let up = upcast(CASE_REPORTED_V1.name, &body.encode_to_vec())
        .expect("upcasts")
        .expect("upcast");
    let read = v1::CaseReported::decode(up.body.as_slice()).expect("a v2 body");
    assert_eq!(read.channel, v1::ReportChannel::Hotline as i32);
}

#[test]
fn current_and_unknown_types_are_read_as_stored_and_a_broken_v1_body_is_named() {
    assert_eq!(upcast(CASE_REPORTED.name, b"\x0a\x01c"), Ok(None));
    assert_eq!(upcast("gov.hub.case.frobnicated.v9", b"\xff"), Ok(None));
    assert_eq!(read_as(CASE_REPORTED.name), None);
    assert_eq!(read_as(CASE_REPORTED_V1.name), Some(CASE_REPORTED));

    let err = upcast(CASE_REPORTED_V1.name, b"\xff\xff\xff").expect_err("broken body");
    assert_eq!(err.event_type, CASE_REPORTED_V1.name);
    // A decoder refuses it as a body it cannot decode, not as a type it does not know.
    let err = decode_case_event(CASE_REPORTED_V1.name, b"\xff\xff\xff").expect_err("broken");
    assert_eq!(err.event_type, CASE_REPORTED_V1.name);
}
