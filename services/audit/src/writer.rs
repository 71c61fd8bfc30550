//! The writer of one hub instance's audit chain: one task, which gathers every record waiting
//! into one batch, appends it expecting the chain's last subject sequence, and answers each
//! record's caller once the batch is stored. Every K records, every T seconds (when anything
//! moved), on request and at shutdown it appends a signed checkpoint to the chain.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use hub_api::ApiError;
use hub_api::v1::{
    AuditBatch, AuditRecord, ChainHead, Checkpoint, HistoryClaim, LogDigestHead, SignedCheckpoint,
};
use hub_log::names::{AUDIT_STREAM, AUDIT_SUBJECTS, audit_subject};
use prost::Message;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;
use tracing::{error, info};

use crate::chain::{digest, record_digests};
use crate::signing::CheckpointSigner;

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

/// A record, who waits for it, and the trace context of the request that asked for it.
type Waiting = (
    AuditRecord,
    oneshot::Sender<Result<(), AuditError>>,
    hub_telemetry::trace::Context,
);

/// What the writer is asked to do.
// Nearly every job is a record: boxing it would cost an allocation each for nothing.
#[allow(clippy::large_enum_variant)]
enum Job {
    Record(Waiting),
    Checkpoint(
        oneshot::Sender<Result<MadeCheckpoint, AuditError>>,
        Option<HistoryExport>,
    ),
}

/// What a history export's checkpoint signs instead of the digest's live head: the head the
/// export's proof folds to, and the aggregate's positions up to it.
#[derive(Debug, Clone)]
pub struct HistoryExport {
    pub events: LogDigestHead,
    pub history: HistoryClaim,
}

/// Where the event log's chained digest stands now (read when a checkpoint is made).
pub type LogHeadSource = Box<dyn Fn() -> LogDigestHead + Send + Sync>;

/// When and with what key checkpoints are made.
pub struct Checkpoints {
    pub signer: CheckpointSigner,
    /// A checkpoint after this many records (at least 1).
    pub every_records: u64,
    /// A checkpoint this often when anything moved since the last one.
    pub every: Duration,
    pub log_head: LogHeadSource,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("signer", &self.signer)
            .field("every_records", &self.every_records)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// A checkpoint as appended: what it says, signed, and its batch's stream sequence.
#[derive(Debug, Clone)]
pub struct MadeCheckpoint {
    pub checkpoint: Checkpoint,
    pub signed: SignedCheckpoint,
    pub sequence: u64,
}

/// A handle on this instance's audit chain; clones share the one writer.
#[derive(Debug, Clone)]
pub struct Audit {
    tx: mpsc::Sender<Job>,
}

/// Where the chain stands: its last batch's number and digest, and that batch's stream
/// sequence (what the next append expects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Tail {
    number: u64,
    digest: Vec<u8>,
    sequence: u64,
    /// Whether that batch is a checkpoint.
    checkpoint: bool,
    /// The digests of its records, which the next batch names.
    records: Vec<Vec<u8>>,
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
                    checkpoint: batch.checkpoint.is_some(),
                    records: record_digests(&batch),
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
        checkpoints: Checkpoints,
    ) -> Result<(Self, JoinHandle<()>), AuditError> {
        let subject = audit_subject(instance);
        let tail = Tail::read(&js, &subject).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut writer = Writer {
            js,
            instance: instance.to_owned(),
            subject,
            tail,
            records_since: 0,
            log_position: None,
            retry_at: None,
            checkpoints,
        };
        // Records stored after the chain's last checkpoint (by a writer that stopped without
        // its shutdown checkpoint) are closed off first, so no run of records between two
        // checkpoints is ever longer than one writer's bound.
        if writer.tail.number > 0 && !writer.tail.checkpoint {
            writer.checkpoint("start").await?;
        }
        writer.count_length();
        Ok((Self { tx }, tokio::spawn(writer.run(rx))))
    }

    /// Appends `record`; `Ok` once it is stored. Its batch is traced under the current span.
    pub async fn record(&self, record: AuditRecord) -> Result<(), AuditError> {
        self.record_in(record, hub_telemetry::trace::current())
            .await
    }

    /// Appends `record`, traced under `context` (the event a disclosure is about, say).
    pub async fn record_in(
        &self,
        record: AuditRecord,
        context: hub_telemetry::trace::Context,
    ) -> Result<(), AuditError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Record((record, tx, context)))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Appends a checkpoint now, after every record asked for before it, for an export.
    pub async fn checkpoint(&self) -> Result<MadeCheckpoint, AuditError> {
        self.checkpoint_with(None).await
    }

    /// Appends the checkpoint of a history export now: it signs `export`'s digest head and
    /// claim.
    pub async fn checkpoint_history(
        &self,
        export: HistoryExport,
    ) -> Result<MadeCheckpoint, AuditError> {
        self.checkpoint_with(Some(export)).await
    }

    async fn checkpoint_with(
        &self,
        export: Option<HistoryExport>,
    ) -> Result<MadeCheckpoint, AuditError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Job::Checkpoint(tx, export))
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn stopped() -> AuditError {
    AuditError::Unavailable("the audit writer has stopped".to_owned())
}

