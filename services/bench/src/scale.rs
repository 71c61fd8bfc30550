//! `hub-bench scale`: the hub's log and read models at a city's scale, measured.
//!
//! A log of `--events` events (10M by default: a tenth of a megacity's decade) is built from
//! the simulated city's own log, so every event is one the hub wrote and its read models
//! know:
//!
//! 1. **Template.** A hub process on a nats-server of its own is driven by `hubctl simulate
//!    run` for `--template-days` days of the demo city; its events stream is the template.
//! 2. **Fill.** The template is written again and again into the events stream of a second
//!    nats-server (production settings: file storage, `sync_interval: always`), each copy
//!    with every id in it (aggregate, event, correlation, causation, request: every UUID in
//!    the headers and the body, and the request ids) replaced by one of the copy's own, of the
//!    same length, so each copy is a new set of cases, care records and their histories.
//!    Grants are written once, as a city has a few hundred of them, not one per copy. The
//!    copies are appended in atomic batches of 1000, 4 batches in flight.
//! 3. **At rest.** nats-server's resident memory, the store's size on disk, the stream's
//!    messages, bytes and subjects.
//! 4. **Restore.** nats-server stopped cleanly and started again, then killed while more
//!    copies are being written (a crash under load: its last block torn) and started again:
//!    the time from the start until the stream answers with every acknowledged message.
//! 5. **Reads.** The command path's read of an aggregate (a batched direct get of its
//!    subject and the leader's last sequence of it) for different aggregates spread evenly
//!    over the log, on the big log and on the template's small one.
//! 6. **Read models.** A hub process on the big log with an empty data dir builds every read
//!    model from position 1, as a rebuild does: the time until it listens, then, every
//!    `--poll` seconds, how far the slowest of its consumers is, the hub's and
//!    nats-server's memory and the read models' size on disk, until every consumer has
//!    caught up or `--project-seconds` have passed. The size of each read model then. The
//!    feed publisher sends its outbox on after its consumer has caught up: the time until
//!    a poll finds no new message in the feed streams, and the hub's data then.
//!
//! Every figure is printed as it is taken (and appended to `--results`), so a run stopped
//! part-way has told what it measured.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use hub_log::names::{EVENTS_STREAM, parse_event_subject};
use hub_log::server::{NatsServer, ServerOptions, locate_binary};
use hub_log::stream::{EventsStreamSettings, events_stream_config};
use hub_log::{Appender, Envelope, NewEvent};

use crate::procfs::{self, mib};
use crate::raw::percentile;
use crate::serve::HubProcess;

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    /// Events in the big log (whole copies of the template: a little more).
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Days of the simulated demo city in the template.
    #[arg(long, default_value_t = 60)]
    template_days: u32,
    /// Seed of the simulation.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Folder for the run's data (two nats-server stores, the hubs' data); a temporary
    /// folder under it is removed at the end unless --keep.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Keep the run's folder.
    #[arg(long)]
    keep: bool,
    /// Aggregates read on each log.
    #[arg(long, default_value_t = 2000)]
    reads: usize,
    /// Longest time the read models are given to catch up with the big log; 0 skips them.
    #[arg(long, default_value_t = 7200)]
    project_seconds: u64,
    /// Seconds between the read models' progress lines.
    #[arg(long, default_value_t = 60)]
    poll: u64,
    /// Also append every line to this file.
    #[arg(long)]
    results: Option<PathBuf>,
}

/// Lines printed and appended to the results file.
struct Out(Option<std::fs::File>);

impl Out {
    fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        println!("{text}");
        if let Some(file) = &mut self.0 {
            let _ = writeln!(file, "{text}");
        }
    }
}

pub async fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let binary = locate_binary()?;
    let base = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("hub-scale-")
        .tempdir_in(&base)?;
    let mut out = Out(match &args.results {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?,
        ),
        None => None,
    });
    out.line(format!(
        "# hub-bench scale: {} events from {} simulated days, in {}",
        args.events,
        args.template_days,
        dir.path().display()
    ));
    for (name, value) in procfs::machine(&binary) {
        out.line(format!("- {name}: {value}"));
    }
    let outcome = phases(&binary, dir.path(), &args, &mut out).await;
    if args.keep {
        let kept = dir.keep();
        out.line(format!("kept {}", kept.display()));
    }
    outcome
}

