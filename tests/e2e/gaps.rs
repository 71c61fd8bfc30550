//! The gap rules: a read model whose log no longer holds what it was built from halts, with
//! an alarm, rather than serve wrong data; the log itself stays as it is.

use std::time::Duration;

use hub_api::v1;
use hub_log::stream::{EventsStreamSettings, events_stream_config};
use hub_tests::{Hub, HubBuilder, Nats};
use tonic::Code;

use crate::report_incident as report;

/// Waits (within a limit) until the hub's `model` halts and its alarm is raised; returns why.
async fn halted(hub: &Hub, model: &str) -> String {
    let model = hub.read_model(model);
    let mut state = model.subscribe();
    let halted = tokio::time::timeout(
        Duration::from_secs(20),
        state.wait_for(|s| s.halted.is_some()),
    )
    .await
    .unwrap_or_else(|_| panic!("{} did not halt", model.name()))
    .expect("model state");
    let why = halted.halted.clone().unwrap_or_default();
    let key = format!("halted/{}", model.name());
    let mut raised = hub.alarms().subscribe();
    tokio::time::timeout(Duration::from_secs(20), async {
        while !hub.alarms().list().iter().any(|(k, _)| *k == key) {
            raised.changed().await.expect("alarms");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no alarm {key}"));
    why
}

/// Reads incident_stats at `min_position`.
async fn stats(hub: &Hub, min_position: u64) -> Result<usize, tonic::Status> {
    hub.datasets()
        .read_dataset(v1::ReadDatasetRequest {
            dataset_id: "incident_stats".into(),
            min_position,
            ..Default::default()
        })
        .await
        .map(|r| r.into_inner().rows.len())
}

async fn delete_log(nats: &Nats) {
    nats.jetstream()
        .await
        .delete_stream("GOV_EVENTS")
        .await
        .expect("the stream is deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_ends_below_the_checkpoint_halts_the_model() {
    let nats = Nats::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = HubBuilder::on(&nats).data_dir(dir.path()).start().await;
    let at = report(&hub, "r-1").await;
    assert_eq!(
        stats(&hub, at).await.expect("served"),
        1,
        "built from the log"
    );
    hub.stop().await.expect("stop");

    // The log is reset (an older backup restored, say): it ends below the model.
    delete_log(&nats).await;
    let hub = HubBuilder::on(&nats).data_dir(dir.path()).start().await;
    let why = halted(&hub, "incident_stats").await;
    assert!(why.contains("log ends at position 0"), "{why}");
    let status = stats(&hub, 0)
        .await
        .expect_err("a halted model serves nothing");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_created_again_under_the_same_name_halts_the_model() {
    let nats = Nats::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = HubBuilder::on(&nats).data_dir(dir.path()).start().await;
    let at = report(&hub, "r-1").await;
    assert_eq!(stats(&hub, at).await.expect("served"), 1);
    hub.stop().await.expect("stop");

    // Another log under the same name, grown past the model's checkpoint: no sequence rule
    // can tell, the log's identity does.
    delete_log(&nats).await;
    let other = HubBuilder::on(&nats).start().await;
    for n in 0..3 {
        report(&other, &format!("other-{n}")).await;
    }
    other.stop().await.expect("stop");

    let hub = HubBuilder::on(&nats).data_dir(dir.path()).start().await;
    let why = halted(&hub, "incident_stats").await;
    assert!(why.contains("created again"), "{why}");
    let status = stats(&hub, 0).await.expect_err("halted");
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_gone_from_under_a_model_halt_it() {
    let nats = Nats::start().await;
    // A log whose first events are gone: it starts at position 100.
    let settings = EventsStreamSettings {
        duplicate_window: Duration::from_secs(120),
        replicas: 1,
    };
    let mut config = events_stream_config(&settings);
    config.first_sequence = Some(100);
    nats.jetstream()
        .await
        .create_stream(config)
        .await
        .expect("stream");

    // A hub that has followed the log from its start serves.
    let first = HubBuilder::on(&nats).start().await;
    let at = report(&first, "r-1").await;
    assert_eq!(at, 100);
    assert_eq!(stats(&first, at).await.expect("served"), 1);
    first.stop().await.expect("stop");

    // A model built now needs events 1 to 99, which the log no longer holds.
    let second = HubBuilder::on(&nats).start().await;
    let why = halted(&second, "incident_stats").await;
    assert!(why.contains("events 1 to 99 are gone"), "{why}");
    let status = stats(&second, 0).await.expect_err("halted");
    assert_eq!(status.code(), Code::Unavailable);
}
