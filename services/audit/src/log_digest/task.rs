//! The task that keeps the digest up to date, and the digest recomputed from the stream.
//!
//! The task reads `GOV_EVENTS` with an ordered pull consumer (ephemeral, unacknowledged,
//! recreated by the client on a gap or lost heartbeats) from the stored head on, folds every
//! message delivered, and stores a batch when no more messages are waiting or after
//! [`MAX_BATCH`]. Appenders never wait for it: it trails the log by the time a batch takes.
//!
//! Nothing it logs carries a header value, a payload or a subject (they may carry personal
//! data): positions and error texts only.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use hub_log::names::EVENTS_STREAM;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::{Fold, Folded, LogDigest, LogHead, Stored};
use crate::AuditError;

/// Most messages folded into one stored batch.
pub const MAX_BATCH: usize = 1000;

/// Why a consume run ends when its consumer delivers what is folded already.
const STARTED_OVER: &str = "the consumer started over from the log's beginning";

/// How long [`compute`] waits for the next message before giving up.
const COMPUTE_IDLE: Duration = Duration::from_secs(30);

/// Releases the store's claim when the task ends, however it ends.
struct Claim(Arc<AtomicBool>);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

enum Stop {
    Shutdown,
    /// The store cannot follow this log; folding more would make a false digest.
    Halt(String),
}

impl LogDigest {
    /// Starts the task that folds every message of `GOV_EVENTS` past the stored head into
    /// this store, until `shutdown` is cancelled. The receiver sees the head once each batch
    /// is durable. Consumer and store failures are logged and waited out: the consumer is
    /// recreated from the stored head. A log that ends below the stored head, or that is
    /// not the log the store was built from, halts the task (logged; nothing more folded).
    ///
    /// `Err` when a task already writes this store (two writers could move the head back).
    pub fn start(
        &self,
        js: jetstream::Context,
        shutdown: CancellationToken,
    ) -> Result<(watch::Receiver<LogHead>, JoinHandle<()>), AuditError> {
        if !self.claim() {
            return Err(AuditError::Unavailable(
                "the log digest task is already running".to_owned(),
            ));
        }
        let claim = Claim(self.running.clone());
        let store = self.clone();
        let task = tokio::spawn(async move {
            let _claim = claim;
            store.run(js, shutdown).await;
        });
        Ok((self.subscribe(), task))
    }

    async fn run(self, js: jetstream::Context, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let before = self.head().position;
            let reason = match self.consume(&js, &shutdown).await {
                Ok(Stop::Shutdown) => return,
                Ok(Stop::Halt(reason)) => {
                    error!(position = before, reason = %reason, "log digest halted; it folds nothing more");
                    self.halted.send_replace(Some(format!(
                        "the event log's digest halted at position {before} and folds nothing \
                         more: {reason}"
                    )));
                    shutdown.cancelled().await;
                    return;
                }
                Err(reason) => reason,
            };
            if self.head().position > before {
                backoff = Duration::from_millis(50);
            }
            warn!(position = self.head().position, reason = %reason, ?backoff, "log digest interrupted; going on from the stored head");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Folds from the stored head until shutdown, a halt, or a failure (`Err`: its text).
    async fn consume(
        &self,
        js: &jetstream::Context,
        shutdown: &CancellationToken,
    ) -> Result<Stop, String> {
        let head = self.blocking(|store| store.stored_head()).await?;
        let stream = js
            .get_stream(EVENTS_STREAM)
            .await
            .map_err(|e| format!("get stream: {e}"))?;
        let info = stream.cached_info();
        if info.state.last_sequence < head.position {
            return Ok(Stop::Halt(format!(
                "the log ends at position {} but the digest covers up to {}: the log was reset \
                 or an older backup restored",
                info.state.last_sequence, head.position
            )));
        }
        let identity = info.created.unix_timestamp_nanos().to_string();
        match self.blocking(|store| store.stream_identity()).await? {
            Some(recorded) if recorded == identity => {}
            Some(_) => {
                return Ok(Stop::Halt(
                    "the log was created again under the same name since the digest was begun: \
                     its entries belong to another log"
                        .to_owned(),
                ));
            }
            None => {
                self.blocking(move |store| store.set_stream_identity(&identity))
                    .await?;
            }
        }
        let mut messages = crate::follow(&stream, "log digest", head.position).await?;
        info!(position = head.position, "log digest consuming");
        let mut fold = Fold { head };
        loop {
            let Some((batch, failure)) =
                crate::next_run(&mut messages, MAX_BATCH, shutdown).await?
            else {
                return Ok(Stop::Shutdown);
            };
            let entries = fold_batch(&mut fold, &batch)?;
            if !entries.is_empty() {
                self.blocking(move |store| store.write(&entries)).await?;
            }
            if let Some(failure) = failure {
                return Err(failure);
            }
        }
    }

    /// Runs `f` on the store off the async threads; its error as text.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LogDigest) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, String> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| format!("store task: {e}"))?
            .map_err(|e| e.to_string())
    }
}

