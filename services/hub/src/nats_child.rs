//! The hub's own nats-server, in development mode: started under the data dir, restarted on
//! the same ports if it dies, stopped (SIGTERM, then SIGKILL after a grace period) with the hub.

use std::path::Path;
use std::time::Duration;

use hub_log::server::{NatsServer, ServerError, ServerOptions, locate_binary};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long the child may take to listen. After a crash nats-server rebuilds the indexes of
/// its store before it listens: 10M events took longer than 20 s (see deploy/scale.md), and
/// a child given up on and started again would never finish recovering.
const START_LIMIT: Duration = Duration::from_secs(30 * 60);

/// A supervised nats-server child.
#[derive(Debug)]
pub struct ChildNats {
    client_url: String,
    monitor_url: String,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

fn port_of(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

impl ChildNats {
    /// Starts nats-server with its store in `dir` and supervises it; `accounts` is its
    /// `accounts { ... }` block (`hub_log::accounts::render`), kept across restarts.
    pub async fn start(dir: &Path, accounts: Option<String>) -> Result<Self, ServerError> {
        let binary = locate_binary()?;
        let mut options = ServerOptions::new(dir, "hub-dev");
        options.accounts = accounts;
        info!("starting the nats-server child (after a crash, a big store is recovered first)");
        let server = NatsServer::start_within(&binary, options, START_LIMIT).await?;
        let client_url = server.client_url().to_owned();
        let monitor_url = server.monitor_url().to_owned();
        info!(
            client_url,
            monitor_url,
            pid = server.pid(),
            "nats-server child started"
        );

        // A restarted child keeps its ports, so the hub's client reconnects to it.
        let mut options = server.options().clone();
        options.client_port = port_of(&client_url);
        options.monitor_port = port_of(&monitor_url);
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(binary, options, server, stop.clone()));
        Ok(Self {
            client_url,
            monitor_url,
            stop,
            task,
        })
    }

    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    pub fn monitor_url(&self) -> &str {
        &self.monitor_url
    }

    /// Stops the child and waits until it has exited.
    pub async fn stop(self) {
        self.stop.cancel();
        if let Err(err) = self.task.await {
            error!(error = %err, "nats-server supervisor failed");
        }
    }
}

async fn supervise(
    binary: std::path::PathBuf,
    options: ServerOptions,
    server: NatsServer,
    stop: CancellationToken,
) {
    let mut server = Some(server);
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::select! {
            _ = stop.cancelled() => {
                if let Some(server) = server.take() {
                    let status = server.stop(STOP_GRACE).await;
                    info!(?status, "nats-server child stopped");
                }
                return;
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let exited = match server.as_mut() {
            Some(running) => running.try_exited(),
            None => None,
        };
        if let Some(status) = exited {
            warn!(?status, "nats-server child exited; restarting it");
            server = None;
        }
        if server.is_none() {
            match NatsServer::start_within(&binary, options.clone(), START_LIMIT).await {
                Ok(restarted) => {
                    info!(pid = restarted.pid(), "nats-server child restarted");
                    server = Some(restarted);
                    backoff = Duration::from_millis(100);
                }
                Err(err) => {
                    error!(error = %err, "nats-server child failed to restart");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
