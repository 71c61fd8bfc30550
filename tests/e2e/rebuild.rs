//! A read model built by older code is rebuilt beside the live one, which serves meanwhile,
//! and swapped in once caught up.

use std::time::Duration;

use hub_api::v1;
use hub_store::{MODEL_VERSION, ReadModelStore};
use hub_tests::{
    Hold, Hub, HubBuilder, Nats, assert_read_models_equal_a_rebuild, default_policy, open_stopped,
};

use crate::report_incident as report;

/// incident_stats' `reported` count at `min_position`.
async fn reported(hub: &Hub, min_position: u64) -> Result<String, tonic::Status> {
    let rows = hub
        .datasets()
        .read_dataset(v1::ReadDatasetRequest {
            dataset_id: "incident_stats".into(),
            min_position,
            ..Default::default()
        })
        .await?
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 1, "{rows:?}");
    match rows[0].fields["reported"].kind.as_ref() {
        Some(prost_types::value::Kind::NumberValue(n)) => Ok(n.to_string()),
        other => panic!("reported: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_built_by_older_code_is_rebuilt_beside_the_live_one_and_swapped_in() {
    let version = hub_projector::datasets::incident_stats::DATASET
        .version
        .to_string();
    let folder = format!("incident_stats.v{version}");
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let models = dir.path().join("read-models");
    let hub = HubBuilder::on(&nats).data_dir(dir.path()).start().await;
    report(&hub, "r-1").await;
    let at = report(&hub, "r-2").await;
    assert_eq!(reported(&hub, at).await.expect("served"), "2");
    hub.stop().await.expect("stop");

    // The stored model says older code built it.
    {
        let store = open_stopped(&models.join("incident_stats")).await;
        assert_eq!(
            store.meta(MODEL_VERSION).expect("meta").as_deref(),
            Some(version.as_str())
        );
        store.set_meta(MODEL_VERSION, "0").expect("set");
    }

    // While the rebuild is held, the live model serves what it has; the new folder is beside it.
    let builder = HubBuilder::on(&nats).data_dir(dir.path());
    let hold = Hold::new(&format!("{}-rebuild", builder.consumer("incident_stats")));
    let hub = builder.start().await;
    assert_eq!(
        reported(&hub, at).await.expect("the live model serves"),
        "2"
    );
    assert!(models.join(&folder).is_dir(), "built beside");
    assert!(
        !models.join("incident_stats.current").exists(),
        "not swapped yet"
    );
    let later = report(&hub, "r-3").await;
    let mut request = tonic::Request::new(v1::ReadDatasetRequest {
        dataset_id: "incident_stats".into(),
        min_position: later,
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(500));
    let status = hub
        .datasets()
        .read_dataset(request)
        .await
        .expect_err("the live model does not move while it is rebuilt");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");

    // Released: the rebuild catches up, is swapped in, and the model runs on.
    hold.release();
    hub.read_model("incident_stats")
        .wait_for(later, Duration::from_secs(30))
        .await
        .expect("swapped in and caught up");
    assert_eq!(reported(&hub, later).await.expect("served"), "3");
    assert_eq!(
        std::fs::read_to_string(models.join("incident_stats.current")).expect("pointer"),
        folder
    );
    // The old folder goes once the swap is done (after the handle moved, so no read loses it).
    tokio::time::timeout(Duration::from_secs(20), async {
        while models.join("incident_stats").exists() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the old folder is removed");
    hub.stop().await.expect("stop");

    let store = open_stopped(&hub::read_model_dir(dir.path(), "incident_stats")).await;
    assert_eq!(
        store.meta(MODEL_VERSION).expect("meta").as_deref(),
        Some(version.as_str())
    );
    drop(store);
    assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;

    // A restart opens the swapped-in folder and runs it as current.
    let hub = HubBuilder::on(&nats).data_dir(dir.path()).start().await;
    assert_eq!(reported(&hub, later).await.expect("served"), "3");
    hub.stop().await.expect("stop");
}
