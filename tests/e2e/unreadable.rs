//! An event this version cannot read (a newer type during a rolling upgrade, a corrupt body)
//! stops that one aggregate, raises an alarm, and nothing else.

use std::time::Duration;

use async_nats::HeaderMap;
use hub_tests::{Hub, HubBuilder, Nats, wait_until};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::{cmd, from, incident, read_case};

/// Appends to a case's subject as another writer would: a newer hub version's event type, or
/// a known type with a body that does not decode.
async fn append_raw(nats: &Nats, case_id: &str, event_type: &str, body: &'static [u8]) -> u64 {
    let js = nats.jetstream().await;
    let mut headers = HeaderMap::new();
    let id = format!("raw-{case_id}-{event_type}");
    for (name, value) in [
        ("Nats-Msg-Id", id.as_str()),
        ("ce-specversion", "1.0"),
        ("ce-id", id.as_str()),
        ("ce-source", "/departments/dcc-310104"),
        ("ce-type", event_type),
        ("ce-time", "2026-03-02T01:00:00Z"),
        ("ce-datacontenttype", "application/protobuf"),
        ("ce-department", "urban-management"),
        ("ce-classification", "internal"),
        ("ce-schemaversion", "2"),
    ] {
        headers.insert(name, value);
    }
    js.publish_with_headers(format!("gov.events.case.{case_id}"), headers, body.into())
        .await
        .expect("publish")
        .await
        .expect("stored")
        .sequence
}

async fn report(hub: &Hub, rid: &str) -> (String, u64) {
    let answer = hub
        .commands()
        .report_case(from("urban-management", incident(rid)))
        .await
        .expect("report")
        .into_inner();
    (answer.case_id, answer.position)
}

async fn alarms_status(hub: &Hub) -> i32 {
    HealthClient::new(hub.channel())
        .check(HealthCheckRequest {
            service: "hub.alarms".into(),
        })
        .await
        .expect("health check")
        .into_inner()
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_event_blocks_its_case_alone_with_an_alarm() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let (newer, _) = report(&hub, "u-1").await;
    let (corrupt, _) = report(&hub, "u-2").await;
    let (other, _) = report(&hub, "u-3").await;
    assert_eq!(alarms_status(&hub).await, ServingStatus::Serving as i32);

    let unknown_at = append_raw(&nats, &newer, "gov.hub.case.frobnicated.v2", b"\x0a\x03abc").await;
    let corrupt_at = append_raw(&nats, &corrupt, "gov.hub.case.accepted.v1", b"\xff\xff\xff").await;

    // Commands on either case are UNAVAILABLE, naming the event and its position.
    for (case_id, event_type, position) in [
        (&newer, "gov.hub.case.frobnicated.v2", unknown_at),
        (&corrupt, "gov.hub.case.accepted.v1", corrupt_at),
    ] {
        let status = cmd::dispatch(
            &hub,
            "dcc-310104",
            &format!("d-{case_id}"),
            case_id,
            "urban-management",
            None,
        )
        .await
        .expect_err("blocked");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            status
                .message()
                .contains(&format!("{event_type} at position {position}")),
            "{}",
            status.message()
        );
    }
    // Every other case goes on, on the write path and the read path.
    let dispatched = cmd::dispatch(
        &hub,
        "dcc-310104",
        "d-other",
        &other,
        "urban-management",
        None,
    )
    .await
    .expect("another case is dispatched");
    let view = read_case(&hub, &other, dispatched.position).await;
    assert_eq!(view.holder, "urban-management");
    let (fresh, position) = report(&hub, "u-4").await;
    assert_eq!(read_case(&hub, &fresh, position).await.case_id, fresh);
    // The alarm is raised.
    wait_until("the alarm", Duration::from_secs(10), || async {
        (alarms_status(&hub).await == ServingStatus::NotServing as i32).then_some(())
    })
    .await;
}
