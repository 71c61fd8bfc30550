//! The consumer loop of one read model.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::{FutureExt, StreamExt};
use hub_log::Entry;
use hub_log::names::EVENTS_STREAM;
use hub_store::{Batch, ReadModelStore};
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::model::ReadModel;
use crate::projection::{Projection, ProjectionError};

#[derive(Debug, Clone)]
pub struct ProjectorOptions {
    /// Durable consumer name; unique per hub instance and read model.
    pub consumer_name: String,
    /// Most events applied in one sled batch. Batches grow with the backlog up to this.
    pub max_batch: usize,
    /// After this long without events, check whether the log moved past the model.
    pub idle_check: Duration,
    /// An abandoned consumer (its hub gone for good) is removed by the server after this.
    pub inactive_threshold: Duration,
    /// The model is rebuilt from the log: its consumer spans link to each event's trace
    /// rather than continue it. A live model's continue the trace of the append, catching up
    /// after a restart included.
    pub replay: bool,
    /// A model that starts empty replays, the same way, the events stored before this
    /// instant (the process's start): a new model, or one reset, built over an existing log.
    pub replay_stored_before: Option<Timestamp>,
}

impl ProjectorOptions {
    pub fn new(consumer_name: impl Into<String>) -> Self {
        Self {
            consumer_name: consumer_name.into(),
            max_batch: 1024,
            idle_check: Duration::from_millis(500),
            inactive_threshold: Duration::from_secs(24 * 3600),
            replay: false,
            replay_stored_before: None,
        }
    }
}

/// A failure that the read model cannot get past by itself: the process should restart.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    #[error("read model {model}: storage failed: {source}")]
    Store {
        model: &'static str,
        source: hub_store::StoreError,
    },
}

