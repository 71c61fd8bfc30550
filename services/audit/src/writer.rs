//! The writer of one hub instance's audit chain: one task, which gathers every record waiting
//! into one batch, appends it expecting the chain's last subject sequence, and answers each
//! record's caller once the batch is stored.

use async_nats::jetstream::{self, message::PublishMessage};
use hub_api::ApiError;
use hub_api::v1::{AuditBatch, AuditRecord};
use hub_log::names::{AUDIT_STREAM, audit_subject};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::error;

use crate::chain::digest;

/// Most records in one append.
pub const MAX_BATCH: usize = 1024;

/// Most bytes of records in one append, well below NATS's default 1 MiB payload limit.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Records waiting for the writer; a reader beyond this waits for room.
const QUEUE: usize = 4 * MAX_BATCH;

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("the audit log cannot be written: {0}")]
    Unavailable(String),
}

impl From<AuditError> for ApiError {
    fn from(err: AuditError) -> Self {
        ApiError::Unavailable(err.to_string())
    }
}

type Waiting = (AuditRecord, oneshot::Sender<Result<(), AuditError>>);

/// A handle on this instance's audit chain; clones share the one writer.
#[derive(Debug, Clone)]
pub struct Audit {
    tx: mpsc::Sender<Waiting>,
}

/// Where the chain stands: its last batch's number and digest, and that batch's stream
/// sequence (what the next append expects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tail {
    number: u64,
    digest: Vec<u8>,
    sequence: u64,
}

impl Tail {
    /// The chain's last batch as stored, or an empty tail for a chain not begun.
    async fn read(js: &jetstream::Context, subject: &str) -> Result<Self, AuditError> {
        let unavailable = |e: &dyn std::fmt::Display| AuditError::Unavailable(e.to_string());
        let stream = js
            .get_stream(AUDIT_STREAM)
            .await
            .map_err(|e| unavailable(&e))?;
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(message) => {
                let batch = AuditBatch::decode(message.payload.as_ref()).map_err(|e| {
                    AuditError::Unavailable(format!(
                        "the chain's last batch (sequence {}) cannot be read: {e}",
                        message.sequence
                    ))
                })?;
                Ok(Self {
                    number: batch.number,
                    digest: digest(&message.payload),
                    sequence: message.sequence,
                })
            }
            Err(err)
                if err.kind() == jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                Ok(Self::default())
            }
            Err(err) => Err(unavailable(&err)),
        }
    }
}

impl Audit {
    /// Starts the writer of `instance`'s chain, which goes on from the chain's stored tail.
    /// It ends when every handle is dropped.
    pub async fn start(
        js: jetstream::Context,
        instance: &str,
    ) -> Result<(Self, JoinHandle<()>), AuditError> {
        let subject = audit_subject(instance);
        let tail = Tail::read(&js, &subject).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            js,
            instance: instance.to_owned(),
            subject,
            tail,
        };
        Ok((Self { tx }, tokio::spawn(writer.run(rx))))
    }

    /// Appends `record`; `Ok` once it is stored.
    pub async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        let stopped = || AuditError::Unavailable("the audit writer has stopped".to_owned());
        let (tx, rx) = oneshot::channel();
        self.tx.send((record, tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

struct Writer {
    js: jetstream::Context,
    instance: String,
    subject: String,
    tail: Tail,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Waiting>) {
        while let Some(first) = rx.recv().await {
            let mut bytes = first.0.encoded_len();
            let mut records = vec![first.0];
            let mut replies = vec![first.1];
            while records.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok((record, reply)) => {
                        bytes += record.encoded_len();
                        records.push(record);
                        replies.push(reply);
                    }
                    Err(_) => break,
                }
            }
            let outcome = self.append(records).await;
            if let Err(err) = &outcome {
                error!(instance = %self.instance, error = %err, "audit batch not stored");
                // The append may have been stored after all, or another writer moved the
                // chain on: go on from what is stored.
                match Tail::read(&self.js, &self.subject).await {
                    Ok(tail) => self.tail = tail,
                    Err(err) => error!(error = %err, "audit chain's tail unreadable"),
                }
            }
            for reply in replies {
                // A caller that gave up no longer waits for its answer.
                let _ = reply.send(outcome.clone());
            }
        }
    }

    async fn append(&mut self, records: Vec<AuditRecord>) -> Result<(), AuditError> {
        let unavailable = |e: &dyn std::fmt::Display| AuditError::Unavailable(e.to_string());
        let batch = AuditBatch {
            instance: self.instance.clone(),
            number: self.tail.number + 1,
            previous: self.tail.digest.clone(),
            records,
        };
        let body = batch.encode_to_vec();
        // No message id: the expected last subject sequence already keeps a batch from being
        // stored twice, and a duplicate id would be answered "stored" without storing it.
        let publish = PublishMessage::build()
            .payload(body.clone().into())
            .expected_last_subject_sequence(self.tail.sequence);
        let ack = self
            .js
            .send_publish(self.subject.clone(), publish)
            .await
            .map_err(|e| unavailable(&e))?
            .await
            .map_err(|e| unavailable(&e))?;
        if ack.duplicate {
            return Err(AuditError::Unavailable(
                "the audit batch was taken for a duplicate and not stored".to_owned(),
            ));
        }
        self.tail = Tail {
            number: batch.number,
            digest: digest(&body),
            sequence: ack.sequence,
        };
        Ok(())
    }
}
