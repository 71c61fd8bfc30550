//! Node loss on a real 3-node cluster under concurrent reports: a member that is not the
//! events stream's leader killed and restarted, then the leader killed 10 times in a row
//! (each time restarted and caught up before the next). Clients retry what got no answer with
//! the same request id. Afterwards: every acknowledged report is in the log once, at the
//! position it was acknowledged with, no request is stored twice, and every read model equals
//! a fresh rebuild of the log.
//!
//! `CLUSTER_SOAK_KILLS=<n>` kills the leader n times instead of 10.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use hub_api::v1;
use hub_tests::{Cluster, HubBuilder, assert_read_models_equal_a_rebuild, default_policy};

use crate::{from, incident};

/// Concurrent reporting clients.
const CLIENTS: usize = 4;
/// Reports acknowledged under each fault before it is mended.
const UNDER_EACH_FAULT: usize = 15;

/// (request id, acknowledged position, event id, when) of every report answered.
type Acked = Arc<Mutex<Vec<(String, u64, String, Instant)>>>;

/// Reports until `stop`, each retried with its request id until answered.
async fn reporter(hub: Arc<hub_tests::Hub>, client: usize, acked: Acked, stop: Arc<AtomicBool>) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let rid = format!("fault-{client}-{n}");
        let answer = hub_tests::wait_until(
            &format!("an answer to {rid}"),
            Duration::from_secs(60),
            || async {
                let mut request = from("urban-management", incident(&rid));
                request.set_timeout(Duration::from_secs(10));
                match hub.commands().report_case(request).await {
                    Ok(answer) => Some(answer.into_inner()),
                    // No answer (the client's own timeout is Cancelled), or not now: the
                    // same command again.
                    Err(status)
                        if matches!(
                            status.code(),
                            tonic::Code::Unavailable
                                | tonic::Code::DeadlineExceeded
                                | tonic::Code::Cancelled
                        ) =>
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        None
                    }
                    Err(status) => panic!("{rid}: {status:?}"),
                }
            },
        )
        .await;
        let v1::ReportCaseResponse {
            event_ids,
            position,
            ..
        } = answer;
        let id = event_ids.last().cloned().expect("an event id");
        acked
            .lock()
            .expect("acked")
            .push((rid, position, id, Instant::now()));
        n += 1;
        // A steady stream rather than a flood: the log stays small enough to read back.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The events stream's info, asked until some member answers with a leader.
async fn events_info(js: &jetstream::Context) -> jetstream::stream::Info {
    hub_tests::wait_until(
        "the events stream to answer",
        Duration::from_secs(30),
        || async {
            let mut stream = js.get_stream("GOV_EVENTS").await.ok()?;
            let info = stream.info().await.ok()?.clone();
            info.cluster
                .as_ref()
                .is_some_and(|c| c.leader.is_some())
                .then_some(info)
        },
    )
    .await
}

/// The index of the node leading the events stream (nodes are named n0, n1, n2), once it is
/// not `old`.
async fn leader(js: &jetstream::Context, old: Option<usize>) -> usize {
    hub_tests::wait_until("a leader", Duration::from_secs(30), || async {
        let info = events_info(js).await;
        let name = info.cluster.and_then(|c| c.leader)?;
        let i: usize = name.trim_start_matches('n').parse().expect("a node name");
        (Some(i) != old).then_some(i)
    })
    .await
}

/// How many reports are acknowledged, and when that was counted.
fn mark(acked: &Acked) -> (usize, Instant) {
    (acked.lock().expect("acked").len(), Instant::now())
}

/// Waits until `more` reports beyond those counted at `since` are acknowledged; prints the
/// longest time between two acknowledgements from then on (how long reports stalled).
async fn progress(acked: &Acked, since: (usize, Instant), more: usize, what: &str) {
    let (from, started) = since;
    hub_tests::wait_until(what, Duration::from_secs(60), || async {
        (acked.lock().expect("acked").len() >= from + more).then_some(())
    })
    .await;
    let acked = acked.lock().expect("acked");
    let mut last = started;
    let mut longest = Duration::ZERO;
    for (_, _, _, at) in &acked[from..] {
        longest = longest.max(at.saturating_duration_since(last));
        last = last.max(*at);
    }
    eprintln!(
        "{what}: longest wait between acknowledgements {:.1} s",
        longest.as_secs_f64()
    );
}

/// Restarts node `i` and waits until every replica of the events stream is current.
async fn mend(cluster: &mut Cluster, js: &jetstream::Context, i: usize) {
    cluster.restart(i, true).await;
    hub_tests::wait_until(
        &format!("n{i} to catch up"),
        Duration::from_secs(60),
        || async {
            let info = events_info(js).await;
            let cluster = info.cluster?;
            (cluster.replicas.len() == 2
                && cluster.replicas.iter().all(|r| r.current && !r.offline))
            .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_follower_then_the_leader_ten_times_loses_and_repeats_no_acknowledged_report() {
    let kills: usize = std::env::var("CLUSTER_SOAK_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let mut cluster = Cluster::start(3).await;
    let js = cluster.jetstream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = Arc::new(
        HubBuilder::on_cluster(&cluster)
            .data_dir(dir.path())
            .start()
            .await,
    );
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(reporter(hub.clone(), c, acked.clone(), stop.clone())))
        .collect();
    progress(
        &acked,
        mark(&acked),
        UNDER_EACH_FAULT,
        "reports before any fault",
    )
    .await;

    // A follower lost: the leader and the other follower are a quorum.
    let follower = (leader(&js, None).await + 1) % 3;
    let killed = mark(&acked);
    cluster.kill(follower);
    progress(
        &acked,
        killed,
        UNDER_EACH_FAULT,
        "reports with a follower down",
    )
    .await;
    mend(&mut cluster, &js, follower).await;

    // The leader lost, again and again: a new one is elected each time.
    for kill in 0..kills {
        let old = leader(&js, None).await;
        let killed = mark(&acked);
        cluster.kill(old);
        leader(&js, Some(old)).await;
        let what = format!("reports after leader kill {kill}");
        progress(&acked, killed, UNDER_EACH_FAULT, &what).await;
        mend(&mut cluster, &js, old).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client");
    }

    let acked = std::mem::take(&mut *acked.lock().expect("acked"));
    let events = hub_tests::logged_events(&js).await;
    let mut by_request: HashMap<&str, (u64, &str)> = HashMap::new();
    for event in &events {
        let (rid, position) = (event.request_id.as_str(), event.position);
        if let Some((earlier, _)) = by_request.insert(rid, (position, &event.id)) {
            panic!("{rid} stored twice, at {earlier} and {position}");
        }
    }
    for (rid, position, id, _) in &acked {
        assert_eq!(
            by_request.get(rid.as_str()),
            Some(&(*position, id.as_str())),
            "{rid} acknowledged at {position}"
        );
    }
    eprintln!(
        "{} reports acknowledged through 1 follower and {kills} leader kills; {} events stored",
        acked.len(),
        events.len()
    );
    // Reports left unanswered could only be those in flight at `stop`, and there are none.
    assert_eq!(
        acked.len(),
        events.len(),
        "every stored report was answered"
    );

    let hub = Arc::into_inner(hub).expect("the clients are done");
    hub.stop().await.expect("clean stop");
    assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
}
