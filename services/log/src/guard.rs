//! The durability guard: the hub refuses a NATS server whose settings could lose events it
//! has acknowledged.
//!
//! JetStream's default fsync interval is two minutes, and an independent analysis (Jepsen,
//! NATS 2.12.1) lost acknowledged writes under power loss with it. A client cannot read
//! `sync_interval` through the JetStream API, so the guard reads the server's monitoring
//! endpoint (`/varz` -> `jetstream.config.sync_always`). A missing `sync_always` counts as
//! unsafe, and servers older than 2.12 are refused.

use std::time::Duration;

use serde::Deserialize;

/// Oldest server the hub accepts (atomic batch publish arrived in 2.12).
pub const MIN_SERVER_VERSION: (u64, u64, u64) = (2, 12, 0);

/// What the guard learnt of a server it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCheck {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    #[error("cannot read the monitoring endpoint {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("server {server} has no jetstream enabled")]
    NoJetStream { server: String },
    #[error(
        "server {server} does not fsync every write (jetstream sync_interval is not `always`): \
         an acknowledged event could be lost on power failure; set `sync_interval: always` in its jetstream block"
    )]
    NotSyncAlways { server: String },
    #[error("server {server} runs nats-server {version}; the hub needs 2.12.0 or newer")]
    TooOld { server: String, version: String },
    #[error(
        "the monitoring endpoint belongs to server {monitored}, but the hub is connected to {connected}"
    )]
    OtherServer {
        monitored: String,
        connected: String,
    },
}

#[derive(Debug, Deserialize)]
struct Varz {
    server_id: String,
    #[serde(default)]
    server_name: String,
    version: String,
    #[serde(default)]
    jetstream: Option<VarzJetStream>,
}

#[derive(Debug, Deserialize)]
struct VarzJetStream {
    #[serde(default)]
    config: Option<VarzJetStreamConfig>,
}

#[derive(Debug, Deserialize)]
struct VarzJetStreamConfig {
    #[serde(default)]
    sync_always: Option<bool>,
}

/// Parses `2.15.1`, `v2.12.0-beta.3` and the like into (major, minor, patch).
pub fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let core = version.trim_start_matches('v').split(['-', '+']).next()?;
    let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

fn judge(varz: Varz) -> Result<ServerCheck, GuardError> {
    let server = if varz.server_name.is_empty() {
        varz.server_id.clone()
    } else {
        varz.server_name.clone()
    };
    match parse_version(&varz.version) {
        Some(v) if v >= MIN_SERVER_VERSION => {}
        _ => {
            return Err(GuardError::TooOld {
                server,
                version: varz.version,
            });
        }
    }
    let Some(config) = varz.jetstream.and_then(|js| js.config) else {
        return Err(GuardError::NoJetStream { server });
    };
    if config.sync_always != Some(true) {
        return Err(GuardError::NotSyncAlways { server });
    }
    Ok(ServerCheck {
        server_id: varz.server_id,
        server_name: varz.server_name,
        version: varz.version,
    })
}

/// Reads `<monitor_url>/varz` and accepts the server only if it cannot lose acknowledged events.
/// `connected_server_id`, when given, must be the server the monitoring endpoint describes.
pub async fn check_server(
    monitor_url: &str,
    connected_server_id: Option<&str>,
) -> Result<ServerCheck, GuardError> {
    let url = format!("{}/varz", monitor_url.trim_end_matches('/'));
    let unreachable = |reason: String| GuardError::Unreachable {
        url: url.clone(),
        reason,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let varz: Varz = client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| unreachable(e.to_string()))?
        .json()
        .await
        .map_err(|e| unreachable(format!("not a /varz answer: {e}")))?;
    let check = judge(varz)?;
    if let Some(connected) = connected_server_id
        && connected != check.server_id
    {
        return Err(GuardError::OtherServer {
            monitored: check.server_id,
            connected: connected.to_owned(),
        });
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varz(version: &str, sync_always: Option<bool>) -> Varz {
        Varz {
            server_id: "N1".into(),
            server_name: "n1".into(),
            version: version.into(),
            jetstream: Some(VarzJetStream {
                config: Some(VarzJetStreamConfig { sync_always }),
            }),
        }
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("2.15.1"), Some((2, 15, 1)));
        assert_eq!(parse_version("v2.12.0-beta.3"), Some((2, 12, 0)));
        assert_eq!(parse_version("2.10"), Some((2, 10, 0)));
        assert_eq!(parse_version("nope"), None);
    }

    #[test]
    fn only_a_recent_server_that_syncs_always_passes() {
        assert!(judge(varz("2.15.1", Some(true))).is_ok());
        assert!(judge(varz("2.12.0", Some(true))).is_ok());
        assert!(matches!(
            judge(varz("2.11.9", Some(true))),
            Err(GuardError::TooOld { .. })
        ));
        assert!(matches!(
            judge(varz("2.15.1", None)),
            Err(GuardError::NotSyncAlways { .. })
        ));
        assert!(matches!(
            judge(varz("2.15.1", Some(false))),
            Err(GuardError::NotSyncAlways { .. })
        ));
        let no_js = Varz {
            jetstream: None,
            ..varz("2.15.1", Some(true))
        };
        assert!(matches!(judge(no_js), Err(GuardError::NoJetStream { .. })));
    }
}
