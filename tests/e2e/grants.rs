//! Data-sharing grants over gRPC: asked by one department, decided by the dataset's owner,
//! lapsed by the hub at their expiry.

use std::sync::Arc;
use std::time::Duration;

use hub_api::v1;
use hub_domain::clock::{Clock, ManualClock};
use hub_tests::{Hub, HubBuilder, Nats, wait_until};
use jiff::SignedDuration;
use tonic::Code;
use tonic_types::StatusExt;

use crate::from;

fn ask(rid: &str, fields: &[&str], expires_at: jiff::Timestamp) -> v1::RequestGrantRequest {
    v1::RequestGrantRequest {
        request_id: rid.into(),
        dataset: "care_roster".into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        purpose: "排查辖区重点人员 checking persons at risk in a precinct".into(),
        expires_at: Some(prost_types::Timestamp {
            seconds: expires_at.as_second(),
            nanos: 0,
        }),
    }
}

async fn request(
    hub: &Hub,
    rid: &str,
    fields: &[&str],
    expires_at: jiff::Timestamp,
) -> Result<String, tonic::Status> {
    let answer = hub
        .grants()
        .request_grant(from("public-security", ask(rid, fields, expires_at)))
        .await?;
    Ok(answer.into_inner().result.expect("result").id)
}

async fn approve(
    hub: &Hub,
    by: &str,
    rid: &str,
    id: &str,
) -> Result<v1::CommandResult, tonic::Status> {
    let request = v1::ApproveGrantRequest {
        request_id: rid.into(),
        grant_id: id.into(),
        expected_version: None,
    };
    hub.grants()
        .approve_grant(from(by, request))
        .await
        .map(|r| r.into_inner().result.expect("result"))
}

async fn grant_events(js: &async_nats::jetstream::Context, event_type: &str) -> usize {
    let stream = js.get_stream("GOV_EVENTS").await.expect("stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut count = 0;
    for position in 1..=last {
        let message = stream.get_raw_message(position).await.expect("message");
        count += usize::from(
            message
                .headers
                .get("ce-type")
                .is_some_and(|t| t.as_str() == event_type),
        );
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_decided_by_the_datasets_owner_and_lapses_once_at_its_expiry() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let hub = HubBuilder::on(&nats).clock(clock.clone()).start().await;
    let in_30_days = clock.now() + SignedDuration::from_hours(24 * 30);

    // Refused requests: a field the dataset lacks, an expiry in the past.
    let status = request(&hub, "g-0", &["name", "salary"], in_30_days)
        .await
        .expect_err("unknown field");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "fields"
    );
    let past = clock.now() - SignedDuration::from_hours(1);
    let status = request(&hub, "g-0", &["name"], past)
        .await
        .expect_err("expiry in the past");
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "expires_at"
    );

    // Asked by public security, decided by civil affairs, the dataset's owner.
    let id = request(&hub, "g-1", &["name", "risk_level"], in_30_days)
        .await
        .expect("request");
    let status = approve(&hub, "public-security", "a-1", &id)
        .await
        .expect_err("the requester cannot approve");
    assert_eq!(status.code(), Code::PermissionDenied);
    approve(&hub, "civil-affairs", "a-1", &id)
        .await
        .expect("approve");
    let status = approve(&hub, "civil-affairs", "a-2", &id)
        .await
        .expect_err("approved already");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let revoke = v1::RevokeGrantRequest {
        request_id: "rv-1".into(),
        grant_id: id.clone(),
        expected_version: None,
        reason: "purpose fulfilled".into(),
    };
    hub.grants()
        .revoke_grant(from("civil-affairs", revoke))
        .await
        .expect("revoke");

    let rejected = request(&hub, "g-2", &["name"], in_30_days)
        .await
        .expect("request");
    let reject = v1::RejectGrantRequest {
        request_id: "rj-1".into(),
        grant_id: rejected,
        expected_version: None,
        reason: "not minimum necessary".into(),
    };
    hub.grants()
        .reject_grant(from("civil-affairs", reject))
        .await
        .expect("reject");

    // An approved grant lapses at its expiry: the hub expires it once.
    let lapsing = request(&hub, "g-3", &["risk_level"], in_30_days)
        .await
        .expect("request");
    approve(&hub, "civil-affairs", "a-3", &lapsing)
        .await
        .expect("approve");
    clock.advance(SignedDuration::from_hours(24 * 31));
    wait_until("the grant to expire", Duration::from_secs(30), || async {
        (grant_events(&js, "gov.hub.grant.expired.v1").await >= 1).then_some(())
    })
    .await;
    // Proof that supervision kept scanning after the expiry: a new grant that lapses later.
    let later = request(
        &hub,
        "g-4",
        &["risk_level"],
        clock.now() + SignedDuration::from_hours(1),
    )
    .await
    .expect("request");
    clock.advance(SignedDuration::from_hours(2));
    wait_until(
        "the second grant to expire",
        Duration::from_secs(30),
        || async { (grant_events(&js, "gov.hub.grant.expired.v1").await >= 2).then_some(()) },
    )
    .await;
    assert_eq!(
        grant_events(&js, "gov.hub.grant.expired.v1").await,
        2,
        "each grant expired once; revoked and rejected ones not at all"
    );
    let status = approve(&hub, "civil-affairs", "a-4", &later)
        .await
        .expect_err("expired");
    assert_eq!(status.code(), Code::FailedPrecondition);
    hub.stop().await.expect("clean stop");
}
