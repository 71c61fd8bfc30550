//! Duties that run once however many hub instances share a log: deadline supervision and the
//! feed publisher's sending. Each duty has a lease, a key in the JetStream key-value bucket
//! [`LEASE_BUCKET`] whose value is the holder's instance name; the instance that holds it does
//! the duty, the others stand by. Every read of the bucket goes to its stream's leader.
//!
//! - Taking it: `create` succeeds only when the key holds nothing (first start, released, or
//!   aged out). An instance that finds its own name there (it restarted, or a renewal's
//!   answer was lost) takes it back. Only an instance fit for the duty (the read models it
//!   needs are live) takes or keeps it.
//! - Keeping it: the holder rewrites the key with the revision it last wrote every third of
//!   the lease time. The bucket's `max_age` is the lease time (the bucket's, whatever an
//!   instance is configured with), so the server itself forgets a holder that stopped
//!   renewing (a crash, a partition) and another instance takes over at most a lease time
//!   and a quarter of one (its poll) later: a dead instance is not missed.
//! - Letting it go: a holder that cannot renew stops acting three quarters of a lease time
//!   after its last successful renewal began, before the server lets anyone else in; one that
//!   becomes unfit stops acting at once and lets the key age out the same way; one that
//!   stops cleanly deletes the key once its duties' tasks have ended, so another takes over
//!   at once.
//!
//! Two instances act at once only if the holder stalls, in the middle of an act, for more
//! than a quarter of the lease time. Supervision's commands are harmless then (their request
//! ids derive from what fell due), and so are feed messages (the event id is their
//! `Nats-Msg-Id`); a feed purge is not, which is why the feeds' holder records how far it has
//! sent after every purge and never sends at or below what the last holder recorded.
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

/// Opens the lease bucket, or creates it with `ttl` as its lease time. The lease time is the
/// bucket's: an instance configured otherwise takes the bucket's and says so, since holders
/// that counted different times could overlap.
pub async fn lease_bucket(
    js: &jetstream::Context,
    ttl: Duration,
    replicas: usize,
) -> Result<(kv::Store, Duration), String> {
    let kept = |bucket: &kv::Store| -> Result<Duration, String> {
        let max_age = bucket.stream.cached_info().config.max_age;
        // No expiry (zero) would never let a dead holder's lease go; a tiny one would have
        // the holders renew in a loop.
        if max_age < MIN_LEASE {
            return Err(format!(
                "bucket {LEASE_BUCKET} has a lease time (max_age) of {max_age:?}, under \
                 {MIN_LEASE:?}: stop every instance and delete the bucket"
            ));
        }
        Ok(max_age)
    };
    if let Ok(bucket) = js.get_key_value(LEASE_BUCKET).await {
        let kept = kept(&bucket)?;
        replicate(js, &bucket, replicas).await;
        if kept != ttl {
            warn!(
                configured_ms = ttl.as_millis() as u64,
                bucket_ms = kept.as_millis() as u64,
                "lease_ms differs from the lease time of the bucket {LEASE_BUCKET}, set by the \
                 instance that created it; using the bucket's (to change it, stop every \
                 instance and delete the bucket)"
            );
        }
        return Ok((bucket, kept));
    }
    let created = js
        .create_key_value(kv::Config {
            bucket: LEASE_BUCKET.to_owned(),
            description: "which hub instance does each once-per-hub duty".to_owned(),
            history: 1,
            max_age: ttl,
            num_replicas: replicas,
            ..Default::default()
        })
        .await;
    match created {
        Ok(bucket) => Ok((bucket, ttl)),
        // Another instance created it meanwhile: its lease time stands, and the replicas
        // are this instance's as on the path above.
        Err(err) => match js.get_key_value(LEASE_BUCKET).await {
            Ok(bucket) => {
                let kept = kept(&bucket)?;
                replicate(js, &bucket, replicas).await;
                Ok((bucket, kept))
            }
            Err(_) => Err(format!("bucket {LEASE_BUCKET}: {err}")),
        },
    }
}

