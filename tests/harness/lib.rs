//! The test harness: real nats-server processes and the hub in-process on port 0.
//!
//! Every server runs the pinned binary (`deploy/setup.sh`, or `HUB_NATS_SERVER`) on a
//! loopback port it picks itself, with its store in a temp dir; it is killed and the dir
//! removed on drop. Waits are on conditions with a time limit, never on sleeps.

pub mod fixtures;
mod hold;
mod hub;
mod nats;
mod process;
mod rebuild;

use std::future::Future;
use std::time::{Duration, Instant};

pub use hold::Hold;
pub use hub::{Hub, HubBuilder};
pub use nats::Nats;
pub use process::{HubProcess, ProcessBuilder};
pub use rebuild::{assert_read_models_equal_a_rebuild, default_policy};

/// Polls `condition` until it yields `Some`, or panics after `limit` naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, limit: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
