//! Key-population care records over gRPC: civil affairs only, sensitive, never echoed.

use hub_api::v1;
use hub_tests::{Hub, HubBuilder, Nats};
use tonic::Code;
use tonic_types::StatusExt;

use crate::{events_in_log, from};

const IDENTITY: &str = "11010519491231002X";

fn register(rid: &str, identity: &str) -> v1::RegisterCareRequest {
    v1::RegisterCareRequest {
        request_id: rid.into(),
        name: "张三".into(),
        identity_number: identity.into(),
        category: v1::CareCategory::ElderlyInHardship as i32,
        community_code: "310104001001".into(),
        risk_level: v1::RiskLevel::Medium as i32,
        ..Default::default()
    }
}

fn ts(t: jiff::Timestamp) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: 0,
    })
}

async fn visit(
    hub: &Hub,
    by: &str,
    rid: &str,
    id: &str,
    at: jiff::Timestamp,
) -> Result<v1::CommandResult, tonic::Status> {
    let request = v1::LogCareVisitRequest {
        request_id: rid.into(),
        care_id: id.into(),
        expected_version: None,
        visited_at: ts(at),
        visitor: "CA-017".into(),
        notes: "身体状况稳定".into(),
    };
    hub.care()
        .log_care_visit(from(by, request))
        .await
        .map(|r| r.into_inner().result.expect("result"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn care_records_are_kept_by_civil_affairs_alone_and_never_echoed() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;
    let now = jiff::Timestamp::now();

    // Another department may not register anyone; a bad identity number is refused by field
    // without being repeated.
    let status = hub
        .care()
        .register_care(from("public-security", register("c-1", IDENTITY)))
        .await
        .expect_err("not civil affairs");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let wrong_check = "110105194912310021";
    let status = hub
        .care()
        .register_care(from("civil-affairs", register("c-1", wrong_check)))
        .await
        .expect_err("check character");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "identity_number"
    );
    assert!(
        !format!("{status:?}").contains(wrong_check),
        "the number is not echoed: {status:?}"
    );
    assert_eq!(events_in_log(&js).await, 0);

    let registered = hub
        .care()
        .register_care(from("civil-affairs", register("c-1", IDENTITY)))
        .await
        .expect("register")
        .into_inner();
    let id = registered.result.expect("result").id;
    let again = hub
        .care()
        .register_care(from("civil-affairs", register("c-1", IDENTITY)))
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(
        again.result.expect("result").id,
        id,
        "a retried registration returns its first result"
    );
    assert_eq!(events_in_log(&js).await, 1);

    // The stored event is classified sensitive and carries no personal data in its headers.
    let stream = js.get_stream("GOV_EVENTS").await.expect("stream");
    let message = stream.get_raw_message(1).await.expect("stored");
    assert_eq!(
        message
            .headers
            .get("ce-classification")
            .expect("classification")
            .as_str(),
        "sensitive"
    );
    assert_eq!(
        message.headers.get("ce-type").expect("type").as_str(),
        "gov.hub.care.registered.v1"
    );
    for (name, values) in message.headers.iter() {
        for value in values {
            assert!(
                !value.as_str().contains(IDENTITY) && !value.as_str().contains("%E5%BC%A0"),
                "{name} leaks: {}",
                value.as_str()
            );
        }
    }

    let future = now + jiff::SignedDuration::from_hours(48);
    let status = visit(&hub, "civil-affairs", "v-0", &id, future)
        .await
        .expect_err("visit in the future");
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "visited_at"
    );
    visit(&hub, "civil-affairs", "v-1", &id, now)
        .await
        .expect("visit");
    let status = visit(&hub, "public-security", "v-2", &id, now)
        .await
        .expect_err("not civil affairs");
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = visit(
        &hub,
        "civil-affairs",
        "v-3",
        "00000000-0000-0000-0000-000000000000",
        now,
    )
    .await
    .expect_err("no such record");
    assert_eq!(status.code(), Code::NotFound);

    let change = |rid: &str, level: v1::RiskLevel| v1::ChangeCareRiskLevelRequest {
        request_id: rid.into(),
        care_id: id.clone(),
        expected_version: None,
        risk_level: level as i32,
        reason: "复查 review".into(),
    };
    let status = hub
        .care()
        .change_care_risk_level(from("civil-affairs", change("r-1", v1::RiskLevel::Medium)))
        .await
        .expect_err("same level");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    hub.care()
        .change_care_risk_level(from("civil-affairs", change("r-2", v1::RiskLevel::High)))
        .await
        .expect("raise");

    let close = v1::CloseCareRequest {
        request_id: "x-1".into(),
        care_id: id.clone(),
        expected_version: None,
        reason: "迁出 moved away".into(),
    };
    hub.care()
        .close_care(from("civil-affairs", close))
        .await
        .expect("close");
    let status = visit(&hub, "civil-affairs", "v-4", &id, now)
        .await
        .expect_err("closed");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(
        events_in_log(&js).await,
        4,
        "register, visit, risk change, close: nothing for the refusals"
    );
    hub.stop().await.expect("clean stop");
}
