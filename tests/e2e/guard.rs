//! The durability guard: the hub refuses a NATS that could lose acknowledged events, says
//! why, and creates nothing; against a safe server in the same test it starts.

use std::time::Duration;

use async_nats::jetstream::stream;
use hub_tests::{HubBuilder, Nats};

use crate::{events_in_log, from, incident};

async fn has_events_stream(nats: &Nats) -> bool {
    nats.jetstream()
        .await
        .get_stream("GOV_EVENTS")
        .await
        .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_sync_always_is_refused_and_a_safe_one_accepted() {
    let unsafe_nats = Nats::start_unsafe().await;
    let err = HubBuilder::on(&unsafe_nats)
        .try_start()
        .await
        .err()
        .expect("unsafe server refused");
    let text = format!("{err:#}");
    assert!(text.contains("refusing to start"), "{text}");
    assert!(
        text.contains("sync_interval"),
        "the reason names the setting: {text}"
    );
    assert!(
        !has_events_stream(&unsafe_nats).await,
        "nothing created on a refused server"
    );

    let safe = Nats::start().await;
    let hub = HubBuilder::on(&safe).start().await;
    assert!(has_events_stream(&safe).await);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_monitoring_url_the_hub_refuses_unless_the_risk_is_accepted() {
    let nats = Nats::start().await;
    let err = HubBuilder::on(&nats)
        .monitor_url(None)
        .try_start()
        .await
        .err()
        .expect("unchecked server refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("monitoring URL") && text.contains("accept_durability_risk"),
        "{text}"
    );
    assert!(!has_events_stream(&nats).await);

    let hub = HubBuilder::on(&nats)
        .monitor_url(None)
        .accept_durability_risk()
        .start()
        .await;
    assert!(has_events_stream(&nats).await);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_hub_seed_the_hub_refuses_a_nats_that_isolates_nobody_unless_accepted() {
    let nats = Nats::start().await;
    let err = HubBuilder::on(&nats)
        .accept_no_isolation(false)
        .try_start()
        .await
        .err()
        .expect("a NATS without accounts refused");
    let text = format!("{err:#}");
    assert!(
        text.contains("nats.nkey_file") && text.contains("accept_no_isolation"),
        "{text}"
    );
    assert!(
        !has_events_stream(&nats).await,
        "refused before opening anything"
    );

    let hub = HubBuilder::on(&nats)
        .accept_no_isolation(true)
        .start()
        .await;
    assert!(has_events_stream(&nats).await);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitoring_url_of_another_server_is_refused() {
    let nats = Nats::start().await;
    let other = Nats::start().await;
    let err = HubBuilder::on(&nats)
        .monitor_url(Some(other.monitor_url()))
        .try_start()
        .await
        .err()
        .expect("mismatch refused");
    assert!(format!("{err:#}").contains("belongs to server"), "{err:#}");

    let hub = HubBuilder::on(&nats)
        .monitor_url(Some(nats.monitor_url()))
        .start()
        .await;
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_events_stream_with_weak_settings_is_brought_up_to_the_required_ones() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    js.create_stream(stream::Config {
        name: "GOV_EVENTS".into(),
        subjects: vec!["gov.events.>".into()],
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        duplicate_window: Duration::from_secs(30),
        ..Default::default()
    })
    .await
    .expect("weak stream created");

    let hub = HubBuilder::on(&nats).start().await;
    let config = js
        .get_stream("GOV_EVENTS")
        .await
        .expect("stream")
        .cached_info()
        .config
        .clone();
    assert!(config.deny_delete && config.deny_purge, "{config:?}");
    assert_eq!(config.discard, stream::DiscardPolicy::New);
    assert_eq!(config.duplicate_window, Duration::from_secs(120));
    hub.commands()
        .report_case(from("urban-management", incident("g-1")))
        .await
        .expect("report on the fixed stream");
    assert_eq!(events_in_log(&js).await, 1);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_events_stream_cannot_be_fixed_and_is_refused() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    js.create_stream(stream::Config {
        name: "GOV_EVENTS".into(),
        subjects: vec!["gov.events.>".into()],
        storage: stream::StorageType::Memory,
        ..Default::default()
    })
    .await
    .expect("memory stream created");
    let err = HubBuilder::on(&nats)
        .try_start()
        .await
        .err()
        .expect("memory stream refused");
    assert!(format!("{err:#}").contains("GOV_EVENTS"), "{err:#}");

    // The same server with a file stream is fine.
    js.delete_stream("GOV_EVENTS")
        .await
        .expect("delete memory stream");
    let hub = HubBuilder::on(&nats).start().await;
    hub.stop().await.expect("clean stop");
}
