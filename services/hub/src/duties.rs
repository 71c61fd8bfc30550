//! The once-per-hub duties of this instance: deadline supervision (with grant expiry) and
//! sending the feeds. Every instance projects every read model, the feed publisher's outbox
//! included, but only the holder of a duty's lease acts on it (`hub_log::lease`).

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv};
use hub_log::lease::{self, FEEDS, SUPERVISION};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Duties {
    pub leases: kv::Store,
    pub marks: kv::Store,
    /// Whether this instance supervises deadlines now; never in restore mode.
    pub supervision: watch::Receiver<bool>,
    /// Whether this instance sends the feeds now.
    pub feeds: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Duties {
    /// Creates the buckets and starts holding the leases, each until `stop`.
    pub async fn start(
        js: &jetstream::Context,
        instance: &str,
        (ttl, replicas): (Duration, usize),
        restore: bool,
        stop: &CancellationToken,
    ) -> anyhow::Result<Self> {
        let leases = lease::lease_bucket(js, ttl, replicas)
            .await
            .map_err(anyhow::Error::msg)
            .context("refusing to start")?;
        let marks = lease::mark_bucket(js, replicas)
            .await
            .map_err(anyhow::Error::msg)
            .context("refusing to start")?;
        let mut tasks = Vec::new();
        let mut hold = |duty| {
            let (held, task) = lease::hold(
                leases.clone(),
                duty,
                instance.to_owned(),
                ttl,
                stop.child_token(),
            );
            tasks.push(task);
            held
        };
        let feeds = hold(FEEDS);
        // In restore mode nothing but the import writes to the log: another instance
        // supervises, or none.
        let supervision = if restore {
            watch::channel(false).1
        } else {
            hold(SUPERVISION)
        };
        Ok(Self {
            leases,
            marks,
            supervision,
            feeds,
            tasks,
        })
    }

    /// Waits until every lease held is let go (after `stop`).
    pub async fn released(self) {
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
