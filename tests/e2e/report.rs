//! Report a case over gRPC, read it back from its department's read model.

use std::time::Duration;

use hub_api::v1;
use hub_tests::{HubBuilder, Nats};
use prost::Message;

use crate::{complaint, events_in_log, from, incident, queue_ids, read_case};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reported_incident_is_on_the_log_with_cloudevents_headers_and_readable_at_its_position() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;

    let answer = hub
        .commands()
        .report_case(from("urban-management", incident("gw-app-0001")))
        .await
        .expect("report accepted")
        .into_inner();
    assert_eq!(answer.event_ids.len(), 1);
    assert!(answer.position >= 1);

    // The query reads its own write: it waits for the position, no sleeping.
    let got = hub
        .queries()
        .get_case(from(
            "urban-management",
            v1::GetCaseRequest {
                case_id: answer.case_id.clone(),
                min_position: answer.position,
            },
        ))
        .await
        .expect("case readable")
        .into_inner();
    assert!(got.position >= answer.position);
    let case = got.r#case.expect("case returned");
    assert_eq!(case.case_id, answer.case_id);
    assert_eq!(case.status, v1::CaseStatus::Reported as i32);
    assert_eq!(case.holder, "dcc-310104", "waits in Xuhui's dispatch queue");
    assert_eq!(
        case.urgency,
        v1::Urgency::Urgent as i32,
        "fire hazards are urgent"
    );
    assert_eq!(case.reported_by, "urban-management");
    assert_eq!(case.description, "消防通道被电动车堵塞 fire lane blocked");
    assert_eq!(case.reported_position, answer.position);

    assert_eq!(
        queue_ids(&hub, "dcc-310104", answer.position).await,
        [answer.case_id.clone()]
    );
    assert!(
        queue_ids(&hub, "dcc-310105", answer.position)
            .await
            .is_empty(),
        "Changning's queue does not hold a Xuhui case"
    );

    // The stored message: subject per aggregate, Nats-Msg-Id, CloudEvents binary mode, protobuf body.
    let js = nats.jetstream().await;
    let stream = js.get_stream("GOV_EVENTS").await.expect("stream");
    let raw = stream
        .get_raw_message(answer.position)
        .await
        .expect("stored message");
    assert_eq!(
        raw.subject.as_str(),
        format!("gov.events.case.{}", answer.case_id)
    );
    let headers = &raw.headers;
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header("Nats-Msg-Id"), answer.event_ids[0]);
    assert_eq!(header("ce-id"), answer.event_ids[0]);
    assert_eq!(header("ce-specversion"), "1.0");
    assert_eq!(header("ce-type"), "gov.hub.case.reported.v2");
    assert_eq!(header("ce-schemaversion"), "2");
    assert_eq!(header("ce-source"), "/departments/urban-management");
    assert_eq!(header("ce-subject"), format!("case/{}", answer.case_id));
    assert_eq!(header("ce-datacontenttype"), "application/protobuf");
    assert_eq!(
        header("ce-dataschema"),
        "type.googleapis.com/gov.hub.v1.CaseReported"
    );
    // The owner, not the issuer: an undispatched case is its district command centre's.
    assert_eq!(header("ce-department"), "dcc-310104");
    assert_eq!(header("ce-classification"), "internal");
    assert_eq!(header("ce-requestid"), "gw-app-0001");
    // The person who acted for the department, as the request named them.
    assert_eq!(
        header("ce-actingperson"),
        hub_tests::fixtures::ACTING_PERSON
    );
    assert!(
        header("ce-time").ends_with('Z'),
        "ce-time is RFC 3339 UTC: {}",
        header("ce-time")
    );
    let body = v1::CaseReported::decode(raw.payload.as_ref()).expect("body is a CaseReported");
    assert_eq!(body.case_id, answer.case_id);
    assert_eq!(body.dispatch_unit, "dcc-310104");
    // The request named no channel: a grid worker's report comes from patrol.
    assert_eq!(body.channel, v1::ReportChannel::GridPatrol as i32);

    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_inside_the_duplicate_window_returns_the_first_result_and_stores_nothing_new() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;

    let first = hub
        .commands()
        .report_case(from("housing", complaint("pm-7")))
        .await
        .expect("first")
        .into_inner();
    let again = hub
        .commands()
        .report_case(from("housing", complaint("pm-7")))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(again, first);
    assert_eq!(events_in_log(&js).await, 1);

    // The same request id with other content is refused, naming the field.
    let mut changed = complaint("pm-7");
    changed.description = "another matter".into();
    let status = hub
        .commands()
        .report_case(from("housing", changed))
        .await
        .expect_err("reused request id");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("request_id"),
        "{}",
        status.message()
    );
    assert_eq!(events_in_log(&js).await, 1);

    // The same request id from another department is another command.
    let other = hub
        .commands()
        .report_case(from("civil-affairs", complaint("pm-7")))
        .await
        .expect("other department")
        .into_inner();
    assert_ne!(other.case_id, first.case_id);
    assert_eq!(events_in_log(&js).await, 2);

    let case = read_case(&hub, &first.case_id, other.position).await;
    assert_eq!(
        case.holder, "dcc-310105",
        "the complaint's district decides its queue"
    );
    assert_eq!(case.urgency, v1::Urgency::General as i32);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_stands_at_the_logs_last_position_when_nothing_it_consumes_is_pending() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("r-1")))
        .await
        .expect("report")
        .into_inner();

    // An event the case models do not consume moves the log past the case's last event.
    let js = nats.jetstream().await;
    let appender = hub_log::Appender::new(js.client(), Duration::from_secs(5));
    let envelope = hub_log::Envelope {
        id: "grant-event-1".into(),
        source: "/departments/public-security".into(),
        event_type: "gov.hub.grant.requested.v1".into(),
        subject: "grant/g-1".into(),
        time: jiff::Timestamp::now(),
        dataschema: "type.googleapis.com/gov.hub.v1.GrantRequested".into(),
        department: "public-security".into(),
        classification: hub_log::Classification::Internal,
        schema_version: 1,
        correlation_id: String::new(),
        causation_id: String::new(),
        traceparent: String::new(),
        request_id: String::new(),
        command_hash: String::new(),
        acting_person: String::new(),
    };
    let other = appender
        .append(hub_log::NewEvent {
            subject: "gov.events.grant.g-1".into(),
            envelope,
            body: bytes::Bytes::new(),
            expected_last_subject_sequence: None,
        })
        .await
        .expect("append")
        .position;
    assert_eq!(other, reported.position + 1);

    let got = hub
        .queries()
        .get_case(from(
            "dcc-310104",
            v1::GetCaseRequest {
                case_id: reported.case_id.clone(),
                min_position: other,
            },
        ))
        .await
        .expect("model reaches the log's end")
        .into_inner();
    assert!(
        got.position >= other,
        "position {} below {other}",
        got.position
    );

    // A position the log has not reached fails at the call's deadline, saying where the model is.
    let mut request = from(
        "dcc-310104",
        v1::GetCaseRequest {
            case_id: reported.case_id,
            min_position: other + 100,
        },
    );
    request.set_timeout(Duration::from_millis(300));
    let status = hub
        .queries()
        .get_case(request)
        .await
        .expect_err("position not reached");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains(&format!("at position {other}")),
        "{}",
        status.message()
    );
    hub.stop().await.expect("clean stop");
}
