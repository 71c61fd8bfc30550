//! Appending events to `GOV_EVENTS`.

use std::time::Duration;

use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;

use crate::envelope::Envelope;
use crate::names::EVENTS_STREAM;
use crate::stored::StoredEvent;

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
    /// The aggregate moved on since the expected sequence.
    #[error("the aggregate has events past the expected sequence")]
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
}

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
        Self { js }
    }

    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// Appends one event; `Ok` means it is stored (and, with `sync_interval: always`, on disk).
    pub async fn append(&self, event: NewEvent) -> Result<Appended, AppendError> {
        let mut publish = jetstream::message::PublishMessage::build()
            .payload(event.body)
            .headers(event.envelope.to_headers());
        if let Some(sequence) = event.expected_last_subject_sequence {
            publish = publish.expected_last_subject_sequence(sequence);
        }
        let ack = self
            .js
            .send_publish(event.subject, publish)
            .await
            .map_err(publish_error)?
            .await
            .map_err(publish_error)?;
        Ok(Appended {
            position: ack.sequence,
            duplicate: ack.duplicate,
        })
    }
}

impl Appender {
    /// The first event stored on `subject` (an aggregate's first event), if any.
    pub async fn first_event(&self, subject: &str) -> Result<Option<StoredEvent>, AppendError> {
        let stream = self
            .js
            .get_stream_no_info(EVENTS_STREAM)
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        match stream.direct_get_first_for_subject(subject).await {
            Ok(message) => StoredEvent::from_stream_message(&message)
                .map(Some)
                .map_err(|e| AppendError::Refused(e.to_string())),
            Err(err) if err.kind() == jetstream::stream::DirectGetErrorKind::NotFound => Ok(None),
            Err(err) => Err(AppendError::Unavailable(err.to_string())),
        }
    }
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
