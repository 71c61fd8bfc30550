//! Appending events to `GOV_EVENTS`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;

use serde::Deserialize;
use tracing::Instrument;

use crate::envelope::Envelope;
use crate::names::headers as h;

/// One event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// `gov.events.<aggregate_type>.<aggregate_id>` (see [`crate::names::event_subject`]).
    pub subject: String,
    pub envelope: Envelope,
    /// The protobuf event.
    pub body: Bytes,
    /// Optimistic concurrency: the aggregate's subject must be at this sequence (0: no event yet).
    pub expected_last_subject_sequence: Option<u64>,
}

/// Where an event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The event's stream sequence: its global position.
    pub position: u64,
    /// The server had this `Nats-Msg-Id` already, within the duplicate window; nothing new was stored.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// The aggregate moved on since the expected sequence, or (in a batch) an event id is
    /// stored already: the caller reads the log and decides again.
    #[error(
        "the aggregate has events past the expected sequence, or an event id is stored already"
    )]
    Conflict,
    /// The log cannot take the event now; the outcome of this attempt is unknown, and a
    /// retry with the same event id is safe.
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    #[error("the event log refused the event: {0}")]
    Refused(String),
}

/// Appends events to the log and waits for the acknowledgement of each.
#[derive(Clone)]
pub struct Appender {
    js: jetstream::Context,
    ack_timeout: Duration,
    /// Direct get requests made, for tests and (later) metrics.
    direct_gets: Arc<AtomicU64>,
}

/// Most messages in one atomic batch (a server limit).
pub const MAX_BATCH: usize = 1000;

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender").finish_non_exhaustive()
    }
}

impl Appender {
    pub fn new(client: async_nats::Client, ack_timeout: Duration) -> Self {
        let js = jetstream::ContextBuilder::new()
            .timeout(ack_timeout)
            .build(client);
        Self {
            js,
            ack_timeout,
            direct_gets: Arc::default(),
        }
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// Direct get requests this appender (and its clones) made so far.
    pub fn direct_gets(&self) -> u64 {
        self.direct_gets.load(Ordering::Relaxed)
    }

    pub(crate) fn count_direct_get(&self) {
        self.direct_gets.fetch_add(1, Ordering::Relaxed);
    }

    /// How long any answer from the log is waited for.
    pub fn ack_timeout(&self) -> Duration {
        self.ack_timeout
    }

    /// Appends one event; `Ok` means it is stored (and, with `sync_interval: always`, on disk).
    ///
    /// A producer span (`publish gov.events`) covers it, and its trace context goes into the
    /// event's `ce-traceparent`, so whoever consumes the event continues this trace. Without
    /// trace export the event keeps the traceparent its command came with.
    pub async fn append(&self, mut event: NewEvent) -> Result<Appended, AppendError> {
        self.append_one(&mut event).await
    }

    async fn append_one(&self, event: &mut NewEvent) -> Result<Appended, AppendError> {
        let span = hub_telemetry::producer_span!(EVENTS_DESTINATION, event.subject);
        if let Some(traceparent) = hub_telemetry::trace::traceparent(&span) {
            event.envelope.traceparent = traceparent;
        }
        let started = Instant::now();
        let appended = async {
            let mut publish = jetstream::message::PublishMessage::build()
                .payload(event.body.clone())
                .headers(event.envelope.to_headers());
            if let Some(sequence) = event.expected_last_subject_sequence {
                publish = publish.expected_last_subject_sequence(sequence);
            }
            let ack = self
                .js
                .send_publish(event.subject.clone(), publish)
                .await
                .map_err(publish_error)?
                .await
                .map_err(publish_error)?;
            tracing::Span::current().record("hub.position", ack.sequence);
            Ok(Appended {
                position: ack.sequence,
                duplicate: ack.duplicate,
            })
        }
        .instrument(span)
        .await;
        observe_append("single", 1, started, &appended);
        appended
    }
}

/// The server's answer to an atomic batch's commit.
#[derive(Debug, Deserialize)]
struct BatchAck {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    count: u64,
    #[serde(default)]
    error: Option<ApiError>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// JetStream's error code for a failed expected-sequence check.
const WRONG_LAST_SEQUENCE: u64 = 10071;
/// An atomic batch holds a message id the stream has stored already (checked before the
/// expected sequences): for the hub, a retry whose events are in the log.
const BATCH_DUPLICATE_MESSAGE_ID: u64 = 10201;
/// Too many atomic batches in flight on the stream: retry later.
const BATCH_TOO_MANY_IN_FLIGHT: u64 = 10210;

impl Appender {
    /// Appends events all together or not at all. One event is a plain publish; several go
    /// as one atomic batch (server 2.12+, stream `allow_atomic`), which the server stores with
    /// one fsync and in consecutive positions. The expected subject sequence is honoured on
    /// an aggregate's first event in the batch, so set it there.
    pub async fn append_all(
        &self,
        mut events: Vec<NewEvent>,
    ) -> Result<Vec<Appended>, AppendError> {
        self.append_slice(&mut events).await
    }

