//! An event as read back from `GOV_EVENTS`.

use bytes::Bytes;

use crate::envelope::{Envelope, EnvelopeError};

/// One stored event: its position, subject, envelope and protobuf body.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The stream sequence: the event's global position.
    pub position: u64,
    pub subject: String,
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

impl StoredEvent {
    /// Reads a message delivered by a consumer of the events stream.
    pub fn from_message(
        message: &async_nats::jetstream::Message,
    ) -> Result<Self, StoredEventError> {
        let position = message
            .info()
            .map_err(|e| StoredEventError::NotJetStream(e.to_string()))?
            .stream_sequence;
        let headers = message
            .headers
            .as_ref()
            .ok_or(StoredEventError::NoHeaders { position })?;
        Self::read(position, &message.subject, headers, &message.payload)
    }

    /// Reads a message fetched from the stream by sequence or subject.
    pub fn from_stream_message(
        message: &async_nats::jetstream::message::StreamMessage,
    ) -> Result<Self, StoredEventError> {
        Self::read(
            message.sequence,
            &message.subject,
            &message.headers,
            &message.payload,
        )
    }

    fn read(
        position: u64,
        subject: &async_nats::Subject,
        headers: &async_nats::HeaderMap,
        body: &Bytes,
    ) -> Result<Self, StoredEventError> {
        let envelope = Envelope::from_headers(headers)
            .map_err(|source| StoredEventError::Envelope { position, source })?;
        Ok(Self {
            position,
            subject: subject.to_string(),
            envelope,
            body: body.clone(),
        })
    }
}
