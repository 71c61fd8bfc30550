//! An event as read back from `GOV_EVENTS`.

use bytes::Bytes;
use jiff::Timestamp;

use crate::envelope::{Envelope, EnvelopeError};

/// One stored event: its position, subject, stored time, envelope and protobuf body.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The stream sequence: the event's global position.
    pub position: u64,
    pub subject: String,
    /// When the log stored it (the server's time stamp of the message), as against
    /// `envelope.time`, when it happened: what the hub knew when, for auditors.
    pub stored_at: Timestamp,
    pub envelope: Envelope,
    pub body: Bytes,
}

#[derive(Debug, thiserror::Error)]
pub enum StoredEventError {
    #[error("message is not a jetstream message: {0}")]
    NotJetStream(String),
    #[error("message at position {position} has no headers")]
    NoHeaders { position: u64 },
    #[error("message at position {position} has a bad envelope: {source}")]
    Envelope {
        position: u64,
        source: EnvelopeError,
    },
}

/// One message of the log as read back.
#[derive(Debug, Clone)]
// Nearly every entry is an event: boxing it would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Entry {
    Event(StoredEvent),
    /// A message whose envelope cannot be read (headers missing or malformed).
    Unreadable(Unreadable),
}

/// A message at `position` that the hub cannot read as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub position: u64,
    pub subject: String,
    /// When the log stored it.
    pub stored_at: Timestamp,
    /// `ce-type` as stored, or empty when even that is missing.
    pub event_type: String,
    pub reason: String,
}

impl Entry {
    pub fn position(&self) -> u64 {
        match self {
            Entry::Event(e) => e.position,
            Entry::Unreadable(u) => u.position,
        }
    }

    /// When the log stored it.
    pub fn stored_at(&self) -> Timestamp {
        match self {
            Entry::Event(e) => e.stored_at,
            Entry::Unreadable(u) => u.stored_at,
        }
    }

    pub fn subject(&self) -> &str {
        match self {
            Entry::Event(e) => &e.subject,
            Entry::Unreadable(u) => &u.subject,
        }
    }

    /// Reads a message fetched from the stream by sequence or subject.
    pub fn from_stream_message(message: &async_nats::jetstream::message::StreamMessage) -> Self {
        Self::read(
            message.sequence,
            stored_time(stored_nanos(
                Some(&message.headers),
                message.time.unix_timestamp_nanos(),
            )),
            &message.subject,
            Some(&message.headers),
            &message.payload,
        )
    }

    /// Reads a message delivered by a consumer of the events stream; `Err` only for a message
    /// that did not come from a JetStream consumer at all.
    pub fn from_message(
        message: &async_nats::jetstream::Message,
    ) -> Result<Self, StoredEventError> {
        let info = message
            .info()
            .map_err(|e| StoredEventError::NotJetStream(e.to_string()))?;
        Ok(Self::read(
            info.stream_sequence,
            stored_time(stored_nanos(
                message.headers.as_ref(),
                info.published.unix_timestamp_nanos(),
            )),
            &message.subject,
            message.headers.as_ref(),
            &message.payload,
        ))
    }

    fn read(
        position: u64,
        stored_at: Timestamp,
        subject: &async_nats::Subject,
        headers: Option<&async_nats::HeaderMap>,
        body: &Bytes,
    ) -> Self {
        let outcome = match headers {
            Some(headers) => StoredEvent::read(position, stored_at, subject, headers, body),
            None => Err(StoredEventError::NoHeaders { position }),
        };
        match outcome {
            Ok(event) => Entry::Event(event),
            Err(err) => Entry::Unreadable(Unreadable {
                position,
                subject: subject.to_string(),
                stored_at,
                event_type: headers
                    .and_then(|h| h.get(crate::names::headers::CE_TYPE))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default(),
                reason: err.to_string(),
            }),
        }
    }
}

impl StoredEvent {
    /// Reads a message fetched from the stream by sequence or subject.
    pub fn from_stream_message(
        message: &async_nats::jetstream::message::StreamMessage,
    ) -> Result<Self, StoredEventError> {
        Self::read(
            message.sequence,
            stored_time(message.time.unix_timestamp_nanos()),
            &message.subject,
            &message.headers,
            &message.payload,
        )
    }

    fn read(
        position: u64,
        stored_at: Timestamp,
        subject: &async_nats::Subject,
        headers: &async_nats::HeaderMap,
        body: &Bytes,
    ) -> Result<Self, StoredEventError> {
        let envelope = Envelope::from_headers(headers)
            .map_err(|source| StoredEventError::Envelope { position, source })?;
        Ok(Self {
            position,
            subject: subject.to_string(),
            stored_at,
            envelope,
            body: body.clone(),
        })
    }
}

/// When the log a message came from stored it, Unix nanoseconds: the server's stamp
/// `server_nanos`, unless the message was imported from a backup, which kept the original's
/// in [`HUB_STORED_AT`](crate::names::headers::HUB_STORED_AT).
pub fn stored_nanos(headers: Option<&async_nats::HeaderMap>, server_nanos: i128) -> i128 {
    headers
        .and_then(|h| h.get(crate::names::headers::HUB_STORED_AT))
        .and_then(|v| v.as_str().parse::<i64>().ok())
        .map_or(server_nanos, i128::from)
}

/// A message's stored time (nanoseconds since the Unix epoch, as the server stamped it),
/// clamped to the range a [`Timestamp`] holds: JetStream stamps with the server's clock, so
/// only a server whose clock is absurdly wrong reaches either end.
fn stored_time(nanos: i128) -> Timestamp {
    Timestamp::from_nanosecond(nanos).unwrap_or(if nanos < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}