    /// [`Self::append_all`] on events the caller keeps (the group committer retries a
    /// refused batch's members from them). An event's traceparent may be replaced by the
    /// append span's, as [`Self::append`] says.
    pub(crate) async fn append_slice(
        &self,
        events: &mut [NewEvent],
    ) -> Result<Vec<Appended>, AppendError> {
        match events {
            [] => return Ok(Vec::new()),
            [event] => return self.append_one(event).await.map(|a| vec![a]),
            _ if events.len() > MAX_BATCH => {
                return Err(AppendError::Refused(format!(
                    "{} events exceed an atomic batch of {MAX_BATCH}",
                    events.len()
                )));
            }
            _ => {}
        }
        // One producer span for the batch. An event whose command came with another trace
        // (a batch of several commands, an import) keeps it and is linked from here; the
        // others carry this span's context.
        let span = hub_telemetry::producer_span!(EVENTS_DESTINATION, EVENTS_DESTINATION);
        span.record("messaging.batch.message_count", events.len());
        let own = hub_telemetry::trace::traceparent(&span);
        let current = hub_telemetry::trace::traceparent(&tracing::Span::current());
        let mut linked = std::collections::HashSet::new();
        for event in events.iter_mut() {
            let carried = &event.envelope.traceparent;
            let other_trace = !carried.is_empty()
                && current
                    .as_deref()
                    .is_none_or(|c| trace_id(c) != trace_id(carried));
            if other_trace {
                if linked.insert(carried.clone()) {
                    hub_telemetry::trace::link_to(&span, carried);
                }
            } else if let Some(own) = &own {
                event.envelope.traceparent = own.clone();
            }
        }
        let started = Instant::now();
        let count = events.len();
        let appended = self.publish_batch(events).instrument(span).await;
        observe_append("batch", count, started, &appended);
        appended
    }

    /// The atomic batch itself: every message but the last published, the last as a request
    /// whose answer is the batch's acknowledgement.
    async fn publish_batch(&self, events: &[NewEvent]) -> Result<Vec<Appended>, AppendError> {
        let client = self.js.client();
        let batch_id = nuid::next().to_string();
        let count = events.len();
        let mut commit = None;
        for (index, event) in events.iter().enumerate() {
            let mut headers = event.envelope.to_headers();
            headers.insert(crate::envelope::name(h::BATCH_ID), batch_id.as_str());
            headers.insert(
                crate::envelope::name(h::BATCH_SEQUENCE),
                (index + 1).to_string(),
            );
            if let Some(sequence) = event.expected_last_subject_sequence {
                headers.insert(
                    crate::envelope::name(h::EXPECTED_LAST_SUBJECT_SEQUENCE),
                    sequence.to_string(),
                );
            }
            if index + 1 == count {
                headers.insert(crate::envelope::name(h::BATCH_COMMIT), "1");
                commit = Some((event.subject.clone(), headers, event.body.clone()));
            } else {
                client
                    .publish_with_headers(event.subject.clone(), headers, event.body.clone())
                    .await
                    .map_err(|e| AppendError::Unavailable(e.to_string()))?;
            }
        }
        let (subject, headers, body) =
            commit.ok_or_else(|| AppendError::Refused("empty batch".into()))?;
        let reply = tokio::time::timeout(
            self.ack_timeout,
            client.request_with_headers(subject, headers, body),
        )
        .await
        .map_err(|_| AppendError::Unavailable("no answer to the batch commit in time".into()))?
        .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        let ack: BatchAck = serde_json::from_slice(&reply.payload)
            .map_err(|e| AppendError::Refused(format!("unreadable batch acknowledgement: {e}")))?;
        if let Some(error) = ack.error {
            return Err(match error.err_code {
                WRONG_LAST_SEQUENCE | BATCH_DUPLICATE_MESSAGE_ID => AppendError::Conflict,
                BATCH_TOO_MANY_IN_FLIGHT => AppendError::Unavailable(error.description),
                _ if error.description.contains("wrong last sequence") => AppendError::Conflict,
                _ => AppendError::Refused(error.description),
            });
        }
        if ack.count != count as u64 || ack.seq < count as u64 {
            return Err(AppendError::Refused(format!(
                "batch acknowledged {} of {count} events",
                ack.count
            )));
        }
        let first = ack.seq + 1 - count as u64;
        Ok((0..count as u64)
            .map(|i| Appended {
                position: first + i,
                duplicate: false,
            })
            .collect())
    }
}

/// The destination in the names of append spans.
const EVENTS_DESTINATION: &str = "gov.events";

/// The trace id part of a traceparent.
fn trace_id(traceparent: &str) -> &str {
    traceparent.split('-').nth(1).unwrap_or("")
}

/// An append's latency and size (`hub_append_duration_seconds`, `hub_append_batch_size`).
fn observe_append<T>(
    kind: &'static str,
    events: usize,
    started: Instant,
    outcome: &Result<T, AppendError>,
) {
    use hub_telemetry::metrics::label;
    let metrics = hub_telemetry::metrics();
    let outcome = match outcome {
        Ok(_) => "ok",
        Err(AppendError::Conflict) => "conflict",
        Err(AppendError::Unavailable(_)) => "unavailable",
        Err(AppendError::Refused(_)) => "refused",
    };
    let labels = [label("kind", kind), label("outcome", outcome)];
    metrics
        .append_duration
        .record(started.elapsed().as_secs_f64(), &labels);
    metrics
        .append_batch_size
        .record(events as u64, &labels[..1]);
}

fn publish_error(err: jetstream::context::PublishError) -> AppendError {
    match err.kind() {
        PublishErrorKind::WrongLastSequence => AppendError::Conflict,
        PublishErrorKind::TimedOut
        | PublishErrorKind::BrokenPipe
        | PublishErrorKind::StreamNotFound
        | PublishErrorKind::MaxAckPending => AppendError::Unavailable(err.to_string()),
        _ => AppendError::Refused(err.to_string()),
    }
}