/// Whether a checkpoint is due: after `every_records` records, or at a tick when anything
/// moved since the last one.
fn due(records_since: u64, log_moved: bool, tick: bool, every_records: u64) -> bool {
    records_since >= every_records.max(1) || (tick && (records_since > 0 || log_moved))
}

/// Most records a chain holds after a checkpoint before the next one: `every_records` and one
/// batch more. A writer that cannot make a checkpoint by then stores no more records (it
/// answers UNAVAILABLE), so a verifier finding a longer run knows a checkpoint was dropped.
pub fn most_records_between_checkpoints(every_records: u64) -> u64 {
    every_records.max(1) + MAX_BATCH as u64
}

/// How long after a failed checkpoint the next one is tried (unless the bound forces it).
const CHECKPOINT_RETRY: Duration = Duration::from_secs(1);

struct Writer {
    js: jetstream::Context,
    instance: String,
    subject: String,
    tail: Tail,
    /// Records appended since the last checkpoint.
    records_since: u64,
    /// The event log position the last checkpoint signed (`None`: none made by this writer).
    log_position: Option<u64>,
    /// After a failed checkpoint: no new try before then unless the bound forces one.
    retry_at: Option<tokio::time::Instant>,
    checkpoints: Checkpoints,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut ticker = tokio::time::interval(self.checkpoints.every.max(Duration::from_secs(1)));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once.
        ticker.tick().await;
        loop {
            let job = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => job,
                    None => break,
                },
                _ = ticker.tick() => {
                    self.checkpoint_if_due(true, "interval").await;
                    continue;
                }
            };
            let first = match job {
                Job::Record(first) => first,
                Job::Checkpoint(reply, export) => {
                    let _ = reply.send(self.checkpoint_for(export).await);
                    continue;
                }
            };
            let mut bytes = first.0.encoded_len();
            let mut records = vec![first.0];
            let mut replies = vec![first.1];
            let mut contexts = vec![first.2];
            // A checkpoint asked for among the records waiting is made after their batch.
            let mut asked = None;
            while records.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
                match rx.try_recv() {
                    Ok(Job::Record((record, reply, context))) => {
                        bytes += record.encoded_len();
                        records.push(record);
                        replies.push(reply);
                        contexts.push(context);
                    }
                    Ok(Job::Checkpoint(reply, export)) => {
                        asked = Some((reply, export));
                        break;
                    }
                    Err(_) => break,
                }
            }
            let count = records.len() as u64;
            let span = self.batch_span(&contexts);
            let outcome = async {
                self.make_room(count).await?;
                self.append_records(records).await.map(|_| ())
            }
            .instrument(span)
            .await;
            if outcome.is_ok() {
                self.records_since += count;
            }
            for reply in replies {
                // A caller that gave up no longer waits for its answer.
                let _ = reply.send(outcome.clone());
            }
            match asked {
                Some((reply, export)) => {
                    let _ = reply.send(self.checkpoint_for(export).await);
                }
                None => self.checkpoint_if_due(false, "records").await,
            }
        }
        self.checkpoint_if_due(true, "shutdown").await;
    }

    /// Makes a checkpoint first when `count` more records would pass the bound; `Err` when
    /// that fails, and the records are then not stored.
    async fn make_room(&mut self, count: u64) -> Result<(), AuditError> {
        let bound = most_records_between_checkpoints(self.checkpoints.every_records);
        if self.records_since + count <= bound {
            return Ok(());
        }
        self.checkpoint("records").await.map(|_| ()).map_err(|err| {
            AuditError::Unavailable(format!(
                "{} records since the last audit checkpoint and none can be made: {err}",
                self.records_since
            ))
        })
    }

    async fn checkpoint_if_due(&mut self, tick: bool, reason: &str) {
        if self
            .retry_at
            .is_some_and(|at| tokio::time::Instant::now() < at)
        {
            return;
        }
        let log_moved = self.log_position != Some((self.checkpoints.log_head)().position);
        if due(
            self.records_since,
            log_moved,
            tick,
            self.checkpoints.every_records,
        ) {
            // Logged where it fails; tried again after a pause, or when the bound forces it.
            let _ = self.checkpoint(reason).await;
        }
    }

    /// Signs the heads of every chain and of the event log's digest, and appends that to
    /// this chain.
    /// An export's checkpoint (a history export's, with its claim).
    async fn checkpoint_for(
        &mut self,
        export: Option<HistoryExport>,
    ) -> Result<MadeCheckpoint, AuditError> {
        self.checkpoint_as(crate::export::EXPORT_REASON, export)
            .await
    }

    async fn checkpoint(&mut self, reason: &str) -> Result<MadeCheckpoint, AuditError> {
        self.checkpoint_as(reason, None).await
    }

    async fn checkpoint_as(
        &mut self,
        reason: &str,
        export: Option<HistoryExport>,
    ) -> Result<MadeCheckpoint, AuditError> {
        let made = self.try_checkpoint(reason, export).await;
        match &made {
            Ok(_) => self.retry_at = None,
            Err(err) => {
                error!(instance = %self.instance, reason, error = %err, "audit checkpoint not made");
                self.retry_at = Some(tokio::time::Instant::now() + CHECKPOINT_RETRY);
            }
        }
        made
    }

    async fn try_checkpoint(
        &mut self,
        reason: &str,
        export: Option<HistoryExport>,
    ) -> Result<MadeCheckpoint, AuditError> {
        let mut chains = self.other_heads().await?;
        if self.tail.number > 0 {
            chains.push(ChainHead {
                instance: self.instance.clone(),
                number: self.tail.number,
                digest: self.tail.digest.clone(),
                sequence: self.tail.sequence,
                last_records: self.tail.records.clone(),
            });
        }
        chains.sort_by(|a, b| a.instance.cmp(&b.instance));
        let (events, history) = match export {
            Some(HistoryExport { events, history }) => (events, Some(history)),
            None => ((self.checkpoints.log_head)(), None),
        };
        let checkpoint = Checkpoint {
            time: Some(crate::now()),
            instance: self.instance.clone(),
            chains,
            events: Some(events.clone()),
            reason: reason.to_owned(),
            every_records: self.checkpoints.every_records.max(1),
            history,
        };
        let signed = self.checkpoints.signer.sign(&checkpoint);
        let sequence = self.append(Vec::new(), Some(signed.clone())).await?;
        self.records_since = 0;
        self.log_position = Some(events.position);
        info!(
            instance = %self.instance,
            batch = self.tail.number,
            sequence,
            events_position = events.position,
            reason,
            "audit checkpoint signed"
        );
        Ok(MadeCheckpoint {
            checkpoint,
            signed,
            sequence,
        })
    }

    /// The heads of the other instances' chains, as stored.
    async fn other_heads(&self) -> Result<Vec<ChainHead>, AuditError> {
        use futures::TryStreamExt as _;
        let unavailable = |e: &dyn std::fmt::Display| AuditError::Unavailable(e.to_string());
        let stream = self
            .js
            .get_stream(AUDIT_STREAM)
            .await
            .map_err(|e| unavailable(&e))?;
        let mut subjects = Vec::new();
        let mut info = stream
            .info_with_subjects(AUDIT_SUBJECTS)
            .await
            .map_err(|e| unavailable(&e))?;
        while let Some((subject, _count)) = info.try_next().await.map_err(|e| unavailable(&e))? {
            if subject != self.subject {
                subjects.push(subject);
            }
        }
        let mut heads = Vec::with_capacity(subjects.len());
        for subject in subjects {
            let message = stream
                .get_last_raw_message_by_subject(&subject)
                .await
                .map_err(|e| unavailable(&e))?;
            let batch = AuditBatch::decode(message.payload.as_ref()).map_err(|e| {
                AuditError::Unavailable(format!(
                    "the last batch on {subject} (sequence {}) cannot be read: {e}",
                    message.sequence
                ))
            })?;
            heads.push(ChainHead {
                last_records: record_digests(&batch),
                instance: batch.instance,
                number: batch.number,
                digest: digest(&message.payload),
                sequence: message.sequence,
            });
        }
        Ok(heads)
    }

    /// `hub_audit_chain_length`: the batches in this instance's chain.
    fn count_length(&self) {
        hub_telemetry::metrics().audit_chain_length.record(
            self.tail.number,
            &[hub_telemetry::metrics::label(
                "instance",
                self.instance.clone(),
            )],
        );
    }

    /// The producer span of a batch of records: a child of the request that asked, when one
    /// did; linked to each request when several did.
    fn batch_span(&self, contexts: &[hub_telemetry::trace::Context]) -> tracing::Span {
        let span = hub_telemetry::producer_span!("gov.audit", self.subject);
        match contexts {
            [one] => hub_telemetry::trace::continue_context(&span, one),
            many => {
                for context in many {
                    hub_telemetry::trace::link_context(&span, context);
                }
            }
        }
        span
    }

    async fn append_records(&mut self, records: Vec<AuditRecord>) -> Result<u64, AuditError> {
        self.append(records, None).await
    }

    /// Appends the next batch of the chain; its stream sequence once stored. After a failure
    /// the tail is read again, so the next append goes on from what is stored.
    async fn append(
        &mut self,
        records: Vec<AuditRecord>,
        checkpoint: Option<SignedCheckpoint>,
    ) -> Result<u64, AuditError> {
        let outcome = self.try_append(records, checkpoint).await;
        if let Err(err) = &outcome {
            error!(instance = %self.instance, error = %err, "audit batch not stored");
            // The append may have been stored after all, or another writer moved the chain
            // on: go on from what is stored.
            match Tail::read(&self.js, &self.subject).await {
                Ok(tail) => self.tail = tail,
                Err(err) => error!(error = %err, "audit chain's tail unreadable"),
            }
        }
        outcome
    }

    async fn try_append(
        &mut self,
        records: Vec<AuditRecord>,
        checkpoint: Option<SignedCheckpoint>,
    ) -> Result<u64, AuditError> {
        let unavailable = |e: &dyn std::fmt::Display| AuditError::Unavailable(e.to_string());
        let batch = AuditBatch {
            instance: self.instance.clone(),
            number: self.tail.number + 1,
            previous: self.tail.digest.clone(),
            records,
            checkpoint,
            previous_records: self.tail.records.clone(),
        };
        let body = batch.encode_to_vec();
        // No message id: the expected last subject sequence already keeps a batch from being
        // stored twice, and a duplicate id would be answered "stored" without storing it.
        let mut publish = PublishMessage::build()
            .payload(body.clone().into())
            .expected_last_subject_sequence(self.tail.sequence);
        if let Some(traceparent) = hub_telemetry::trace::traceparent(&tracing::Span::current()) {
            publish = publish.header(hub_telemetry::trace::TRACEPARENT, traceparent.as_str());
        }
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
            checkpoint: batch.checkpoint.is_some(),
            records: record_digests(&batch),
        };
        self.count_length();
        Ok(ack.sequence)
    }
}

#[cfg(test)]
mod tests {
    use super::due;

    #[test]
    fn a_checkpoint_is_due_every_k_records_or_at_a_tick_when_anything_moved() {
        assert!(due(100, false, false, 100));
        assert!(!due(99, true, false, 100), "the log alone waits for a tick");
        assert!(due(1, false, true, 100));
        assert!(due(0, true, true, 100));
        assert!(!due(0, false, true, 100), "nothing moved: no checkpoint");
        assert!(due(1, false, false, 0), "at least every record");
    }
}
