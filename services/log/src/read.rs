//! Reading the log back: one aggregate's events (or a filter's, a batch at a time) many to a
//! round trip, and where the log ends.
//!
//! A command handler whose view of an aggregate is behind the log reads the events it missed
//! with one batched direct get (server 2.11+): one request, answered by up to
//! [`DIRECT_GET_BATCH`] messages and an end-of-batch marker, never one round trip per event.
//! async-nats 0.51 has no API for batched direct gets, so the request is made here by hand.

use async_nats::jetstream::message::StreamMessage;
use futures::StreamExt;
use serde::Serialize;

use crate::append::{AppendError, Appender};
use crate::names::headers as h;
use crate::names::{EVENTS_STREAM, direct_get_subject};
use crate::stored::Entry;

/// Most messages the server sends for one batched direct get.
pub const DIRECT_GET_BATCH: usize = 256;

/// The JSON of a batched direct get (ADR-31).
#[derive(Serialize)]
struct BatchRequest<'a> {
    seq: u64,
    next_by_subj: &'a str,
    batch: usize,
}

/// How one batch ended.
enum BatchEnd {
    /// No message matched.
    NotFound,
    /// The batch is complete; this many matching messages remain after it.
    EndOfBatch { pending: u64 },
}

impl Appender {
    /// Every message stored on `subject` (one aggregate) after `position`, oldest first.
    pub async fn read_subject(
        &self,
        subject: &str,
        position: u64,
    ) -> Result<Vec<Entry>, AppendError> {
        self.read_subject_at_most(subject, position, usize::MAX)
            .await
    }

