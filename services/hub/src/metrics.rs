//! `GET /metrics`: every metric of the hub in Prometheus' text format, on the hub's own port,
//! the lag gauges brought up to date first.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::admin::Admin;

pub fn router(admin: Arc<Admin>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(admin)
}

async fn metrics(State(admin): State<Arc<Admin>>) -> impl IntoResponse {
    admin.observe().await;
    (
        [(
            CONTENT_TYPE,
            hub_telemetry::metrics::PROMETHEUS_CONTENT_TYPE,
        )],
        hub_telemetry::metrics::prometheus_text(),
    )
}
