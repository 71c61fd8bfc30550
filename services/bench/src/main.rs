//! `hub-bench`: the hub against raw JetStream, in one run, on one nats-server with the
//! production settings (`sync_interval: always`, file storage, the events stream's limits).
//!
//! Run with `cargo run --release -p hub-bench` (add `-- --help` for sizes). It prints
//! absolute figures and the ratios the design sets targets for; it asserts nothing (the
//! machine is shared and noisy; figures go into notes, not into tests).

mod raw;
mod report;

use std::time::Duration;

use clap::Parser;
use hub_log::server::{NatsServer, ServerOptions, locate_binary};

#[derive(Debug, Parser)]
#[command(about = "Benchmarks the hub against raw JetStream publishing")]
struct Args {
    /// Events for the concurrent runs.
    #[arg(long, default_value_t = 4000)]
    events: usize,
    /// Concurrent clients (gRPC calls in flight, or raw publishers awaiting their acks).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Sequential calls for the latency runs.
    #[arg(long, default_value_t = 400)]
    sequential: usize,
    /// Cases for the bulk import runs.
    #[arg(long, default_value_t = 20000)]
    bulk: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = locate_binary()?;
    let dir = tempfile::Builder::new().prefix("hub-bench-").tempdir()?;
    let nats = NatsServer::start(
        &binary,
        ServerOptions::new(dir.path().join("nats"), "bench"),
    )
    .await?;
    println!(
        "nats-server {} (sync_interval: always), store in {}",
        binary.display(),
        dir.path().display()
    );

    let hub = report::Hub::start(&nats, &dir.path().join("hub")).await?;
    let raw = raw::Raw::new(nats.client_url()).await?;
    let sample = raw::sample_event();
    println!(
        "event: {} body bytes, {} header bytes\n",
        sample.body.len(),
        raw::header_bytes(&sample)
    );

    let mut rows = Vec::new();

    // Warm both paths (connections, caches, file creation) before measuring.
    hub.concurrent(200, 8, "warm").await?;
    raw.concurrent(200, 8, &sample).await?;

    let hub_rate = hub
        .concurrent(args.events, args.concurrency, "conc")
        .await?;
    let raw_rate = raw
        .concurrent(args.events, args.concurrency, &sample)
        .await?;
    rows.push((
        "concurrent reports, events/s",
        hub_rate,
        raw_rate,
        "hub/raw >= 0.8",
    ));

    let hub_p50 = hub.sequential(args.sequential, "seq").await?;
    let raw_p50 = raw.sequential(args.sequential, &sample).await?;
    rows.push((
        "sequential report, median ms",
        ms(hub_p50),
        ms(raw_p50),
        "hub/raw <= 2.5",
    ));

    let hub_bulk = hub.bulk(args.bulk).await?;
    let raw_bulk = raw.batches(args.bulk, 1000, &sample).await?;
    rows.push((
        "bulk import, events/s",
        hub_bulk,
        raw_bulk,
        "hub/raw >= 0.8",
    ));
    let single_rate = 1000.0 / ms(hub_p50);
    rows.push((
        "bulk vs single sequential calls, events/s",
        hub_bulk,
        single_rate,
        "bulk/single >= 10",
    ));

    println!(
        "{:<44} {:>12} {:>12} {:>8}  target",
        "measure", "hub", "baseline", "ratio"
    );
    for (name, hub, baseline, target) in rows {
        println!(
            "{name:<44} {hub:>12.2} {baseline:>12.2} {:>8.2}  {target}",
            hub / baseline
        );
    }
    hub.stop().await?;
    nats.stop(Duration::from_secs(10)).await;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
