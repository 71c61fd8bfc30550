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
    /// Connects to `url` (one server, or a cluster's members comma-separated; with the hub's
    /// NKey `seed`, if any) and refuses a server, or a cluster with a member, whose settings
    /// could lose acknowledged events.
    pub(crate) async fn open(
        url: &str,
        seed: Option<&Seed>,
        monitor_url: Option<&str>,
        accept_risk: bool,
    ) -> anyhow::Result<Self> {
        let urls = guard::url_list(url);
        if urls.is_empty() {
            bail!("nats.url names no server");
        }
        let connect = |name: &'static str| {
            let urls = urls.clone();
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
                    .connect(urls.as_slice())
                    .await
                    .with_context(|| {
                        let shown: Vec<String> = urls.iter().map(|u| guard::redacted(u)).collect();
                        format!("connecting to NATS at {}", shown.join(","))
                    })
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
            let check = guard::check_cluster(&guard::url_list(monitor_url), Some(&server_id))
                .await
                .context("refusing to start")?;
            for member in &check.members {
                info!(server = %member.server_name, version = %member.version, "nats durability checked: sync_interval always");
            }
            for (url, reason) in &check.unreachable {
                warn!(monitor_url = %url, %reason, "a cluster member did not answer: checked when it does");
            }
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

/// The alarm the durability watch raises while a member of the cluster could lose
/// acknowledged events, cannot be checked, or does not answer.
pub(crate) const DURABILITY_ALARM: &str = "nats/durability";

/// Checks the server (every member of the cluster) again every `every` until `stop`. A member
/// that comes back or joins unsafe, one that routes to the others without a monitoring URL
/// among `monitor_url`'s, and a listed member that does not answer (down: the log has one copy
/// fewer) raise [`DURABILITY_ALARM`] with the latest reason, cleared once every listed member
/// answers safe. Whether the hub may start was decided before this; while running, an alarm is
/// what operators see (`hub.alarms` health, the log, status).
pub(crate) async fn watch_durability(
    client: async_nats::Client,
    monitor_url: String,
    every: Duration,
    alarms: hub_projector::Alarms,
    stop: tokio_util::sync::CancellationToken,
) {
    let urls = guard::url_list(&monitor_url);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        // Between a lost server and the next, the connection's server is not yet known.
        if client.connection_state() != async_nats::connection::State::Connected {
            continue;
        }
        let connected = client.server_info().server_id;
        match guard::check_cluster(&urls, Some(&connected)).await {
            Ok(check) if check.unreachable.is_empty() => alarms.clear(DURABILITY_ALARM),
            Ok(check) => {
                let down: Vec<String> = check
                    .unreachable
                    .iter()
                    .map(|(url, why)| format!("{url} does not answer ({why})"))
                    .collect();
                alarms.set(
                    DURABILITY_ALARM,
                    format!("cluster member not checked: {}", down.join("; ")),
                );
            }
            Err(err) => alarms.set(DURABILITY_ALARM, err.to_string()),
        }
    }
}
