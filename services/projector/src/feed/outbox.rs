//! The feed publisher's outbox: messages decided with the checkpoint, sent after it.
//!
//! Entries live under `o/<position, 20 digits>/<department>` (a purge under
//! `o/<position>/~purge/<department>`, after that position's messages), so a scan returns them
//! in log order. [`drain`] sends them in that order, waits for every acknowledgement of a
//! round, and only then forgets them: after a crash the unacknowledged ones are sent again
//! with the same `Nats-Msg-Id`.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::model::ReadModel;

/// Key prefix of the outbox.
pub const OUTBOX_PREFIX: &[u8] = b"o/";

/// Most entries sent in one round.
const ROUND: usize = 512;

/// One message to send, or a purge to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outgoing {
    Publish {
        stream: String,
        subject: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Removes every message on `subject` (a wildcard) from `stream`.
    Purge { stream: String, subject: String },
}

impl Outgoing {
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings and bytes cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

pub fn outbox_key(position: u64, suffix: &str) -> Vec<u8> {
    format!("o/{position:020}/{suffix}").into_bytes()
}

/// The log position an outbox key was written for.
fn position_of(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key.get(2..22)?).ok()?.parse().ok()
}

/// Sends the outbox of `model` until `shutdown`, and reports through `published` the
/// position up to which every feed message has been acknowledged by its stream.
pub async fn drain(
    js: jetstream::Context,
    model: ReadModel,
    published: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let mut changes = model.subscribe();
    let mut backoff = Duration::from_millis(50);
    loop {
        match round(&js, &model).await {
            Ok(Some(pending_from)) => {
                published.send_if_modified(|p| {
                    let moved = pending_from.saturating_sub(1) > *p;
                    *p = (*p).max(pending_from.saturating_sub(1));
                    moved
                });
                backoff = Duration::from_millis(50);
                continue; // more to send
            }
            Ok(None) => {
                let at = model.state().position;
                published.send_if_modified(|p| {
                    let moved = at > *p;
                    *p = (*p).max(at);
                    moved
                });
                backoff = Duration::from_millis(50);
                // Anything new may have landed while this round ran; look once more first.
                if changes.has_changed().unwrap_or(false) {
                    changes.borrow_and_update();
                    continue;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            Err(reason) => {
                warn!(reason = %reason, ?backoff, "feed publisher: sending failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Sends one round of the outbox. `Ok(None)`: it was empty; `Ok(Some(p))`: entries were sent
/// and forgotten, and entries from position `p` on may remain.
async fn round(js: &jetstream::Context, model: &ReadModel) -> Result<Option<u64>, String> {
    let store = model.store();
    let entries = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.scan(OUTBOX_PREFIX, None, ROUND))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    if entries.is_empty() {
        return Ok(None);
    }
    let mut acks = Vec::new();
    let mut sent = Vec::with_capacity(entries.len());
    let mut next = 0;
    for (key, value) in &entries {
        match Outgoing::decode(value) {
            Some(Outgoing::Publish {
                subject,
                headers,
                body,
                ..
            }) => {
                let mut map = HeaderMap::new();
                for (name, value) in &headers {
                    map.insert(name.as_str(), value.as_str());
                }
                let ack = js
                    .publish_with_headers(subject, map, body.into())
                    .await
                    .map_err(|e| format!("publish: {e}"))?;
                acks.push(ack);
            }
            Some(Outgoing::Purge { stream, subject }) => {
                // Everything sent before the purge is stored first, so the purge covers it.
                for ack in acks.drain(..) {
                    ack.await.map_err(|e| format!("feed ack: {e}"))?;
                }
                let stream = js
                    .get_stream(&stream)
                    .await
                    .map_err(|e| format!("purge {stream}: {e}"))?;
                let purged = stream
                    .purge()
                    .filter(&subject)
                    .await
                    .map_err(|e| format!("purge {subject}: {e}"))?;
                debug!(subject, purged = purged.purged, "feed purged");
            }
            // Written by this code, so unreadable only if corrupted: not worth halting feeds.
            None => warn!("feed publisher: an unreadable outbox entry is dropped"),
        }
        sent.push(key.clone());
        next = position_of(key).unwrap_or(next);
    }
    for ack in acks {
        ack.await.map_err(|e| format!("feed ack: {e}"))?;
    }
    tokio::task::spawn_blocking(move || {
        store.forget(sent)?;
        store.flush()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    Ok(Some(next))
}
