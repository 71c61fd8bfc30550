//! The run: one nats-server, the hub in a process of its own, the load from this process,
//! and each figure beside its baseline, in this order:
//!
//! 1. concurrent reports through the hub against raw pipelined publishes of the hub's own
//!    report event (its body and headers, each expecting an empty subject as the hub's do) at
//!    equal concurrency; and the CPU time per 1000 of them of the hub process, of the nats-server
//!    and of this process (the load client, or the raw publisher), read from `/proc`, from
//!    before the run until the hub's read models have applied it (projection is part of a
//!    command's cost), against the raw run's;
//! 2. one report at a time against one raw publish at a time, median and p99;
//! 3. an import against raw atomic batches of the size the import appends (1000 events) with
//!    as many in flight (4), through the same `Appender` code; and the import against single
//!    sequential reports;
//! 4. the audit rows ([`crate::audit`]);
//! 5. a report's visibility in its department's queue at a steady rate ([`crate::visible`]);
//! 6. over a log filled to `--rebuild-events` events by imports ([`big_log`]): the hub's
//!    memory; its rebuild of every read model ([`crate::rebuild`]) against an ordered replay
//!    of the log plus the sled-only writing of the same rows; and the hub's projector code
//!    building every read model against a pull consumer reading the log and against the
//!    sled-only writing ([`crate::projection`]).

use std::sync::Arc;
use std::time::Duration;

use hub_log::names::EVENTS_STREAM;
use hub_log::server::{NatsServer, ServerOptions, locate_binary};

use crate::peer::{self, HubFigures};
use crate::procfs::{self, CpuSample, mib};
use crate::raw::{self, Raw, median, percentile};
use crate::report::{Hub, IMPORT_BATCH, IMPORT_BATCHES_IN_FLIGHT, MAX_IMPORT};
use crate::serve::HubProcess;
use crate::table::Table;
use crate::{Args, audit, projection, rebuild, visible};

/// Disk one event of the big log takes at the peak of the run, with its read models (over
/// 20 KB on a 100000-event log, most of it sled's).
const DISK_PER_EVENT: u64 = 24 * 1024;

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What the run works with.
struct Bench {
    nats: NatsServer,
    nats_pid: u32,
    process: HubProcess,
    hub: Hub,
    raw: Raw,
    sample: raw::Sample,
    js: async_nats::jetstream::Context,
    dir: std::path::PathBuf,
}

impl Bench {
    async fn last_position(&self) -> anyhow::Result<u64> {
        let mut stream = self.js.get_stream(EVENTS_STREAM).await?;
        Ok(stream.info().await?.state.last_sequence)
    }