/// Folds the delivered `batch`; the entries to store, in order.
fn fold_batch(
    fold: &mut Fold,
    batch: &[jetstream::Message],
) -> Result<Vec<super::DigestEntry>, String> {
    let mut entries = Vec::with_capacity(batch.len());
    for message in batch {
        let stored = Stored::from_message(message).map_err(|e| e.to_string())?;
        let before = fold.head.position;
        match fold.fold(&stored) {
            // The ordered consumer, recreated by the client before it delivered anything,
            // starts over from the log's first message (async-nats 0.51). Reading the whole
            // log again only to leave it out would be slow: the consumer is made afresh from
            // the stored head instead.
            Folded::Repeated => {
                debug!(
                    position = stored.position,
                    head = before,
                    "log digest: message already folded; the consumer started over"
                );
                return Err(STARTED_OVER.to_owned());
            }
            Folded::Entry { entry, expected } => {
                if !expected {
                    // The stream never deletes: a gap is not expected. The leaf carries its
                    // position, so the digest still says exactly which messages it covers.
                    warn!(
                        position = entry.position,
                        after = before,
                        "log digest: positions are missing from the log; folding on"
                    );
                }
                entries.push(entry);
            }
        }
    }
    Ok(entries)
}

/// The digest of `GOV_EVENTS` up to position `up_to`, recomputed from the stream alone (for
/// checks and tests). `Err` when the log ends before `up_to`. Messages missing from the log
/// (it never deletes, so there should be none) are skipped as the task skips them; if
/// `up_to` itself is missing, the head returned stands at the last position before it.
pub async fn compute(js: &jetstream::Context, up_to: u64) -> Result<LogHead, AuditError> {
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        AuditError::Unavailable(format!("log digest compute: {what}: {e}"))
    };
    let mut fold = Fold {
        head: LogHead::default(),
    };
    if up_to == 0 {
        return Ok(fold.head);
    }
    let stream = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| unavailable("get stream", &e))?;
    let last = stream.cached_info().state.last_sequence;
    if last < up_to {
        return Err(AuditError::Unavailable(format!(
            "log digest compute: the log ends at position {last}, before {up_to}"
        )));
    }
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            description: Some("log digest check".to_owned()),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable("create consumer", &e))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|e| unavailable("consume", &e))?;
    while fold.head.position < up_to {
        let message = tokio::time::timeout(COMPUTE_IDLE, messages.next())
            .await
            .map_err(|_| {
                AuditError::Unavailable(format!(
                    "log digest compute: nothing delivered after position {} for {COMPUTE_IDLE:?}",
                    fold.head.position
                ))
            })?
            .ok_or_else(|| unavailable("consumer", &"ended"))?
            .map_err(|e| unavailable("consumer", &e))?;
        let stored = Stored::from_message(&message)?;
        if stored.position > up_to {
            break;
        }
        fold.fold(&stored);
    }
    Ok(fold.head)
}
