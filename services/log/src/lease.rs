//! Duties that run once however many hub instances share a log: deadline supervision and the
//! feed publisher's sending. Each duty has a lease, a key in the JetStream key-value bucket
//! [`LEASE_BUCKET`] whose value is the holder's instance name; the instance that holds it does
//! the duty, the others stand by.
//!
//! - Taking it: `create` succeeds only when the key holds nothing (first start, released, or
//!   aged out). An instance that finds its own name there (it restarted) takes it back.
//! - Keeping it: the holder rewrites the key with the revision it last wrote every third of
//!   the lease time. The bucket's `max_age` is the lease time, so the server itself forgets a
//!   holder that stopped renewing (a crash, a partition) and another instance takes over at
//!   most a lease time and a poll later: a dead instance is not missed.
//! - Letting it go: a holder that cannot renew stops acting three quarters of a lease time
//!   after its last successful renewal began, before the server lets anyone else in; one that
//!   stops cleanly deletes the key so another takes over at once.
//!
//! Two instances act at once only if the holder stalls for more than a quarter of the lease
//! time between a renewal and its next act, and even then acting twice is harmless:
//! supervision's commands carry request ids derived from what fell due, and feed messages
//! carry the event id as `Nats-Msg-Id`. The lease spares the repeated work and keeps the
//! feeds' purges in order; it is not the only guard.
//!
//! [`MARK_BUCKET`] keeps what a duty's holder has finished (no expiry), so whoever holds the
//! lease next starts after it: the feed publisher's last sent outbox entry.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The bucket of duty leases (stream `KV_hub_leases`).
pub const LEASE_BUCKET: &str = "hub_leases";
/// The bucket of what duties have finished (stream `KV_hub_marks`).
pub const MARK_BUCKET: &str = "hub_marks";

/// Deadline supervision and grant expiry.
pub const SUPERVISION: &str = "supervision";
/// Sending the feed publisher's outbox to the departments' feeds.
pub const FEEDS: &str = "feeds";
/// Every duty, for status.
pub const DUTIES: &[&str] = &[SUPERVISION, FEEDS];

