//! The case projection against the in-memory store (the sled store passes the same suite).

use hub_api::{encode_case_event, v1};
use hub_domain::case::{
    CaseDispatched, CaseEvent, CaseId, CaseKind, CaseReported, GridIncident, IncidentCategory,
    Reporter, Urgency,
};
use hub_domain::codes::{DepartmentCode, DivisionCode, GridCode};
use hub_log::{Classification, Envelope, StoredEvent};
use hub_store::{Batch, MemStore, ReadModelStore};

use super::*;

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department code")
}

fn stored(position: u64, event: &CaseEvent) -> StoredEvent {
    let (event_type, body) = encode_case_event(event);
    StoredEvent {
        position,
        subject: "gov.events.case.x".into(),
        stored_at: jiff::Timestamp::UNIX_EPOCH,
        envelope: Envelope {
            id: format!("e{position}"),
            source: "/departments/urban-management".into(),
            event_type: event_type.name.into(),
            subject: "case/x".into(),
            time: jiff::Timestamp::UNIX_EPOCH,
            dataschema: event_type.dataschema.into(),
            department: "urban-management".into(),
            classification: Classification::Internal,
            schema_version: event_type.schema_version,
            correlation_id: String::new(),
            causation_id: String::new(),
            traceparent: String::new(),
            request_id: "r".into(),
            command_hash: String::new(),
            acting_person: String::new(),
        },
        body: body.into(),
        upcast_from: None,
    }
}

fn reported(case_id: &str) -> CaseEvent {
    CaseEvent::Reported(CaseReported {
        case_id: CaseId::new(case_id),
        kind: CaseKind::GridIncident(GridIncident {
            grid: GridCode::parse("310104001001001").expect("grid"),
            category: IncidentCategory::Sanitation,
            location: None,
        }),
        description: "overflowing bins".into(),
        reporter: Reporter::Resident,
        channel: hub_domain::case::ReportChannel::Hotline,
        district: DivisionCode::parse("310104").expect("district"),
        dispatch_unit: dept("dcc-310104"),
        urgency: Urgency::General,
        reported_at: jiff::Timestamp::UNIX_EPOCH,
        reported_by: dept("urban-management"),
    })
}

fn dispatched(case_id: &str, to: &str) -> CaseEvent {
    CaseEvent::Dispatched(CaseDispatched {
        case_id: CaseId::new(case_id),
        department: dept(to),
        dispatched_by: dept("dcc-310104"),
        dispatched_at: jiff::Timestamp::UNIX_EPOCH,
        accept_by: jiff::Timestamp::UNIX_EPOCH,
        resolve_by: jiff::Timestamp::UNIX_EPOCH,
    })
}

fn project(store: &MemStore, events: &[StoredEvent]) {
    let mut batch = Batch::new(store);
    for event in events {
        CaseQueue::default()
            .apply(event, &mut batch)
            .expect("apply");
    }
    let last = events.last().map_or(0, |e| e.position);
    store.commit(batch.into_writes(), last).expect("commit");
}

fn ids(cases: &[v1::CaseView]) -> Vec<&str> {
    cases.iter().map(|c| c.case_id.as_str()).collect()
}

#[test]
fn reports_queue_at_the_command_centre_and_a_dispatch_moves_them_within_one_batch() {
    let store = MemStore::new();
    project(
        &store,
        &[
            stored(3, &reported("a")),
            stored(7, &reported("b")),
            stored(8, &dispatched("a", "urban-management")),
        ],
    );

    let (queue, next) = list_queue(&store, "dcc-310104", None, 10).expect("list");
    assert_eq!(ids(&queue), ["b"]);
    assert_eq!(next, None);
    let (queue, _) = list_queue(&store, "urban-management", None, 10).expect("list");
    assert_eq!(ids(&queue), ["a"]);

    let a = get_case(&store, "a").expect("get").expect("case a exists");
    assert_eq!(a.status, v1::CaseStatus::Dispatched as i32);
    assert_eq!((a.reported_position, a.last_position), (3, 8));
    assert_eq!(get_case(&store, "zzz").expect("get"), None);
}

