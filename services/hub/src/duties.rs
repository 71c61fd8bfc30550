//! The once-per-hub duties of this instance: deadline supervision (with grant expiry) and
//! sending the feeds. Every instance projects every read model, the feed publisher's outbox
//! included, but only the holder of a duty's lease acts on it (`hub_log::lease`).

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use hub_log::lease::{self, Fit};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub struct Duties {
    pub leases: kv::Store,
    pub marks: kv::Store,
    instance: String,
    /// The lease time, the bucket's.
    ttl: Duration,
    /// Stops the leases (letting them go): only once the duties' tasks have ended, so no act
    /// outlives its lease; on an early return, when this is dropped.
    stop: CancellationToken,
    _stop_on_drop: DropGuard,
    tasks: Vec<JoinHandle<()>>,
}

impl Duties {
    /// Creates or opens the buckets.
    pub async fn open(
        js: &jetstream::Context,
        instance: &str,
        (ttl, replicas): (Duration, usize),
    ) -> anyhow::Result<Self> {
        let (leases, ttl) = lease::lease_bucket(js, ttl, replicas)
            .await
            .map_err(anyhow::Error::msg)
            .context("refusing to start")?;
        let marks = lease::mark_bucket(js, replicas)
            .await
            .map_err(anyhow::Error::msg)
            .context("refusing to start")?;
        let stop = CancellationToken::new();
        Ok(Self {
            leases,
            marks,
            instance: instance.to_owned(),
            ttl,
            _stop_on_drop: stop.clone().drop_guard(),
            stop,
            tasks: Vec::new(),
        })
    }

    /// Holds the lease of `duty` whenever this instance is `fit` for it; the receiver says
    /// whether it holds it (0: not; else which time it took it).
    pub fn hold(&mut self, duty: &'static str, fit: Fit) -> watch::Receiver<u64> {
        let (held, task) = lease::hold(
            self.leases.clone(),
            (duty, self.instance.clone()),
            self.ttl,
            fit,
            self.stop.clone(),
        );
        self.tasks.push(task);
        held
    }

    /// Lets every lease go, once the tasks doing the duties have ended.
    pub async fn released(self) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