    /// [`Self::read_subject`] as the stream's leader holds it, for deciding a command. A
    /// direct get may be answered by any replica, one a little behind the leader included,
    /// whose log is then a prefix of the leader's: so the leader is asked where the subject
    /// ends (one request), and what the batch stopped short of is read again, from the
    /// leader if need be.
    pub async fn read_subject_current(
        &self,
        subject: &str,
        position: u64,
    ) -> Result<Vec<Entry>, AppendError> {
        use async_nats::jetstream::stream::LastRawMessageErrorKind;
        let unavailable = |e: &dyn std::fmt::Display| AppendError::Unavailable(e.to_string());
        let mut entries = self.read_subject(subject, position).await?;
        let stream = self
            .context()
            .get_stream_no_info(EVENTS_STREAM)
            .await
            .map_err(|e| unavailable(&e))?;
        let last = match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => message.sequence,
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => 0,
            Err(err) => return Err(unavailable(&err)),
        };
        let mut have = entries.last().map_or(position, Entry::position);
        // A replica behind the leader answered. It is usually behind by milliseconds: one more
        // batched read, then what is still missing from the leader, one event at a time.
        if have < last {
            tracing::debug!(subject, have, last, "a replica behind the leader answered");
            let more = self.read_subject(subject, have).await?;
            have = more.last().map_or(have, Entry::position);
            entries.extend(more);
        }
        while have < last {
            let message = stream
                .get_first_raw_message_by_subject(subject, have + 1)
                .await
                .map_err(|e| unavailable(&e))?;
            have = message.sequence;
            entries.push(Entry::from_stream_message(&message));
        }
        Ok(entries)
    }

    /// The messages stored on `subject` after `position`, oldest first, reading no further
    /// batch once `at_most` are read (it may return a batch's worth more; a page reader
    /// truncates).
    pub async fn read_subject_at_most(
        &self,
        subject: &str,
        position: u64,
        at_most: usize,
    ) -> Result<Vec<Entry>, AppendError> {
        let mut entries = Vec::new();
        let mut from = position + 1;
        loop {
            let (batch, end) = self.read_batch(subject, from).await?;
            let read = batch.len();
            if let Some(last) = batch.last() {
                from = last.position() + 1;
            }
            entries.extend(batch);
            match end {
                BatchEnd::EndOfBatch { pending }
                    if pending > 0 && read > 0 && entries.len() < at_most =>
                {
                    continue;
                }
                _ => return Ok(entries),
            }
        }
    }

    /// One batch (at most [`DIRECT_GET_BATCH`] messages) of those stored on `filter` (a
    /// subject, wildcards allowed) after `position`, oldest first; empty when there are none.
    /// For a reader that walks a long stretch of the log a batch at a time, holding one
    /// batch in memory rather than the whole stretch.
    pub async fn read_filter_batch(
        &self,
        filter: &str,
        position: u64,
    ) -> Result<Vec<Entry>, AppendError> {
        Ok(self.read_batch(filter, position + 1).await?.0)
    }

    /// One batch of the messages stored on `filter` after `position`, as stored (headers
    /// and body untouched): what a backup of the log copies.
    pub async fn read_raw_batch(
        &self,
        filter: &str,
        position: u64,
    ) -> Result<Vec<StreamMessage>, AppendError> {
        Ok(self.read_stored_batch(filter, position + 1).await?.0)
    }

    async fn read_batch(
        &self,
        subject: &str,
        from: u64,
    ) -> Result<(Vec<Entry>, BatchEnd), AppendError> {
        let (stored, end) = self.read_stored_batch(subject, from).await?;
        Ok((stored.iter().map(Entry::from_stream_message).collect(), end))
    }

    async fn read_stored_batch(
        &self,
        subject: &str,
        from: u64,
    ) -> Result<(Vec<StreamMessage>, BatchEnd), AppendError> {
        let unavailable = |e: &dyn std::fmt::Display| AppendError::Unavailable(e.to_string());
        let client = self.context().client();
        let inbox = client.new_inbox();
        let mut answers = client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unavailable(&e))?;
        let request = serde_json::to_vec(&BatchRequest {
            seq: from,
            next_by_subj: subject,
            batch: DIRECT_GET_BATCH,
        })
        .map_err(|e| AppendError::Refused(e.to_string()))?;
        client
            .publish_with_reply(direct_get_subject(EVENTS_STREAM), inbox, request.into())
            .await
            .map_err(|e| unavailable(&e))?;
        self.count_direct_get();
        let mut entries = Vec::new();
        loop {
            let message = tokio::time::timeout(self.ack_timeout(), answers.next())
                .await
                .map_err(|_| AppendError::Unavailable("no answer to a direct get in time".into()))?
                .ok_or_else(|| {
                    AppendError::Unavailable("the direct get subscription ended".into())
                })?;
            match message.status.map(|s| s.as_u16()) {
                None => {
                    let stored = StreamMessage::try_from(message)
                        .map_err(|e| AppendError::Refused(format!("direct get answer: {e}")))?;
                    entries.push(stored);
                }
                Some(404) => return Ok((entries, BatchEnd::NotFound)),
                Some(204) => {
                    let pending = message
                        .headers
                        .as_ref()
                        .and_then(|h| h.get(h::NUM_PENDING))
                        .and_then(|v| v.as_str().parse().ok())
                        .unwrap_or(0);
                    return Ok((entries, BatchEnd::EndOfBatch { pending }));
                }
                Some(503) => return Err(AppendError::Unavailable("no responders".into())),
                Some(code) => {
                    return Err(AppendError::Refused(format!(
                        "direct get answered {code}: {}",
                        message.description.unwrap_or_default()
                    )));
                }
            }
        }
    }

    /// The message at `position`, if the log holds one there, as the stream's leader holds
    /// it (a replica behind it could answer that an acknowledged position is empty).
    pub async fn read_at(&self, position: u64) -> Result<Option<Entry>, AppendError> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        let stream = self
            .context()
            .get_stream_no_info(EVENTS_STREAM)
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        match stream.get_raw_message(position).await {
            Ok(message) => Ok(Some(Entry::from_stream_message(&message))),
            Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(err) => Err(AppendError::Unavailable(err.to_string())),
        }
    }

    /// The position of the last event in the log (0: empty).
    pub async fn last_position(&self) -> Result<u64, AppendError> {
        let stream = self
            .context()
            .get_stream(EVENTS_STREAM)
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        Ok(stream.cached_info().state.last_sequence)
    }

    /// The position of the first message the log stored at or after `time`; `None` when it
    /// stored none since.
    pub async fn first_position_at(
        &self,
        time: jiff::Timestamp,
    ) -> Result<Option<u64>, AppendError> {
        let request = serde_json::to_vec(&serde_json::json!({ "start_time": time.to_string() }))
            .map_err(|e| AppendError::Refused(e.to_string()))?;
        self.count_direct_get();
        let answer = self
            .context()
            .client()
            .request(direct_get_subject(EVENTS_STREAM), request.into())
            .await
            .map_err(|e| AppendError::Unavailable(e.to_string()))?;
        match answer.status.map(|s| s.as_u16()) {
            None => answer
                .headers
                .as_ref()
                .and_then(|h| h.get(h::SEQUENCE))
                .and_then(|v| v.as_str().parse().ok())
                .map(Some)
                .ok_or_else(|| {
                    AppendError::Refused("a direct get answer without its sequence".into())
                }),
            Some(404) => Ok(None),
            Some(code) => Err(AppendError::Refused(format!(
                "direct get answered {code}: {}",
                answer.description.unwrap_or_default()
            ))),
        }
    }
}
