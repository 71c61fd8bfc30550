//! `hub-bench`: the hub against raw JetStream, in one run, on one nats-server with the
//! production settings (`sync_interval: always`, file storage, the events stream's limits).
//!
//! Run with `cargo run --release -p hub-bench` (add `-- --help` for sizes). It prints
//! absolute figures and the ratios the design sets targets for; it asserts nothing (the
//! machine is shared and noisy; figures go into notes, not into tests).
//!
//! The last rows show what auditing costs reads (see [`audit`]): audited dataset queries
//! against the rate one append per audit record would cap them at, a query's median time
//! against the audit writer's own wait at the same concurrency, and the writer (which puts
//! every record waiting into one append) against one record per append.

mod audit;
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
    /// Sequential calls for the latency runs (and appends on one chain, one record each).
    #[arg(long, default_value_t = 400)]
    sequential: usize,
    /// Cases for the bulk import runs.
    #[arg(long, default_value_t = 20000)]
    bulk: usize,
    /// Audited dataset queries (at --concurrency).
    #[arg(long, default_value_t = 4000)]
    queries: usize,
    /// Rows per page of those queries.
    #[arg(long, default_value_t = 10)]
    query_page: u32,
    /// Audit records for the writer alone and for one record per append (at --concurrency).
    #[arg(long, default_value_t = 4000)]
    audit_records: usize,
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

    // What auditing costs reads (see `audit`): the queries first, while only the hub writes
    // to GOV_AUDIT, then the writer alone, then one record per append.
    let js = audit::connect(nats.client_url()).await?;
    let settled = audit::settle(&js, Duration::from_secs(300)).await?;
    println!(
        "read models caught up {:.1} s after the imports",
        settled.as_secs_f64()
    );
    hub.queries(audit::DATASET, args.query_page, 200, 8).await?;
    let before = audit::last_sequence(&js).await?;
    let (query_rate, query_p50) = hub
        .queries(
            audit::DATASET,
            args.query_page,
            args.queries,
            args.concurrency,
        )
        .await?;
    let queried = audit::batches_since(&js, audit::HUB_INSTANCE, before).await?;
    // The writer alone and one record per append store what the hub stored for a query.
    let record = queried
        .last
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the hub's audit chain holds no query's record"))?;
    let (record_bytes, append_bytes) = audit::sizes(&record);
    println!(
        "audit record: {record_bytes} bytes ({append_bytes} as a one-record batch); \
         the hub's chain took {} records in {} batches and {} checkpoints during the queries",
        queried.records, queried.batches, queried.checkpoints
    );

    let writer = audit::Writer::start(nats.client_url()).await?;
    writer.run(200, 8, &record).await?;
    let (writer_rate, writer_p50, alone) = writer
        .run(args.audit_records, args.concurrency, &record)
        .await?;
    writer.stop().await?;
    let one = audit::OnePerAppend::new(nats.client_url()).await?;
    one.concurrent(200, 8, &record).await?;
    let one_rate = one
        .concurrent(args.audit_records, args.concurrency, &record)
        .await?;
    let chain_rate = one.concurrent(args.sequential, 1, &record).await?;
    println!(
        "audit writer alone: {} records in {} batches and {} checkpoints\n",
        alone.records, alone.batches, alone.checkpoints
    );

    rows.push((
        "audited dataset queries, queries/s",
        query_rate,
        one_rate,
        "baseline: the cap one append per record sets",
    ));
    rows.push((
        "audited dataset query vs audit wait, median ms",
        ms(query_p50),
        ms(writer_p50),
        "query/audit >= 2: reads not halved",
    ));
    rows.push((
        "audit records/s, batched vs one per append",
        writer_rate,
        one_rate,
        "batched/one per append >> 1",
    ));
    rows.push((
        "audit records/s, batched vs one chain unbatched",
        writer_rate,
        chain_rate,
        "one chain appends one at a time",
    ));
    rows.push((
        "records per batch, queries vs writer alone",
        queried.per_batch(),
        alone.per_batch(),
        "every record waiting goes in one append",
    ));
    rows.push((
        "record made to batch stored, ms, queries vs alone",
        ms(queried.median_until_stored()),
        ms(alone.median_until_stored()),
        "median, before the server's fsync and ack",
    ));

    println!(
        "{:<50} {:>12} {:>12} {:>8}  target",
        "measure", "hub", "baseline", "ratio"
    );
    for (name, hub, baseline, target) in rows {
        println!(
            "{name:<50} {hub:>12.2} {baseline:>12.2} {:>8.2}  {target}",
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
