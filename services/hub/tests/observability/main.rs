//! Observability, against the real `hub` binary (telemetry is set up once per process, as
//! in production) on a real nats-server, exporting to an OTLP receiver in the test:
//! - one report is one trace, from the caller's `traceparent` through the append to every
//!   read model and feed it reached, with the RPC and messaging conventions;
//! - a care record's personal data is in no exported span and no log line;
//! - the Prometheus endpoint counts what was done;
//! - a collector that hangs, then goes away, never holds a command, and what could not be
//!   exported is counted.

mod collector;
mod down;
mod metrics;
mod trace;

use std::path::Path;
use std::time::Duration;

use hub_tests::{HubProcess, Nats, ProcessBuilder, wait_until};

use collector::Collector;

const HUB: &str = env!("CARGO_BIN_EXE_hub");

/// A hub exporting traces to `collector`, logging JSON.
fn exporting(dir: &Path, nats: &Nats, collector: &Collector) -> ProcessBuilder {
    ProcessBuilder::new(Path::new(HUB), dir, nats)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_SERVICE_NAME", "hub-under-test")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "200")
        .env("HUB_LOG_FORMAT", "json")
}

/// A report from urban management refused for its empty description (INVALID_ARGUMENT).
async fn refused_report(hub: &HubProcess, rid: &str) {
    let mut bad = hub_tests::fixtures::incident(rid);
    bad.description.clear();
    let refused = hub
        .commands()
        .report_case(hub_tests::fixtures::from("urban-management", bad))
        .await
        .expect_err("no description");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

/// `GET /metrics` as text.
async fn scrape(hub: &HubProcess) -> String {
    let response = reqwest::get(format!("http://{}/metrics", hub.addr()))
        .await
        .expect("GET /metrics");
    assert!(response.status().is_success(), "{}", response.status());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.expect("metrics text")
}

/// The value of the sample `name` whose labels include every pair of `labels`, if any.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            (metric == name).then_some((rest, value))
        })
        .find(|(rest, _)| {
            labels
                .iter()
                .all(|(k, v)| rest.split(',').any(|pair| pair == format!("{k}=\"{v}\"")))
        })
        .and_then(|(_, value)| value.parse().ok())
}

/// Waits until a scrape shows `name{labels}` at `at_least` or more; returns that scrape.
async fn scrape_until(
    hub: &HubProcess,
    name: &str,
    labels: &[(&str, &str)],
    at_least: f64,
) -> String {
    scrape_when(hub, &format!("{name}{labels:?} >= {at_least}"), |text| {
        sample(text, name, labels).is_some_and(|v| v >= at_least)
    })
    .await
}

/// Waits until a scrape meets `condition` (the lag gauges are read every 5 s); returns it.
async fn scrape_when(hub: &HubProcess, what: &str, condition: impl Fn(&str) -> bool) -> String {
    wait_until(what, Duration::from_secs(30), || async {
        let text = scrape(hub).await;
        condition(&text).then_some(text)
    })
    .await
}
