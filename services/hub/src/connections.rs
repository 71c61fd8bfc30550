//! The hub's connections to NATS: one each for appends, the projectors' consumers and audit
//! appends, so a burst on one never queues behind another; reconnects counted; the server's
//! durability checked before anything is written.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hub_log::credentials::Seed;
use hub_log::guard;
use tracing::{info, warn};

/// The three connections.
pub(crate) struct Connections {
    /// Commands' appends, streams and feeds set up.
    pub hub: async_nats::Client,
    /// The read models' consumers and the log digest.
    pub projectors: async_nats::Client,
    /// Audit appends: reads wait for them.
    pub audit: async_nats::Client,
}

impl Connections {
    /// Connects to `url` (with the hub's NKey `seed`, if any) and refuses a server whose
    /// settings could lose acknowledged events.
    pub(crate) async fn open(
        url: &str,
        seed: Option<&Seed>,
        monitor_url: Option<&str>,
        accept_risk: bool,
    ) -> anyhow::Result<Self> {
        let connect = |name: &'static str| {
            let url = url.to_owned();
            let seed = seed.map(|s| s.seed().to_owned());
            async move {
                let options = async_nats::ConnectOptions::new();
                let options = match seed {
                    Some(seed) => options.nkey(seed),
                    None => options,
                };
                // Reconnects counted (`hub_nats_reconnects_total`): async-nats says "connected"
                // again after each loss.
                let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
                options
                    .name(name)
                    .event_callback(move |event| {
                        let lost = lost.clone();
                        async move {
                            use std::sync::atomic::Ordering;
                            match event {
                                async_nats::Event::Disconnected => {
                                    lost.store(true, Ordering::Relaxed)
                                }
                                async_nats::Event::Connected
                                    if lost.swap(false, Ordering::Relaxed) =>
                                {
                                    hub_telemetry::metrics().nats_reconnects.add(
                                        1,
                                        &[hub_telemetry::metrics::label("connection", name)],
                                    );
                                }
                                _ => {}
                            }
                        }
                    })
                    .connection_timeout(Duration::from_secs(5))
                    .connect(&url)
                    .await
                    .with_context(|| format!("connecting to NATS at {url}"))
            }
        };
        let hub = connect("hub").await?;
        let projectors = connect("hub-projectors").await?;
        let audit = connect("hub-audit").await?;
        check_durability(&hub, monitor_url, accept_risk).await?;
        Ok(Self {
            hub,
            projectors,
            audit,
        })
    }
}

/// Refuses a NATS whose settings could lose acknowledged events.
async fn check_durability(
    client: &async_nats::Client,
    monitor_url: Option<&str>,
    accept_risk: bool,
) -> anyhow::Result<()> {
    match monitor_url {
        Some(monitor_url) => {
            let server_id = client.server_info().server_id;
            let check = guard::check_server(monitor_url, Some(&server_id))
                .await
                .context("refusing to start")?;
            info!(server = %check.server_name, version = %check.version, "nats durability checked: sync_interval always");
            Ok(())
        }
        None if accept_risk => {
            warn!(
                "nats durability NOT checked: no monitoring URL, and accept_durability_risk is set; \
                 acknowledged events may be lost if the server does not fsync every write"
            );
            Ok(())
        }
        None => bail!(
            "refusing to start: the NATS server's fsync setting cannot be checked without its monitoring URL; \
             set nats.monitor_url (--nats-monitor-url), or accept the risk of losing acknowledged events \
             with nats.accept_durability_risk (--accept-durability-risk)"
        ),
    }
}
