//! Setting up logs, traces and metrics for the process, and flushing them at the end.
//!
//! Trace export is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` names a collector (OTLP over gRPC, `http://host:4317`), and
//! off when `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`; metrics likewise with
//! `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` and `OTEL_METRICS_EXPORTER`. The exporter reads the
//! other standard variables itself (`OTEL_EXPORTER_OTLP_TIMEOUT`, `_HEADERS`, ...), and the
//! resource `OTEL_SERVICE_NAME` (default `hub`) and `OTEL_RESOURCE_ATTRIBUTES`.

use std::str::FromStr;
use std::time::Duration;

use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::export::{Bounded, Bounds, Flusher};

/// How log lines are written (to stdout): `text` for people, `json` (one object
/// per line, with the trace id) for log collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("log format {other:?}: use text or json")),
        }
    }
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// Held for the life of the process; [`Telemetry::shutdown`] exports what is queued.
#[derive(Debug)]
pub struct Telemetry {
    tracer: Option<SdkTracerProvider>,
    flusher: Option<Flusher>,
    /// Where traces go, for the start-up log line.
    pub traces_endpoint: Option<String>,
}

fn set(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn disabled(exporter_variable: &str) -> bool {
    set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || set(exporter_variable).is_some_and(|v| v.eq_ignore_ascii_case("none"))
}

/// The OTLP endpoint for `signal` (`TRACES`, `METRICS`), unless disabled.
fn endpoint(signal: &str) -> Option<String> {
    if disabled(&format!("OTEL_{signal}_EXPORTER")) {
        return None;
    }
    set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))
        .or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))
}

/// The resource every signal names: `service.name` from `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES`, else `hub`.
pub(crate) fn resource() -> Resource {
    let builder = Resource::builder();
    let named = set("OTEL_SERVICE_NAME").is_some()
        || set("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|a| {
            a.split(',')
                .any(|pair| pair.trim_start().starts_with("service.name="))
        });
    if named {
        builder.build()
    } else {
        builder.with_service_name("hub").build()
    }
}

/// The OTLP metrics exporter, when configured (and buildable).
pub(crate) fn otlp_metrics() -> Option<opentelemetry_otlp::MetricExporter> {
    endpoint("METRICS")?;
    match opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => Some(exporter),
        Err(err) => {
            eprintln!("metrics: the OTLP exporter cannot be set up ({err}); Prometheus only");
            None
        }
    }
}

/// Sets up the process's logs (to stdout, `RUST_LOG` filtering, `info` by default), traces
/// and metrics. Call once, inside the Tokio runtime. The OpenTelemetry layer is there when
/// traces are exported or logs are JSON (whose lines carry the trace id).
pub fn init(format: LogFormat) -> Telemetry {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let traces_endpoint = endpoint("TRACES");
    let exporter = match &traces_endpoint {
        Some(_) => match opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
        {
            Ok(exporter) => Some(exporter),
            Err(err) => {
                eprintln!("traces: the OTLP exporter cannot be set up ({err}); not exported");
                None
            }
        },
        None => None,
    };
    let (tracer, flusher) = if exporter.is_some() || format == LogFormat::Json {
        let mut builder = SdkTracerProvider::builder().with_resource(resource());
        let mut flusher = None;
        if let Some(mut exporter) = exporter {
            use opentelemetry_sdk::trace::SpanExporter;
            exporter.set_resource(&resource());
            let (processor, f) = Bounded::start(exporter, Bounds::from_env());
            // A batch of up to 1000 commands links every one.
            builder = builder
                .with_span_processor(processor)
                .with_max_links_per_span(1000);
            flusher = Some(f);
            crate::trace::set_exporting();
        }
        (Some(builder.build()), flusher)
    } else {
        (None, None)
    };
    let fmt = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer().boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .event_format(crate::json::JsonLines)
            .boxed(),
    };
    let otel = tracer.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("hub"))
            .with_filter(otel_filter())
    });
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter()))
        .with(otel)
        .try_init();
    // The instruments, set up now inside the runtime (OTLP metrics need it).
    let _ = crate::metrics::metrics();
    let exporting = flusher.is_some();
    Telemetry {
        tracer,
        flusher,
        traces_endpoint: traces_endpoint.filter(|_| exporting),
    }
}

/// The spans exported: the hub's own at info and above, never those of the libraries the
/// exporter itself uses (a span about exporting would be exported, and so on).
fn otel_filter() -> EnvFilter {
    EnvFilter::new(
        "info,h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,opentelemetry=off,\
         opentelemetry_sdk=off,opentelemetry_otlp=off,async_nats=off",
    )
}

impl Telemetry {
    /// Exports the spans and metrics still queued, within a few seconds.
    pub async fn shutdown(mut self) {
        if let Some(flusher) = self.flusher.take() {
            flusher.shutdown(Duration::from_secs(5)).await;
        }
        if let Some(tracer) = self.tracer.take() {
            let _ = tracer.shutdown();
        }
        let metrics = tokio::task::spawn_blocking(crate::metrics::shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(5), metrics).await;
    }
}

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn a_log_format_is_text_or_json_and_anything_else_is_refused_by_name() {
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        for format in [LogFormat::Text, LogFormat::Json] {
            assert_eq!(format.to_string().parse::<LogFormat>(), Ok(format));
        }
        let refused = "xml".parse::<LogFormat>().expect_err("not a format");
        assert!(
            refused.contains("xml") && refused.contains("text or json"),
            "{refused}"
        );
        assert!("JSON".parse::<LogFormat>().is_err());
    }
}
