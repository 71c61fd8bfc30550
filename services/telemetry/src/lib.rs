//! The hub's traces, metrics and logs.
//!
//! - **Traces.** Every gRPC call gets a server span ([`grpc::ServerSpans`]) that continues the
//!   caller's W3C `traceparent`. An append is a producer span whose context goes into the
//!   event's `ce-traceparent` header; the projectors, the feed publisher and the audit writer
//!   read it back and continue the trace in consumer and producer spans of their own
//!   ([`trace`]). Export is over OTLP/gRPC, configured by the standard `OTEL_*` variables and
//!   off unless an endpoint is named ([`init`]); the export queue is bounded and what does
//!   not fit is dropped and counted, so a collector that is down or slow never holds the hub.
//! - **Metrics.** [`metrics()`] holds the instruments; [`Telemetry::prometheus_text`] renders
//!   them in Prometheus' text format, and they also go over OTLP when configured.
//! - **Logs.** Text (the default) or JSON, one object per line with the trace and span ids.
//!
//! Nothing here reads an event's body or a request's message: span attributes are names,
//! subjects of generated ids, positions and codes, never personal data.

pub mod export;
pub mod grpc;
mod json;
pub mod metrics;
mod setup;
pub mod trace;

pub use metrics::{Metrics, metrics};
pub use setup::{LogFormat, Telemetry, init};
