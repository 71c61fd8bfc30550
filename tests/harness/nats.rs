//! A real nats-server for a test.

use async_nats::jetstream;
use hub_log::server::{NatsServer, ServerOptions, locate_binary};
use tempfile::TempDir;

/// A nats-server in its own temp dir. Fields drop in order: the server is killed, then the
/// dir removed.
pub struct Nats {
    server: NatsServer,
    dir: TempDir,
}

const HASH_KEY_FILE: &str = "hub-command-hash.key";

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

impl Nats {
    /// A server as the hub requires it: JetStream with `sync_interval: always`, monitoring on.
    pub async fn start() -> Self {
        Self::start_with(true).await
    }

    /// A server with JetStream's default fsync interval (two minutes): one the hub must refuse.
    pub async fn start_unsafe() -> Self {
        Self::start_with(false).await
    }

    async fn start_with(sync_always: bool) -> Self {
        let binary = locate_binary().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new()
            .prefix("hub-test-nats-")
            .tempdir()
            .expect("temp dir");
        let mut options = ServerOptions::new(dir.path(), "test");
        options.sync_always = sync_always;
        let server = NatsServer::start(&binary, options)
            .await
            .unwrap_or_else(|e| panic!("starting nats-server: {e}"));
        std::fs::write(dir.path().join(HASH_KEY_FILE), random_key()).expect("hash key file");
        Self { server, dir }
    }

    /// The command hash key every hub on this server shares, as production requires of all
    /// instances on one log.
    pub fn hash_key_file(&self) -> std::path::PathBuf {
        self.dir.path().join(HASH_KEY_FILE)
    }

    pub fn url(&self) -> &str {
        self.server.client_url()
    }

    pub fn monitor_url(&self) -> &str {
        self.server.monitor_url()
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to test nats-server")
    }

    pub async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.client().await)
    }
}
