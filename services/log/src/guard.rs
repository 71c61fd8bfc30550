//! The durability guard: the hub refuses a NATS server whose settings could lose events it
//! has acknowledged.
//!
//! JetStream's default fsync interval is two minutes, and an independent analysis (Jepsen,
//! NATS 2.12.1) lost acknowledged writes under power loss with it. A client cannot read
//! `sync_interval` through the JetStream API, so the guard reads the server's monitoring
//! endpoint (`/varz` -> `jetstream.config.sync_always`). A missing `sync_always` counts as
//! unsafe, and servers older than 2.12 are refused.
//!
//! On a cluster every member is checked through its own monitoring URL, and each member's
//! routes (`/routez`) name the members it is connected to: a member that routes to the checked
//! ones but has no monitoring URL among them cannot be checked, and is refused too.

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
    #[error(
        "cluster member {members} routes to the checked servers but none of the monitoring URLs \
         is its own, so its fsync setting cannot be checked; list every member's monitoring URL \
         (nats.monitor_url, comma-separated)"
    )]
    Unchecked { members: String },
    #[error(
        "only {reachable} of the {listed} monitoring URLs answered; a majority of the cluster \
         must be checked: {reason}"
    )]
    NoMajority {
        reachable: usize,
        listed: usize,
        reason: String,
    },
}

/// What the guard learnt of every member of a cluster (or of the one server) it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCheck {
    /// The members that answered, each safe, in the order of their monitoring URLs.
    pub members: Vec<ServerCheck>,
    /// Monitoring URLs that did not answer, and why: a member that is down is checked again
    /// when it answers (the hub's watch does).
    pub unreachable: Vec<(String, String)>,
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

#[derive(Debug, Deserialize)]
struct Routez {
    #[serde(default)]
    routes: Option<Vec<Route>>,
}

#[derive(Debug, Deserialize)]
struct Route {
    remote_id: String,
    #[serde(default)]
    remote_name: String,
}

fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
}

/// `GET <monitor_url>/<page>`, parsed.
async fn monitoring<T: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    monitor_url: &str,
    page: &str,
) -> Result<T, GuardError> {
    let url = format!("{}/{page}", monitor_url.trim_end_matches('/'));
    let unreachable = |reason: String| GuardError::Unreachable {
        url: url.clone(),
        reason,
    };
    client
        .get(&url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| unreachable(e.to_string()))?
        .json()
        .await
        .map_err(|e| unreachable(format!("not a /{page} answer: {e}")))
}

/// Checks every member of a cluster through its monitoring URL, all at once (one URL: a
/// single server, which must answer). Refused: any member that answers unsafe; fewer than a
/// majority of the URLs answering; a member that routes to the checked ones but is not among
/// them (a running member whose endpoint does not answer is one); a `connected_server_id`,
/// when given, that is none of the checked servers. A listed member that does not answer and
/// routes to no checked member (down) is returned in [`ClusterCheck::unreachable`], not
/// refused: the cluster serves without it, and it is checked when it answers again.
pub async fn check_cluster(
    monitor_urls: &[String],
    connected_server_id: Option<&str>,
) -> Result<ClusterCheck, GuardError> {
    let client = http_client().map_err(|e| GuardError::Unreachable {
        url: monitor_urls.join(","),
        reason: e.to_string(),
    })?;
    let answers = futures::future::join_all(monitor_urls.iter().map(|url| {
        let client = &client;
        async move {
            let varz = monitoring::<Varz>(client, url, "varz").await?;
            // Its routes name the members it is connected to; without them an unlisted
            // member would go unseen, so a member that does not show them is not checked.
            let routes = monitoring::<Routez>(client, url, "routez").await?;
            Ok::<_, GuardError>((varz, routes.routes.unwrap_or_default()))
        }
    }))
    .await;
    let mut found = ClusterCheck {
        members: Vec::new(),
        unreachable: Vec::new(),
    };
    let mut routes = Vec::new();
    for (url, answer) in monitor_urls.iter().zip(answers) {
        match answer {
            Ok((varz, member_routes)) => {
                let check = judge(varz)?;
                // The same member listed twice counts once.
                if !found.members.iter().any(|m| m.server_id == check.server_id) {
                    found.members.push(check);
                }
                routes.extend(member_routes);
            }
            Err(err) if monitor_urls.len() == 1 => return Err(err),
            Err(err) => found.unreachable.push((url.clone(), err.to_string())),
        }
    }
    if found.members.len() * 2 <= monitor_urls.len() {
        return Err(GuardError::NoMajority {
            reachable: found.members.len(),
            listed: monitor_urls.len(),
            reason: found
                .unreachable
                .first()
                .map(|(_, why)| why.clone())
                .unwrap_or_default(),
        });
    }
    let checked = |id: &str| found.members.iter().any(|m| m.server_id == id);
    if let Some(connected) = connected_server_id
        && !checked(connected)
    {
        return Err(GuardError::OtherServer {
            monitored: names(
                found
                    .members
                    .iter()
                    .map(|m| display_name(&m.server_name, &m.server_id)),
            ),
            connected: connected.to_owned(),
        });
    }
    // Routes are pooled (several per pair of servers): each member once.
    let mut unknown: Vec<&Route> = Vec::new();
    for route in &routes {
        if !checked(&route.remote_id) && !unknown.iter().any(|r| r.remote_id == route.remote_id) {
            unknown.push(route);
        }
    }
    if !unknown.is_empty() {
        return Err(GuardError::Unchecked {
            members: names(
                unknown
                    .iter()
                    .map(|r| display_name(&r.remote_name, &r.remote_id)),
            ),
        });
    }
    Ok(found)
}

/// A server's name, or its id when it has none.
pub fn display_name<'a>(name: &'a str, id: &'a str) -> &'a str {
    if name.is_empty() { id } else { name }
}

fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

/// A URL as it may be shown: a `user:password@` part replaced by `***@`.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Splits a comma-separated list of URLs (as `nats.url` and `nats.monitor_url` take them),
/// dropping blanks.
pub fn url_list(urls: &str) -> Vec<String> {
    urls.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect()
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
    fn credentials_are_not_shown() {
        assert_eq!(
            redacted("nats://hub:secret@nats-1:4222"),
            "nats://***@nats-1:4222"
        );
        assert_eq!(redacted("nats://nats-1:4222"), "nats://nats-1:4222");
    }

    #[test]
    fn url_lists_split_on_commas() {
        assert_eq!(
            url_list(" http://a:8222, http://b:8222 ,,"),
            vec!["http://a:8222".to_owned(), "http://b:8222".to_owned()]
        );
        assert_eq!(
            url_list("nats://127.0.0.1:4222"),
            vec!["nats://127.0.0.1:4222".to_owned()]
        );
        assert!(url_list(" , ").is_empty());
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
