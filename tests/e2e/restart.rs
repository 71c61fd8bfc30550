//! The hub in development mode (its own nats-server child) stopped and started again over
//! the same data dir; the child killed under a running hub.

use std::path::Path;
use std::time::Duration;

use hub_tests::{Hub, HubBuilder, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{complaint, from, incident, queue_ids, read_case};

/// The pid of the running nats-server child, from the ports file it writes.
fn child_pid(data_dir: &Path) -> Option<u32> {
    std::fs::read_dir(data_dir.join("nats/ports"))
        .ok()?
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".ports")?
                .rsplit('_')
                .next()?
                .parse()
                .ok()
        })
}

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_restarted_over_the_same_data_dir_serves_what_it_had() {
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = HubBuilder::dev().data_dir(dir.path()).start().await;
    let a = hub
        .commands()
        .report_case(from("urban-management", incident("a")))
        .await
        .expect("a")
        .into_inner();
    let b = hub
        .commands()
        .report_case(from("housing", complaint("b")))
        .await
        .expect("b")
        .into_inner();
    read_case(&hub, &b.case_id, b.position).await;
    let pid = child_pid(dir.path()).expect("child's ports file");
    hub.stop().await.expect("clean stop");
    assert!(!alive(pid), "the nats-server child stopped with the hub");

    // Same data dir: the log and the read model are both still there.
    let hub = HubBuilder::dev().data_dir(dir.path()).start().await;
    assert_eq!(
        read_case(&hub, &a.case_id, b.position).await.holder,
        "dcc-310104"
    );
    assert_eq!(
        read_case(&hub, &b.case_id, b.position).await.holder,
        "dcc-310105"
    );
    let c = hub
        .commands()
        .report_case(from("urban-management", incident("c")))
        .await
        .expect("c")
        .into_inner();
    assert_eq!(c.position, b.position + 1, "the log continues where it was");
    // A retry of a command from before the restart, inside the duplicate window, changes nothing.
    let a_again = hub
        .commands()
        .report_case(from("urban-management", incident("a")))
        .await
        .expect("a again")
        .into_inner();
    assert_eq!(a_again, a);
    hub.stop().await.expect("clean stop");

    // Read models are disposable: without them the hub rebuilds them from the log.
    std::fs::remove_dir_all(dir.path().join("read-models")).expect("remove read models");
    let hub = HubBuilder::dev().data_dir(dir.path()).start().await;
    assert_eq!(
        read_case(&hub, &a.case_id, c.position).await.case_id,
        a.case_id
    );
    assert_eq!(
        read_case(&hub, &c.case_id, c.position).await.case_id,
        c.case_id
    );
    assert_eq!(
        queue_ids(&hub, "dcc-310104", c.position).await,
        [a.case_id.clone(), c.case_id.clone()]
    );
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nats_server_child_is_restarted_and_the_hub_carries_on() {
    let hub = HubBuilder::dev().start().await;
    let a = hub
        .commands()
        .report_case(from("urban-management", incident("before")))
        .await
        .expect("a")
        .into_inner();
    let reconnected = reconnects(&hub).await;
    let pid = child_pid(hub.data_dir()).expect("child's ports file");
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("kill the child");

    // The supervisor starts a new child on the same ports; the client reconnects. The report
    // is retried with one request id, so however many attempts it takes, it lands once.
    let b = wait_until(
        "a report after the child's restart",
        Duration::from_secs(60),
        || async {
            let mut request = from("urban-management", incident("after"));
            request.set_timeout(Duration::from_secs(2));
            hub.commands()
                .report_case(request)
                .await
                .ok()
                .map(|r| r.into_inner())
        },
    )
    .await;
    let new_pid = child_pid(hub.data_dir()).expect("new child's ports file");
    assert_ne!(new_pid, pid, "a new nats-server process");
    assert_eq!(
        b.position,
        a.position + 1,
        "the acknowledged event survived the kill; the retry landed once"
    );
    assert_eq!(
        read_case(&hub, &a.case_id, b.position).await.case_id,
        a.case_id
    );
    assert_eq!(
        read_case(&hub, &b.case_id, b.position).await.case_id,
        b.case_id
    );
    // The reconnect is counted (metrics are the process's: at least this hub's).
    wait_until("the reconnect counted", Duration::from_secs(30), || async {
        (reconnects(&hub).await > reconnected).then_some(())
    })
    .await;
    hub.stop().await.expect("clean stop");
    assert!(!alive(new_pid), "the restarted child stopped with the hub");
}

/// `hub_nats_reconnects_total{connection="hub"}` as the hub's `/metrics` shows it.
async fn reconnects(hub: &Hub) -> f64 {
    let text = reqwest::get(format!("{}/metrics", hub.http_url()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find(|l| l.starts_with("hub_nats_reconnects_total{") && l.contains("connection=\"hub\""))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}
