//! The hub's metrics: OpenTelemetry instruments read by a Prometheus registry (the `/metrics`
//! text endpoint) and, when an OTLP endpoint is configured, exported over OTLP as well.
//!
//! Names follow the OpenTelemetry conventions and come out in Prometheus' own: dots become
//! underscores, seconds get `_seconds`, counters `_total` (`hub.commands` is
//! `hub_commands_total`, `hub.append.duration` is `hub_append_duration_seconds`).

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, MeterProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;

/// Latency buckets, in seconds: 0.5 ms to 10 s.
const SECONDS: [f64; 15] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];
/// Events per append.
const BATCH: [f64; 10] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];

/// Every instrument of the hub.
#[derive(Debug)]
pub struct Metrics {
    /// `rpc_server_call_duration_seconds{rpc_system, rpc_service, rpc_method, rpc_grpc_status_code}`.
    pub rpc_duration: Histogram<f64>,
    /// `hub_commands_total{rpc, outcome}`: command RPCs by gRPC outcome (`ok`, `aborted`, ...).
    pub commands: Counter<u64>,
    /// `hub_requests_refused_total{rpc_service, reason}`: any RPC refused (invalid argument,
    /// permission denied, ...), by reason.
    pub refused: Counter<u64>,
    /// `hub_append_duration_seconds{kind}`: an append until its acknowledgement (`single`, `batch`).
    pub append_duration: Histogram<f64>,
    /// `hub_append_batch_size`: events per append.
    pub append_batch_size: Histogram<u64>,
    /// `hub_projector_events_applied_total{read_model}`.
    pub projector_applied: Counter<u64>,
    /// `hub_projector_lag_events{read_model}`: events of the log past the read model's position.
    pub projector_lag: Gauge<u64>,
    /// `hub_feed_lag_positions{department}`: log positions between the last the department
    /// acknowledged and its feed's last.
    pub feed_lag: Gauge<u64>,
    /// `hub_feed_pending_messages{department}`: feed messages the department has not
    /// acknowledged.
    pub feed_pending: Gauge<u64>,
    /// `hub_feed_messages_published_total{department}`.
    pub feed_published: Counter<u64>,
    /// `hub_audit_chain_length{instance}`: batches in this instance's audit chain.
    pub audit_chain_length: Gauge<u64>,
    /// `hub_nats_reconnects_total{connection}`.
    pub nats_reconnects: Counter<u64>,
    /// `hub_telemetry_spans_dropped_total{reason}`: spans not exported (`queue_full`,
    /// `export_failed`).
    pub spans_dropped: Counter<u64>,
}

struct State {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    metrics: Metrics,
}

static STATE: OnceLock<State> = OnceLock::new();

/// The hub's instruments. The first call sets them up (inside a Tokio runtime when OTLP
/// metrics are configured).
pub fn metrics() -> &'static Metrics {
    &state().metrics
}

fn state() -> &'static State {
    STATE.get_or_init(|| {
        let registry = prometheus::Registry::new();
        let mut builder = SdkMeterProvider::builder().with_resource(crate::setup::resource());
        match opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .scope_info_enabled(false)
            .build()
        {
            Ok(exporter) => builder = builder.with_reader(exporter),
            Err(err) => {
                tracing::warn!(error = %err, "metrics: the Prometheus registry cannot be set up")
            }
        }
        if let Some(exporter) = crate::setup::otlp_metrics() {
            // Every `OTEL_METRIC_EXPORT_INTERVAL` ms (60 s by default).
            builder = builder
                .with_reader(opentelemetry_sdk::metrics::PeriodicReader::builder(exporter).build());
        }
        let provider = builder.build();
        let meter = provider.meter("hub");
        let metrics = Metrics {
            rpc_duration: meter
                .f64_histogram("rpc.server.call.duration")
                .with_unit("s")
                .with_description("gRPC calls served, until their response headers")
                .with_boundaries(SECONDS.to_vec())
                .build(),
            commands: meter
                .u64_counter("hub.commands")
                .with_description("Command RPCs answered, by RPC and outcome")
                .build(),
            refused: meter
                .u64_counter("hub.requests.refused")
                .with_description("Requests refused, by service and reason (the gRPC code)")
                .build(),
            append_duration: meter
                .f64_histogram("hub.append.duration")
                .with_unit("s")
                .with_description("Appends to the event log until acknowledged")
                .with_boundaries(SECONDS.to_vec())
                .build(),
            append_batch_size: meter
                .u64_histogram("hub.append.batch.size")
                .with_description("Events per append to the event log")
                .with_boundaries(BATCH.to_vec())
                .build(),
            projector_applied: meter
                .u64_counter("hub.projector.events.applied")
                .with_description("Events applied to a read model")
                .build(),
            projector_lag: meter
                .u64_gauge("hub.projector.lag.events")
                .with_description("Events in the log past a read model's position")
                .build(),
            feed_lag: meter
                .u64_gauge("hub.feed.lag.positions")
                .with_description(
                    "Log positions between the last a department acknowledged and its feed's last",
                )
                .build(),
            feed_pending: meter
                .u64_gauge("hub.feed.pending.messages")
                .with_description("Feed messages a department has not acknowledged")
                .build(),
            feed_published: meter
                .u64_counter("hub.feed.messages.published")
                .with_description("Messages the feed publisher sent into a department's feed")
                .build(),
            audit_chain_length: meter
                .u64_gauge("hub.audit.chain.length")
                .with_description("Batches in this hub instance's audit chain")
                .build(),
            nats_reconnects: meter
                .u64_counter("hub.nats.reconnects")
                .with_description("Connections to nats-server made again after a loss")
                .build(),
            spans_dropped: meter
                .u64_counter("hub.telemetry.spans.dropped")
                .with_description(
                    "Spans not exported: the export queue was full, or the collector failed",
                )
                .build(),
        };
        State {
            provider,
            registry,
            metrics,
        }
    })
}

/// Every metric in Prometheus' text exposition format.
pub fn prometheus_text() -> String {
    use prometheus::Encoder;
    let families = state().registry.gather();
    let mut text = Vec::new();
    if let Err(err) = prometheus::TextEncoder::new().encode(&families, &mut text) {
        tracing::warn!(error = %err, "metrics: cannot encode");
    }
    String::from_utf8(text).unwrap_or_default()
}

/// The content type of [`prometheus_text`].
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Flushes OTLP metrics at shutdown.
pub(crate) fn shutdown() {
    if let Some(state) = STATE.get()
        && let Err(err) = state.provider.shutdown()
    {
        tracing::debug!(error = %err, "metrics: shutdown");
    }
}

/// One label.
pub fn label(key: &'static str, value: impl Into<opentelemetry::Value>) -> KeyValue {
    KeyValue::new(key, value)
}
