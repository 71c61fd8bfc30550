//! The baseline: raw async-nats JetStream publishing of the hub's own report event (same body,
//! same headers, a new event id each), to a stream with the events stream's settings.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use hub_log::names::EVENTS_STREAM;
use hub_log::stream::{EventsStreamSettings, events_stream_config};
use hub_log::{Appender, Envelope, NewEvent};

pub const RAW_STREAM: &str = "BENCH_RAW";

/// One event as the hub appends it for a report.
#[derive(Clone)]
pub struct Sample {
    pub envelope: Envelope,
    pub body: Bytes,
}

pub fn header_bytes(sample: &Sample) -> usize {
    headers_len(&sample.envelope.to_headers())
}

/// Bytes of `headers` as sent: each name, its values, and the separators.
pub fn headers_len(headers: &async_nats::HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.to_string().len() + v.iter().map(|v| v.as_str().len()).sum::<usize>() + 4)
        .sum()
}

/// The hub's own event for a report, as the log stored it (the last message of the events
/// stream, which must be a report's): its envelope (every header the hub set, the event id
/// replaced on each publish) and its body.
pub async fn sample_from_log(js: &jetstream::Context) -> anyhow::Result<Sample> {
    let mut stream = js.get_stream(EVENTS_STREAM).await?;
    let last = stream.info().await?.state.last_sequence;
    let message = stream.get_raw_message(last).await?;
    let envelope = Envelope::from_headers(&message.headers)
        .map_err(|e| anyhow::anyhow!("the log's last event: {e}"))?;
    anyhow::ensure!(
        envelope.event_type.contains(".case.reported."),
        "the log's last event is a {}, not a report's",
        envelope.event_type
    );
    Ok(Sample {
        envelope,
        body: message.payload,
    })
}

pub struct Raw {
    js: jetstream::Context,
    appender: Appender,
}

impl Raw {
    pub async fn new(url: &str) -> anyhow::Result<Self> {
        let client = async_nats::connect(url).await?;
        let js = jetstream::new(client.clone());
        let mut config = events_stream_config(&EventsStreamSettings::default());
        config.name = RAW_STREAM.into();
        config.subjects = vec!["bench.raw.>".into()];
        js.create_stream(config).await?;
        Ok(Self {
            js,
            appender: Appender::new(client, Duration::from_secs(10)),
        })
    }

    /// `concurrency` publishers on one connection, each awaiting its ack before the next
    /// (so `concurrency` publishes are pipelined on the connection at any time): events per
    /// second.
    pub async fn concurrent(
        &self,
        events: usize,
        concurrency: usize,
        sample: &Sample,
    ) -> anyhow::Result<f64> {
        let base = next_base();
        let started = Instant::now();
        // Each publisher is a task of its own, as each hub client is.
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let (js, sample) = (self.js.clone(), sample.clone());
                tokio::spawn(async move {
                    let mut n = w;
                    while n < events {
                        publish_one(&js, &sample, base + n).await?;
                        n += concurrency;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.await??;
        }
        Ok(events as f64 / started.elapsed().as_secs_f64())
    }

    /// Times from publish to acknowledgement, one at a time.
    pub async fn sequential(&self, count: usize, sample: &Sample) -> anyhow::Result<Vec<Duration>> {
        let base = next_base();
        let mut times = Vec::with_capacity(count);
        for n in 0..count {
            let started = Instant::now();
            publish_one(&self.js, sample, base + n).await?;
            times.push(started.elapsed());
        }
        Ok(times)
    }

    /// Atomic batches of `batch` events, `in_flight` of them awaiting their acknowledgement
    /// at once, through the hub's own `Appender::append_all` (the code the hub's import
    /// batches go through): events per second.
    pub async fn batches(
        &self,
        events: usize,
        (batch, in_flight): (usize, usize),
        sample: &Sample,
    ) -> anyhow::Result<f64> {
        let base = next_base();
        let chunks: Vec<Vec<NewEvent>> = (0..events)
            .collect::<Vec<_>>()
            .chunks(batch)
            .map(|chunk| {
                chunk
                    .iter()
                    .map(|&i| {
                        let mut envelope = sample.envelope.clone();
                        envelope.id = format!("raw-{:012}", base + i);
                        NewEvent {
                            subject: format!("bench.raw.{}", base + i),
                            envelope,
                            body: sample.body.clone(),
                            expected_last_subject_sequence: Some(0),
                        }
                    })
                    .collect()
            })
            .collect();
        let started = Instant::now();
        let appended: Vec<usize> = futures::stream::iter(chunks)
            .map(|chunk| {
                let appender = self.appender.clone();
                async move { appender.append_all(chunk).await.map(|a| a.len()) }
            })
            .buffered(in_flight)
            .try_collect()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            appended.iter().sum::<usize>() == events,
            "appended {} of {events}",
            appended.iter().sum::<usize>()
        );
        Ok(events as f64 / elapsed.as_secs_f64())
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }
}

pub async fn publish_one(js: &jetstream::Context, sample: &Sample, n: usize) -> anyhow::Result<()> {
    let mut envelope = sample.envelope.clone();
    envelope.id = format!("raw-{n:012}");
    let publish = PublishMessage::build()
        .payload(sample.body.clone())
        .headers(envelope.to_headers())
        .expected_last_subject_sequence(0);
    js.send_publish(format!("bench.raw.{n}"), publish)
        .await?
        .await?;
    Ok(())
}

/// The body and header bytes of the last message `stream` stored.
pub async fn last_stored_size(
    js: &jetstream::Context,
    stream: &str,
) -> anyhow::Result<(usize, usize)> {
    let mut stream = js.get_stream(stream).await?;
    let last = stream.info().await?.state.last_sequence;
    let message = stream.get_raw_message(last).await?;
    Ok((message.payload.len(), headers_len(&message.headers)))
}

/// Distinct subject numbers for each run.
pub fn next_base() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(10_000_000, std::sync::atomic::Ordering::Relaxed)
}

pub fn median(times: Vec<Duration>) -> Duration {
    percentile(times, 0.5)
}

/// The `q` quantile (0.5: the median, 0.99: p99) of `times`, by nearest rank.
pub fn percentile(mut times: Vec<Duration>, q: f64) -> Duration {
    times.sort();
    if times.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * times.len() as f64).ceil() as usize).clamp(1, times.len());
    times[rank - 1]
}
