//! The hub on a real 3-node NATS cluster: the durability guard checks every member, refuses a
//! cluster with one unsafe or unlisted member or too few answering (creating nothing),
//! accepts the safe one, and while the hub runs raises an alarm for a member that is down or
//! comes back unsafe, cleared when it is safe again.

use std::time::Duration;

use hub_tests::{Cluster, HubBuilder};

use crate::{events_in_log, from, incident};

const ALARM: &str = "nats/durability";

async fn has_events_stream(cluster: &Cluster) -> bool {
    cluster
        .jetstream()
        .await
        .get_stream("GOV_EVENTS")
        .await
        .is_ok()
}

/// Waits on the hub's alarms (each change, a new reason included, wakes it) until `ALARM`'s
/// reason (`None`: not raised) satisfies `wanted`, named `what`; returns the reason.
async fn alarm_until(
    hub: &hub_tests::Hub,
    what: &str,
    wanted: impl Fn(Option<&str>) -> bool,
) -> String {
    let mut changed = hub.alarms().subscribe();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let found = hub.alarms().list().into_iter().find(|(k, _)| k == ALARM);
            let reason = found.map(|(_, text)| text);
            if wanted(reason.as_deref()) {
                return reason.unwrap_or_default();
            }
            changed.changed().await.expect("alarms");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("alarm {ALARM}: never {what}"))
}

/// Starts a hub that must be refused (`what` says why it should be); its error, in full.
async fn refusal(builder: HubBuilder, what: &str) -> String {
    let err = builder
        .try_start()
        .await
        .err()
        .unwrap_or_else(|| panic!("not refused: {what}"));
    format!("{err:#}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_one_unsafe_member_is_refused_and_a_safe_one_accepted() {
    let unsafe_cluster = Cluster::start_with(&[true, true, false]).await;
    let text = refusal(
        HubBuilder::on_cluster(&unsafe_cluster),
        "a cluster with an unsafe member",
    )
    .await;
    assert!(text.contains("refusing to start"), "{text}");
    assert!(
        text.contains("server n2") && text.contains("sync_interval"),
        "the reason names the member and the setting: {text}"
    );
    assert!(
        !has_events_stream(&unsafe_cluster).await,
        "nothing created on a refused cluster"
    );
    drop(unsafe_cluster);

    let cluster = Cluster::start(3).await;
    // A majority of the listed endpoints must answer.
    let mostly_wrong = format!(
        "{},http://127.0.0.1:1,http://127.0.0.1:2",
        cluster.monitor_url(0)
    );
    let text = refusal(
        HubBuilder::on_cluster(&cluster)
            .nats_url(cluster.url(0))
            .monitor_url(Some(&mostly_wrong)),
        "a minority answering",
    )
    .await;
    assert!(text.contains("only 1 of the 3"), "{text}");
    // Every member must be listed: one left out cannot be checked.
    let two_of_three = format!("{},{}", cluster.monitor_url(0), cluster.monitor_url(1));
    let text = refusal(
        HubBuilder::on_cluster(&cluster)
            .nats_url(cluster.url(0))
            .monitor_url(Some(&two_of_three)),
        "an unlisted member",
    )
    .await;
    assert!(
        text.contains("cluster member n2") && text.contains("nats.monitor_url"),
        "{text}"
    );
    assert!(!has_events_stream(&cluster).await);

    let hub = HubBuilder::on_cluster(&cluster).start().await;
    let js = cluster.jetstream().await;
    let mut stream = js.get_stream("GOV_EVENTS").await.expect("GOV_EVENTS");
    let info = stream.info().await.expect("stream info");
    assert_eq!(info.config.num_replicas, 3, "{:?}", info.config);
    hub.commands()
        .report_case(from("urban-management", incident("c-1")))
        .await
        .expect("report on the cluster");
    assert_eq!(events_in_log(&js).await, 1);
    let status = hub
        .admin()
        .get_status(from("big-data-centre", hub_api::v1::GetStatusRequest {}))
        .await
        .expect("status")
        .into_inner();
    let durability = status.durability.expect("durability");
    assert!(durability.safe, "{durability:?}");
    assert_eq!(durability.server_name, "n0, n1, n2");
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_down_or_back_unsafe_raises_an_alarm_cleared_when_it_is_safe_again() {
    let mut cluster = Cluster::start(3).await;
    let mut builder = HubBuilder::on_cluster(&cluster);
    builder.config_mut().nats.durability_check_secs = 1;
    let hub = builder.start().await;
    assert!(
        hub.alarms().list().iter().all(|(k, _)| k != ALARM),
        "a safe cluster raises nothing"
    );

    // Down: one copy fewer, and nothing to check.
    let killed_at = std::time::Instant::now();
    cluster.kill(2);
    let down = cluster.monitor_url(2).to_owned();
    alarm_until(&hub, "says the member is down", |r| {
        r.is_some_and(|r| r.contains(&down) && r.contains("does not answer"))
    })
    .await;
    // The hub serves on meanwhile: the log has its quorum. If the hub was connected to the
    // killed node, its command index waits for its consumer to move to another node and says
    // UNAVAILABLE (retry later) meanwhile: a client retries, as here.
    hub_tests::wait_until(
        "a report while a member is down",
        Duration::from_secs(30),
        || async {
            match hub
                .commands()
                .report_case(from("urban-management", incident("c-2")))
                .await
            {
                Ok(answer) => Some(answer),
                Err(status) if status.code() == tonic::Code::Unavailable => None,
                Err(status) => panic!("report while a member is down: {status}"),
            }
        },
    )
    .await;
    eprintln!(
        "a report was taken {:.1} s after the kill",
        killed_at.elapsed().as_secs_f64()
    );

    // Back, without fsync on every write.
    cluster.restart(2, false).await;
    alarm_until(&hub, "names the unsafe member", |r| {
        r.is_some_and(|r| r.contains("server n2") && r.contains("sync_interval"))
    })
    .await;

    cluster.restart(2, true).await;
    alarm_until(&hub, "cleared", |r| r.is_none()).await;
    hub.stop().await.expect("clean stop");
}
