//! What auditing costs reads, in the same run on the same nats-server.
//!
//! Every dataset query waits for its audit record to be stored (`hub_audit::Audit`) before it
//! is answered, and there is no switch to turn auditing off: an unaudited read is what the
//! hub must never give. So the cost is shown by what can be measured side by side:
//!
//! - audited dataset queries through the hub's gRPC ([`Hub::queries`]), and
//!   the hub's own audit chain read back afterwards ([`batches_since`]): how many records each
//!   of its appends carried while the queries ran, and how long a record waited from being
//!   made (after its read) until the nats-server stored its batch;
//! - the audit writer alone ([`Writer`]): the hub's own writer code on a chain of its own, on
//!   a NATS connection of its own as the hub's writer has, with the hub's checkpoint settings
//!   and key, taking the hub's query records from the same number of concurrent callers;
//! - one record per append ([`OnePerAppend`]): the same record as a one-record batch, hashed
//!   and published as the writer publishes a batch (with the chain's expected last subject
//!   sequence, awaiting each ack), by the same number of concurrent callers each on a chain
//!   of its own. That is the least one record per append could cost: the hub's single chain
//!   could not even have several appends in flight, which [`OnePerAppend::concurrent`] with
//!   one caller shows.
//!
//! How the rows read:
//!
//! - queries/s against one record per append: with one append per record every read needs an
//!   append of its own, acknowledged, so at the same concurrency reads could not go faster
//!   than those appends; a ratio above 1 is what batching wins (below 1, the reads are
//!   limited by something else than their records).
//! - a query's median time against the writer's own median wait at the same concurrency:
//!   with a fixed number of clients each awaiting its answer, throughput is clients over a
//!   query's time, of which the audit wait is a part; at a ratio of 2 or more the wait is at
//!   most half of it, so auditing does not halve reads. The writer alone takes more load than
//!   in the hub (every caller is always waiting), without the reads' work beside it; the
//!   hub's chain read back gives the measured part of the wait in the hub (until stored,
//!   without the fsync and ack), to check the two agree.
//! - the page is small and the dataset open, so a read costs little besides its record: the
//!   least favourable case for auditing.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage, stream::RawMessageErrorKind};
use futures::TryStreamExt as _;
use hub_api::v1::LogDigestHead;
use hub_audit::signing::CheckpointSigner;
use hub_audit::{Audit, AuditBatch, AuditRecord, Checkpoints};
use hub_log::names::{AUDIT_STREAM, EVENTS_STREAM, audit_subject};
use hub_log::stream::{AUDIT, EventsStreamSettings, stream_config};
use prost::Message as _;
use tokio::task::JoinHandle;

use crate::raw::median;
use crate::report::Hub;
use crate::table::Table;

/// The audit rows: audited queries through the hub, the writer alone, one record per append.
pub async fn rows(
    table: &mut Table,
    hub: &Hub,
    url: &str,
    args: &crate::Args,
) -> anyhow::Result<()> {
    let js = connect(url).await?;
    let settled = settle(&js, Duration::from_secs(300)).await?;
    table.note(format!(
        "read models caught up {:.1} s after the imports",
        settled.as_secs_f64()
    ));
    hub.queries(DATASET, args.query_page, 200, 8).await?;
    let before = last_sequence(&js).await?;
    let (query_rate, query_p50) = hub
        .queries(DATASET, args.query_page, args.queries, args.concurrency)
        .await?;
    let queried = batches_since(&js, HUB_INSTANCE, before).await?;
    // The writer alone and one record per append store what the hub stored for a query.
    let record = queried
        .last
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the hub's audit chain holds no query's record"))?;
    let (record_bytes, append_bytes) = sizes(&record);
    table.note(format!(
        "audit record: {record_bytes} bytes ({append_bytes} as a one-record batch); the hub's \
         chain took {} records in {} batches and {} checkpoints during the queries",
        queried.records, queried.batches, queried.checkpoints
    ));

    let writer = Writer::start(url).await?;
    writer.run(200, 8, &record).await?;
    let (writer_rate, writer_p50, alone) = writer
        .run(args.audit_records, args.concurrency, &record)
        .await?;
    writer.stop().await?;
    let one = OnePerAppend::new(url).await?;
    one.concurrent(200, 8, &record).await?;
    let one_rate = one
        .concurrent(args.audit_records, args.concurrency, &record)
        .await?;
    let chain_rate = one.concurrent(args.sequential, 1, &record).await?;
    table.note(format!(
        "audit writer alone: {} records in {} batches and {} checkpoints",
        alone.records, alone.batches, alone.checkpoints
    ));
    let ms = crate::bench::ms;
    table.row(
        "audited dataset queries, queries/s",
        query_rate,
        one_rate,
        "baseline: the cap one append per record sets",
    );
    table.row(
        "audited dataset query vs audit wait, median ms",
        ms(query_p50),
        ms(writer_p50),
        "query/audit >= 2: reads not halved",
    );
    table.row(
        "audit records/s, batched vs one per append",
        writer_rate,
        one_rate,
        "batched/one per append >> 1",
    );
    table.row(
        "audit records/s, batched vs one chain unbatched",
        writer_rate,
        chain_rate,
        "one chain appends one at a time",
    );
    table.row(
        "records per batch, queries vs writer alone",
        queried.per_batch(),
        alone.per_batch(),
        "every record waiting goes in one append",
    );
    table.row(
        "record made to batch stored, ms, queries vs alone",
        ms(queried.median_until_stored()),
        ms(alone.median_until_stored()),
        "median, before the server's fsync and ack",
    );
    Ok(())
}

