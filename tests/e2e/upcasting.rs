//! A hub started on a log written before `gov.hub.case.reported` had its second version: it
//! reads those reports as version 2 everywhere (read models, datasets, commands, the auditors'
//! history and as-of state, feeds), and the log keeps them exactly as they were written.

use std::time::Duration;

use hub_api::v1::get_state_as_of_request::AsOf;
use hub_api::{CASE_DISPATCHED, CASE_REPORTED_V1, EventType, v1};
use hub_log::names::{department_source, event_subject};
use hub_log::stream::{EventsStreamSettings, ensure_events_stream};
use hub_log::{Appender, Classification, Envelope, NewEvent};
use hub_tests::{Hub, HubBuilder, Nats};
use prost::Message;
use tonic::Code;

use crate::datasets::{read, rows_as, text};
use crate::{cmd, complaint, from, read_case};

const AUDITOR: &str = "discipline-inspection";
/// A grid worker's incident, a resident's complaint (dispatched before the upgrade), and a
/// report whose stored body its upcaster cannot read.
const PATROL: &str = "legacy-case-patrol";
const RESIDENT: &str = "legacy-case-resident";
const BROKEN: &str = "legacy-case-broken";

/// What the log held when the hub first started on it.
struct V1Log {
    /// Positions of the reports of [`PATROL`], [`RESIDENT`] and [`BROKEN`].
    patrol: u64,
    resident: u64,
    broken: u64,
    /// The last position written.
    last: u64,
    /// The stored body of [`PATROL`]'s report.
    patrol_body: Vec<u8>,
}

fn at(offset_minutes: i64) -> prost_types::Timestamp {
    let t = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(offset_minutes);
    hub_api::timestamp(t)
}

/// An event as the hub wrote it before the upgrade: the real envelope, its type and schema
/// version those of the first version, and the expected subject sequence the appender sends.
fn written(
    case_id: &str,
    n: u32,
    (event_type, by, owner): (EventType, &str, &str),
    body: Vec<u8>,
    expected: u64,
) -> NewEvent {
    let request_id = format!("{case_id}-r{n}");
    NewEvent {
        subject: event_subject("case", case_id),
        envelope: Envelope {
            id: format!("{case_id}-e{n}"),
            source: department_source(by),
            event_type: event_type.name.into(),
            subject: format!("case/{case_id}"),
            time: jiff::Timestamp::now(),
            dataschema: event_type.dataschema.into(),
            department: owner.into(),
            classification: Classification::Internal,
            schema_version: event_type.schema_version,
            correlation_id: request_id.clone(),
            causation_id: request_id.clone(),
            traceparent: String::new(),
            request_id,
            command_hash: "0a1b2c3d.00112233445566778899aabbccddeeff".into(),
            acting_person: "staff-0001".into(),
        },
        body: body.into(),
        expected_last_subject_sequence: Some(expected),
    }
}

/// A `gov.hub.case.reported.v1` body: the message as version 1 knew it, without a channel
/// (an unset proto3 field is not written, so these are version 1's bytes).
fn v1_report(
    case_id: &str,
    kind: v1::case_reported::Kind,
    reporter: v1::Reporter,
    (district, unit, by): (&str, &str, &str),
) -> Vec<u8> {
    v1::CaseReported {
        case_id: case_id.into(),
        kind: Some(kind),
        description: "群租房消防隐患 fire risk in a shared flat".into(),
        reporter: Some(reporter),
        district_code: district.into(),
        dispatch_unit: unit.into(),
        urgency: v1::Urgency::Urgent as i32,
        reported_at: Some(at(-60)),
        reported_by: by.into(),
        channel: v1::ReportChannel::Unspecified as i32,
    }
    .encode_to_vec()
}