/// The shortest lease time a bucket may have (as `lease_ms` may be configured).
pub const MIN_LEASE: Duration = Duration::from_millis(500);

/// Sets the bucket's stream to `replicas` replicas if it has another number (a hub moved
/// from one server to a cluster); a failure is logged, the bucket works as it is.
async fn replicate(js: &jetstream::Context, bucket: &kv::Store, replicas: usize) {
    let mut config = bucket.stream.cached_info().config.clone();
    if config.num_replicas == replicas {
        return;
    }
    let had = config.num_replicas;
    config.num_replicas = replicas;
    match js.update_stream(config).await {
        Ok(_) => info!(had, replicas, "bucket {LEASE_BUCKET}: replicas changed"),
        Err(err) => {
            warn!(had, replicas, error = %err, "bucket {LEASE_BUCKET}: could not change its replicas")
        }
    }
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

/// The last entry under `key` as the bucket's stream leader holds it (a key-value read may be
/// answered by a replica behind the leader): its revision, and its value unless it is a
/// deletion. `None`: nothing under the key.
async fn current(bucket: &kv::Store, key: &str) -> Result<Option<(u64, Option<Bytes>)>, String> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let subject = format!("{}{key}", bucket.prefix);
    match bucket
        .stream
        .get_last_raw_message_by_subject(&subject)
        .await
    {
        Ok(message) => {
            let deleted = message
                .headers
                .get("KV-Operation")
                .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
            Ok(Some((
                message.sequence,
                (!deleted).then_some(message.payload),
            )))
        }
        Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(err) => Err(format!("{key}: {err}")),
    }
}

/// The instance that holds `duty` now, if any.
pub async fn holder(bucket: &kv::Store, duty: &str) -> Result<Option<String>, String> {
    Ok(current(bucket, duty)
        .await?
        .and_then(|(_, value)| value)
        .map(|value| String::from_utf8_lossy(&value).into_owned()))
}

/// The mark under `key` (empty when none).
pub async fn mark(bucket: &kv::Store, key: &str) -> Result<Vec<u8>, String> {
    Ok(current(bucket, key)
        .await?
        .and_then(|(_, value)| value)
        .map(|value| value.to_vec())
        .unwrap_or_default())
}

/// Moves the mark under `key` forward to `value`; a mark already at or past it stays.
pub async fn advance_mark(bucket: &kv::Store, key: &str, value: &[u8]) -> Result<(), String> {
    let value = Bytes::copy_from_slice(value);
    let revision = match current(bucket, key).await? {
        Some((_, Some(kept))) if kept >= value => return Ok(()),
        Some((revision, _)) => revision,
        None => 0,
    };
    bucket
        .update(key, value, revision)
        .await
        .map(|_| ())
        .map_err(|e| format!("mark {key}: {e}"))
}

/// Whether this instance can do a duty now (the read models it needs are live): one that
/// cannot neither takes the lease nor keeps it, so an instance that can takes over.
pub type Fit = Box<dyn Fn() -> bool + Send + Sync>;