/// How often an idle consumer's server says it is still there.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// Runs a read model until `shutdown`. A gap or an unreadable event halts the model (it stops
/// applying and refuses reads, saying why) and this returns `Ok` at shutdown. NATS outages are
/// waited out: the consumer is recreated from the checkpoint once the server answers again.
/// A storage failure returns `Err`: the process should restart.
pub async fn run(
    js: jetstream::Context,
    model: ReadModel,
    projection: Arc<dyn Projection>,
    options: ProjectorOptions,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    let name = model.name();
    let mut backoff = Duration::from_millis(50);
    loop {
        match consume(&js, &model, &projection, &options, &shutdown).await {
            Ok(Stop::Shutdown) => return Ok(()),
            Ok(Stop::Halt(reason)) => return halted(&model, reason, shutdown).await,
            Err(Failure::Store(source)) => {
                return Err(ProjectorError::Store {
                    model: name,
                    source,
                });
            }
            Err(Failure::Nats(reason)) => {
                warn!(read_model = name, reason = %reason, ?backoff, "projector lost NATS; recreating its consumer");
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

enum Stop {
    Shutdown,
    Halt(String),
}

enum Failure {
    Store(hub_store::StoreError),
    Nats(String),
}

fn nats_failure(what: &'static str) -> impl Fn(&dyn std::fmt::Display) -> Failure {
    move |e| Failure::Nats(format!("{what}: {e}"))
}

/// Consumes from checkpoint + 1 until shutdown, a halt, or a failure.
async fn consume(
    js: &jetstream::Context,
    model: &ReadModel,
    projection: &Arc<dyn Projection>,
    options: &ProjectorOptions,
    shutdown: &CancellationToken,
) -> Result<Stop, Failure> {
    let name = model.name();
    if held(&options.consumer_name, shutdown).await {
        return Ok(Stop::Shutdown);
    }
    let checkpoint = checkpoint(model).await.map_err(Failure::Store)?;
    model.advance(checkpoint);
    let mut events_stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| nats_failure("get stream")(&e))?;
    let info = events_stream
        .info()
        .await
        .map_err(|e| nats_failure("stream info")(&e))?;
    let state = info.state.clone();
    if let Some(reason) = gap_at_start(checkpoint, &state) {
        return Ok(Stop::Halt(reason));
    }
    let identity = info.created.unix_timestamp_nanos().to_string();
    if let Some(reason) = same_log(model, &identity).await.map_err(Failure::Store)? {
        return Ok(Stop::Halt(reason));
    }
    let filter = projection.filter_subject();
    let consumer = recreate_consumer(&events_stream, &**projection, options, checkpoint)
        .await
        .map_err(|e| nats_failure("create consumer")(&e))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(options.max_batch)
        // A consumer lost with the server it lived on (a cluster member gone) is noticed
        // after two missed heartbeats and recreated on another: keep that short, since
        // commands wait for command_state meanwhile.
        .heartbeat(HEARTBEAT)
        .messages()
        .await
        .map_err(|e| nats_failure("consume")(&e))?;
    info!(read_model = name, checkpoint, "projector consuming");
    // Events stored before this are replayed (linked to, not continued): all of them in a
    // rebuild; in a model that starts empty, those from before the process started.
    let replayed_before = match (options.replay, checkpoint, options.replay_stored_before) {
        (true, _, _) => Some(Timestamp::MAX),
        (false, 0, before) => before,
        (false, _, _) => None,
    };
    // Learn at once how far the model stands, rather than after the first idle interval.
    idle_check(&mut events_stream, &filter, model).await;
    let mut next_delivery = 1;

    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Stop::Shutdown),
            _ = model.nudged() => None,
            next = tokio::time::timeout(options.idle_check, messages.next()) => match next {
                Err(_idle) => None,
                Ok(None) => return Err(Failure::Nats("consumer stream ended".into())),
                Ok(Some(Err(err))) => return Err(nats_failure("consumer")(&err)),
                Ok(Some(Ok(message))) => Some(message),
            },
        };
        // A hold set while this waited takes effect before anything is applied or learned.
        if held(&options.consumer_name, shutdown).await {
            return Ok(Stop::Shutdown);
        }
        let Some(first) = first else {
            idle_check(&mut events_stream, &filter, model).await;
            continue;
        };
        let mut batch = vec![first];
        while batch.len() < options.max_batch {
            match messages.next().now_or_never() {
                Some(Some(Ok(message))) => batch.push(message),
                _ => break,
            }
        }
        // Every delivery of this consumer has the next consumer sequence. A jump means a
        // delivery was lost (a server restart mid-flight, say); the lost event's redelivery
        // could come after later events and be skipped as applied, so start over from the
        // checkpoint instead.
        for message in &batch {
            let delivered = message
                .info()
                .map(|i| i.consumer_sequence)
                .unwrap_or_default();
            if delivered != next_delivery {
                return Err(Failure::Nats(format!(
                    "delivery {next_delivery} was lost (got {delivered})"
                )));
            }
            next_delivery += 1;
        }
        let spans = process_spans(&batch, &options.consumer_name, replayed_before);
        if let Some(reason) = apply_batch(model, projection, &batch).await? {
            return Ok(Stop::Halt(reason));
        }
        drop(spans);
        hub_telemetry::metrics().projector_applied.add(
            batch.len() as u64,
            &[hub_telemetry::metrics::label("read_model", name)],
        );
        // Every event the log stored up to the last one applied is applied: stream order is
        // storage order.
        if let Some(stored) = batch.last().and_then(stored_at) {
            model.complete_as_of(stored);
        }
        hub_store::failpoint::crash("after-apply");
        // Rows and checkpoint are written (sled makes them durable within its flush interval,
        // off this path). The acknowledgement only keeps the server's pending count down: the
        // consumer is recreated from the durable checkpoint on every start, so an ack ahead of
        // it skips nothing. With AckPolicy::All, acknowledging the last acknowledges the batch.
        // Not confirmed (no round trip per batch): a lost ack is harmless, the next one covers
        // it, and a redelivered event at or below the checkpoint is skipped.
        if let Some(last) = batch.last()
            && let Err(err) = last.ack().await
        {
            debug!(read_model = name, error = %err, "ack not sent");
        }
    }
}

