//! `GET /metrics`: every metric of the hub in Prometheus' text format, on the hub's own port.
//! The lag gauges are brought up to date by a task of their own every few seconds, so a
//! scrape never waits on NATS (nor does OTLP export, which reads the same gauges).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::admin::Admin;

/// How often the lag gauges are read, and how long one reading may take.
const REFRESH: Duration = Duration::from_secs(5);

pub fn router() -> Router {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            CONTENT_TYPE,
            hub_telemetry::metrics::PROMETHEUS_CONTENT_TYPE,
        )],
        hub_telemetry::metrics::prometheus_text(),
    )
}

/// Reads the lag gauges every [`REFRESH`] until `stop`; a reading that takes longer is
/// given up, and the gauges keep their last values.
pub async fn refresh(admin: Arc<Admin>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if tokio::time::timeout(REFRESH, admin.observe())
            .await
            .is_err()
        {
            tracing::debug!("metrics: the lag gauges could not be read in time");
        }
    }
}