/// Creates the lease bucket, or sets its lease time (the same on every instance).
pub async fn lease_bucket(
    js: &jetstream::Context,
    ttl: Duration,
    replicas: usize,
) -> Result<kv::Store, String> {
    js.create_or_update_key_value(kv::Config {
        bucket: LEASE_BUCKET.to_owned(),
        description: "which hub instance does each once-per-hub duty".to_owned(),
        history: 1,
        max_age: ttl,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("bucket {LEASE_BUCKET}: {e}"))
}

/// Creates the bucket of marks, or opens it.
pub async fn mark_bucket(js: &jetstream::Context, replicas: usize) -> Result<kv::Store, String> {
    js.create_or_update_key_value(kv::Config {
        bucket: MARK_BUCKET.to_owned(),
        description: "how far each once-per-hub duty has got".to_owned(),
        history: 1,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("bucket {MARK_BUCKET}: {e}"))
}

/// The instance that holds `duty` now, if any.
pub async fn holder(bucket: &kv::Store, duty: &str) -> Result<Option<String>, String> {
    let entry = bucket
        .entry(duty)
        .await
        .map_err(|e| format!("lease {duty}: {e}"))?;
    Ok(entry
        .filter(|e| e.operation == kv::Operation::Put)
        .map(|e| String::from_utf8_lossy(&e.value).into_owned()))
}

/// The mark under `key` (empty when none).
pub async fn mark(bucket: &kv::Store, key: &str) -> Result<Vec<u8>, String> {
    let entry = bucket
        .entry(key)
        .await
        .map_err(|e| format!("mark {key}: {e}"))?;
    Ok(entry
        .filter(|e| e.operation == kv::Operation::Put)
        .map(|e| e.value.to_vec())
        .unwrap_or_default())
}

/// Moves the mark under `key` forward to `value`; a mark already at or past it stays.
pub async fn advance_mark(bucket: &kv::Store, key: &str, value: &[u8]) -> Result<(), String> {
    let entry = bucket
        .entry(key)
        .await
        .map_err(|e| format!("mark {key}: {e}"))?;
    let value = Bytes::copy_from_slice(value);
    let written = match entry {
        Some(e) if e.operation == kv::Operation::Put && e.value >= value => return Ok(()),
        Some(e) => bucket.update(key, value, e.revision).await.map(|_| ()),
        None => bucket.update(key, value, 0).await.map(|_| ()),
    };
    written.map_err(|e| format!("mark {key}: {e}"))
}

/// Holds the lease of `duty` for `instance` whenever it can, until `stop`; the receiver says
/// whether this instance holds it now. On `stop` a held lease is let go.
pub fn hold(
    bucket: kv::Store,
    duty: &'static str,
    instance: String,
    ttl: Duration,
    stop: CancellationToken,
) -> (watch::Receiver<bool>, tokio::task::JoinHandle<()>) {
    let (held, receiver) = watch::channel(false);
    let task = tokio::spawn(run(bucket, duty, instance, ttl, held, stop));
    (receiver, task)
}

/// What one attempt to take or keep the lease came to.
enum Outcome {
    /// Held, written at this revision.
    Held(u64),
    /// Another instance holds it.
    Other,
}

async fn run(
    bucket: kv::Store,
    duty: &'static str,
    instance: String,
    ttl: Duration,
    held: watch::Sender<bool>,
    stop: CancellationToken,
) {
    // Held at this revision, acted on until `valid_until`.
    let mut revision: Option<u64> = None;
    let mut valid_until = Instant::now();
    loop {
        let started = Instant::now();
        // An attempt never outlives the time the lease is known to be ours.
        let limit = match revision {
            Some(_) => valid_until.saturating_duration_since(started),
            None => ttl / 2,
        };
        let attempt = tokio::time::timeout(limit, async {
            match revision {
                Some(rev) => renew(&bucket, duty, &instance, rev).await,
                None => acquire(&bucket, duty, &instance).await,
            }
        });
        let outcome = tokio::select! {
            _ = stop.cancelled() => break,
            outcome = attempt => outcome.unwrap_or_else(|_| Err("no answer in time".to_owned())),
        };
        match outcome {
            Ok(Outcome::Held(rev)) => {
                if revision.is_none() {
                    info!(duty, %instance, "this instance holds the lease and does the duty");
                }
                revision = Some(rev);
                // The server keeps the renewal for `ttl` from when it stored it, which is
                // after `started`: stop a quarter of it earlier, in case clocks run apart.
                valid_until = started + ttl * 3 / 4;
                held.send_if_modified(|h| !std::mem::replace(h, true));
            }
            Ok(Outcome::Other) => {
                if revision.take().is_some() {
                    warn!(duty, %instance, "another instance took the lease over");
                }
                held.send_if_modified(|h| std::mem::replace(h, false));
            }
            Err(reason) => {
                if revision.is_some() && Instant::now() >= valid_until {
                    warn!(duty, %instance, reason = %reason, "the lease could not be renewed in time; this instance stops doing the duty");
                    revision = None;
                    held.send_if_modified(|h| std::mem::replace(h, false));
                } else {
                    warn!(duty, %instance, reason = %reason, "lease attempt failed; trying again");
                }
            }
        }
        let pause = match revision {
            Some(_) => (ttl / 3).min(valid_until.saturating_duration_since(Instant::now())),
            None => ttl / 4,
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(pause) => {}
        }
    }
    held.send_if_modified(|h| std::mem::replace(h, false));
    if let Some(rev) = revision {
        // Let another instance take over now rather than when the lease ages out.
        match bucket.delete_expect_revision(duty, Some(rev)).await {
            Ok(()) => info!(duty, %instance, "lease let go"),
            Err(err) => {
                warn!(duty, %instance, error = %err, "could not let the lease go; it ages out")
            }
        }
    }
}

async fn acquire(bucket: &kv::Store, duty: &str, instance: &str) -> Result<Outcome, String> {
    match bucket
        .create(duty, Bytes::copy_from_slice(instance.as_bytes()))
        .await
    {
        Ok(rev) => Ok(Outcome::Held(rev)),
        Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
            let entry = bucket
                .entry(duty)
                .await
                .map_err(|e| format!("lease {duty}: {e}"))?;
            match entry {
                // Its own, from before a restart: nobody else can have taken it since.
                Some(e) if e.operation == kv::Operation::Put && e.value == instance.as_bytes() => {
                    renew(bucket, duty, instance, e.revision).await
                }
                _ => Ok(Outcome::Other),
            }
        }
        Err(err) => Err(format!("lease {duty}: {err}")),
    }
}

async fn renew(
    bucket: &kv::Store,
    duty: &str,
    instance: &str,
    revision: u64,
) -> Result<Outcome, String> {
    match bucket
        .update(duty, Bytes::copy_from_slice(instance.as_bytes()), revision)
        .await
    {
        Ok(rev) => Ok(Outcome::Held(rev)),
        Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(Outcome::Other),
        Err(err) => Err(format!("lease {duty}: {err}")),
    }
}