async fn phases(binary: &Path, dir: &Path, args: &ScaleArgs, out: &mut Out) -> anyhow::Result<()> {
    // 1. The template.
    let template_nats = NatsServer::start(
        binary,
        ServerOptions::new(dir.join("template/nats"), "template"),
    )
    .await?;
    let template = simulate(&template_nats, &dir.join("template/hub"), args, out).await?;
    let small_reads = reads(template_nats.client_url(), &template, args.reads, 1).await?;

    // 2. The fill.
    let mut big =
        NatsServer::start(binary, ServerOptions::new(dir.join("big/nats"), "big")).await?;
    let (filled, copies) = fill(&big, &template, args.events, out).await?;

    // 3. At rest.
    let js = jetstream::new(async_nats::connect(big.client_url()).await?);
    at_rest(&big, &js, &dir.join("big/nats"), "after the fill", out).await?;

    // 4. Restore, after a clean stop and after a kill.
    let options = big.options().clone();
    let grace = Duration::from_secs(120);
    let stopping = Instant::now();
    big.stop(grace).await;
    out.line(format!(
        "- clean stop of nats-server: {:.1} s",
        stopping.elapsed().as_secs_f64()
    ));
    big = restore(binary, &options, filled, "a clean stop", out).await?;
    let js = jetstream::new(async_nats::connect(big.client_url()).await?);
    at_rest(&big, &js, &dir.join("big/nats"), "after the restart", out).await?;
    // A crash under load: killed while writing, so the last block is torn and the state
    // written at the clean stop no longer matches it.
    let acked = kill_while_writing(&mut big, &template, copies).await?;
    big = restore(
        binary,
        &options,
        filled + acked,
        "a kill while writing",
        out,
    )
    .await?;
    let js = jetstream::new(async_nats::connect(big.client_url()).await?);
    let filled = js
        .get_stream(EVENTS_STREAM)
        .await?
        .info()
        .await?
        .state
        .messages;

    // 5. Reads of aggregates, on the big log against the template's.
    let big_reads = reads(big.client_url(), &template, args.reads, copies).await?;
    for (name, times) in [("template", small_reads), ("big log", big_reads)] {
        out.line(format!(
            "- an aggregate's read on the {name} ({} aggregates spread over the log): median \
             {:.2} ms, p99 {:.2} ms",
            times.len(),
            crate::bench::ms(percentile(times.clone(), 0.5)),
            crate::bench::ms(percentile(times, 0.99))
        ));
    }
    drop(template_nats);

    // 6. The read models over the big log.
    if args.project_seconds > 0 {
        read_models(&big, &dir.join("big/hub"), filled, args, out).await?;
    }
    big.stop(grace).await;
    Ok(())
}

/// The template's events, in log order.
struct Template {
    events: Vec<Stored>,
    /// The aggregates of the template (not grants), for the reads.
    aggregates: Vec<String>,
}

impl Template {
    /// Events in each copy (grants are written once).
    fn per_copy(&self) -> u64 {
        self.events.iter().filter(|e| !e.once).count() as u64
    }

    /// Copy `copy`'s events, in template order: the first copy also has the grants.
    fn copy_events(&self, copy: u64) -> Vec<NewEvent> {
        self.events
            .iter()
            .filter(|e| copy == 0 || !e.once)
            .map(|e| copy_event(e, copy))
            .collect()
    }
}

#[derive(Clone)]
struct Stored {
    subject: String,
    envelope: Envelope,
    body: Bytes,
    /// Where the UUIDs in the body are.
    uuids: Vec<usize>,
    /// Written once, not per copy (a grant's events).
    once: bool,
}

