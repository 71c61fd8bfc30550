//! The baseline: raw async-nats JetStream publishing of events equal to the hub's (same
//! body size, same headers), to a stream with the events stream's settings.

use std::time::{Duration, Instant};

use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use hub_api::encode_case_event;
use hub_domain::case::*;
use hub_domain::codes::{DepartmentCode, DivisionCode, GridCode};
use hub_log::stream::{EventsStreamSettings, events_stream_config};
use hub_log::{Appender, Classification, Envelope, NewEvent};

pub const RAW_STREAM: &str = "BENCH_RAW";

/// One event like those the hub appends for a report.
#[derive(Clone)]
pub struct Sample {
    pub envelope: Envelope,
    pub body: Bytes,
}

pub fn header_bytes(sample: &Sample) -> usize {
    let headers = sample.envelope.to_headers();
    headers
        .iter()
        .map(|(k, v)| k.to_string().len() + v.iter().map(|v| v.as_str().len()).sum::<usize>() + 4)
        .sum()
}

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("valid code")
}

pub fn sample_event() -> Sample {
    let event = CaseEvent::Reported(CaseReported {
        case_id: CaseId::new("5b0e3c1a-9d8f-5a7e-8b61-2f4c9e7d1a30"),
        kind: CaseKind::GridIncident(GridIncident {
            grid: GridCode::parse("310104001001001").expect("grid"),
            category: IncidentCategory::FireHazard,
            location: Some(Location {
                longitude: 121.44,
                latitude: 31.2,
                address: "3号楼北门".into(),
            }),
        }),
        description: "消防通道被电动车堵塞 fire lane blocked".into(),
        reporter: Reporter::GridWorker {
            id: "GW-0107".into(),
        },
        channel: ReportChannel::GridPatrol,
        district: DivisionCode::parse("310104").expect("district"),
        dispatch_unit: dept("dcc-310104"),
        urgency: Urgency::Urgent,
        reported_at: jiff::Timestamp::now(),
        reported_by: dept("urban-management"),
    });
    let (event_type, body) = encode_case_event(&event);
    let envelope = Envelope {
        id: "c629577a-3341-5dcc-94d2-9fa3b5b539ff".into(),
        source: "/departments/urban-management".into(),
        event_type: event_type.name.into(),
        subject: "case/5b0e3c1a-9d8f-5a7e-8b61-2f4c9e7d1a30".into(),
        time: jiff::Timestamp::now(),
        dataschema: event_type.dataschema.into(),
        department: "urban-management".into(),
        classification: Classification::Internal,
        schema_version: event_type.schema_version,
        correlation_id: "bench-000001".into(),
        causation_id: "bench-000001".into(),
        traceparent: String::new(),
        request_id: "bench-000001".into(),
        command_hash: "0123456789abcdef0123456789abcdef".into(),
        acting_person: String::new(),
    };
    Sample {
        envelope,
        body: body.into(),
    }
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

    /// `concurrency` publishers, each awaiting its ack before the next: events per second.
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

    /// Median time from publish to acknowledgement, one at a time.
    pub async fn sequential(&self, count: usize, sample: &Sample) -> anyhow::Result<Duration> {
        let base = next_base();
        let mut times = Vec::with_capacity(count);
        for n in 0..count {
            let started = Instant::now();
            publish_one(&self.js, sample, base + n).await?;
            times.push(started.elapsed());
        }
        Ok(median(times))
    }

    /// Atomic batches of `batch` events: events per second.
    pub async fn batches(
        &self,
        events: usize,
        batch: usize,
        sample: &Sample,
    ) -> anyhow::Result<f64> {
        let base = next_base();
        let started = Instant::now();
        let mut n = 0;
        while n < events {
            let size = batch.min(events - n);
            let chunk = (n..n + size)
                .map(|i| {
                    let mut envelope = sample.envelope.clone();
                    envelope.id = format!("raw-{:012}", base + i);
                    NewEvent {
                        subject: format!("bench.raw.{}", base + i),
                        envelope,
                        body: sample.body.clone(),
                        expected_last_subject_sequence: Some(0),
                    }
                })
                .collect();
            self.appender
                .append_all(chunk)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            n += size;
        }
        Ok(events as f64 / started.elapsed().as_secs_f64())
    }
}

async fn publish_one(js: &jetstream::Context, sample: &Sample, n: usize) -> anyhow::Result<()> {
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

/// Distinct subject numbers for each run.
fn next_base() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    NEXT.fetch_add(10_000_000, std::sync::atomic::Ordering::Relaxed)
}

pub fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}
