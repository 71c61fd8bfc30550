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
use hub_tests::fixtures::{from, historic, import_chunks, incident};
use hub_tests::{
    HubProcess, Nats, ProcessBuilder, assert_read_models_equal_a_rebuild, default_policy,
};

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
    let stream = js.get_stream("GOV_EVENTS").await.expect("stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut events = Vec::new();
    for position in 1..=last {
        let message = stream.get_raw_message(position).await.expect("event");
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default()
        };
        events.push((position, header("ce-id"), header("ce-requestid")));
    }
    events
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

/// Starts the hub with `failpoints`, runs `provoke` until the hub stops itself there, restarts
/// it without them, and checks what a retry of the report `rid` answers against the log.
async fn crash_at(failpoints: &str, rid: &str) {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let mut hub = process(dir.path(), &nats)
        .failpoints(failpoints)
        .start()
        .await;
    // The answer may or may not come back, depending on where the process stops.
    let first = report(&hub, rid).await.ok();
    let status = hub.exited(Duration::from_secs(60)).await;
    assert!(!status.success(), "stopped by the crash point: {status}");
    let point = failpoints.split('=').next().unwrap_or_default();
    assert!(
        hub.log()
            .contains(&format!("failpoint {point}: stopping the process")),
        "stopped at {point}:\n{}",
        hub.log()
    );

    let hub = process(dir.path(), &nats).start().await;
    let again = report(&hub, rid).await.expect("the retry after the crash");
    let events = stored(&js).await;
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
        .get_case(v1::GetCaseRequest {
            case_id: again.case_id.clone(),
            min_position: again.position,
        })
        .await
        .expect("the case is readable at its position");
    hub.stop().await;
    let checkpoints = assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
    assert!(
        checkpoints
            .iter()
            .any(|(name, at)| *name == "case_queue" && *at == 1),
        "{checkpoints:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_append_before_the_answer() {
    crash_at("after-append=return", "crash-1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_read_model_batch_is_written_before_its_flush() {
    crash_at("after-batch-write=return", "crash-2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_a_read_model_flush_before_the_ack() {
    crash_at("after-flush=return", "crash-3").await;
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
    hub.exited(Duration::from_secs(60)).await;
    assert!(
        hub.log().contains("failpoint between-import-batches"),
        "{}",
        hub.log()
    );

    // Batches whose commit reached the server before the crash are stored even so.
    let hub = process(dir.path(), &nats).start().await;
    let stored_before = stored(&js).await.len();
    assert!(
        (1000..=4000).contains(&stored_before),
        "some batches stored, not all: {stored_before}"
    );
    let done = import(&hub).await.expect("the import sent again");
    assert_eq!(
        (done.imported as usize, done.already_imported as usize),
        (6000 - stored_before, stored_before)
    );
    let events = stored(&js).await;
    assert_eq!(events.len(), 6000);
    assert_once_each(&events);
    hub.stop().await;
    assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
}

/// A number from the clock, for kill times: which instant is hit must not matter.
fn jitter(range: std::ops::Range<u64>) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    range.start + u64::from(nanos) % (range.end - range.start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_under_concurrent_reports() {
    let rounds: usize = std::env::var("CRASH_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    // Every request id sent, and the answers that came back.
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let answered: Arc<Mutex<BTreeMap<String, v1::ReportCaseResponse>>> = Arc::default();

    for round in 0..rounds {
        let mut hub = process(dir.path(), &nats).start().await;
        let mut clients = Vec::new();
        for client in 0..4 {
            let (commands, sent, answered) = (hub.commands(), sent.clone(), answered.clone());
            clients.push(tokio::spawn(async move {
                for i in 0.. {
                    let rid = format!("k-{round}-{client}-{i}");
                    sent.lock().expect("sent").push(rid.clone());
                    let mut commands = commands.clone();
                    match commands
                        .report_case(from("urban-management", incident(&rid)))
                        .await
                    {
                        Ok(answer) => {
                            answered
                                .lock()
                                .expect("answered")
                                .insert(rid, answer.into_inner());
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(jitter(100..600))).await;
        hub.kill();
        for client in clients {
            client.await.expect("client task");
        }
    }

    // After the last kill: every report sent is retried; those answered before get their
    // first result, the rest are stored now; none is stored twice.
    let hub = process(dir.path(), &nats).start().await;
    let sent = sent.lock().expect("sent").clone();
    let answered = answered.lock().expect("answered").clone();
    assert!(
        !answered.is_empty(),
        "reports went through between the kills"
    );
    let mut last = 0;
    for rid in &sent {
        let again = report(&hub, rid)
            .await
            .unwrap_or_else(|s| panic!("retry {rid}: {s:?}"));
        if let Some(first) = answered.get(rid) {
            assert_eq!(first, &again, "retry of {rid}");
        }
        last = last.max(again.position);
    }
    let events = stored(&js).await;
    assert_once_each(&events);
    assert_eq!(events.len(), sent.len(), "each report stored exactly once");
    eprintln!(
        "{rounds} kills: {} reports sent, {} answered before a kill",
        sent.len(),
        answered.len()
    );
    hub.queries()
        .list_cases(v1::ListCasesRequest {
            holder: "dcc-310104".into(),
            min_position: last,
            ..Default::default()
        })
        .await
        .expect("the queue catches up");
    hub.stop().await;
    assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
}