/// Writes the log of a hub of the first version, before any hub of this version starts.
async fn v1_log(nats: &Nats) -> V1Log {
    let appender = Appender::new(nats.client().await, Duration::from_secs(5));
    ensure_events_stream(appender.context(), &EventsStreamSettings::default())
        .await
        .expect("events stream");
    let append = async |event: NewEvent| {
        appender
            .append(event)
            .await
            .expect("a v1 event stored")
            .position
    };
    // Version 1 of the report; the dispatch is of a type that has one version.
    let reported = CASE_REPORTED_V1;
    assert_eq!(reported.name, "gov.hub.case.reported.v1");
    let patrol_body = v1_report(
        PATROL,
        v1::case_reported::Kind::GridIncident(v1::GridIncident {
            grid_code: "310104001001001".into(),
            category: v1::IncidentCategory::FireHazard as i32,
            location: None,
        }),
        v1::Reporter {
            kind: v1::ReporterKind::GridWorker as i32,
            grid_worker_id: "GW-0107".into(),
        },
        ("310104", "dcc-310104", "urban-management"),
    );
    let by_urban = (reported, "urban-management", "dcc-310104");
    let patrol = append(written(PATROL, 0, by_urban, patrol_body.clone(), 0)).await;
    let resident_body = v1_report(
        RESIDENT,
        v1::case_reported::Kind::PropertyComplaint(v1::PropertyComplaint {
            company_credit_code: "91350100M000100Y43".into(),
            compound: "华阳花园".into(),
            category: v1::ComplaintCategory::Fees as i32,
            district_code: "310105".into(),
        }),
        v1::Reporter {
            kind: v1::ReporterKind::Resident as i32,
            grid_worker_id: String::new(),
        },
        ("310105", "dcc-310105", "housing"),
    );
    let by_housing = (reported, "housing", "dcc-310105");
    let resident = append(written(RESIDENT, 0, by_housing, resident_body, 0)).await;
    let dispatched = v1::CaseDispatched {
        case_id: RESIDENT.into(),
        department: "housing".into(),
        dispatched_by: "dcc-310105".into(),
        dispatched_at: Some(at(-30)),
        accept_by: Some(at(7 * 24 * 60)),
        resolve_by: Some(at(14 * 24 * 60)),
    }
    .encode_to_vec();
    let dispatch = (CASE_DISPATCHED, "dcc-310105", "housing");
    append(written(RESIDENT, 1, dispatch, dispatched, resident)).await;
    let broken = append(written(BROKEN, 0, by_urban, b"\xff\xff\xff".to_vec(), 0)).await;
    V1Log {
        patrol,
        resident,
        broken,
        last: broken,
        patrol_body,
    }
}

async fn history(hub: &Hub, case_id: &str) -> Vec<v1::HistoryEvent> {
    let request = v1::GetHistoryRequest {
        aggregate: format!("case/{case_id}"),
        page_size: 100,
        page_token: String::new(),
    };
    hub.auditors()
        .get_history(from(AUDITOR, request))
        .await
        .unwrap_or_else(|s| panic!("history of {case_id}: {s:?}"))
        .into_inner()
        .events
}

async fn state_as_of(
    hub: &Hub,
    case_id: &str,
    position: u64,
) -> Result<v1::GetStateAsOfResponse, tonic::Status> {
    let request = v1::GetStateAsOfRequest {
        aggregate: format!("case/{case_id}"),
        as_of: Some(AsOf::Position(position)),
    };
    hub.auditors()
        .get_state_as_of(from(AUDITOR, request))
        .await
        .map(|r| r.into_inner())
}

