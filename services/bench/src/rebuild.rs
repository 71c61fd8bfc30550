//! The hub's own rebuild of its read models, asked through its admin service as an operator
//! would (`hubctl rebuild`): every read model that can be rebuilt (all but the feed
//! publisher's) at once, each from position 1 into a new sled database beside the live one,
//! by the hub's projector code in the hub process.
//!
//! The time is taken from the asking until every rebuild's consumer has nothing pending and
//! nothing unacknowledged (a projector acknowledges a batch once its rows and checkpoint are
//! written), read from the nats-server every 20 ms: the progress the admin service streams
//! comes every 250 ms and says "caught up" only after an idle check, which would add up to
//! ~0.75 s. The rebuilds are then swapped in (not timed), as an operator would.

use std::time::{Duration, Instant};

use async_nats::jetstream;
use hub_api::v1::{
    GetStatusRequest, RebuildReadModelRequest, SwapReadModelRequest,
    admin_service_client::AdminServiceClient,
};
use hub_log::names::{EVENTS_STREAM, projector_consumer};
use hub_projector::feed::FEED_MODEL;

use crate::report::Hub;

/// The demo registry's operator unit (deploy/reference/demo.toml).
const OPERATOR: &str = "big-data-centre";

fn as_operator<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(
        hub_ingest::DEPARTMENT_HEADER,
        tonic::metadata::MetadataValue::from_static(OPERATOR),
    );
    metadata.insert(
        hub_api::identity::PERSON_HEADER,
        tonic::metadata::MetadataValue::from_static("bench-operator"),
    );
    metadata.insert(
        hub_api::identity::PURPOSE_HEADER,
        tonic::metadata::MetadataValue::from_static("bench"),
    );
    request
}

/// What a rebuild of every read model took.
#[derive(Debug)]
pub struct Rebuilt {
    pub models: Vec<String>,
    pub took: Duration,
    /// When each read model's rebuild had applied the log, in that order.
    pub each: Vec<(String, Duration)>,
}

/// The read models the hub can rebuild, by GetStatus.
pub async fn read_models(hub: &Hub) -> anyhow::Result<Vec<String>> {
    let mut admin = AdminServiceClient::new(hub.channel(0));
    let status = admin
        .get_status(as_operator(GetStatusRequest {}))
        .await?
        .into_inner();
    Ok(status
        .read_models
        .into_iter()
        .map(|m| m.name)
        // The feed publisher's is not rebuilt.
        .filter(|name| name != FEED_MODEL)
        .collect())
}

/// Rebuilds every read model at once, times it, and swaps the rebuilds in.
pub async fn rebuild_all(
    hub: &Hub,
    js: &jetstream::Context,
    instance: &str,
) -> anyhow::Result<Rebuilt> {
    let models = read_models(hub).await?;
    anyhow::ensure!(!models.is_empty(), "GetStatus lists no read model");
    let stream = js.get_stream(EVENTS_STREAM).await?;
    let started = Instant::now();
    // Each RebuildReadModel answers with a stream of progress, read to its end on a task of
    // its own so that every rebuild is asked for at once.
    let progress: Vec<_> = models
        .iter()
        .map(|name| {
            let mut admin = AdminServiceClient::new(hub.channel(0));
            let request = as_operator(RebuildReadModelRequest {
                read_model: name.clone(),
            });
            tokio::spawn(async move {
                follow(admin.rebuild_read_model(request).await?.into_inner()).await
            })
        })
        .collect();
    let consumers: Vec<String> = models
        .iter()
        .map(|name| format!("{}-rebuild", projector_consumer(name, instance)))
        .collect();
    let mut pending: Vec<(&String, &String)> = consumers.iter().zip(&models).collect();
    let mut each = Vec::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (consumer, model) in pending {
            let done = match stream.consumer_info(consumer.as_str()).await {
                Ok(info) => info.num_pending == 0 && info.num_ack_pending == 0,
                // Not created yet.
                Err(_) => false,
            };
            if done {
                each.push((model.clone(), started.elapsed()));
            } else {
                still.push((consumer, model));
            }
        }
        pending = still;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "the rebuilds did not finish within an hour"
        );
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let took = started.elapsed();
    // Each build says it caught up (or why it halted) before it can be swapped in.
    for task in progress {
        task.await??;
    }
    let mut admin = AdminServiceClient::new(hub.channel(0));
    for name in &models {
        admin
            .swap_read_model(as_operator(SwapReadModelRequest {
                read_model: name.clone(),
            }))
            .await?;
    }
    Ok(Rebuilt { models, took, each })
}

/// Reads a rebuild's progress until it has caught up; fails if it halted or ended before.
async fn follow(
    mut progress: tonic::Streaming<hub_api::v1::RebuildReadModelResponse>,
) -> anyhow::Result<()> {
    while let Some(message) = progress.message().await? {
        let Some(p) = message.progress else { continue };
        anyhow::ensure!(
            p.halted.is_empty(),
            "the rebuild of {} halted: {}",
            p.read_model,
            p.halted
        );
        if p.caught_up {
            return Ok(());
        }
    }
    anyhow::bail!("a rebuild's progress ended before it caught up")
}