    async fn settle(&self) -> anyhow::Result<Duration> {
        audit::settle(&self.js, Duration::from_secs(3600)).await
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let binary = locate_binary()?;
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    // Refused at once rather than filling a shared disk: the big log's read models take
    // most of it (the live ones and their rebuilds beside them at the peak), the runs before
    // it a few hundred MiB.
    let target = args.rebuild_events;
    let need = target * DISK_PER_EVENT + (512 << 20);
    if let Some(free) = procfs::free_disk(&base) {
        anyhow::ensure!(
            free > need,
            "the run with a {target}-event log needs some {:.1} GiB of disk at its peak and {} \
             has {:.1} GiB free: pass a smaller --rebuild-events, or --dir on a larger disk",
            need as f64 / f64::from(1 << 30),
            base.display(),
            free as f64 / f64::from(1 << 30)
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("hub-bench-")
        .tempdir_in(&base)?;
    let nats = NatsServer::start(
        &binary,
        ServerOptions::new(dir.path().join("nats"), "bench"),
    )
    .await?;
    let nats_pid = nats
        .pid()
        .ok_or_else(|| anyhow::anyhow!("nats-server has no pid"))?;
    println!(
        "nats-server {} (sync_interval: always), store in {}",
        binary.display(),
        dir.path().display()
    );
    let process =
        HubProcess::start(&nats, &dir.path().join("hub"), Duration::from_secs(60)).await?;
    let hub = Hub::connect(process.addr).await?;
    let raw = Raw::new(nats.client_url()).await?;
    let js = audit::connect(nats.client_url()).await?;
    // Warm the hub (connections, caches, file creation) before measuring; the raw runs
    // publish the event it stored last.
    hub.concurrent(200, 8, "warm").await?;
    let sample = raw::sample_from_log(&js).await?;
    println!(
        "hub process {} on {}; a report's event: {} body bytes, {} header bytes\n",
        process.pid(),
        process.addr,
        sample.body.len(),
        raw::header_bytes(&sample)
    );
    let mut bench = Bench {
        nats,
        nats_pid,
        process,
        hub,
        raw,
        sample,
        js,
        dir: dir.path().to_owned(),
    };
    println!(
        "  {:<62} {:>11} {:>11} {:>8}",
        "measure", "hub", "baseline", "ratio"
    );
    let mut table = Table::default();
    if let Err(err) = phases(&mut table, &bench, &args).await {
        let log = std::fs::read_to_string(bench.process.log_path()).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!("the hub's log ends with:");
        for line in tail.into_iter().rev() {
            eprintln!("{line}");
        }
        return Err(err);
    }
    bench.process.check_alive()?;
    table.note(format!(
        "this process (load client, baselines) peaked at {:.0} MiB resident",
        mib(procfs::memory(std::process::id())?.peak)
    ));
    table.note(bench.process.log_findings());

    println!("\n{}", table.render());
    if let Some(path) = &args.results {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        std::fs::write(path, table.results(&procfs::machine(&binary), &command))?;
        println!("results written to {}", path.display());
    }
    bench.process.stop(Duration::from_secs(30)).await?;
    bench.nats.stop(Duration::from_secs(10)).await;
    Ok(())
}

async fn phases(table: &mut Table, bench: &Bench, args: &Args) -> anyhow::Result<()> {
    let figures = commands(table, bench, args).await?;
    if args.peer {
        peer::rows(table, &figures, &bench.dir).await?;
    }
    audit::rows(table, &bench.hub, bench.nats.client_url(), args).await?;
    visibility(table, bench, args).await?;
    if args.rebuild_events > 0 {
        big_log(table, bench, args).await?;
    }
    Ok(())
}

/// Rows 1 to 3: concurrent and sequential reports, the import; what the hub did, for the
/// rows against the peer.
async fn commands(table: &mut Table, b: &Bench, args: &Args) -> anyhow::Result<HubFigures> {
    let hub_pid = b.process.pid();
    // Warm the raw path as the hub's was.
    b.raw.concurrent(200, 8, &b.sample).await?;
    b.settle().await?;

    let before = CpuSample::take(hub_pid, b.nats_pid)?;
    let hub_rate = b
        .hub
        .concurrent(args.events, args.concurrency, "conc")
        .await?;
    let settled = b.settle().await?;
    let hub_cpu = CpuSample::take(hub_pid, b.nats_pid)?.per_thousand_since(&before, args.events);
    let before = CpuSample::take(hub_pid, b.nats_pid)?;
    let raw_rate = b
        .raw
        .concurrent(args.events, args.concurrency, &b.sample)
        .await?;
    let raw_cpu = CpuSample::take(hub_pid, b.nats_pid)?.per_thousand_since(&before, args.events);
    let (hub_body, hub_headers) = raw::last_stored_size(&b.js, EVENTS_STREAM).await?;
    let (raw_body, raw_headers) = raw::last_stored_size(&b.js, raw::RAW_STREAM).await?;
    table.note(format!(
        "as stored: the hub's last report event has {hub_body} body and {hub_headers} header \
         bytes, the raw one {raw_body} and {raw_headers} (the raw runs publish the hub's own \
         envelope and body; the hub's event also carries the atomic-batch headers of its \
         group commit when it shared a batch)"
    ));
    table.row(
        format!(
            "concurrent reports ({} clients), events/s",
            args.concurrency
        ),
        hub_rate,
        raw_rate,
        "hub/raw >= 0.8 (aim 3)",
    );
    let secs = |d: Duration| d.as_secs_f64();
    table.row(
        "CPU s/1000: hub process vs raw publisher process",
        secs(hub_cpu.hub),
        secs(raw_cpu.client),
        "",
    );
    table.row(
        "CPU s/1000: nats-server, hub run vs raw run",
        secs(hub_cpu.nats),
        secs(raw_cpu.nats),
        "",
    );
    table.row(
        "CPU s/1000: hub + nats-server vs raw + nats-server",
        secs(hub_cpu.hub + hub_cpu.nats),
        secs(raw_cpu.client + raw_cpu.nats),
        "",
    );
    table.note(format!(
        "CPU per 1000 reports taken from before the run until the read models had applied it \
         ({:.1} s after its end); the load client (this process) used {:.3} CPU s per 1000 in \
         the hub run; the hub process idles at {:.3} CPU s/s",
        settled.as_secs_f64(),
        secs(hub_cpu.client),
        idle_cpu(hub_pid).await?
    ));

    let hub_times = b.hub.sequential(args.sequential, "seq").await?;
    b.settle().await?;
    let raw_times = b.raw.sequential(args.sequential, &b.sample).await?;
    let hub_p50 = median(hub_times.clone());
    let hub_sequential = hub_times.clone();
    table.row(
        "sequential report, median ms",
        ms(hub_p50),
        ms(median(raw_times.clone())),
        "hub/raw <= 2.5",
    );
    table.row(
        "sequential report, p99 ms",
        ms(percentile(hub_times, 0.99)),
        ms(percentile(raw_times, 0.99)),
        "",
    );

    let before = b.last_position().await?;
    let hub_bulk = b.hub.import(args.bulk, "bulk").await?;
    let appended = b.last_position().await? - before;
    anyhow::ensure!(
        appended == args.bulk as u64,
        "the import of {} cases appended {appended} events (one a case expected)",
        args.bulk
    );
    // The raw run starts once the hub's read models have applied the import, as every raw
    // run here starts with the hub idle.
    b.settle().await?;
    let raw_bulk = b
        .raw
        .batches(
            args.bulk,
            (IMPORT_BATCH, IMPORT_BATCHES_IN_FLIGHT),
            &b.sample,
        )
        .await?;
    table.row(
        format!(
            "bulk import, events/s (batches of {IMPORT_BATCH}, {IMPORT_BATCHES_IN_FLIGHT} in flight)"
        ),
        hub_bulk,
        raw_bulk,
        "hub/raw >= 0.8",
    );
    table.row(
        "bulk vs single sequential calls, events/s",
        hub_bulk,
        1000.0 / ms(hub_p50),
        "bulk/single >= 10",
    );
    Ok(HubFigures {
        concurrency: args.concurrency,
        events: args.events,
        concurrent: hub_rate,
        cpu_per_thousand: secs(hub_cpu.hub + hub_cpu.nats),
        sequential: hub_sequential,
        bulk: hub_bulk,
        bulk_events: args.bulk,
        batch: IMPORT_BATCH,
    })
}

/// The hub process's CPU use while nothing is asked of it, in CPU seconds per second.
async fn idle_cpu(pid: u32) -> anyhow::Result<f64> {
    let before = procfs::cpu_time(Some(pid))?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok((procfs::cpu_time(Some(pid))? - before).as_secs_f64() / 2.0)
}

/// Row 5: a report's visibility in its department's queue at a steady rate.
async fn visibility(table: &mut Table, b: &Bench, args: &Args) -> anyhow::Result<()> {
    if args.visible_seconds <= 0.0 {
        return Ok(());
    }
    b.settle().await?;
    let (rate, seconds) = (args.visible_rate, args.visible_seconds);
    let hub = visible::hub(&b.hub, rate, seconds, "visible").await?;
    b.settle().await?;
    let raw = visible::raw(&b.raw, &b.sample, rate, seconds).await?;
    table.row(
        format!("report visible in its queue at {rate}/s, p50 ms"),
        ms(median(hub.times.clone())),
        ms(median(raw.times.clone())),
        "",
    );
    table.row(
        format!("report visible in its queue at {rate}/s, p99 ms"),
        ms(percentile(hub.times.clone(), 0.99)),
        ms(percentile(raw.times, 0.99)),
        "hub p99 <= 10 ms",
    );
    table.note(format!(
        "visibility: hub = ReportCase sent until GetCase(min_position = the report's position) \
         answered (an audited read); raw = publish until acked and received by an ordered \
         consumer; open loop for {seconds} s; sent at {:.0}/s and {:.0}/s, all visible at {:.0}/s and \
         {:.0}/s (hub, raw: reports over the time until the last was visible)",
        hub.achieved, raw.achieved, hub.completed, raw.completed
    ));
    if hub.gave_up > 0 {
        table.note(format!(
            "visibility: {} of the hub's {} reads gave up waiting for their report's position \
             (DEADLINE_EXCEEDED after query.max_wait_ms); they count with the time until then",
            hub.gave_up,
            hub.times.len()
        ));
    }
    Ok(())
}

/// Rows 6 on: over a log filled to `--rebuild-events`, memory, rebuild and projection.
async fn big_log(table: &mut Table, b: &Bench, args: &Args) -> anyhow::Result<()> {
    let target = args.rebuild_events;
    let hub_pid = b.process.pid();
    let mut last = b.last_position().await?;
    let started = std::time::Instant::now();
    let (mut calls, mut imported) = (0, 0);
    while last < target {
        // An import first waits for the command index to apply the whole log, for at most
        // `commands.index_wait_ms` (5 s), and is refused after: let the read models catch up
        // with the import before, as a client would wait and retry.
        b.settle().await?;
        let cases = (target - last).min(MAX_IMPORT as u64) as usize;
        b.hub.import(cases, &format!("fill{calls}")).await?;
        calls += 1;
        let now = b.last_position().await?;
        anyhow::ensure!(
            now - last == cases as u64,
            "an import of {cases} cases appended {} events",
            now - last
        );
        last = now;
        imported += cases;
    }
    let filled = started.elapsed();
    let settled = b.settle().await?;
    anyhow::ensure!(
        b.last_position().await? == last,
        "the hub appended events of its own (deadline supervision?) while the read models \
         caught up; the figures over the log would not be over {last} events"
    );
    if calls == 0 {
        table.note(format!(
            "the log held {last} events already (--rebuild-events {target}): nothing imported"
        ));
    } else {
        table.note(format!(
            "log filled to {last} events by {calls} imports of {imported} cases in {:.1} s \
             ({:.0} events/s, the read models catching up between imports included), read \
             models caught up {:.1} s later",
            filled.as_secs_f64(),
            imported as f64 / filled.as_secs_f64().max(1e-9),
            settled.as_secs_f64()
        ));
    }
    memory(
        table,
        hub_pid,
        b.nats_pid,
        &format!("after {last}-event import"),
    )?;

    let rebuilt = rebuild::rebuild_all(&b.hub, &b.js, audit::HUB_INSTANCE).await?;
    memory(table, hub_pid, b.nats_pid, "after the rebuild")?;
    table.note(format!(
        "disk: {:.0} MiB in the run's folder after the rebuild",
        mib(procfs::disk_usage(&b.dir))
    ));
    let url = b.nats.client_url();
    let (replay, entries) = projection::ordered_replay(url, last).await?;
    let entries = Arc::new(entries);
    let (sled_rebuild, rows) =
        projection::sled_only(&b.dir.join("sled-4096"), entries.clone(), 4096).await?;
    table.row(
        format!(
            "rebuild of {} read models over {last} events, s",
            rebuilt.models.len()
        ),
        rebuilt.took.as_secs_f64(),
        (replay + sled_rebuild).as_secs_f64(),
        "hub/(replay + sled) <= 1.5",
    );
    table.note(format!(
        "rebuild: the hub's RebuildReadModel for every read model at once (batches of 4096), \
         each done after: {}; baseline = ordered replay of the log {:.2} s + sled-only \
         writing of the same {rows} rows in batches of 4096 {:.2} s",
        rebuilt
            .each
            .iter()
            .map(|(name, took)| format!("{name} {:.1} s", took.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", "),
        replay.as_secs_f64(),
        sled_rebuild.as_secs_f64()
    ));

    if args.no_projection {
        table.note("projection figures left out (--no-projection)");
        return Ok(());
    }
    let batch = crate::serve::read_models()?.max_batch;
    let pulled = projection::pull_consume(url, last, batch).await?;
    let (sled, rows) = projection::sled_only(&b.dir.join("sled-1024"), entries, batch).await?;
    let projected = projection::project(url, &b.dir.join("project"), last, batch).await?;
    let rate = |d: Duration| last as f64 / d.as_secs_f64();
    table.row(
        "projection of all read models vs sled-only, events/s",
        rate(projected),
        rate(sled),
        "hub/sled >= 0.8 (aim > 1)",
    );
    table.row(
        "projection of all read models vs raw pull-consume, events/s",
        rate(projected),
        rate(pulled),
        "",
    );
    table.note(format!(
        "projection: the hub's projector code (hub_projector::run, max_batch {batch}) in the \
         bench process, every read model at once from position 1 to {last}; sled-only: the \
         same {rows} rows in batches of {batch}, one database after the other"
    ));
    Ok(())
}

/// The hub's and the nats-server's peak and current resident memory, as rows.
fn memory(table: &mut Table, hub: u32, nats: u32, when: &str) -> anyhow::Result<()> {
    let (hub, nats) = (procfs::memory(hub)?, procfs::memory(nats)?);
    table.row(
        format!("hub VmHWM (peak) {when}, MiB (vs nats-server)"),
        mib(hub.peak),
        mib(nats.peak),
        "hub < 300 MiB",
    );
    table.row(
        format!("hub VmRSS {when}, MiB (vs nats-server)"),
        mib(hub.now),
        mib(nats.now),
        "hub < 300 MiB",
    );
    Ok(())
}