/// The hub's instance name, and so its audit chain's subject.
pub const HUB_INSTANCE: &str = "bench-hub";
/// The chain of the writer run alone.
const WRITER_INSTANCE: &str = "bench-audit";
/// Where the one-record appends go: a stream with GOV_AUDIT's settings.
const RAW_STREAM: &str = "BENCH_AUDIT_RAW";
/// The dataset the queries read: open (so any department may read it), small (a few rows a
/// grid and day), filled by the bench's reports.
pub const DATASET: &str = "incident_stats";
/// The audit key the bench gives the hub (see `serve::config`).
pub const SIGNING_KEY: [u8; 32] = [7; 32];

/// `record` made now (a record's time is when its read was answered).
fn made_now(record: &AuditRecord) -> AuditRecord {
    let now = jiff::Timestamp::now();
    AuditRecord {
        time: Some(prost_types::Timestamp {
            seconds: now.as_second(),
            nanos: now.subsec_nanosecond(),
        }),
        ..record.clone()
    }
}

/// The size of `record` alone and as a one-record batch (what one append per record sends).
pub fn sizes(record: &AuditRecord) -> (usize, usize) {
    (
        record.encoded_len(),
        one_record_batch(record, 1, vec![0; 32]).len(),
    )
}

fn one_record_batch(record: &AuditRecord, number: u64, previous: Vec<u8>) -> Vec<u8> {
    AuditBatch {
        instance: "bench-one-per-append".into(),
        number,
        previous,
        records: vec![made_now(record)],
        checkpoint: None,
        // As the hub's batches name the records of the one before (here: one).
        previous_records: vec![vec![0; 32]],
    }
    .encode_to_vec()
}

/// A JetStream context on a connection of its own.
pub async fn connect(url: &str) -> anyhow::Result<jetstream::Context> {
    Ok(jetstream::new(async_nats::connect(url).await?))
}

