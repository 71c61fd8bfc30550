//! The hub's configuration: defaults, then a TOML file, then `HUB_*` environment variables,
//! then command-line flags; parsed strictly (an unknown key is an error). Every key is shown,
//! commented, in `deploy/hub.example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use crate::identity::IdentityConfig;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Folder of everything the hub keeps: the child nats-server's store, the read models.
    pub data_dir: PathBuf,
    /// gRPC address. Loopback by default.
    pub listen: SocketAddr,
    /// This instance's name in consumer names; empty: generated once and kept in the data dir.
    pub instance: String,
    /// Reference data (departments, districts, grids, holidays) as TOML; empty: the built-in demo data.
    pub reference_data: Option<PathBuf>,
    /// The city's time zone: deadlines, days and statistics are counted in it.
    pub time_zone: String,
    /// How often deadline supervision looks for cases past their deadlines.
    pub supervision_interval_ms: u64,
    /// Lease time of a once-per-hub duty (deadline supervision, sending the feeds): the
    /// instance holding a duty renews it every third of this, and when it dies another takes
    /// the duty over within about 1.25 times this. The lease bucket keeps the time of the
    /// instance that created it, which the others then use.
    pub lease_ms: u64,
    /// Restore mode: the hub takes a backup of the event log (`hubctl import`) and nothing
    /// else writes to the log meanwhile: the command services answer UNAVAILABLE and deadline
    /// supervision does not run. Reads, read models and feeds work as usual. Restart without
    /// it once the import is done.
    pub restore: bool,
    pub nats: NatsConfig,
    pub commands: CommandsConfig,
    pub read_models: ReadModelsConfig,
    pub query: QueryConfig,
    pub catalogue: CatalogueConfig,
    pub feeds: FeedsConfig,
    pub identity: IdentityConfig,
    pub audit: AuditConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The Ed25519 key (PKCS#8 PEM) checkpoints of the audit log are signed with; unset on a
    /// hub running its own nats-server: generated once under the data dir
    /// (secrets/audit-signing.key, its public key beside it as audit-signing.pub, which is what
    /// verifiers of exports need). Required on an external NATS, the same for every instance.
    pub signing_key_file: Option<PathBuf>,
    /// A signed checkpoint after this many audit records.
    pub checkpoint_records: u64,
    /// A signed checkpoint this often, in seconds, when anything moved since the last one.
    pub checkpoint_seconds: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            signing_key_file: None,
            checkpoint_records: 1000,
            checkpoint_seconds: 60,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedsConfig {
    /// How long a department's feed keeps an event, in days (older ones go first).
    pub max_age_days: u64,
}

impl Default for FeedsConfig {
    fn default() -> Self {
        Self { max_age_days: 30 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogueConfig {
    /// Where users reach the hub's HTTP endpoints (the catalogue's access URLs); empty:
    /// `http://` and the listen address.
    pub base_url: Option<String>,
    /// Who publishes the catalogue, as its DCAT publisher.
    pub publisher: String,
    /// Open count tables withhold counts below this (and enough others that none can be
    /// worked out from the rest).
    pub small_count_threshold: u64,
}

impl Default for CatalogueConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            publisher: "城市数据共享枢纽 city data-sharing hub".to_owned(),
            small_count_threshold: 5,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommandsConfig {
    /// How long a command waits for the command state index to catch up with the log (after a
    /// start or during a rebuild) before it is answered UNAVAILABLE.
    pub index_wait_ms: u64,
    /// The secret command hashes are keyed with (at least 32 bytes); unset: generated once
    /// under the data dir.
    pub hash_key_file: Option<PathBuf>,
    /// The key before the current one, still recognised while a rotation runs.
    pub previous_hash_key_file: Option<PathBuf>,
    /// Group commit: atomic batches of commands awaiting their acknowledgement at once (1 to
    /// 50). Commands that arrive while all are busy go out together in the next batch.
    pub batches_in_flight: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NatsConfig {
    /// An existing NATS to use, or a cluster's members comma-separated (the hub connects to
    /// one and moves to another when it goes); empty: start and supervise a nats-server child.
    pub url: Option<String>,
    /// Monitoring endpoint of that NATS (e.g. http://127.0.0.1:8222), read by the durability
    /// guard; on a cluster every member's, comma-separated.
    pub monitor_url: Option<String>,
    /// How often the durability guard checks the server (every member) again while the hub
    /// runs; a member found unsafe raises an alarm.
    pub durability_check_secs: u64,
    /// Start against a NATS without a monitoring URL, whose durability cannot be checked.
    pub accept_durability_risk: bool,
    /// Window in which NATS recognises a re-published event id as a duplicate.
    pub duplicate_window_secs: u64,
    /// Replicas of the events stream: 1 on one node, 3 on a cluster.
    pub replicas: usize,
    /// How long an append waits for the server's acknowledgement.
    pub ack_timeout_ms: u64,
    /// The seed of the hub's NATS user (an NKey, as `hub nats-accounts` writes it) on that NATS;
    /// unset: no authentication. The hub's own nats-server uses keys it generates instead.
    pub nkey_file: Option<PathBuf>,
    /// Start against a NATS without `nkey_file`: no account isolates the departments' feeds
    /// from each other there, so the hub refuses unless this is set (and then says so).
    pub accept_no_isolation: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReadModelsConfig {
    /// sled page cache of each read model, in MiB. About a dozen databases are open (two per
    /// model while one is rebuilt), and sled holds about twice its setting: 16 MiB measured no
    /// slower than 64 in hub-bench's rebuild, and 150 MiB smaller.
    pub cache_mb: u64,
    /// Most events applied in one sled batch.
    pub max_batch: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Longest a read waits for its `min_position` when the call sets no shorter deadline.
    pub max_wait_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("hub-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            instance: String::new(),
            reference_data: None,
            time_zone: "Asia/Shanghai".to_owned(),
            supervision_interval_ms: 1000,
            lease_ms: 10_000,
            restore: false,
            nats: NatsConfig::default(),
            commands: CommandsConfig::default(),
            read_models: ReadModelsConfig::default(),
            query: QueryConfig::default(),
            catalogue: CatalogueConfig::default(),
            audit: AuditConfig::default(),
            feeds: FeedsConfig::default(),
            identity: IdentityConfig::default(),
        }
    }
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: None,
            monitor_url: None,
            durability_check_secs: 30,
            accept_durability_risk: false,
            duplicate_window_secs: 120,
            replicas: 1,
            ack_timeout_ms: 5000,
            nkey_file: None,
            accept_no_isolation: false,
        }
    }
}

impl Default for CommandsConfig {
    fn default() -> Self {
        Self {
            index_wait_ms: 5000,
            hash_key_file: None,
            previous_hash_key_file: None,
            batches_in_flight: hub_log::GroupOptions::default().in_flight,
        }
    }
}

impl CommandsConfig {
    pub fn index_wait(&self) -> Duration {
        Duration::from_millis(self.index_wait_ms)
    }
}

impl Default for ReadModelsConfig {
    fn default() -> Self {
        Self {
            cache_mb: 16,
            max_batch: 1024,
        }
    }
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            max_wait_ms: 10_000,
        }
    }
}

impl NatsConfig {
    pub fn duplicate_window(&self) -> Duration {
        Duration::from_secs(self.duplicate_window_secs)
    }

    pub fn ack_timeout(&self) -> Duration {
        Duration::from_millis(self.ack_timeout_ms)
    }

    pub fn durability_check_interval(&self) -> Duration {
        Duration::from_secs(self.durability_check_secs)
    }
}

/// Environment variables starting `HUB_` that are not configuration keys.
/// (`HUB_CHROMIUM` is the browser the web console's end-to-end test opens.)
const NOT_CONFIG: &[&str] = &["nats_server", "log_format", "chromium"];

impl Config {
    /// Layers defaults, `file` (when given), `HUB_*` variables and `overrides` (from flags).
    /// Nested keys use a double underscore in the environment: `HUB_NATS__URL`.
    // figment's error is large, but a configuration is loaded once, at start.
    #[allow(clippy::result_large_err)]
    pub fn load(
        file: Option<&Path>,
        overrides: Serialized<figment::value::Dict>,
    ) -> Result<Self, figment::Error> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment
            .merge(Env::prefixed("HUB_").split("__").ignore(NOT_CONFIG))
            .merge(overrides)
            .extract()
    }

    /// This configuration with the `HUB_*` variables layered over it, as [`Config::load`]
    /// layers them over the defaults (for a program that embeds the hub, such as hub-bench).
    #[allow(clippy::result_large_err)]
    pub fn with_env(self) -> Result<Self, figment::Error> {
        Figment::from(Serialized::defaults(self))
            .merge(Env::prefixed("HUB_").split("__").ignore(NOT_CONFIG))
            .extract()
    }

    /// The lease time of a once-per-hub duty.
    pub fn lease(&self) -> Duration {
        Duration::from_millis(self.lease_ms)
    }

    /// The configured time zone.
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, String> {
        jiff::tz::TimeZone::get(&self.time_zone)
            .map_err(|e| format!("time_zone {:?}: {e}", self.time_zone))
    }

    pub fn validate(&self) -> Result<(), String> {
        self.time_zone()?;
        if self.nats.duplicate_window_secs == 0 {
            return Err("nats.duplicate_window_secs must be above 0".into());
        }
        for (key, list) in [
            ("nats.url", &self.nats.url),
            ("nats.monitor_url", &self.nats.monitor_url),
        ] {
            let Some(list) = list else { continue };
            let urls = hub_log::guard::url_list(list);
            if urls.is_empty() {
                return Err(format!("{key} is set but names no server"));
            }
            if urls.iter().enumerate().any(|(i, u)| urls[..i].contains(u)) {
                return Err(format!("{key} lists the same server twice"));
            }
        }
        if self.lease_ms < 500 {
            return Err("lease_ms must be at least 500".into());
        }
        if self.nats.durability_check_secs == 0 {
            return Err("nats.durability_check_secs must be at least 1".into());
        }
        if self.nats.replicas == 0 {
            return Err("nats.replicas must be at least 1".into());
        }
        if self.catalogue.small_count_threshold == 0 {
            return Err("catalogue.small_count_threshold must be at least 1".into());
        }
        if let Some(url) = &self.catalogue.base_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err("catalogue.base_url must start with http:// or https://".into());
        }
        if self.feeds.max_age_days == 0 {
            return Err("feeds.max_age_days must be at least 1".into());
        }
        if self.audit.checkpoint_records == 0 || self.audit.checkpoint_seconds == 0 {
            return Err(
                "audit.checkpoint_records and audit.checkpoint_seconds must be at least 1".into(),
            );
        }
        if !(1..=hub_log::group::SERVER_MAX_IN_FLIGHT).contains(&self.commands.batches_in_flight) {
            return Err(format!(
                "commands.batches_in_flight must be 1 to {} (the server's limit per stream)",
                hub_log::group::SERVER_MAX_IN_FLIGHT
            ));
        }
        if self.read_models.max_batch == 0 {
            return Err("read_models.max_batch must be at least 1".into());
        }
        if self.nats.url.is_none() && self.nats.nkey_file.is_some() {
            return Err(
                "nats.nkey_file is set but nats.url is not: the child nats-server uses keys the \
                 hub generates under data_dir/secrets/nats"
                    .into(),
            );
        }
        if self.nats.url.is_none() && self.nats.monitor_url.is_some() {
            return Err(
                "nats.monitor_url is set but nats.url is not: the child nats-server has its own"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_names_every_key_and_loads() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/hub.example.toml");
        let text = std::fs::read_to_string(&example).expect("deploy/hub.example.toml exists");
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|l| l.contains(" = "))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        let config: Config = Figment::new()
            .merge(Toml::string(&uncommented))
            .extract()
            .expect("example parses strictly");
        config.validate().expect("example is valid");
        let defaults = toml::to_string(&Config::default()).expect("serialize defaults");
        for line in defaults.lines().filter(|l| l.contains(" = ")) {
            let key = line.split(" = ").next().unwrap_or_default();
            assert!(
                text.contains(&format!("{key} = ")),
                "deploy/hub.example.toml does not show key `{key}`"
            );
        }
    }

    #[test]
    fn a_nats_seed_is_for_an_external_nats() {
        let with_seed = |url: Option<&str>| Config {
            nats: NatsConfig {
                url: url.map(str::to_owned),
                nkey_file: Some(PathBuf::from("nats-keys/hub.nk")),
                ..NatsConfig::default()
            },
            ..Config::default()
        };
        let err = with_seed(None).validate().expect_err("no url");
        assert!(err.contains("nats.nkey_file"), "{err}");
        with_seed(Some("nats://127.0.0.1:4222"))
            .validate()
            .expect("a seed for an external NATS");
    }

    #[test]
    fn a_cluster_is_every_member_once_and_no_list_is_empty() {
        let with = |url: &str, monitor: &str| Config {
            nats: NatsConfig {
                url: Some(url.to_owned()),
                monitor_url: Some(monitor.to_owned()),
                accept_no_isolation: true,
                ..NatsConfig::default()
            },
            ..Config::default()
        };
        with(
            "nats://a:4222,nats://b:4222,nats://c:4222",
            "http://a:8222, http://b:8222,http://c:8222",
        )
        .validate()
        .expect("three members");
        let err = with(" , ", "http://a:8222")
            .validate()
            .expect_err("no server");
        assert!(
            err.contains("nats.url") && err.contains("names no server"),
            "{err}"
        );
        let mut never = with("nats://a:4222", "http://a:8222");
        never.nats.durability_check_secs = 0;
        let err = never.validate().expect_err("never checked again");
        assert!(err.contains("nats.durability_check_secs"), "{err}");
        let err = with("nats://a:4222", "http://a:8222,http://a:8222")
            .validate()
            .expect_err("twice");
        assert!(
            err.contains("nats.monitor_url") && err.contains("twice"),
            "{err}"
        );
    }

    #[test]
    fn batches_in_flight_stay_within_the_servers_limit() {
        let with = |batches_in_flight| Config {
            commands: CommandsConfig {
                batches_in_flight,
                ..CommandsConfig::default()
            },
            ..Config::default()
        };
        for refused in [0, 51] {
            let err = with(refused).validate().expect_err("out of range");
            assert!(err.contains("commands.batches_in_flight"), "{err}");
        }
        for allowed in [1, 4, 50] {
            with(allowed).validate().expect("within the limit");
        }
    }

    #[test]
    fn hub_variables_layer_over_a_given_configuration_and_the_tools_variables_are_not_keys() {
        figment::Jail::expect_with(|jail| {
            let mut given = Config::default();
            given.read_models.max_batch = 7;
            jail.set_env("HUB_READ_MODELS__CACHE_MB", "48");
            // The test harness's and the setup's variables, not configuration keys.
            jail.set_env("HUB_NATS_SERVER", "/opt/nats-server");
            jail.set_env("HUB_LOG_FORMAT", "json");
            jail.set_env("HUB_CHROMIUM", "/usr/bin/chromium");
            let layered = given.clone().with_env()?;
            assert_eq!(layered.read_models.cache_mb, 48, "the variable");
            assert_eq!(layered.read_models.max_batch, 7, "the given value kept");
            // Any other HUB_ variable is a key, and an unknown one is refused.
            jail.set_env("HUB_READ_MODELS__CACHE", "48");
            let err = given.with_env().expect_err("unknown key");
            assert!(err.to_string().contains("cache"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[nats]\nurl = \"nats://x\"\nsync = true\n"))
            .extract::<Config>()
            .expect_err("unknown key");
        assert!(err.to_string().contains("sync"), "{err}");
    }
}