#[test]
fn a_report_stored_as_v1_is_queued_with_its_channel_as_upcast() {
    // As version 1 wrote it: the same message without a channel, typed v1.
    let mut v1_report = stored(3, &reported("a"));
    let mut body = v1::CaseReported::decode(v1_report.body.as_ref()).expect("body");
    body.channel = 0;
    v1_report.body = body.encode_to_vec().into();
    v1_report.envelope.event_type = hub_api::CASE_REPORTED_V1.name.into();
    v1_report.envelope.schema_version = 1;
    let store = MemStore::new();
    // As the log reads it back (upcast), and as a caller hands it over without (decoding
    // upcasts): the same row.
    for event in [v1_report.clone().into_current(), v1_report] {
        project(&store, &[event]);
        let a = get_case(&store, "a").expect("get").expect("case a exists");
        assert_eq!(a.channel, v1::ReportChannel::Unrecorded as i32);
    }
    project(&store, &[stored(4, &reported("b"))]);
    let b = get_case(&store, "b").expect("get").expect("case b exists");
    assert_eq!(b.channel, v1::ReportChannel::Hotline as i32);
}

#[test]
fn queues_page_in_report_order() {
    let store = MemStore::new();
    let events: Vec<_> = (1..=5)
        .map(|i| stored(i, &reported(&format!("case-{}", 6 - i))))
        .collect();
    project(&store, &events);
    let (page, next) = list_queue(&store, "dcc-310104", None, 2).expect("page 1");
    assert_eq!(ids(&page), ["case-5", "case-4"]);
    let cursor =
        QueueCursor::from_token(&next.expect("more pages").to_token()).expect("token parses");
    let (page, next) = list_queue(&store, "dcc-310104", Some(&cursor), 2).expect("page 2");
    assert_eq!(ids(&page), ["case-3", "case-2"]);
    let (page, next2) = list_queue(&store, "dcc-310104", next.as_ref(), 2).expect("page 3");
    assert_eq!(ids(&page), ["case-1"]);
    assert_eq!(next2, None);
}

#[test]
fn an_event_it_cannot_read_or_place_is_passed_over_with_an_alarm_and_the_rest_applied() {
    let store = MemStore::new();
    let alarms = Alarms::default();
    let queue = CaseQueue::new(alarms.clone());
    let mut batch = Batch::new(&store);
    queue
        .apply(
            &StoredEvent {
                subject: "gov.events.case.ghost".into(),
                ..stored(1, &dispatched("ghost", "urban-management"))
            },
            &mut batch,
        )
        .expect("a dispatch of a case never reported is passed over");
    let mut bad = stored(2, &reported("a"));
    bad.subject = "gov.events.case.a".into();
    bad.body = bytes::Bytes::from_static(b"\xff\xff\xff");
    queue
        .apply(&bad, &mut batch)
        .expect("a bad body is passed over");
    let mut unknown = stored(3, &reported("b"));
    unknown.subject = "gov.events.case.b".into();
    unknown.envelope.event_type = "gov.hub.case.frobnicated.v9".into();
    queue
        .apply(&unknown, &mut batch)
        .expect("an unknown type is passed over");
    let unreadable = hub_log::Unreadable {
        position: 4,
        subject: "gov.events.case.c".into(),
        stored_at: jiff::Timestamp::UNIX_EPOCH,
        event_type: String::new(),
        reason: "header ce-id is missing".into(),
    };
    queue
        .apply_unreadable(&unreadable, &mut batch)
        .expect("an unreadable envelope is passed over");
    // The same batch still applies a well-formed report.
    queue
        .apply(&stored(5, &reported("d")), &mut batch)
        .expect("good report");
    store.commit(batch.into_writes(), 5).expect("commit");

    assert!(get_case(&store, "d").expect("get").is_some());
    assert_eq!(get_case(&store, "ghost").expect("get"), None);
    // Each case passed over is marked behind, with the first event that made it so.
    let marked = all_behind(&store).expect("behind");
    assert_eq!(marked.len(), 4, "{marked:?}");
    assert_eq!(behind(&store, "d").expect("behind"), None);
    let b = behind(&store, "b").expect("behind").expect("b is behind");
    assert_eq!(
        (b.event_type.as_str(), b.position),
        ("gov.hub.case.frobnicated.v9", 3)
    );
    let raised: Vec<String> = alarms.list().into_iter().map(|(key, _)| key).collect();
    assert_eq!(raised.len(), 4, "{raised:?}");
    let texts = alarms
        .list()
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        texts.contains("gov.hub.case.frobnicated.v9 at position 3"),
        "{texts}"
    );
}
