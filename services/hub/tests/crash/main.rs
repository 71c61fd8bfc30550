//! Crash tests: the `hub` binary as a child process, stopped at named instants (crash points,
//! built in with the `failpoints` feature that the test build enables) and killed at random
//! ones, then restarted and the commands retried. Whatever the instant: the retry gets the
//! first result, nothing is stored twice, and every read model equals a fresh rebuild.
//!
//! `CRASH_SOAK_KILLS=<n>` runs the random-kill test for n rounds instead of 3.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hub_api::v1;
use hub_api::v1::audit_service_client::AuditServiceClient;
use hub_api::v1::dataset_service_client::DatasetServiceClient;
use hub_store::ReadModelStore;
use hub_tests::fixtures::{care, from, historic, import_chunks, incident};
use hub_tests::{
    HubProcess, Nats, ProcessBuilder, assert_read_models_equal_a_rebuild, default_policy,
    open_stopped, wait_for_duplicate_window,
};

mod duties;
mod random_kills;

const HUB: &str = env!("CARGO_BIN_EXE_hub");

fn process(dir: &Path, nats: &Nats) -> ProcessBuilder {
    ProcessBuilder::new(Path::new(HUB), dir, nats)
}

async fn report(hub: &HubProcess, rid: &str) -> Result<v1::ReportCaseResponse, tonic::Status> {
    hub.commands()
        .report_case(from("urban-management", incident(rid)))
        .await
        .map(|r| r.into_inner())
}

/// Every stored event's (position, ce-id, ce-requestid), in order.
async fn stored(js: &async_nats::jetstream::Context) -> Vec<(u64, String, String)> {
    hub_tests::logged_events(js)
        .await
        .into_iter()
        .map(|e| (e.position, e.id, e.request_id))
        .collect()
}

/// No request id's event is stored twice.
fn assert_once_each(events: &[(u64, String, String)]) {
    let mut seen: HashMap<&str, u64> = HashMap::new();
    for (position, id, _) in events {
        if let Some(first) = seen.insert(id, *position) {
            panic!("event {id} stored twice: at {first} and {position}");
        }
    }
}

/// Starts the hub with `failpoints` and a one-second duplicate window, reports `rid` until
/// the hub stops itself there, waits for the window to pass (so NATS's duplicate check cannot
/// answer the retry: the hub's own records must), restarts it without them, and checks what a
/// retry answers against the log.
async fn crash_at(failpoints: &str, rid: &str) {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let mut hub = process(dir.path(), &nats)
        .failpoints(failpoints)
        .duplicate_window_secs(1)
        .start()
        .await;
    // The answer may or may not come back, depending on where the process stops.
    let first = report(&hub, rid).await.ok();
    stopped_at(&mut hub, failpoints).await;
    wait_for_duplicate_window(&js).await;

    let hub = process(dir.path(), &nats)
        .duplicate_window_secs(1)
        .start_serving_commands()
        .await;
    let again = report(&hub, rid).await.expect("the retry after the crash");
    let events = reports(&js).await;
    assert_eq!(events.len(), 1, "one report, stored once: {events:?}");
    assert_eq!(
        (again.position, again.event_ids.as_slice()),
        (events[0].0, std::slice::from_ref(&events[0].1)),
        "the retry answers with what the log holds"
    );
    if let Some(first) = first {
        assert_eq!(first, again, "the first result again");
    }
    // Every read model catches up and equals a rebuild.
    hub.queries()
        .get_case(from(
            "dcc-310104",
            v1::GetCaseRequest {
                case_id: again.case_id.clone(),
                min_position: again.position,
            },
        ))
        .await
        .expect("the case is readable at its position");
    hub.stop().await;
    let checkpoints = assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
    assert!(
        checkpoints
            .iter()
            .any(|(name, at)| *name == "case_queue" && *at >= 1),
        "{checkpoints:?}"
    );
}

/// Waits for the hub to stop by itself at the crash point named in `failpoints`.
async fn stopped_at(hub: &mut HubProcess, failpoints: &str) {
    let status = hub.exited(Duration::from_secs(60)).await;
    assert!(!status.success(), "stopped by the crash point: {status}");
    let point = failpoints.split('=').next().unwrap_or_default();
    assert!(
        hub.log()
            .contains(&format!("failpoint {point}: stopping the process")),
        "stopped at {point}:\n{}",
        hub.log()
    );
}

/// The event ids `stream` holds, in order; panics on one held twice or out of log order.
async fn feed_ids(js: &async_nats::jetstream::Context, stream: &str) -> Vec<String> {
    let stream = js.get_stream(stream).await.expect("feed stream");
    let state = stream.get_info().await.expect("info").state.clone();
    let mut ids = Vec::new();
    let mut last_position = 0;
    for sequence in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_owned());
        let position: u64 = header("hub-position")
            .and_then(|p| p.parse().ok())
            .expect("hub-position");
        let id = header("ce-id").expect("ce-id");
        assert!(
            position > last_position,
            "{id} at {position} after {last_position}: held twice or out of order"
        );
        last_position = position;
        ids.push(id);
    }
    ids
}

