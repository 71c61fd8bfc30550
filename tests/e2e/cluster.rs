//! The hub on a real 3-node NATS cluster: the durability guard checks every member, refuses a
//! cluster with one unsafe or unlisted member (creating nothing), accepts the safe one, and
//! raises an alarm when a member comes back unsafe while the hub runs.

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

/// Waits on the hub's alarms (each change wakes it) until `ALARM` is raised or not.
async fn alarm_becomes(hub: &hub_tests::Hub, raised: bool) -> String {
    let mut changed = hub.alarms().subscribe();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let found = hub.alarms().list().into_iter().find(|(k, _)| k == ALARM);
            if found.is_some() == raised {
                return found.map(|(_, text)| text).unwrap_or_default();
            }
            changed.changed().await.expect("alarms");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("alarm {ALARM} never became raised={raised}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_with_one_unsafe_member_is_refused_and_a_safe_one_accepted() {
    let unsafe_cluster = Cluster::start_with(&[true, true, false]).await;
    let err = HubBuilder::on_cluster(&unsafe_cluster)
        .try_start()
        .await
        .err()
        .expect("a cluster with an unsafe member refused");
    let text = format!("{err:#}");
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
    // Every member must be listed: one left out cannot be checked.
    let two_of_three = format!("{},{}", cluster.monitor_url(0), cluster.monitor_url(1));
    let err = HubBuilder::on_cluster(&cluster)
        .nats_url(cluster.url(0))
        .monitor_url(Some(&two_of_three))
        .try_start()
        .await
        .err()
        .expect("an unlisted member refused");
    let text = format!("{err:#}");
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
async fn a_member_that_comes_back_unsafe_raises_an_alarm_cleared_when_it_is_safe_again() {
    let mut cluster = Cluster::start(3).await;
    let mut builder = HubBuilder::on_cluster(&cluster);
    builder.config_mut().nats.durability_check_secs = 1;
    let hub = builder.start().await;
    assert!(
        hub.alarms().list().iter().all(|(k, _)| k != ALARM),
        "a safe cluster raises nothing"
    );

    cluster.restart(2, false).await;
    let text = alarm_becomes(&hub, true).await;
    assert!(
        text.contains("server n2") && text.contains("sync_interval"),
        "{text}"
    );
    // The hub serves on meanwhile: the log has its quorum.
    hub.commands()
        .report_case(from("urban-management", incident("c-2")))
        .await
        .expect("report while the alarm is raised");

    cluster.restart(2, true).await;
    alarm_becomes(&hub, false).await;
    hub.stop().await.expect("clean stop");
}