/// Waits until every consumer of the event log has caught up (the read models have applied
/// what the runs before appended), so that their work does not compete with the reads
/// measured; how long that took.
pub async fn settle(js: &jetstream::Context, limit: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let stream = js.get_stream(EVENTS_STREAM).await?;
    loop {
        let consumers: Vec<_> = stream.consumers().try_collect().await?;
        if consumers
            .iter()
            .all(|c| c.num_pending == 0 && c.num_ack_pending == 0)
        {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "the event log's consumers did not catch up within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GOV_AUDIT's last sequence.
pub async fn last_sequence(js: &jetstream::Context) -> anyhow::Result<u64> {
    Ok(js
        .get_stream(AUDIT_STREAM)
        .await?
        .cached_info()
        .state
        .last_sequence)
}

/// What a chain appended after some sequence of GOV_AUDIT.
#[derive(Debug, Default)]
pub struct Batches {
    /// Records, in batches of records.
    pub records: u64,
    /// Batches of records (checkpoints apart).
    pub batches: u64,
    pub checkpoints: u64,
    /// The last record, as the chain holds it.
    pub last: Option<AuditRecord>,
    /// For each record, from its making to the nats-server's storing of its batch (the
    /// stored time is taken before the server's fsync and its ack, which are not included).
    until_stored: Vec<Duration>,
}

impl Batches {
    pub fn per_batch(&self) -> f64 {
        self.records as f64 / self.batches.max(1) as f64
    }

    pub fn median_until_stored(&self) -> Duration {
        median(self.until_stored.clone())
    }
}

/// Reads back what `instance`'s chain appended after GOV_AUDIT's sequence `after`.
pub async fn batches_since(
    js: &jetstream::Context,
    instance: &str,
    after: u64,
) -> anyhow::Result<Batches> {
    let stream = js.get_stream(AUDIT_STREAM).await?;
    let subject = audit_subject(instance);
    let mut found = Batches::default();
    let mut next = after + 1;
    loop {
        let message = match stream
            .get_first_raw_message_by_subject(&subject, next)
            .await
        {
            Ok(message) => message,
            Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => break,
            Err(err) => return Err(err.into()),
        };
        next = message.sequence + 1;
        let batch = AuditBatch::decode(message.payload.as_ref())?;
        if batch.checkpoint.is_some() {
            found.checkpoints += 1;
            continue;
        }
        found.batches += 1;
        let stored = message.time.unix_timestamp_nanos();
        for record in &batch.records {
            found.records += 1;
            if let Some(made) = &record.time {
                let made = i128::from(made.seconds) * 1_000_000_000 + i128::from(made.nanos);
                let waited = u64::try_from(stored - made).unwrap_or(0);
                found.until_stored.push(Duration::from_nanos(waited));
            }
        }
        found.last = batch.records.into_iter().last().or(found.last);
    }
    Ok(found)
}

/// The hub's audit writer, run alone on a chain of its own.
pub struct Writer {
    js: jetstream::Context,
    audit: Audit,
    task: JoinHandle<()>,
}

impl Writer {
    /// On a connection of its own (as the hub's writer is), with the hub's default checkpoint
    /// settings and the bench hub's key.
    pub async fn start(url: &str) -> anyhow::Result<Self> {
        let js = connect(url).await?;
        let defaults = hub::Config::default().audit;
        let checkpoints = Checkpoints {
            signer: CheckpointSigner::from_bytes(&SIGNING_KEY),
            every_records: defaults.checkpoint_records,
            every: Duration::from_secs(defaults.checkpoint_seconds),
            // No event log of its own to sign.
            log_head: Box::new(LogDigestHead::default),
        };
        let (audit, task) = Audit::start(js.clone(), WRITER_INSTANCE, checkpoints).await?;
        Ok(Self { js, audit, task })
    }

    /// `concurrency` callers, each awaiting its record's storing before the next: records per
    /// second, the median wait, and what the chain appended.
    pub async fn run(
        &self,
        records: usize,
        concurrency: usize,
        record: &AuditRecord,
    ) -> anyhow::Result<(f64, Duration, Batches)> {
        let before = last_sequence(&self.js).await?;
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let (audit, record) = (self.audit.clone(), record.clone());
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    let mut n = w;
                    while n < records {
                        let asked = Instant::now();
                        audit.record(made_now(&record)).await?;
                        times.push(asked.elapsed());
                        n += concurrency;
                    }
                    anyhow::Ok(times)
                })
            })
            .collect();
        let mut times = Vec::with_capacity(records);
        for worker in workers {
            times.extend(worker.await??);
        }
        let rate = records as f64 / started.elapsed().as_secs_f64();
        let batches = batches_since(&self.js, WRITER_INSTANCE, before).await?;
        Ok((rate, median(times), batches))
    }

    /// Ends the writer (after its shutdown checkpoint).
    pub async fn stop(self) -> anyhow::Result<()> {
        drop(self.audit);
        Ok(self.task.await?)
    }
}

/// Audit records appended one per append.
pub struct OnePerAppend {
    js: jetstream::Context,
}

impl OnePerAppend {
    /// On a connection of its own, to a stream with GOV_AUDIT's settings.
    pub async fn new(url: &str) -> anyhow::Result<Self> {
        let js = connect(url).await?;
        let mut config = stream_config(AUDIT, &EventsStreamSettings::default());
        config.name = RAW_STREAM.into();
        config.subjects = vec!["bench.audit.raw.>".into()];
        js.create_stream(config).await?;
        Ok(Self { js })
    }

    /// `concurrency` callers, each a chain of its own appending `record` as a one-record batch
    /// (encoded, hashed, expecting its chain's last subject sequence) and awaiting the ack
    /// before the next: records per second.
    pub async fn concurrent(
        &self,
        records: usize,
        concurrency: usize,
        record: &AuditRecord,
    ) -> anyhow::Result<f64> {
        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let (js, record) = (self.js.clone(), record.clone());
                tokio::spawn(async move {
                    let subject = format!("bench.audit.raw.{run}.{w}");
                    let (mut last, mut number, mut previous) = (0, 0, vec![0; 32]);
                    let mut n = w;
                    while n < records {
                        number += 1;
                        let body = one_record_batch(&record, number, previous);
                        previous = hub_audit::digest(&body);
                        let publish = PublishMessage::build()
                            .payload(body.into())
                            .expected_last_subject_sequence(last);
                        last = js
                            .send_publish(subject.clone(), publish)
                            .await?
                            .await?
                            .sequence;
                        n += concurrency;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.await??;
        }
        Ok(records as f64 / started.elapsed().as_secs_f64())
    }
}