/// Waits until the district command centre's feed holds every report stored, then checks it
/// holds each exactly once: the publisher's outbox neither lost nor repeated one.
async fn feed_holds_each_report_once(js: &async_nats::jetstream::Context) {
    let stored: Vec<String> = reports(js).await.into_iter().map(|(_, id, _)| id).collect();
    let ids = hub_tests::wait_until("the feed to catch up", Duration::from_secs(60), || async {
        let ids = feed_ids(js, "FEED_DCC_310104").await;
        (ids.len() >= stored.len()).then_some(ids)
    })
    .await;
    assert_eq!(
        ids, stored,
        "the feed holds every report once, in log order"
    );
}

/// The stored events of commands (the probes of the duplicate window left out).
async fn reports(js: &async_nats::jetstream::Context) -> Vec<(u64, String, String)> {
    stored(js)
        .await
        .into_iter()
        .filter(|(_, _, request_id)| !request_id.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_append_before_the_answer() {
    crash_at("after-append=return", "crash-1").await;
}

/// Retries every report in `rids`; those `answered` before get their first result again.
/// Returns the highest position answered.
async fn retry_all<'a>(
    hub: &HubProcess,
    rids: impl IntoIterator<Item = &'a String>,
    answered: impl Fn(&str) -> Option<v1::ReportCaseResponse>,
) -> u64 {
    let mut last = 0;
    for rid in rids {
        let again = report(hub, rid)
            .await
            .unwrap_or_else(|s| panic!("retry {rid}: {s:?}"));
        if let Some(first) = answered(rid) {
            assert_eq!(first, again, "retry of {rid}");
        }
        last = last.max(again.position);
    }
    last
}

/// Waits until the command centre's queue has applied `position`.
async fn queue_at(hub: &HubProcess, position: u64) {
    hub.queries()
        .list_cases(from(
            "dcc-310104",
            v1::ListCasesRequest {
                holder: "dcc-310104".into(),
                min_position: position,
                ..Default::default()
            },
        ))
        .await
        .expect("the queue catches up");
}

/// Group commit: the hub stops right after its second batch is stored, before that batch's
/// commands are answered, with 40 reports arriving at once (so batches of several form while
/// the first is in flight). After a restart every report is retried: those answered before
/// get their first result, the rest what the log holds; none is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_group_commit_batches_under_concurrent_reports() {
    let failpoints = "between-group-batches=1*off->return";
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let mut hub = process(dir.path(), &nats)
        .failpoints(failpoints)
        .duplicate_window_secs(1)
        .start()
        .await;
    let rids: Vec<String> = (0..40).map(|i| format!("gc-crash-{i}")).collect();
    let firsts = futures::future::join_all(rids.iter().map(|rid| report(&hub, rid))).await;
    stopped_at(&mut hub, failpoints).await;
    let answered: BTreeMap<&str, v1::ReportCaseResponse> = rids
        .iter()
        .zip(firsts)
        .filter_map(|(rid, first)| first.ok().map(|f| (rid.as_str(), f)))
        .collect();
    let at_crash = reports(&js).await;
    assert!(
        at_crash.len() > answered.len(),
        "the last batch is stored but not answered: {} stored, {} answered",
        at_crash.len(),
        answered.len()
    );
    eprintln!(
        "at the crash: {} reports stored, {} answered",
        at_crash.len(),
        answered.len()
    );
    // Past the duplicate window, so the hub's own records answer the retries, not NATS.
    wait_for_duplicate_window(&js).await;

    let hub = process(dir.path(), &nats)
        .duplicate_window_secs(1)
        .start_serving_commands()
        .await;
    let last = retry_all(&hub, &rids, |rid| answered.get(rid).cloned()).await;
    let events = reports(&js).await;
    assert_once_each(&events);
    assert_eq!(events.len(), rids.len(), "each report stored exactly once");
    assert_eq!(
        &events[..at_crash.len()],
        at_crash.as_slice(),
        "what was stored before the crash stays where it was"
    );
    queue_at(&hub, last).await;
    hub.stop().await;
    assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_read_model_batch_is_written_before_its_flush() {
    crash_at("after-batch-write=return", "crash-2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_read_model_batch_is_visible_before_it_is_flushed_or_acknowledged() {
    crash_at("after-apply=return", "crash-3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_feed_messages_are_published_before_the_outbox_forgets_them() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let mut hub = process(dir.path(), &nats)
        .failpoints("feed-after-publish=return")
        .duplicate_window_secs(1)
        .start()
        .await;
    let _ = report(&hub, "feed-1").await;
    stopped_at(&mut hub, "feed-after-publish=return").await;
    // Past the duplicate window: the stream cannot drop the resend, the publisher must.
    wait_for_duplicate_window(&js).await;
    let hub = process(dir.path(), &nats)
        .duplicate_window_secs(1)
        .start_serving_commands()
        .await;
    report(&hub, "feed-2")
        .await
        .expect("a report after the restart");
    feed_holds_each_report_once(&js).await;
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_feed_deliveries_are_audited_before_they_are_sent() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let mut hub = process(dir.path(), &nats)
        .failpoints("feed-after-audit=return")
        .start()
        .await;
    // Civil affairs registers a person: its own feed receives the record whole.
    let _ = hub
        .care()
        .register_care(from("civil-affairs", care("care-crash")))
        .await;
    stopped_at(&mut hub, "feed-after-audit=return").await;
    let hub = process(dir.path(), &nats).start_serving_commands().await;
    // The registration is stored (its delivery was recorded, so it was decided after it).
    let stored = stored(&js).await;
    let (position, event_id, _) = stored
        .iter()
        .find(|(_, _, request_id)| request_id == "care-crash")
        .cloned()
        .expect("the registration is stored");
    let delivered =
        hub_tests::wait_until("the feed to hold it", Duration::from_secs(60), || async {
            let ids = feed_ids(&js, "FEED_CIVIL_AFFAIRS").await;
            (!ids.is_empty()).then_some(ids)
        })
        .await;
    assert_eq!(
        delivered,
        std::slice::from_ref(&event_id),
        "sent once, after the restart"
    );

    // The access log holds both records of the delivery (before the crash, and when it was
    // sent after it); the ledger enters it once.
    let mut auditors = AuditServiceClient::new(hub.channel());
    let care_id = {
        let records = auditors
            .list_access(from(
                "discipline-inspection",
                v1::ListAccessRequest {
                    department: "civil-affairs".into(),
                    ..Default::default()
                },
            ))
            .await
            .expect("the access log")
            .into_inner();
        let publishes: Vec<&v1::AuditRecord> = records
            .entries
            .iter()
            .filter_map(|e| e.record.as_ref())
            .filter(|r| r.action == "PUBLISH FEED_CIVIL_AFFAIRS")
            .collect();
        assert_eq!(publishes.len(), 2, "{records:?}");
        assert!(
            publishes
                .iter()
                .all(|r| r.event_ids == [event_id.clone()] && r.position == position)
        );
        publishes[0]
            .aggregate
            .strip_prefix("care/")
            .expect("a care record")
            .to_owned()
    };
    let ledger = auditors
        .list_disclosures(from(
            "discipline-inspection",
            v1::ListDisclosuresRequest {
                care_id: care_id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("the ledger")
        .into_inner();
    let deliveries: Vec<&v1::Disclosure> = ledger
        .disclosures
        .iter()
        .filter(|d| d.action == "PUBLISH FEED_CIVIL_AFFAIRS")
        .collect();
    assert_eq!(deliveries.len(), 1, "{ledger:?}");
    assert_eq!(deliveries[0].event_id, event_id);
    assert_eq!(deliveries[0].position, position);
    assert_eq!(deliveries[0].department, "civil-affairs");
    assert!(
        deliveries[0]
            .clear_fields
            .contains(&"identity_number".to_owned())
    );
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_two_event_command_is_appended_and_its_retry_after_the_window() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let hub = process(dir.path(), &nats)
        .duplicate_window_secs(1)
        .start()
        .await;
    let case = report(&hub, "two-1").await.expect("report");
    let id = case.case_id.clone();
    let mut commands = hub.commands();
    let dispatch = v1::DispatchCaseRequest {
        request_id: "two-d".into(),
        case_id: id.clone(),
        expected_version: None,
        department: "urban-management".into(),
    };
    commands
        .dispatch_case(from("dcc-310104", dispatch))
        .await
        .expect("dispatch");
    let accept = v1::AcceptCaseRequest {
        request_id: "two-a".into(),
        case_id: id.clone(),
        expected_version: None,
    };
    commands
        .accept_case(from("urban-management", accept))
        .await
        .expect("accept");
    let resolve = v1::ResolveCaseRequest {
        request_id: "two-r".into(),
        case_id: id.clone(),
        expected_version: None,
        outcome: "已处理 done".into(),
    };
    commands
        .resolve_case(from("urban-management", resolve))
        .await
        .expect("resolve");
    hub.stop().await;

    // A poor rating appends two events (rated, reopened) at once; the hub stops right after.
    let mut hub = process(dir.path(), &nats)
        .failpoints("after-append=return")
        .duplicate_window_secs(1)
        .start()
        .await;
    let rate = v1::RateCaseRequest {
        request_id: "two-rate".into(),
        case_id: id.clone(),
        expected_version: None,
        rating: 1,
    };
    hub.commands()
        .rate_case(from("urban-management", rate.clone()))
        .await
        .expect_err("the process stops before answering");
    stopped_at(&mut hub, "after-append=return").await;
    wait_for_duplicate_window(&js).await;

    let hub = process(dir.path(), &nats)
        .duplicate_window_secs(1)
        .start_serving_commands()
        .await;
    let again = hub
        .commands()
        .rate_case(from("urban-management", rate))
        .await
        .expect("the retry")
        .into_inner()
        .result
        .expect("result");
    let events = reports(&js).await;
    assert_eq!(
        events.len(),
        6,
        "report, dispatch, accept, resolve, rated, reopened"
    );
    assert_once_each(&events);
    let rated: Vec<String> = events[4..].iter().map(|(_, id, _)| id.clone()).collect();
    assert_eq!(
        again.event_ids, rated,
        "both events, as the first answer had them"
    );
    assert_eq!(again.position, events[5].0);
    hub.stop().await;
    assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_import_batches_and_the_import_sent_again() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    // Six atomic batches, four in flight: a crash after the first acknowledged one leaves
    // the last two unsent.
    let cases: Vec<v1::HistoricCase> = (0..6000)
        .map(|i| historic(&format!("hist-{i}"), 1_700_000_000 + i))
        .collect();
    let import = async |hub: &HubProcess| {
        hub.commands()
            .import_cases(import_chunks(&cases, 1000))
            .await
            .map(|r| r.into_inner())
    };

    let mut hub = process(dir.path(), &nats)
        .failpoints("between-import-batches=return")
        .start()
        .await;
    import(&hub)
        .await
        .expect_err("the process stops mid-import");
    stopped_at(&mut hub, "between-import-batches=return").await;

    // Batches whose commit reached the server before the crash are stored even so (the
    // server may still be storing them): at least the one acknowledged, at most the four in
    // flight. Sent again, the import stores the rest and answers those with their records.
    let hub = process(dir.path(), &nats).start_serving_commands().await;
    let done = import(&hub).await.expect("the import sent again");
    let (imported, already) = (done.imported as usize, done.already_imported as usize);
    assert_eq!(imported + already, 6000);
    assert!(
        (1000..=4000).contains(&already),
        "stored before the crash: {already}"
    );
    let events = stored(&js).await;
    assert_eq!(events.len(), 6000);
    assert_once_each(&events);
    hub.stop().await;
    assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_on_either_side_of_a_rebuilds_swap() {
    for point in ["rebuild-before-pointer", "rebuild-after-pointer"] {
        let nats = Nats::start().await;
        let js = nats.jetstream().await;
        let dir = tempfile::tempdir().expect("data dir");
        let models = dir.path().join("read-models");
        let hub = process(dir.path(), &nats).start().await;
        report(&hub, "r-1").await.expect("report");
        hub.stop().await;
        // Older code built incident_stats: the next start rebuilds it beside the live one.
        {
            let store = open_stopped(&models.join("incident_stats")).await;
            store.set_meta(hub_store::MODEL_VERSION, "0").expect("set");
        }
        let failpoints = format!("{point}=return");
        let mut hub = process(dir.path(), &nats)
            .failpoints(&failpoints)
            .start()
            .await;
        stopped_at(&mut hub, &failpoints).await;

        // Started again, the model ends up rebuilt, in one folder, at the code's version.
        let hub = process(dir.path(), &nats).start_serving_commands().await;
        let at = report(&hub, "r-2").await.expect("report").position;
        let mut datasets = DatasetServiceClient::new(hub.channel());
        datasets
            .read_dataset(v1::ReadDatasetRequest {
                dataset_id: "incident_stats".into(),
                min_position: at,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|s| panic!("{point}: read after the restart: {s:?}"));
        hub.stop().await;
        let folders: Vec<String> = std::fs::read_dir(&models)
            .expect("read-models")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.starts_with("incident_stats") && !f.ends_with(".current"))
            .collect();
        let version = hub_projector::datasets::incident_stats::DATASET
            .version
            .to_string();
        assert_eq!(folders, [format!("incident_stats.v{version}")], "{point}");
        let store = open_stopped(&hub::read_model_dir(dir.path(), "incident_stats")).await;
        assert_eq!(
            store
                .meta(hub_store::MODEL_VERSION)
                .expect("meta")
                .as_deref(),
            Some(version.as_str()),
            "{point}"
        );
        drop(store);
        assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
    }
}
