//! Every error class of the command side, concurrent writers, and retries at any later time.

use hub_api::v1;
use hub_tests::{HubBuilder, Nats};
use tonic::Code;
use tonic_types::StatusExt;

use crate::cmd::*;
use crate::{events_in_log, from, incident, read_case};

/// A reported case dispatched to urban management: (case id, version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_code_and_reason_and_appends_nothing() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;
    let (id, version) = hub.dispatched_case("e-1", "urban-management").await;
    let before = events_in_log(&js).await;

    let status = accept(
        &hub,
        "urban-management",
        "x-1",
        "00000000-0000-0000-0000-000000000000",
        None,
    )
    .await
    .expect_err("no such case");
    // A department learns nothing of a case it has no role on, not even that it is missing.
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("no role on this case, or there is no such case"),
        "{}",
        status.message()
    );

    // A party to the case (its command centre) is told which rule it broke.
    let status = accept(&hub, "dcc-310104", "x-2", &id, None)
        .await
        .expect_err("not the holder");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status
            .message()
            .contains("only the department holding the case"),
        "{}",
        status.message()
    );

    let status = close(&hub, "dcc-310104", "x-3", &id)
        .await
        .expect_err("closing an open case");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status
            .message()
            .contains("cannot close a case that is dispatched"),
        "{}",
        status.message()
    );

    let status = rate(&hub, "urban-management", "x-4", &id, 9)
        .await
        .expect_err("rating out of range");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "rating"
    );

    let status = transfer(&hub, "urban-management", "x-5", &id, "dcc-310105")
        .await
        .expect_err("transfer to a dispatch unit");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "to_department"
    );

    let status = accept(&hub, "urban-management", "x-6", &id, Some(version - 1))
        .await
        .expect_err("stale version");
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    let info = status.get_details_error_info().expect("ErrorInfo details");
    assert_eq!(info.reason, "VERSION_CONFLICT");
    assert_eq!(
        info.metadata.get("current_version"),
        Some(&version.to_string())
    );

    assert_eq!(
        events_in_log(&js).await,
        before,
        "no refusal appended anything"
    );

    // A refused request id is not remembered: corrected, the same id succeeds.
    let accepted = accept(&hub, "urban-management", "x-6", &id, Some(version))
        .await
        .expect("the allowed command");
    assert_eq!(events_in_log(&js).await, before + 1);
    assert_eq!(
        read_case(&hub, &id, accepted.position).await.status,
        v1::CaseStatus::Accepted as i32
    );
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_to_one_case_never_both_win() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;
    let (id, version) = hub.dispatched_case("race", "urban-management").await;
    let before = events_in_log(&js).await;

    // Eight accepts naming the same version: one wins, the rest learn the new version.
    let attempts = (0..8).map(|i| {
        let (hub, id) = (&hub, id.clone());
        async move {
            accept(
                hub,
                "urban-management",
                &format!("acc-{i}"),
                &id,
                Some(version),
            )
            .await
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let won: Vec<_> = outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{outcomes:?}");
    for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(lost.code(), Code::Aborted, "{lost:?}");
    }
    assert_eq!(events_in_log(&js).await, before + 1);

    // Eight transfer requests naming no version: each is decided on the current state, so
    // one is accepted and the rest are refused because a transfer is pending.
    let attempts = (0..8).map(|i| {
        let (hub, id) = (&hub, id.clone());
        async move { transfer(hub, "urban-management", &format!("tr-{i}"), &id, "housing").await }
    });
    let outcomes = futures::future::join_all(attempts).await;
    assert_eq!(
        outcomes.iter().filter(|o| o.is_ok()).count(),
        1,
        "{outcomes:?}"
    );
    for lost in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(lost.code(), Code::FailedPrecondition, "{lost:?}");
        assert!(lost.message().contains("pending"), "{}", lost.message());
    }
    assert_eq!(events_in_log(&js).await, before + 2);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hub_instances_share_one_log_without_double_writes() {
    let nats = Nats::start().await;
    let a = HubBuilder::on(&nats).start().await;
    let b = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;
    let (id, version) = a.dispatched_case("two", "urban-management").await;

    // The same case accepted through both at once, naming the same version.
    let (via_a, via_b) = tokio::join!(
        accept(&a, "urban-management", "two-a", &id, Some(version)),
        accept(&b, "urban-management", "two-b", &id, Some(version)),
    );
    assert_eq!(
        [via_a.is_ok(), via_b.is_ok()]
            .iter()
            .filter(|ok| **ok)
            .count(),
        1,
        "{via_a:?} {via_b:?}"
    );
    let count = events_in_log(&js).await;

    // A command done through one hub and retried through the other returns the first result.
    let done = transfer(&a, "urban-management", "two-t", &id, "housing")
        .await
        .expect("transfer via a");
    let retried = transfer(&b, "urban-management", "two-t", &id, "housing")
        .await
        .expect("retry via b");
    assert_eq!(retried, done);
    assert_eq!(events_in_log(&js).await, count + 1);
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_the_duplicate_window_and_a_restart_returns_the_first_result() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = {
        let mut builder = HubBuilder::on(&nats).data_dir(dir.path());
        builder.config_mut().nats.duplicate_window_secs = 1;
        builder.start().await
    };
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("late-1")))
        .await
        .expect("report")
        .into_inner();
    let dispatched = dispatch(
        &hub,
        "dcc-310104",
        "late-d",
        &reported.case_id,
        "urban-management",
        None,
    )
    .await
    .expect("dispatch");
    hub.stop().await.expect("stop");
    hub_tests::wait_for_duplicate_window(&js).await;
    let count = events_in_log(&js).await;

    // A new process over the same data dir: nothing in memory, NATS has forgotten the ids.
    let restart = |dir: &std::path::Path| {
        let mut builder = HubBuilder::on(&nats).data_dir(dir);
        builder.config_mut().nats.duplicate_window_secs = 1;
        builder.start()
    };
    let hub = restart(dir.path()).await;
    let again = hub
        .commands()
        .report_case(from("urban-management", incident("late-1")))
        .await
        .expect("report retried")
        .into_inner();
    assert_eq!(again, reported);
    let again = dispatch(
        &hub,
        "dcc-310104",
        "late-d",
        &reported.case_id,
        "urban-management",
        None,
    )
    .await
    .expect("dispatch retried");
    assert_eq!(again, dispatched);
    assert_eq!(
        events_in_log(&js).await,
        count,
        "the retries appended nothing"
    );

    // The same request id with other content is refused, naming the field.
    let status = dispatch(
        &hub,
        "dcc-310104",
        "late-d",
        &reported.case_id,
        "housing",
        None,
    )
    .await
    .expect_err("reused id");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "request_id"
    );
    hub.stop().await.expect("stop");

    // Without its read models (rebuilt from the log) the hub still knows the first results.
    let fresh = tempfile::tempdir().expect("temp dir");
    let hub = restart(fresh.path()).await;
    let again = dispatch(
        &hub,
        "dcc-310104",
        "late-d",
        &reported.case_id,
        "urban-management",
        None,
    )
    .await
    .expect("dispatch retried");
    assert_eq!(again, dispatched);
    assert_eq!(events_in_log(&js).await, count);
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_are_recognised_however_much_happened_since_and_ids_are_not_shared_across_commands()
{
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;

    // A request id names one command of a department, whatever the RPC: reused for another
    // kind of command it is refused, and nothing is stored.
    let reported = hub
        .commands()
        .report_case(from("civil-affairs", incident("shared-1")))
        .await
        .expect("report")
        .into_inner();
    let register = v1::RegisterCareRequest {
        request_id: "shared-1".into(),
        name: "李四".into(),
        identity_number: "11010519491231002X".into(),
        category: v1::CareCategory::LeftBehindChild as i32,
        community_code: "310104001001".into(),
        risk_level: v1::RiskLevel::Low as i32,
        ..Default::default()
    };
    let status = hub
        .care()
        .register_care(from("civil-affairs", register.clone()))
        .await
        .expect_err("id used by a report");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "request_id"
    );
    assert_eq!(events_in_log(&js).await, 1);

    // A creating command retried after many later commands on its aggregate still gets its
    // first result.
    let register = v1::RegisterCareRequest {
        request_id: "care-1".into(),
        ..register
    };
    let first = hub
        .care()
        .register_care(from("civil-affairs", register.clone()))
        .await
        .expect("register")
        .into_inner();
    let care_id = first.result.as_ref().expect("result").id.clone();
    for i in 0..20 {
        let visit = v1::LogCareVisitRequest {
            request_id: format!("visit-{i}"),
            care_id: care_id.clone(),
            expected_version: None,
            visited_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            visitor: "CA-1".into(),
            notes: String::new(),
        };
        hub.care()
            .log_care_visit(from("civil-affairs", visit))
            .await
            .expect("visit");
    }
    let again = hub
        .care()
        .register_care(from("civil-affairs", register))
        .await
        .expect("retried registration")
        .into_inner();
    assert_eq!(again, first);

    // A command that stored two events (a poor rating: rated, reopened) retried at once.
    let (id, _) = hub.dispatched_case("poor", "urban-management").await;
    accept(&hub, "urban-management", "poor-acc", &id, None)
        .await
        .expect("accept");
    resolve(&hub, "urban-management", "poor-res", &id)
        .await
        .expect("resolve");
    let rated = rate(&hub, "urban-management", "poor-rate", &id, 1)
        .await
        .expect("poor rating");
    assert_eq!(rated.event_ids.len(), 2);
    let count = events_in_log(&js).await;
    let again = rate(&hub, "urban-management", "poor-rate", &id, 1)
        .await
        .expect("retried rating");
    assert_eq!(again, rated);
    assert_eq!(events_in_log(&js).await, count);
    let _ = reported;
    hub.stop().await.expect("clean stop");
}