/// Runs the simulation on a hub process on `nats` and reads its log.
async fn simulate(
    nats: &NatsServer,
    data_dir: &Path,
    args: &ScaleArgs,
    out: &mut Out,
) -> anyhow::Result<Template> {
    let hub = HubProcess::start(nats, data_dir, Duration::from_secs(60)).await?;
    let hubctl = std::env::current_exe()?.with_file_name("hubctl");
    anyhow::ensure!(
        hubctl.exists(),
        "{} is missing: build it first (cargo build --release -p hubctl)",
        hubctl.display()
    );
    let started = Instant::now();
    let status = tokio::process::Command::new(&hubctl)
        .args(["--hub", &format!("http://{}", hub.addr)])
        .args(["simulate", "run", "--concurrency", "16"])
        .args(["--days", &args.template_days.to_string()])
        .args(["--seed", &args.seed.to_string()])
        .stdin(std::process::Stdio::null())
        .status()
        .await?;
    anyhow::ensure!(status.success(), "hubctl simulate run: {status}");
    let js = jetstream::new(async_nats::connect(nats.client_url()).await?);
    crate::audit::settle(&js, Duration::from_secs(600)).await?;
    hub.stop(Duration::from_secs(30)).await?;
    let mut stream = js.get_stream(EVENTS_STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let mut events = Vec::with_capacity(last as usize);
    let mut aggregates = std::collections::BTreeSet::new();
    for sequence in 1..=last {
        let message = stream.get_raw_message(sequence).await?;
        let envelope = Envelope::from_headers(&message.headers)
            .map_err(|e| anyhow::anyhow!("the template's event {sequence}: {e}"))?;
        let (kind, id) = parse_event_subject(&message.subject).ok_or_else(|| {
            anyhow::anyhow!(
                "the template's event {sequence}: subject {}",
                message.subject
            )
        })?;
        let once = kind == "grant";
        if !once {
            aggregates.insert(id.to_owned());
        }
        events.push(Stored {
            uuids: uuid_offsets(&message.payload),
            subject: message.subject.to_string(),
            envelope,
            body: message.payload,
            once,
        });
    }
    let mut kinds = std::collections::BTreeMap::<String, (usize, usize)>::new();
    let mut seen = std::collections::HashSet::new();
    for event in &events {
        let (kind, id) = parse_event_subject(&event.subject).unwrap_or(("?", "?"));
        let entry = kinds.entry(kind.to_owned()).or_default();
        entry.0 += 1;
        if seen.insert(id.to_owned()) {
            entry.1 += 1;
        }
    }
    out.line(format!(
        "- template: {} events on {} aggregates from {} simulated days in {:.0} s ({})",
        events.len(),
        seen.len(),
        args.template_days,
        started.elapsed().as_secs_f64(),
        kinds
            .iter()
            .map(|(k, (e, a))| format!("{k}: {e} events on {a}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(Template {
        events,
        aggregates: aggregates.into_iter().collect(),
    })
}

/// Offsets of the lowercase hyphenated UUIDs in `bytes`.
fn uuid_offsets(bytes: &[u8]) -> Vec<usize> {
    const LEN: usize = 36;
    let is_uuid = |w: &[u8]| {
        w.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(b),
        })
    };
    let mut found = Vec::new();
    let mut i = 0;
    while i + LEN <= bytes.len() {
        if is_uuid(&bytes[i..i + LEN]) {
            found.push(i);
            i += LEN;
        } else {
            i += 1;
        }
    }
    found
}

/// The copy's own UUID for `uuid` (copy 0 keeps the template's).
fn copy_uuid(uuid: &str, copy: u64) -> String {
    if copy == 0 {
        return uuid.to_owned();
    }
    const NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5ca1_e000_0000_4000_8000_0000_0000_0001);
    uuid::Uuid::new_v5(&NAMESPACE, format!("{uuid}\n{copy}").as_bytes()).to_string()
}

/// `text` with every UUID in it replaced by the copy's.
fn copy_text(text: &str, copy: u64) -> String {
    let mut result = text.to_owned();
    for offset in uuid_offsets(text.as_bytes()) {
        let new = copy_uuid(&text[offset..offset + 36], copy);
        result.replace_range(offset..offset + 36, &new);
    }
    result
}

