//! A collector that hangs, then goes away: commands are answered all along, and the spans
//! that could not be exported are counted.

use std::time::{Duration, Instant};

use hub_tests::fixtures::{from, incident};
use hub_tests::{HubProcess, Nats, wait_until};

use crate::collector::Collector;
use crate::{exporting, sample, scrape_until};

/// A report with a deadline of `DEADLINE`: far below the export's own (10 minutes), so a
/// report that waited on the collector would fail.
const DEADLINE: Duration = Duration::from_secs(10);

async fn report(hub: &HubProcess, rid: &str) -> Duration {
    let mut request = from("urban-management", incident(rid));
    request.set_timeout(DEADLINE);
    let started = Instant::now();
    hub.commands()
        .report_case(request)
        .await
        .unwrap_or_else(|e| panic!("{rid}: {e}"));
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_hangs_or_goes_away_never_holds_a_command() {
    let nats = Nats::start().await;
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = exporting(dir.path(), &nats, &collector)
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "32")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "8")
        .env("OTEL_BSP_EXPORT_TIMEOUT", "600000")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "600000")
        .start_serving_commands()
        .await;

    // While the collector answers, spans arrive.
    let mut answered = vec![report(&hub, "live-1").await];
    wait_until("spans exported", Duration::from_secs(30), || async {
        (!collector.spans().is_empty()).then_some(())
    })
    .await;

    // It hangs: it takes a batch and never answers. Reports go on being answered, and the
    // spans past the queue's bound are dropped and counted.
    collector.stall();
    let mut stalled = Vec::new();
    for i in 0..20 {
        stalled.push(report(&hub, &format!("hung-{i}")).await);
    }
    wait_until("an export held", Duration::from_secs(30), || async {
        (collector.held() > 0).then_some(())
    })
    .await;
    let text = scrape_until(
        &hub,
        "hub_telemetry_spans_dropped_total",
        &[("reason", "queue_full")],
        1.0,
    )
    .await;
    assert!(sample(&text, "hub_commands_total", &[("outcome", "ok")]) >= Some(21.0));

    // It goes away: the held batch and every later one refused, no new connection taken.
    // Reports go on being answered, and the refused spans are counted.
    collector.stop();
    let mut gone = Vec::new();
    for i in 0..10 {
        gone.push(report(&hub, &format!("gone-{i}")).await);
    }
    scrape_until(
        &hub,
        "hub_telemetry_spans_dropped_total",
        &[("reason", "export_failed")],
        1.0,
    )
    .await;
    answered.extend(&stalled);
    answered.extend(&gone);
    let median = |d: &[Duration]| {
        let mut d = d.to_vec();
        d.sort();
        d[d.len() / 2]
    };
    // Reported for the reader, not asserted: timings on a shared machine are noise.
    println!(
        "report latency, median: collector hung {:?}, collector gone {:?} ({} reports)",
        median(&stalled),
        median(&gone),
        answered.len()
    );
    // The hub still stops promptly: what it cannot export is given up after a few seconds.
    let status = hub.stop().await;
    assert!(status.success(), "{status}");
}
