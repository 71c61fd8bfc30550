//! Once-per-hub duties with two instances on a 3-node cluster: the one holding a duty's lease
//! does it, the other stands by and serves; killed, the holder is not missed: the other takes
//! both duties over, escalates the breach the dead one left and sends the feeds on from where
//! it stopped, nothing twice.

use std::sync::Arc;
use std::time::Duration;

use hub_api::v1;
use hub_domain::clock::ManualClock;
use hub_store::ReadModelStore;
use hub_tests::fixtures::from;
use hub_tests::{Cluster, Hub, HubBuilder, ProcessBuilder, escalations, open_stopped, wait_until};
use jiff::SignedDuration;

use crate::{HUB, feed_ids, stored};

/// Who holds each duty, as `hub`'s status says (empty: nobody).
async fn holders(hub: &Hub) -> Vec<(String, String)> {
    let status = hub
        .admin()
        .get_status(from("big-data-centre", v1::GetStatusRequest {}))
        .await
        .expect("status")
        .into_inner();
    status
        .duties
        .into_iter()
        .map(|d| (d.name, d.holder))
        .collect()
}

/// Waits until both duties are held by an instance that `holder` accepts.
async fn duties_held(
    hub: &Hub,
    what: &str,
    holder: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    wait_until(what, Duration::from_secs(30), || async {
        let held = holders(hub).await;
        (held.len() == 2 && held.iter().all(|(_, h)| holder(h))).then_some(held)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_duty_holder_is_not_missed_and_its_duties_are_done_once() {
    let cluster = Cluster::start(3).await;
    let js = cluster.jetstream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // The first instance takes both duties; it is a process, so it can be killed.
    let mut first = ProcessBuilder::on_cluster(std::path::Path::new(HUB), dir.path(), &cluster)
        .start_serving_commands()
        .await;
    // Alone, it takes both duties once it is fit for them (its read models live): waited
    // for before the second starts, so that the second finds them held (on a loaded machine
    // the first may take longer to be fit than the second takes to start).
    let leases = js
        .get_key_value("hub_leases")
        .await
        .expect("the serving instance opened the lease bucket");
    wait_until(
        "the first instance alone to hold both duties",
        Duration::from_secs(60),
        || async {
            let supervision = hub_log::lease::holder(&leases, "supervision")
                .await
                .ok()??;
            let feeds = hub_log::lease::holder(&leases, "feeds").await.ok()??;
            (supervision == feeds).then_some(())
        },
    )
    .await;
    // The second reads a clock the test moves; the first reads the real one.
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let second_dir = tempfile::tempdir().expect("temp dir");
    let second = HubBuilder::on_cluster(&cluster)
        .data_dir(second_dir.path())
        .clock(clock.clone())
        .start()
        .await;
    let me = second.instance().to_owned();
    let held = duties_held(&second, "the first instance to hold both duties", |h| {
        !h.is_empty() && h != me
    })
    .await;
    let first_instance = held[0].1.clone();
    assert!(held.iter().all(|(_, h)| *h == first_instance), "{held:?}");
    assert_eq!(
        held.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
        ["supervision", "feeds"]
    );

    // Commands go to either instance; the holder sends the feeds.
    let (case, _) = second.dispatched_case("duty-1", "housing").await;
    let before_kill = stored(&js).await;
    wait_until(
        "the first instance to send the feed",
        Duration::from_secs(30),
        || async {
            (feed_ids(&js, "FEED_DCC_310104").await.len() == before_kill.len()).then_some(())
        },
    )
    .await;
    // The accept deadline passes on the second instance's clock only: the first, the
    // holder of supervision, sees no breach; the second does not supervise.
    clock.advance(SignedDuration::from_mins(31));
    // Twenty of its supervision intervals pass: standing by, it escalates nothing (were it
    // scanning, it would have by now).
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(escalations(&js, &case).await, 0, "the standby supervised");

    first.kill();
    let held = duties_held(
        &second,
        "the second instance to take both duties over",
        |h| h == me,
    )
    .await;
    assert_eq!(held.len(), 2);
    // Taken over: the breach is escalated, once.
    wait_until("the escalation", Duration::from_secs(30), || async {
        (escalations(&js, &case).await == 1).then_some(())
    })
    .await;
    let (later, _) = second.dispatched_case("duty-2", "housing").await;

    // The feed holds every event once, in log order, whichever instance sent it.
    let events: Vec<String> = stored(&js).await.into_iter().map(|(_, id, _)| id).collect();
    let ids = wait_until("the feed to catch up", Duration::from_secs(30), || async {
        let ids = feed_ids(&js, "FEED_DCC_310104").await;
        (ids.len() >= events.len()).then_some(ids)
    })
    .await;
    assert_eq!(ids, events);
    assert_eq!(escalations(&js, &case).await, 1);
    assert_eq!(
        escalations(&js, &later).await,
        0,
        "the later case is within its deadline"
    );
    second.stop().await.expect("stop");
    // Standing by it forgot what the first instance sent; holding, it sent the rest: its
    // outbox is empty.
    let feeds = open_stopped(&hub::read_model_dir(second_dir.path(), "feeds")).await;
    let outbox = feeds.scan(b"o/", None, 10).expect("outbox");
    assert!(outbox.is_empty(), "{} entries left", outbox.len());
    // Stopped cleanly, it let its duties go at once.
    for duty in ["supervision", "feeds"] {
        assert_eq!(
            hub_log::lease::holder(&leases, duty).await.expect("lease"),
            None,
            "{duty} let go"
        );
    }
}
