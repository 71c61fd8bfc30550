//! Idempotency that holds while `command_state` lags or rebuilds: a retry long after the
//! duplicate window gets its first result whatever the index knows, a new command waits for
//! an index that could miss an earlier use of its request id, and an import stores nothing
//! when any item reuses a request id, however recently it was used.

use std::time::Duration;

use hub_api::v1;
use hub_tests::{Hold, Hub, HubBuilder, Nats, wait_until};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_types::StatusExt;

use hub_tests::fixtures::{historic, import_chunks};
use hub_tests::wait_for_duplicate_window;

use crate::{events_in_log, from, incident};

const CARE_COMMANDS: &str = "gov.hub.v1.CareCommandService";

fn register(rid: &str) -> v1::RegisterCareRequest {
    v1::RegisterCareRequest {
        request_id: rid.into(),
        name: "王五".into(),
        identity_number: "11010519491231002X".into(),
        category: v1::CareCategory::LeftBehindChild as i32,
        community_code: "310104001001".into(),
        risk_level: v1::RiskLevel::Low as i32,
        ..Default::default()
    }
}

fn visit(rid: &str, care_id: &str, n: u32) -> v1::LogCareVisitRequest {
    v1::LogCareVisitRequest {
        request_id: rid.into(),
        care_id: care_id.into(),
        expected_version: None,
        // A fixed past instant per visit: a retry sends the very same content.
        visited_at: Some(prost_types::Timestamp {
            seconds: 1_780_000_000 + i64::from(n) * 60,
            nanos: 0,
        }),
        visitor: "CA-017".into(),
        notes: format!("第{n}次走访 visit {n}"),
    }
}

async fn serving(hub: &Hub, service: &str) -> bool {
    HealthClient::new(hub.channel())
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
        == ServingStatus::Serving as i32
}

fn start(nats: &Nats, dir: &std::path::Path) -> HubBuilder {
    let mut builder = HubBuilder::on(nats).data_dir(dir);
    builder.config_mut().nats.duplicate_window_secs = 1;
    builder.config_mut().commands.index_wait_ms = 2000;
    builder
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oldest_of_forty_commands_retried_after_the_window_gets_its_first_result_caught_up_or_rebuilding()
 {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let hub = start(&nats, dir.path()).start().await;
    let registered = hub
        .care()
        .register_care(from("civil-affairs", register("old-0")))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    let mut visits = Vec::new();
    for n in 1..40 {
        let result = hub
            .care()
            .log_care_visit(from(
                "civil-affairs",
                visit(&format!("old-{n}"), &registered.id, n),
            ))
            .await
            .expect("visit")
            .into_inner()
            .result
            .expect("result");
        visits.push(result);
    }
    let count = events_in_log(&js).await;
    assert_eq!(count, 40);
    wait_for_duplicate_window(&js).await;
    let count = events_in_log(&js).await;

    // The retries of the oldest two commands: the registration and the first visit.
    let retry = async |hub: &Hub, count: u64| {
        let again = hub
            .care()
            .register_care(from("civil-affairs", register("old-0")))
            .await
            .expect("retry of the registration")
            .into_inner()
            .result
            .expect("result");
        assert_eq!(again, registered);
        let again = hub
            .care()
            .log_care_visit(from("civil-affairs", visit("old-1", &registered.id, 1)))
            .await
            .expect("retry of the first visit")
            .into_inner()
            .result
            .expect("result");
        assert_eq!(again, visits[0]);
        assert_eq!(
            events_in_log(&js).await,
            count,
            "the retries stored nothing"
        );
    };

    // With command_state caught up.
    hub.read_model("command_state")
        .wait_for(count, Duration::from_secs(10))
        .await
        .expect("command_state catches up");
    retry(&hub, count).await;
    hub.stop().await.expect("stop");

    // With command_state rebuilding from an empty folder, held before it applies anything.
    std::fs::remove_dir_all(dir.path().join("read-models").join("command_state"))
        .expect("remove command_state");
    let builder = start(&nats, dir.path());
    let hold = Hold::new(&builder.consumer("command_state"));
    let hub = builder.start().await;
    assert_eq!(hub.read_model("command_state").state().position, 0);
    assert!(
        !serving(&hub, CARE_COMMANDS).await,
        "the command services are NOT_SERVING while command_state rebuilds"
    );
    retry(&hub, count).await;
    // A new command cannot be decided yet: an earlier use of its request id elsewhere could
    // not be ruled out.
    let status = hub
        .care()
        .log_care_visit(from("civil-affairs", visit("old-40", &registered.id, 40)))
        .await
        .expect_err("not while rebuilding");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(events_in_log(&js).await, count);

    // Once it has caught up, the services serve and the new command goes through.
    hold.release();
    wait_until(
        "the care commands to serve",
        Duration::from_secs(20),
        || async { serving(&hub, CARE_COMMANDS).await.then_some(()) },
    )
    .await;
    hub.care()
        .log_care_visit(from("civil-affairs", visit("old-40", &registered.id, 40)))
        .await
        .expect("a new visit");
    retry(&hub, count + 1).await;
}

async fn import(hub: &Hub, rids: &[&str]) -> Result<v1::ImportCasesResponse, tonic::Status> {
    let cases: Vec<v1::HistoricCase> = rids.iter().map(|r| historic(r, 1_700_000_000)).collect();
    hub.commands()
        .import_cases(import_chunks(&cases, 1000))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_reusing_a_request_id_just_used_stores_nothing_while_the_index_lags() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let mut builder = HubBuilder::on(&nats).data_dir(dir.path());
    builder.config_mut().commands.index_wait_ms = 1000;
    let hub = builder.start().await;
    // Once the index is up to date, it stops applying the log; a report uses request id
    // "imp-x" meanwhile.
    assert!(
        hub.read_model("command_state")
            .wait_complete_within(Duration::from_secs(60), Duration::from_secs(20))
            .await,
        "command_state catches up at start"
    );
    let hold = Hold::new(&hub.consumer("command_state"));
    hub.commands()
        .report_case(from("urban-management", incident("imp-x")))
        .await
        .expect("report");
    let count = events_in_log(&js).await;

    // The import cannot see "imp-x" in the index yet: it waits, then answers UNAVAILABLE,
    // and stores nothing (before, its batch collided with the report's event id and the
    // items were stored one by one, all but the reused one).
    let status = import(&hub, &["imp-1", "imp-x", "imp-2"])
        .await
        .expect_err("the index lags");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(events_in_log(&js).await, count, "nothing stored");

    // Once the index has caught up, the reuse is refused, naming the item; still nothing.
    hold.release();
    hub.read_model("command_state")
        .wait_for(count, Duration::from_secs(20))
        .await
        .expect("command_state catches up");
    let status = import(&hub, &["imp-1", "imp-x", "imp-2"])
        .await
        .expect_err("a reused request id");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "cases[1].request_id"
    );
    assert_eq!(events_in_log(&js).await, count, "nothing stored");
    // The same import without the reused id goes through.
    let done = import(&hub, &["imp-1", "imp-2"]).await.expect("import");
    assert_eq!(done.imported, 2);
    assert_eq!(events_in_log(&js).await, count + 2);
}
