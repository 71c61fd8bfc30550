//! An event as read back from `GOV_EVENTS`, in the current version of its type.
//!
//! The log keeps every event as it was written. An event of an older version of its type is
//! read through its upcaster (`hub_api::upcast`) as it is read here, whoever reads it (a read
//! model's consumer, command handling's direct gets, an auditor's history, an operator's
//! tool): its envelope and body show the current version, and [`StoredEvent::upcast_from`]
//! what the log holds.

use bytes::Bytes;
use jiff::Timestamp;
use tracing::debug;

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
    /// The attributes; type, data schema and schema version those of the version read.
    pub envelope: Envelope,
    /// The protobuf body in the shape of the version read.
    pub body: Bytes,
    /// What the log holds when the event was upcast from an older version; `None` when it
    /// is read as stored.
    pub upcast_from: Option<AsStored>,
}

/// An event's type and body as the log holds them, when it is read as a later version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsStored {
    /// `ce-type`, e.g. `gov.hub.case.reported.v1`.
    pub event_type: String,
    /// `ce-dataschema`.
    pub dataschema: String,
    /// `ce-schemaversion`.
    pub schema_version: u32,
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
    /// The entry with its event in the current version of its type (see
    /// [`StoredEvent::into_current`]); entries read from the log are already.
    pub fn into_current(self) -> Self {
        match self {
            Entry::Event(event) => Entry::Event(event.into_current()),
            unreadable => unreadable,
        }
    }

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
                    .and_then(|h| h.get(crate::envelope::name(crate::names::headers::CE_TYPE)))
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
        let event = Self {
            position,
            subject: subject.to_string(),
            stored_at,
            envelope,
            body: body.clone(),
            upcast_from: None,
        };
        Ok(event.into_current())
    }

    /// The event in the current version of its type: an older version is upcast through
    /// `hub_api::upcast` (type, data schema, schema version and body replaced, what the log
    /// holds kept in [`StoredEvent::upcast_from`]); anything else is returned as it is. A
    /// body its upcaster cannot read stays as stored: decoding it then fails and names the
    /// event, as for any corrupt body, and only its aggregate is stopped.
    pub fn into_current(mut self) -> Self {
        if self.upcast_from.is_some() {
            return self;
        }
        match hub_api::upcast::upcast(&self.envelope.event_type, &self.body) {
            Ok(Some(current)) => {
                let envelope = &mut self.envelope;
                let stored = AsStored {
                    event_type: std::mem::replace(
                        &mut envelope.event_type,
                        current.event_type.name.to_owned(),
                    ),
                    dataschema: std::mem::replace(
                        &mut envelope.dataschema,
                        current.event_type.dataschema.to_owned(),
                    ),
                    schema_version: std::mem::replace(
                        &mut envelope.schema_version,
                        current.event_type.schema_version,
                    ),
                    body: std::mem::replace(&mut self.body, current.body.into()),
                };
                self.upcast_from = Some(stored);
            }
            Ok(None) => {}
            Err(_) => debug!(
                position = self.position,
                event_type = %self.envelope.event_type,
                "an event's body cannot be upcast; read as stored"
            ),
        }
        self
    }
}

/// When the log a message came from stored it, Unix nanoseconds: the server's stamp
/// `server_nanos`, unless the message was imported from a backup, which kept the original's
/// in [`HUB_STORED_AT`](crate::names::headers::HUB_STORED_AT) (taken only when it is no later
/// than the server's stamp).
pub fn stored_nanos(headers: Option<&async_nats::HeaderMap>, server_nanos: i128) -> i128 {
    // Never later than the server stored the copy: an import keeps an earlier time only.
    headers
        .and_then(|h| h.get(crate::envelope::name(crate::names::headers::HUB_STORED_AT)))
        .and_then(|v| v.as_str().parse::<i64>().ok())
        .map(i128::from)
        .filter(|original| *original <= server_nanos)
        .unwrap_or(server_nanos)
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

#[cfg(test)]
mod tests;