/// The template's event as copy `copy` has it.
fn copy_event(event: &Stored, copy: u64) -> NewEvent {
    let mut body = event.body.to_vec();
    for &offset in &event.uuids {
        let uuid = std::str::from_utf8(&event.body[offset..offset + 36]).unwrap_or_default();
        body[offset..offset + 36].copy_from_slice(copy_uuid(uuid, copy).as_bytes());
    }
    let mut envelope = event.envelope.clone();
    for field in [
        &mut envelope.id,
        &mut envelope.subject,
        &mut envelope.source,
        &mut envelope.correlation_id,
        &mut envelope.causation_id,
    ] {
        *field = copy_text(field, copy);
    }
    if copy > 0 && !envelope.request_id.is_empty() {
        envelope.request_id = format!("{}~{copy}", copy_text(&envelope.request_id, copy));
    }
    NewEvent {
        subject: copy_text(&event.subject, copy),
        envelope,
        body: Bytes::from(body),
        expected_last_subject_sequence: None,
    }
}

/// Writes copies of the template into `nats`'s events stream until it holds `target` events
/// or more; returns how many it holds, and how many copies.
async fn fill(
    nats: &NatsServer,
    template: &Template,
    target: u64,
    out: &mut Out,
) -> anyhow::Result<(u64, u64)> {
    let client = async_nats::connect(nats.client_url()).await?;
    let js = jetstream::new(client.clone());
    js.create_stream(events_stream_config(&EventsStreamSettings::default()))
        .await?;
    let appender = Appender::new(client, Duration::from_secs(30));
    let per_copy = template.per_copy();
    anyhow::ensure!(per_copy > 0, "the template has no events to copy");
    let once = template.events.len() as u64 - per_copy;
    let copies = (target.saturating_sub(once)).div_ceil(per_copy).max(1);
    let started = Instant::now();
    let written = std::sync::atomic::AtomicU64::new(0);
    let last_line = std::sync::Mutex::new(Instant::now());
    // Four copies at a time, each copy's batches one after the other: batches in flight at
    // once may be stored in either order, and only different copies' aggregates (disjoint)
    // may be.
    futures::stream::iter(0..copies)
        .map(|copy| {
            let (appender, written, last_line) = (appender.clone(), &written, &last_line);
            async move {
                for batch in template.copy_events(copy).chunks(1000) {
                    let appended = appender
                        .append_all(batch.to_vec())
                        .await
                        .map_err(|e| anyhow::anyhow!("copy {copy}: {e}"))?;
                    written.fetch_add(appended.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
                let mut last = last_line.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() > Duration::from_secs(60) {
                    *last = Instant::now();
                    let n = written.load(std::sync::atomic::Ordering::Relaxed);
                    println!(
                        "  fill: {n} events, {:.0} ev/s",
                        n as f64 / started.elapsed().as_secs_f64()
                    );
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(4)
        .try_collect::<()>()
        .await?;
    let written = written.into_inner();
    let took = started.elapsed();
    let aggregates = copies * template.aggregates.len() as u64;
    out.line(format!(
        "- fill: {written} events ({copies} copies of the template, {aggregates} aggregates \
         besides the grants) in {:.0} s, {:.0} ev/s",
        took.as_secs_f64(),
        written as f64 / took.as_secs_f64()
    ));
    Ok((written, copies))
}

async fn at_rest(
    nats: &NatsServer,
    js: &jetstream::Context,
    store: &Path,
    when: &str,
    out: &mut Out,
) -> anyhow::Result<()> {
    let info = js.get_stream(EVENTS_STREAM).await?.info().await?.clone();
    let memory = procfs::memory(nats.pid().unwrap_or_default())?;
    out.line(format!(
        "- nats-server {when}: {} messages, {:.0} MiB of messages, {} subjects; resident \
         {:.0} MiB (peak {:.0} MiB); store on disk {:.0} MiB",
        info.state.messages,
        mib(info.state.bytes),
        info.state.subjects_count,
        mib(memory.now),
        mib(memory.peak),
        mib(procfs::disk_usage(store))
    ));
    Ok(())
}

/// Starts nats-server on `options` and times it until the events stream answers with
/// `messages` messages.
async fn restore(
    binary: &Path,
    options: &ServerOptions,
    messages: u64,
    after: &str,
    out: &mut Out,
) -> anyhow::Result<NatsServer> {
    let started = Instant::now();
    let nats = NatsServer::start_within(binary, options.clone(), Duration::from_secs(1800)).await?;
    let listening = started.elapsed();
    let client = async_nats::connect(nats.client_url()).await?;
    let js = jetstream::new(client);
    loop {
        if let Ok(mut stream) = js.get_stream(EVENTS_STREAM).await
            && let Ok(info) = stream.info().await
            && info.state.messages >= messages
        {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(1800),
            "the events stream was not back within 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let memory = procfs::memory(nats.pid().unwrap_or_default())?;
    out.line(format!(
        "- restore after {after}: listening after {:.1} s, the stream whole after {:.1} s; \
         resident {:.0} MiB",
        listening.as_secs_f64(),
        started.elapsed().as_secs_f64(),
        mib(memory.now)
    ));
    Ok(nats)
}

/// Times the command path's read of `count` aggregates, each a different one, spread evenly
/// over the `copies` copies of the template the log holds (so over the whole log).
async fn reads(
    url: &str,
    template: &Template,
    count: usize,
    copies: u64,
) -> anyhow::Result<Vec<Duration>> {
    let client = async_nats::connect(url).await?;
    let appender = Appender::new(client, Duration::from_secs(10));
    let subjects: std::collections::HashMap<&str, &str> = template
        .events
        .iter()
        .filter_map(|e| parse_event_subject(&e.subject).map(|(_, id)| (id, e.subject.as_str())))
        .collect();
    let aggregates = template.aggregates.len();
    anyhow::ensure!(aggregates > 0, "the template has no aggregates");
    let mut times = Vec::with_capacity(count);
    for k in 0..count {
        let copy = (k as u64 * copies) / count.max(1) as u64;
        // A fixed stride through the template's aggregates (7919 is prime).
        let template_subject = subjects[template.aggregates[(k * 7919) % aggregates].as_str()];
        let subject = copy_text(template_subject, copy);
        let started = Instant::now();
        let read = appender
            .read_subject_current(&subject, 0)
            .await
            .map_err(|e| anyhow::anyhow!("read {subject}: {e}"))?;
        times.push(started.elapsed());
        anyhow::ensure!(!read.is_empty(), "{subject} read no event");
    }
    Ok(times)
}

/// Writes further copies of the template (numbered from `first`, after those in the log) and
/// kills nats-server two seconds into it, as a crash under load would; returns how many of
/// those events the server acknowledged before it died.
async fn kill_while_writing(
    nats: &mut NatsServer,
    template: &Template,
    first: u64,
) -> anyhow::Result<u64> {
    let client = async_nats::connect(nats.client_url()).await?;
    let appender = Appender::new(client, Duration::from_secs(5));
    let batches: Vec<Vec<NewEvent>> = (first..first + 40)
        .flat_map(|copy| {
            template
                .copy_events(copy)
                .chunks(1000)
                .map(<[NewEvent]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect();
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = acked.clone();
    let writer = tokio::spawn(async move {
        for batch in batches {
            match appender.append_all(batch).await {
                Ok(appended) => {
                    counted.fetch_add(appended.len() as u64, std::sync::atomic::Ordering::SeqCst);
                }
                Err(_) => return,
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    anyhow::ensure!(
        !writer.is_finished(),
        "the writes ended before the kill: write more copies"
    );
    nats.kill();
    writer.abort();
    let _ = writer.await;
    Ok(acked.load(std::sync::atomic::Ordering::SeqCst))
}

/// A hub process on the big log, from an empty data dir: its read models built from
/// position 1, followed until they catch up.
async fn read_models(
    nats: &NatsServer,
    data_dir: &Path,
    messages: u64,
    args: &ScaleArgs,
    out: &mut Out,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut hub = HubProcess::start(nats, data_dir, Duration::from_secs(3600)).await?;
    out.line(format!(
        "- hub on the big log: listening after {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let js = jetstream::new(async_nats::connect(nats.client_url()).await?);
    let stream = js.get_stream(EVENTS_STREAM).await?;
    let limit = Duration::from_secs(args.project_seconds);
    let nats_pid = nats.pid().unwrap_or_default();
    let caught_up = loop {
        tokio::time::sleep(Duration::from_secs(args.poll)).await;
        hub.check_alive()?;
        let consumers: Vec<_> = stream.consumers().try_collect().await?;
        let slowest = consumers.iter().max_by_key(|c| behind(c));
        let behind = slowest.map_or(messages, behind);
        let (hub_memory, nats_memory) = (procfs::memory(hub.pid())?, procfs::memory(nats_pid)?);
        out.line(format!(
            "  {:>6.0} s: {} consumers, the slowest ({}) {} behind; hub resident {:.0} MiB \
             (peak {:.0}), nats-server {:.0} MiB; hub data {:.0} MiB",
            started.elapsed().as_secs_f64(),
            consumers.len(),
            slowest.map_or("none", |c| c.name.as_str()),
            behind,
            mib(hub_memory.now),
            mib(hub_memory.peak),
            mib(nats_memory.now),
            mib(procfs::disk_usage(data_dir))
        ));
        if !consumers.is_empty() && behind == 0 {
            break true;
        }
        if started.elapsed() > limit {
            break false;
        }
    };
    let took = started.elapsed();
    out.line(format!(
        "- read models {} after {:.0} s ({:.0} ev/s over the log)",
        if caught_up {
            "caught up"
        } else {
            "NOT caught up"
        },
        took.as_secs_f64(),
        messages as f64 / took.as_secs_f64()
    ));
    if !caught_up {
        // How far each model came, for a rate per model when the time ran out.
        let mut consumers: Vec<_> = stream.consumers().try_collect().await?;
        consumers.sort_by(|a, b| a.name.cmp(&b.name));
        for c in consumers {
            out.line(format!(
                "  - {}: delivered up to position {}, {} behind",
                c.name,
                c.delivered.stream_sequence,
                behind(&c)
            ));
        }
    }
    let mut sizes: Vec<(String, u64)> = Vec::new();
    for entry in std::fs::read_dir(data_dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        sizes.push((name.clone(), procfs::disk_usage(&entry.path())));
        if name == "read-models" {
            for model in std::fs::read_dir(entry.path())?.flatten() {
                let bytes = procfs::disk_usage(&model.path());
                sizes.push((
                    format!("read-models/{}", model.file_name().to_string_lossy()),
                    bytes,
                ));
            }
        }
    }
    sizes.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    for (name, bytes) in sizes.into_iter().filter(|(_, b)| *b > 0) {
        out.line(format!("  - {name}: {:.0} MiB", mib(bytes)));
    }
    if caught_up {
        // The feed publisher's consumer has caught up once its outbox holds what it decided;
        // sending it to the feed streams goes on after.
        let mut sent = feed_messages(&js).await?;
        out.line(format!("  feed messages sent by then: {sent}"));
        // The last poll that found new messages: the outbox was empty by the next one.
        let mut last_new = took;
        loop {
            tokio::time::sleep(Duration::from_secs(args.poll)).await;
            hub.check_alive()?;
            let now = feed_messages(&js).await?;
            if now == sent {
                out.line(format!(
                    "- the feed outbox sent out by {:.0} s from the start ({now} feed messages; \
                     the next poll, {} s later, found none new)",
                    last_new.as_secs_f64(),
                    args.poll
                ));
                out.line(format!(
                    "  hub data then: {:.0} MiB",
                    mib(procfs::disk_usage(data_dir))
                ));
                break;
            }
            sent = now;
            last_new = started.elapsed();
            if last_new > limit {
                out.line(format!(
                    "- the feed outbox NOT sent out: {now} feed messages sent"
                ));
                break;
            }
        }
    }
    out.line(hub.log_findings());
    hub.stop(Duration::from_secs(120)).await?;
    Ok(())
}

/// Events a consumer has still to apply: not yet delivered, or delivered and not acknowledged.
fn behind(consumer: &jetstream::consumer::Info) -> u64 {
    consumer.num_pending + consumer.num_ack_pending as u64
}

/// Messages ever stored in the departments' feed streams: the sum of their last sequences,
/// which a purge does not lower.
async fn feed_messages(js: &jetstream::Context) -> anyhow::Result<u64> {
    let streams: Vec<_> = js.streams().try_collect().await?;
    Ok(streams
        .iter()
        .filter(|info| info.config.name.starts_with("FEED_"))
        .map(|info| info.state.last_sequence)
        .sum())
}