/// The row of `case_id` (at `position`, when given) among `rows`.
fn row_of<'a>(
    rows: &'a [prost_types::Struct],
    case_id: &str,
    position: Option<u64>,
) -> &'a prost_types::Struct {
    rows.iter()
        .find(|r| {
            text(r, "case_id").as_deref() == Some(case_id)
                && position.is_none_or(|p| text(r, "position") == Some(p.to_string()))
        })
        .unwrap_or_else(|| panic!("no row of {case_id} at {position:?}: {rows:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_written_with_reported_v1_is_read_as_v2_and_never_rewritten() {
    let nats = Nats::start().await;
    let log = v1_log(&nats).await;
    let hub = HubBuilder::on(&nats).start().await;

    // The case queue: each v1 report with the channel its upcaster derived.
    let patrol = read_case(&hub, PATROL, log.last).await;
    assert_eq!(patrol.channel, v1::ReportChannel::GridPatrol as i32);
    assert_eq!(
        (patrol.status, patrol.holder.as_str()),
        (v1::CaseStatus::Reported as i32, "dcc-310104")
    );
    let resident = read_case(&hub, RESIDENT, log.last).await;
    assert_eq!(resident.channel, v1::ReportChannel::Unrecorded as i32);
    assert_eq!(
        (resident.status, resident.holder.as_str()),
        (v1::CaseStatus::Dispatched as i32, "housing")
    );
    // The datasets: the queue row shows the channel, the timeline the version read.
    let queue = rows_as(&hub, Some("dcc-310104"), read("case_queue", log.last))
        .await
        .expect("the command centre reads its queue");
    assert_eq!(
        text(row_of(&queue.rows, PATROL, None), "channel").as_deref(),
        Some("REPORT_CHANNEL_GRID_PATROL")
    );
    let timeline = rows_as(&hub, Some("dcc-310104"), read("case_timeline", log.last))
        .await
        .expect("the command centre reads its cases' timelines");
    assert_eq!(
        text(
            row_of(&timeline.rows, PATROL, Some(log.patrol)),
            "event_type"
        )
        .as_deref(),
        Some("gov.hub.case.reported.v2")
    );

    // The auditors' history: the body in the v2 shape, naming what the log holds.
    let events = history(&hub, PATROL).await;
    let [report] = events.as_slice() else {
        panic!("one event: {events:?}")
    };
    assert_eq!(
        (report.event_type.as_str(), report.schema_version),
        ("gov.hub.case.reported.v2", 2)
    );
    assert_eq!(
        (
            report.stored_event_type.as_str(),
            report.stored_schema_version
        ),
        ("gov.hub.case.reported.v1", 1)
    );
    let body = report.body.as_ref().expect("a case body");
    assert_eq!(body.type_url, "type.googleapis.com/gov.hub.v1.CaseReported");
    let shown = v1::CaseReported::decode(body.value.as_slice()).expect("a v2 body");
    let mut stored = v1::CaseReported::decode(log.patrol_body.as_slice()).expect("a v1 body");
    stored.channel = v1::ReportChannel::GridPatrol as i32;
    assert_eq!(shown, stored, "the stored report with its channel added");
    // The operators' replay: selected by the type the log holds, shown in the v2 shape.
    let mut replay = hub
        .admin()
        .replay(from(
            "big-data-centre",
            v1::ReplayRequest {
                aggregate: format!("case/{PATROL}"),
                event_types: vec!["gov.hub.case.reported.v1".into()],
                ..Default::default()
            },
        ))
        .await
        .expect("an operator replays")
        .into_inner();
    let mut replayed = Vec::new();
    while let Some(batch) = replay.message().await.expect("the replay goes on") {
        replayed.extend(batch.events);
    }
    let [again] = replayed.as_slice() else {
        panic!("the one report: {replayed:?}")
    };
    assert_eq!(
        (again.event_type.as_str(), again.stored_event_type.as_str()),
        ("gov.hub.case.reported.v2", "gov.hub.case.reported.v1")
    );
    assert_eq!(
        again.body, report.body,
        "the replay shows what the history shows"
    );
    // The state as of the report, folded as command handling folds it.
    let state = state_as_of(&hub, PATROL, log.patrol)
        .await
        .expect("the state as of the v1 report");
    assert!(state.exists && state.events == 1, "{state:?}");
    let json: serde_json::Value = serde_json::from_str(&state.state_json).expect("json");
    assert_eq!(json["status"], "Reported", "{json}");

    // Commands on cases the v1 log holds are decided on their upcast state.
    let dispatched = cmd::dispatch(
        &hub,
        "dcc-310104",
        "up-d-1",
        PATROL,
        "urban-management",
        Some(log.patrol),
    )
    .await
    .expect("a v1-reported case is dispatched at its version");
    let patrol = read_case(&hub, PATROL, dispatched.position).await;
    assert_eq!(
        (patrol.status, patrol.holder.as_str(), patrol.channel),
        (
            v1::CaseStatus::Dispatched as i32,
            "urban-management",
            v1::ReportChannel::GridPatrol as i32
        )
    );
    cmd::accept(&hub, "housing", "up-a-1", RESIDENT, None)
        .await
        .expect("a case dispatched before the upgrade is accepted");
    let events = history(&hub, PATROL).await;
    let read_as: Vec<_> = events
        .iter()
        .map(|e| (e.event_type.as_str(), e.stored_event_type.as_str()))
        .collect();
    assert_eq!(
        read_as,
        [
            ("gov.hub.case.reported.v2", "gov.hub.case.reported.v1"),
            ("gov.hub.case.dispatched.v1", ""),
        ]
    );

    // A report whose stored body its upcaster cannot read stops that case alone, named.
    let refused = state_as_of(&hub, BROKEN, log.last)
        .await
        .expect_err("its state cannot be told");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("gov.hub.case.reported.v1 there has a body this version cannot decode")
            && refused
                .message()
                .contains(&format!("position {}", log.broken)),
        "{}",
        refused.message()
    );
    let broken = history(&hub, BROKEN).await;
    assert_eq!(
        (
            broken[0].event_type.as_str(),
            broken[0].stored_event_type.as_str()
        ),
        ("gov.hub.case.reported.v1", ""),
        "shown as stored"
    );

    // New reports are written as v2, with the channel the department named.
    let fresh = hub
        .commands()
        .report_case(from("housing", complaint("up-new")))
        .await
        .expect("a new report")
        .into_inner();
    assert_eq!(
        read_case(&hub, &fresh.case_id, fresh.position)
            .await
            .channel,
        v1::ReportChannel::Hotline as i32
    );

    // The log holds every event as it was written, the v1 reports included.
    let js = nats.jetstream().await;
    let stream = js.get_stream("GOV_EVENTS").await.expect("stream");
    let header = |m: &async_nats::jetstream::message::StreamMessage, name: &str| {
        m.headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let raw = stream.get_raw_message(log.patrol).await.expect("stored");
    assert_eq!(header(&raw, "ce-type"), "gov.hub.case.reported.v1");
    assert_eq!(header(&raw, "ce-schemaversion"), "1");
    assert_eq!(raw.payload.as_ref(), log.patrol_body.as_slice());
    let raw = stream
        .get_raw_message(fresh.position)
        .await
        .expect("stored");
    assert_eq!(header(&raw, "ce-type"), "gov.hub.case.reported.v2");
    assert_eq!(header(&raw, "ce-schemaversion"), "2");
    assert_eq!(log.resident, log.patrol + 1);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_carry_a_v1_report_as_v2_and_a_v1_filter_still_finds_it() {
    let nats = Nats::start().await;
    let log = v1_log(&nats).await;
    let hub = HubBuilder::on(&nats).start().await;

    // On NATS: the command centre's feed stream holds the report as version 2.
    let js = nats.jetstream().await;
    let messages = crate::feeds::feed_reaches(&js, "FEED_DCC_310104", log.patrol).await;
    let report = messages
        .iter()
        .find(|m| {
            m.headers.get("hub-position").map(|v| v.as_str()) == Some(&log.patrol.to_string())
        })
        .expect("the v1 report is in its owner's feed");
    let header = |name: &str| report.headers.get(name).map(|v| v.as_str().to_owned());
    assert_eq!(
        header("ce-type").as_deref(),
        Some("gov.hub.case.reported.v2")
    );
    assert_eq!(header("ce-schemaversion").as_deref(), Some("2"));
    let body = v1::CaseReported::decode(report.payload.as_ref()).expect("a v2 body");
    assert_eq!(body.channel, v1::ReportChannel::GridPatrol as i32);

    // Over gRPC, a subscription naming the first version finds the report in the second.
    let request = v1::SubscribeRequest {
        start_position: 1,
        event_types: vec!["gov.hub.case.reported.v1".into()],
        ..Default::default()
    };
    let mut stream = hub
        .feeds()
        .subscribe(from("urban-management", request))
        .await
        .expect("subscribe")
        .into_inner();
    let event = crate::feeds::next_event(&mut stream)
        .await
        .expect("the report");
    assert_eq!(event.position, log.patrol);
    assert_eq!(
        event.attributes.get("ce-type").map(String::as_str),
        Some("gov.hub.case.reported.v2")
    );
    let body = v1::CaseReported::decode(event.data.as_slice()).expect("a v2 body");
    assert_eq!(body.channel, v1::ReportChannel::GridPatrol as i32);
    hub.stop().await.expect("clean stop");
}