/// The consumer spans of a batch, ended when dropped (after it is applied and committed).
/// A live model gives each event a `process` span of its own, child of the append that
/// stored it and linked to it. Replayed events (a rebuild's, or those stored before the
/// process started in a model that starts empty) share one span per batch, a trace of its
/// own linked to each original.
fn process_spans(
    batch: &[jetstream::Message],
    consumer: &str,
    replayed_before: Option<Timestamp>,
) -> Vec<tracing::Span> {
    // Without export, nobody would see them: not made at all, on the projection's hot path.
    if !hub_telemetry::trace::exporting() {
        return Vec::new();
    }
    let traceparent = |message: &jetstream::Message| -> String {
        message
            .headers
            .as_ref()
            .and_then(|h| {
                h.get(async_nats::HeaderName::from_static(
                    hub_log::names::headers::CE_TRACEPARENT,
                ))
            })
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let mut spans = Vec::new();
    let mut replayed = None;
    for message in batch {
        let position = message
            .info()
            .map(|i| i.stream_sequence)
            .unwrap_or_default();
        let replay =
            replayed_before.is_some_and(|before| stored_at(message).is_none_or(|at| at < before));
        if !replay {
            let span = hub_telemetry::consumer_span!(
                EVENTS_DESTINATION,
                message.subject,
                consumer,
                position
            );
            hub_telemetry::trace::continue_from(&span, &traceparent(message));
            spans.push(span);
        } else {
            let span = replayed.get_or_insert_with(|| {
                let span = hub_telemetry::consumer_span!(
                    EVENTS_DESTINATION,
                    EVENTS_DESTINATION,
                    consumer,
                    position
                );
                span.record("hub.replay", true);
                span
            });
            hub_telemetry::trace::link_to(span, &traceparent(message));
        }
    }
    spans.extend(replayed);
    spans
}

/// The destination in the names of the projectors' spans.
const EVENTS_DESTINATION: &str = "gov.events";

/// While a test holds this read model (failpoint `projector-hold`), waits, applying nothing
/// and learning nothing of the log; returns whether shutdown came meanwhile.
async fn held(consumer: &str, shutdown: &CancellationToken) -> bool {
    while hub_store::failpoint::holds("projector-hold", consumer) {
        tokio::select! {
            _ = shutdown.cancelled() => return true,
            _ = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    false
}

async fn halted(
    model: &ReadModel,
    reason: String,
    shutdown: CancellationToken,
) -> Result<(), ProjectorError> {
    error!(read_model = model.name(), reason = %reason, "read model halted");
    model.halt(reason);
    shutdown.cancelled().await;
    Ok(())
}

/// The log as the model starts: events gone from under it, or a log that ends below it.
fn gap_at_start(checkpoint: u64, state: &stream::State) -> Option<String> {
    gap(
        checkpoint,
        state.first_sequence,
        state.last_sequence,
        state.messages,
    )
}

fn gap(checkpoint: u64, first_sequence: u64, last_sequence: u64, messages: u64) -> Option<String> {
    if last_sequence < checkpoint {
        return Some(format!(
            "the log ends at position {last_sequence} but the read model has applied up to {checkpoint}: \
             the log was reset or an older backup restored"
        ));
    }
    if messages > 0 && first_sequence > checkpoint + 1 {
        return Some(format!(
            "events {} to {} are gone from the log; the read model cannot be brought up to date",
            checkpoint + 1,
            first_sequence - 1
        ));
    }
    None
}

async fn recreate_consumer(
    events_stream: &stream::Stream,
    projection: &dyn Projection,
    options: &ProjectorOptions,
    checkpoint: u64,
) -> Result<consumer::PullConsumer, String> {
    match events_stream.delete_consumer(&options.consumer_name).await {
        Ok(_) => {}
        Err(err)
            if matches!(err.kind(), stream::ConsumerErrorKind::JetStream(e)
            if e.error_code() == jetstream::ErrorCode::CONSUMER_NOT_FOUND) => {}
        Err(err) => return Err(err.to_string()),
    }
    let config = consumer::pull::Config {
        durable_name: Some(options.consumer_name.clone()),
        description: Some(format!("projector of read model {}", projection.name())),
        filter_subject: projection.filter_subject(),
        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
            start_sequence: checkpoint + 1,
        },
        ack_policy: consumer::AckPolicy::All,
        ack_wait: Duration::from_secs(60),
        max_ack_pending: (options.max_batch * 4) as i64,
        inactive_threshold: options.inactive_threshold,
        // The checkpoint in sled is the only position that counts and the consumer is made
        // afresh from it on every start, so the server need not keep it: one copy, in memory.
        // On a cluster it then has no replicas to elect a new leader among when its member
        // goes; it is simply made again on a member that is up.
        num_replicas: 1,
        memory_storage: true,
        ..Default::default()
    };
    events_stream
        .create_consumer(config)
        .await
        .map_err(|e| e.to_string())
}

/// With nothing delivered for a while, asks the log itself how far the model stands: read
/// the stream's last sequence L, then the first event after the checkpoint that the model
/// consumes. None up to L: the model stands at L. One at S: it stands at S - 1 (and the
/// consumer will deliver S). The consumer's own counters are not trusted for this: after a
/// server restart they can count a message delivered but never applied as done.
/// When it finds nothing pending, the model is also complete as of the moment it asked.
async fn idle_check(events_stream: &mut stream::Stream, filter: &str, model: &ReadModel) {
    let asked = Timestamp::now();
    let last = match events_stream.info().await {
        Ok(info) => info.state.last_sequence,
        Err(err) => {
            warn!(read_model = model.name(), error = %err, "idle check: stream info failed");
            return;
        }
    };
    let checkpoint = match checkpoint(model).await {
        Ok(checkpoint) => checkpoint,
        Err(err) => {
            warn!(read_model = model.name(), error = %err, "idle check: checkpoint unreadable");
            return;
        }
    };
    let caught_up = |model: &ReadModel| {
        model.advance(last);
        model.complete_as_of(asked);
    };
    // Asked of the stream's leader, which holds everything up to `last`: a replica behind it
    // could answer that nothing is pending when something is.
    match events_stream
        .get_first_raw_message_by_subject(filter, checkpoint + 1)
        .await
    {
        Ok(next) if next.sequence <= last => model.advance(next.sequence - 1),
        Ok(_) => caught_up(model),
        Err(err) if err.kind() == stream::RawMessageErrorKind::NoMessageFound => caught_up(model),
        Err(err) => warn!(read_model = model.name(), error = %err, "idle check failed"),
    }
}

/// Whether the model was built from this log: its stream's identity (the stream's creation
/// time) is recorded the first time and compared on every start after. A log deleted and
/// created again under the same name, whose sequence has grown past the checkpoint again,
/// is caught here where no sequence rule can catch it. `Some(reason)`: halt.
async fn same_log(
    model: &ReadModel,
    identity: &str,
) -> Result<Option<String>, hub_store::StoreError> {
    let store = model.store_arc();
    let identity = identity.to_owned();
    tokio::task::spawn_blocking(move || match store.meta(hub_store::LOG_IDENTITY)? {
        Some(recorded) if recorded == identity => Ok(None),
        Some(_) => Ok(Some(
            "the log was created again under the same name since the read model was built: \
             its rows belong to another log"
                .to_owned(),
        )),
        None => store
            .set_meta(hub_store::LOG_IDENTITY, &identity)
            .map(|()| None),
    })
    .await
    .map_err(|e| hub_store::StoreError::Io(e.to_string()))?
}

/// The model's checkpoint, read off the async threads.
async fn checkpoint(model: &ReadModel) -> Result<u64, hub_store::StoreError> {
    let store = model.store_arc();
    tokio::task::spawn_blocking(move || store.checkpoint())
        .await
        .map_err(|e| hub_store::StoreError::Io(e.to_string()))?
}

/// When the log stored a delivered message.
fn stored_at(message: &jetstream::Message) -> Option<Timestamp> {
    let published = message.info().ok()?.published;
    Timestamp::from_nanosecond(published.unix_timestamp_nanos()).ok()
}

/// Applies a batch; `Some(reason)` when the read model must halt.
async fn apply_batch(
    model: &ReadModel,
    projection: &Arc<dyn Projection>,
    messages: &[jetstream::Message],
) -> Result<Option<String>, Failure> {
    let mut events = Vec::with_capacity(messages.len());
    for message in messages {
        match Entry::from_message(message) {
            Ok(entry) => events.push(entry),
            Err(err) => return Ok(Some(err.to_string())),
        }
    }
    let store = model.store_arc();
    let projection = projection.clone();
    let outcome =
        tokio::task::spawn_blocking(move || apply_and_commit(&*store, &*projection, &events))
            .await
            .map_err(|e| Failure::Store(hub_store::StoreError::Io(e.to_string())))?;
    match outcome {
        Ok(Some(position)) => {
            model.advance(position);
            Ok(None)
        }
        Ok(None) => Ok(None),
        Err(ProjectionError::Store(source)) => Err(Failure::Store(source)),
        Err(err) => Ok(Some(err.to_string())),
    }
}

/// Applies to `batch`, in order, the entries after position `after` (an entry delivered twice
/// is applied once), exactly as the projector applies what it consumes; returns the position
/// of the last one applied (`after` when none was). A replay of a read model as of a position
/// (the auditors' rows as of a position) applies the log through this too.
pub fn apply_entries(
    projection: &dyn Projection,
    batch: &mut Batch<'_>,
    entries: &[Entry],
    after: u64,
) -> Result<u64, ProjectionError> {
    let mut last = after;
    for entry in entries.iter().filter(|e| e.position() > after) {
        if entry.position() <= last {
            continue; // redelivered within the batch
        }
        match entry {
            Entry::Event(event) => projection.apply(event, batch)?,
            Entry::Unreadable(unreadable) => projection.apply_unreadable(unreadable, batch)?,
        }
        last = entry.position();
    }
    Ok(last)
}

/// Applies the events above the checkpoint and writes them with the new checkpoint in one
/// atomic batch, visible at once and durable within sled's flush interval (no flush here: a
/// crash loses whole batches, which the projector applies again from the checkpoint).
/// Returns the new checkpoint, or `None` when every event was already applied.
pub(crate) fn apply_and_commit(
    store: &dyn ReadModelStore,
    projection: &dyn Projection,
    entries: &[Entry],
) -> Result<Option<u64>, ProjectionError> {
    let checkpoint = store.checkpoint()?;
    let mut batch = Batch::new(store);
    let last = apply_entries(projection, &mut batch, entries, checkpoint)?;
    if last == checkpoint {
        return Ok(None);
    }
    store.write(batch.into_writes(), last)?;
    hub_store::failpoint::crash("after-batch-write");
    Ok(Some(last))
}

#[cfg(test)]
mod tests {
    use super::gap;

    #[test]
    fn gaps_at_start_halt_and_a_caught_up_or_behind_model_does_not() {
        assert_eq!(gap(0, 0, 0, 0), None, "empty log, new model");
        assert_eq!(gap(0, 1, 10, 10), None, "new model, full log");
        assert_eq!(gap(10, 1, 10, 10), None, "caught up");
        assert_eq!(gap(4, 5, 10, 6), None, "next event is the first kept");
        assert!(gap(3, 5, 10, 6).is_some(), "event 4 is gone");
        assert!(gap(11, 1, 10, 10).is_some(), "log ends below checkpoint");
    }
}
