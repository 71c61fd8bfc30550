//! A real nats-server for a test.

use std::path::{Path, PathBuf};

use async_nats::jetstream;
use hub_log::credentials::{Credentials, Seed};
use hub_log::names::department_inbox_prefix;
use hub_log::server::{NatsServer, ServerOptions, locate_binary};
use tempfile::TempDir;

/// A nats-server in its own temp dir. Fields drop in order: the server is killed, then the
/// dir removed.
pub struct Nats {
    server: NatsServer,
    /// With accounts: the seeds of the hub's user and of every unit's.
    credentials: Option<Credentials>,
    dir: TempDir,
}

const HASH_KEY_FILE: &str = "hub-command-hash.key";
/// The audit signing key every hub on this server shares, and its public key.
const AUDIT_KEY_FILE: &str = "hub-audit-signing.key";
const AUDIT_PUBLIC_KEY_FILE: &str = "hub-audit-signing.pub";

/// 64 hex digits from the clock and the process: a test key, unlike every other test's.
fn random_key() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{nanos:032x}{:032x}",
        u128::from(std::process::id()) << 64 | nanos.rotate_left(17)
    )
}

/// The command hash key and the audit signing key (and its public key) that every hub on one
/// log shares, written under `dir` ([`hash_key_file`] and the others name them).
pub(crate) fn write_keys(dir: &Path) {
    std::fs::write(dir.join(HASH_KEY_FILE), random_key()).expect("hash key file");
    let mut secret = [0u8; 32];
    for (byte, pair) in secret.iter_mut().zip(random_key().as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).expect("hex"), 16).expect("hex");
    }
    let signer = hub_audit::signing::CheckpointSigner::from_bytes(&secret);
    std::fs::write(
        dir.join(AUDIT_KEY_FILE),
        signer.to_pkcs8_pem().expect("pem"),
    )
    .expect("audit key file");
    std::fs::write(
        dir.join(AUDIT_PUBLIC_KEY_FILE),
        signer.public_key_pem().expect("pem"),
    )
    .expect("audit public key file");
}

pub(crate) fn hash_key_file(dir: &Path) -> PathBuf {
    dir.join(HASH_KEY_FILE)
}

pub(crate) fn audit_key_file(dir: &Path) -> PathBuf {
    dir.join(AUDIT_KEY_FILE)
}

impl Nats {
    /// A server as the hub requires it: JetStream with `sync_interval: always`, monitoring on.
    pub async fn start() -> Self {
        Self::start_with(true, false).await
    }

    /// A server with JetStream's default fsync interval (two minutes): one the hub must refuse.
    pub async fn start_unsafe() -> Self {
        Self::start_with(false, false).await
    }

    /// A server as the hub's own runs: the hub's account (JetStream) and one account per unit
    /// of the demo registry, keys generated for this server. Clients connect as the hub
    /// ([`Nats::client`]) or as a unit ([`Nats::unit_options`]); a hub built with
    /// [`crate::HubBuilder::on`] connects with the hub's seed.
    pub async fn start_with_accounts() -> Self {
        Self::start_with(true, true).await
    }

    async fn start_with(sync_always: bool, accounts: bool) -> Self {
        let binary = locate_binary().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new()
            .prefix("hub-test-nats-")
            .tempdir()
            .expect("temp dir");
        let mut options = ServerOptions::new(dir.path(), "test");
        options.sync_always = sync_always;
        let credentials = accounts.then(|| {
            let registry = hub::load_registry(None).expect("demo reference data");
            let (credentials, block) =
                hub::nats_accounts::prepare(&dir.path().join("secrets"), &registry)
                    .expect("keys and accounts");
            options.accounts = Some(block);
            credentials
        });
        let server = NatsServer::start(&binary, options)
            .await
            .unwrap_or_else(|e| panic!("starting nats-server: {e}"));
        write_keys(dir.path());
        Self {
            server,
            credentials,
            dir,
        }
    }

    /// The seeds of the hub and of every unit, on a server started with accounts.
    pub fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    /// The hub user's seed, on a server started with accounts.
    pub fn hub_seed(&self) -> Option<&Seed> {
        self.credentials.as_ref().map(|c| &c.hub)
    }

    /// How unit `code` connects: its seed and its own inbox prefix. Panics on a server
    /// without accounts or for a unit the registry does not have.
    pub fn unit_options(&self, code: &str) -> async_nats::ConnectOptions {
        let seed = self
            .credentials
            .as_ref()
            .and_then(|c| c.unit(code))
            .unwrap_or_else(|| panic!("no seed for unit {code}: start the server with accounts"));
        async_nats::ConnectOptions::with_nkey(seed.seed().to_owned())
            .custom_inbox_prefix(department_inbox_prefix(code))
            .name(format!("test-{code}"))
    }

    /// The command hash key every hub on this server shares, as production requires of all
    /// instances on one log.
    pub fn hash_key_file(&self) -> PathBuf {
        hash_key_file(self.dir.path())
    }

    /// The audit signing key (PKCS#8 PEM) every hub on this server is given.
    pub fn audit_key_file(&self) -> PathBuf {
        audit_key_file(self.dir.path())
    }

    /// Its public key, which verifies the exports of those hubs.
    pub fn audit_public_key_file(&self) -> PathBuf {
        self.dir.path().join(AUDIT_PUBLIC_KEY_FILE)
    }

    pub fn url(&self) -> &str {
        self.server.client_url()
    }

    pub fn monitor_url(&self) -> &str {
        self.server.monitor_url()
    }

    /// A client of the hub's account (as the hub's user, on a server with accounts).
    pub async fn client(&self) -> async_nats::Client {
        let options = match self.hub_seed() {
            Some(seed) => async_nats::ConnectOptions::with_nkey(seed.seed().to_owned()),
            None => async_nats::ConnectOptions::new(),
        };
        options
            .connect(self.url())
            .await
            .expect("connect to test nats-server")
    }

    pub async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.client().await)
    }
}
