//! An OTLP/gRPC receiver in the test: the collector's trace and metrics services, generated
//! from opentelemetry-proto, keeping every span and the name of every metric it is sent. It
//! can be made to stall (take a batch and not answer, as a collector that hangs), and to go
//! away: refuse every batch (the held ones too) and accept no new connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

#[derive(Default)]
struct Shared {
    spans: Mutex<Vec<Span>>,
    /// `service.name` of every batch's resource.
    services: Mutex<Vec<String>>,
    /// Names of the metrics received.
    metrics: Mutex<Vec<String>>,
    stalled: AtomicBool,
    /// Export calls that arrived while stalled.
    held: AtomicUsize,
    /// Answers UNAVAILABLE to everything.
    refusing: AtomicBool,
    /// Wakes the held calls.
    release: tokio::sync::Notify,
}

impl Shared {
    /// Holds a call while stalled; `Err` when the collector refuses it.
    async fn answer(&self) -> Result<(), Status> {
        if self.stalled.load(Ordering::SeqCst) {
            self.held.fetch_add(1, Ordering::SeqCst);
            loop {
                let released = self.release.notified();
                if !self.stalled.load(Ordering::SeqCst) {
                    break;
                }
                released.await;
            }
        }
        if self.refusing.load(Ordering::SeqCst) {
            return Err(Status::unavailable("the collector is going away"));
        }
        Ok(())
    }
}

#[derive(Clone)]
struct Service(Arc<Shared>);

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.0.answer().await?;
        for resource in request.into_inner().resource_spans {
            if let Some(name) = resource
                .resource
                .as_ref()
                .and_then(|r| attribute(&r.attributes, "service.name"))
            {
                self.0.services.lock().expect("services").push(name);
            }
            for scope in resource.scope_spans {
                self.0.spans.lock().expect("spans").extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Service {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.0.answer().await?;
        let mut names = self.0.metrics.lock().expect("metrics");
        for resource in request.into_inner().resource_metrics {
            for scope in resource.scope_metrics {
                names.extend(scope.metrics.into_iter().map(|m| m.name));
            }
        }
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// The receiver, serving on a loopback port until stopped or dropped.
pub struct Collector {
    shared: Arc<Shared>,
    endpoint: String,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared::default());
        let traces = TraceServiceServer::new(Service(shared.clone()));
        let metrics = MetricsServiceServer::new(Service(shared.clone()));
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(traces)
                .add_service(metrics)
                .serve_with_incoming(TcpListenerStream::new(listener))
                .await;
        });
        Self {
            shared,
            endpoint,
            task,
        }
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT` for the hub.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.shared.spans.lock().expect("spans").clone()
    }

    /// Names of the metrics received so far.
    pub fn metrics(&self) -> Vec<String> {
        self.shared.metrics.lock().expect("metrics").clone()
    }

    pub fn services(&self) -> Vec<String> {
        self.shared.services.lock().expect("services").clone()
    }

    /// From now on, takes each batch and never answers.
    pub fn stall(&self) {
        self.shared.stalled.store(true, Ordering::SeqCst);
    }

    /// Export calls held since [`Collector::stall`].
    pub fn held(&self) -> usize {
        self.shared.held.load(Ordering::SeqCst)
    }

    /// Goes away: refuses every batch, the held ones included, and accepts no new connection
    /// (the port is closed; a connection already open is answered UNAVAILABLE).
    pub fn stop(&self) {
        self.shared.refusing.store(true, Ordering::SeqCst);
        self.shared.stalled.store(false, Ordering::SeqCst);
        self.shared.release.notify_waiters();
        self.task.abort();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A span's (or resource's) attribute as text.
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text)
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Everything a span says in text: name, attributes, events (with theirs), links' attributes
/// and status message, for a search for personal data.
pub fn everything(span: &Span) -> String {
    let mut all = vec![span.name.clone()];
    let mut add = |attributes: &[KeyValue]| {
        for kv in attributes {
            all.push(format!(
                "{}={}",
                kv.key,
                kv.value.as_ref().map(text).unwrap_or_default()
            ));
        }
    };
    add(&span.attributes);
    for event in &span.events {
        add(&event.attributes);
    }
    for link in &span.links {
        add(&link.attributes);
    }
    for event in &span.events {
        all.push(event.name.clone());
    }
    if let Some(status) = &span.status {
        all.push(status.message.clone());
    }
    all.join("\n")
}
