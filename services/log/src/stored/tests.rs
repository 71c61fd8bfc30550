//! Events read back in the current version of their type, the log's own bytes kept beside.

use async_nats::HeaderMap;
use hub_api::{CASE_REPORTED, CASE_REPORTED_V1, v1};
use prost::Message;

use super::*;
use crate::envelope::Classification;

fn envelope(event_type: &str, schema_version: u32) -> Envelope {
    Envelope {
        id: "e-1".into(),
        source: "/departments/urban-management".into(),
        event_type: event_type.into(),
        subject: "case/c-1".into(),
        time: "2026-11-23T02:00:00Z".parse().expect("timestamp"),
        dataschema: "type.googleapis.com/gov.hub.v1.CaseReported".into(),
        department: "dcc-310104".into(),
        classification: Classification::Internal,
        schema_version,
        correlation_id: "r-1".into(),
        causation_id: String::new(),
        traceparent: String::new(),
        request_id: "r-1".into(),
        command_hash: String::new(),
        acting_person: String::new(),
    }
}

/// A report as version 1 wrote it: no channel.
fn v1_body() -> Vec<u8> {
    v1::CaseReported {
        case_id: "c-1".into(),
        reporter: Some(v1::Reporter {
            kind: v1::ReporterKind::GridWorker as i32,
            grid_worker_id: "GW-7".into(),
        }),
        reported_by: "urban-management".into(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn read(headers: &HeaderMap, body: &[u8]) -> Entry {
    Entry::read(
        7,
        "2026-11-23T02:00:01Z".parse().expect("timestamp"),
        &"gov.events.case.c-1".into(),
        Some(headers),
        &Bytes::copy_from_slice(body),
    )
}

fn event(entry: Entry) -> StoredEvent {
    match entry {
        Entry::Event(e) => e,
        Entry::Unreadable(u) => panic!("unreadable: {u:?}"),
    }
}

#[test]
fn a_v1_event_is_read_as_v2_and_what_the_log_holds_is_kept() {
    let stored_body = v1_body();
    let read = event(read(
        &envelope(CASE_REPORTED_V1.name, 1).to_headers(),
        &stored_body,
    ));
    assert_eq!(read.envelope.event_type, "gov.hub.case.reported.v2");
    assert_eq!(read.envelope.schema_version, 2);
    assert_eq!(read.envelope.dataschema, CASE_REPORTED.dataschema);
    let body = v1::CaseReported::decode(read.body.as_ref()).expect("a v2 body");
    assert_eq!(body.channel, v1::ReportChannel::GridPatrol as i32);
    assert_eq!(
        read.upcast_from,
        Some(AsStored {
            event_type: "gov.hub.case.reported.v1".into(),
            dataschema: CASE_REPORTED_V1.dataschema.into(),
            schema_version: 1,
            body: stored_body.into(),
        })
    );
    // Upcasting again changes nothing.
    let again = read.clone().into_current();
    assert_eq!(
        (again.envelope, again.body, again.upcast_from),
        (read.envelope, read.body, read.upcast_from)
    );
}

#[test]
fn current_unknown_and_broken_events_are_read_as_stored() {
    for (event_type, version, body) in [
        (CASE_REPORTED.name, 2, v1_body()),
        ("gov.hub.case.frobnicated.v9", 9, b"\x0a\x01c".to_vec()),
        // Its upcaster cannot read it: left for the decoders to refuse, naming it.
        (CASE_REPORTED_V1.name, 1, b"\xff\xff\xff".to_vec()),
    ] {
        let read = event(read(&envelope(event_type, version).to_headers(), &body));
        assert_eq!(read.envelope.event_type, event_type);
        assert_eq!(read.envelope.schema_version, version);
        assert_eq!(read.body.as_ref(), body.as_slice());
        assert_eq!(read.upcast_from, None);
    }
}