/// Holds the lease of `duty` for `instance` whenever it can and is `fit`, until `stop`. The
/// receiver says whether this instance holds it now: 0 when not, else how many times it has
/// taken it (so a holder that lost it and took it again between two looks is seen to have).
/// On `stop` a held lease is let go.
pub fn hold(
    bucket: kv::Store,
    (duty, instance): (&'static str, String),
    ttl: Duration,
    fit: Fit,
    stop: CancellationToken,
) -> (watch::Receiver<u64>, tokio::task::JoinHandle<()>) {
    let (held, receiver) = watch::channel(0);
    let task = tokio::spawn(run(bucket, (duty, instance), ttl, (fit, held), stop));
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
    (duty, instance): (&'static str, String),
    ttl: Duration,
    (fit, held): (Fit, watch::Sender<u64>),
    stop: CancellationToken,
) {
    // Held at this revision, acted on until `valid_until`.
    let mut revision: Option<u64> = None;
    let mut valid_until = Instant::now();
    let mut taken = 0;
    let let_go = |revision: &mut Option<u64>| {
        held.send_if_modified(|h| std::mem::replace(h, 0) != 0);
        revision.take()
    };
    loop {
        if !fit() {
            // It stops acting now, and the lease ages out rather than being deleted: an act
            // under way (a feeds round) ends within the time the lease was renewed for, as
            // when an instance dies, before another instance can take it.
            if let_go(&mut revision).is_some() {
                warn!(duty, %instance, "this instance cannot do the duty now (a read model it needs is not live); it stops and lets the lease age out");
            }
        } else {
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
            // Not cut short by a stop: a take or renewal the server stored is then known, and
            // let go below (the attempt is bounded by `limit`).
            let outcome = attempt
                .await
                .unwrap_or_else(|_| Err("no answer in time".to_owned()));
            match outcome {
                Ok(Outcome::Held(rev)) => {
                    // The server keeps the renewal for `ttl` from when it stored it, which is
                    // after `started`: stop a quarter of it earlier, in case clocks run apart.
                    valid_until = started + ttl * 3 / 4;
                    if revision.replace(rev).is_none() {
                        taken += 1;
                        held.send_replace(taken);
                        info!(duty, %instance, "this instance holds the lease and does the duty");
                    }
                }
                Ok(Outcome::Other) => {
                    if let_go(&mut revision).is_some() {
                        warn!(duty, %instance, "another instance took the lease over");
                    }
                }
                Err(reason) => {
                    if revision.is_some() && Instant::now() >= valid_until {
                        let_go(&mut revision);
                        warn!(duty, %instance, reason = %reason, "the lease could not be renewed in time; this instance stops doing the duty");
                    } else {
                        warn!(duty, %instance, reason = %reason, "lease attempt failed; trying again");
                    }
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
    let_go(&mut revision);
    // Let another instance take over now rather than when the lease ages out. What the key
    // holds is asked rather than the revision last known: a take or renewal whose answer was
    // lost may have been stored.
    release(&bucket, duty, &instance).await;
}

/// Deletes the lease of `duty` if `instance` holds it (at the revision it holds it at).
async fn release(bucket: &kv::Store, duty: &str, instance: &str) {
    let deleted = match current(bucket, duty).await {
        Ok(Some((revision, Some(holder)))) if holder == instance.as_bytes() => bucket
            .delete_expect_revision(duty, Some(revision))
            .await
            .map_err(|e| e.to_string()),
        Ok(_) => return,
        Err(err) => Err(err),
    };
    match deleted {
        Ok(()) => info!(duty, %instance, "lease let go"),
        Err(err) => warn!(duty, %instance, error = %err, "could not let the lease go; it ages out"),
    }
}

async fn acquire(bucket: &kv::Store, duty: &str, instance: &str) -> Result<Outcome, String> {
    match bucket
        .create(duty, Bytes::copy_from_slice(instance.as_bytes()))
        .await
    {
        Ok(rev) => Ok(Outcome::Held(rev)),
        Err(err) if err.kind() == kv::CreateErrorKind::AlreadyExists => {
            own_again(bucket, duty, instance).await
        }
        Err(err) => Err(format!("lease {duty}: {err}")),
    }
}

/// The key holds a lease: this instance's own (from before a restart, or a renewal whose
/// answer was lost) is renewed at its revision, since nobody else can have taken it since.
async fn own_again(bucket: &kv::Store, duty: &str, instance: &str) -> Result<Outcome, String> {
    match current(bucket, duty).await? {
        Some((revision, Some(holder))) if holder == instance.as_bytes() => {
            match bucket
                .update(duty, Bytes::copy_from_slice(instance.as_bytes()), revision)
                .await
            {
                Ok(rev) => Ok(Outcome::Held(rev)),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    Ok(Outcome::Other)
                }
                Err(err) => Err(format!("lease {duty}: {err}")),
            }
        }
        _ => Ok(Outcome::Other),
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
        Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => {
            own_again(bucket, duty, instance).await
        }
        Err(err) => Err(format!("lease {duty}: {err}")),
    }
}
