//! A real `nats-server` process: the hub's own child in development mode, and the servers the
//! tests start.
//!
//! The binary is the pinned one the setup installs (`deploy/setup.sh`, nats-server 2.15.1 into
//! `deploy/.tools/`) unless `HUB_NATS_SERVER` names another, so every machine runs the same
//! server whatever is on PATH. Ports are chosen by the server itself (`-1`) and read back from
//! its ports file, so two servers never race for a port. The server listens on loopback only.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Environment variable naming a nats-server binary to use instead of the installed one.
pub const BINARY_ENV: &str = "HUB_NATS_SERVER";

/// Where `deploy/setup.sh` puts the binary, relative to the repository.
pub const INSTALLED_BINARY: &str = "deploy/.tools/bin/nats-server";

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "nats-server not found (looked at {looked}); run `bash deploy/setup.sh` to install the pinned \
         nats-server 2.15.1 into deploy/.tools, or set {BINARY_ENV} to a nats-server binary"
    )]
    BinaryMissing { looked: String },
    #[error("cannot prepare nats-server files in {dir}: {source}")]
    Files {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start {binary}: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("nats-server exited before it was ready ({status}); its log ends with:\n{log_tail}")]
    Exited {
        status: ExitStatus,
        log_tail: String,
    },
    #[error("nats-server did not report its ports within {0:?}; its log ends with:\n{1}")]
    NotReady(Duration, String),
}

/// Finds the nats-server binary: `HUB_NATS_SERVER`, else the project-local install.
pub fn locate_binary() -> Result<PathBuf, ServerError> {
    if let Some(path) = std::env::var_os(BINARY_ENV) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(ServerError::BinaryMissing {
                looked: format!("{BINARY_ENV}={}", path.display()),
            })
        };
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let candidates = [PathBuf::from(INSTALLED_BINARY), repo.join(INSTALLED_BINARY)];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| ServerError::BinaryMissing {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// How to run a server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Holds the config, the ports file, the log and (under `jetstream/`) the store.
    pub dir: PathBuf,
    pub server_name: String,
    /// Client port; `None` lets the server pick a free one.
    pub client_port: Option<u16>,
    /// Monitoring port; `None` lets the server pick a free one.
    pub monitor_port: Option<u16>,
    /// `sync_interval: always`. Only the guard's tests turn this off.
    pub sync_always: bool,
    /// An `accounts { ... }` block ([`crate::accounts::render`]); `None`: no accounts and no
    /// authentication (everyone in the global account, as in the tests that need no more).
    pub accounts: Option<String>,
    /// A member of a cluster: `None` runs a single server.
    pub cluster: Option<ClusterOptions>,
}

/// How a server joins a cluster on loopback (the test harness's 3 nodes).
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    pub name: String,
    /// This member's route port: routes are configured up front, so it is chosen before start.
    pub port: u16,
    /// Every member's route port (this one's is skipped).
    pub peers: Vec<u16>,
}

impl ClusterOptions {
    fn render(&self) -> String {
        let routes = self
            .peers
            .iter()
            .filter(|p| **p != self.port)
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "cluster {{\n  name: {name}\n  listen: \"127.0.0.1:{port}\"\n  routes: [{routes}]\n}}\n",
            name = serde_json::to_string(&self.name).unwrap_or_default(),
            port = self.port,
        )
    }
}

impl ServerOptions {
    pub fn new(dir: impl Into<PathBuf>, server_name: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            server_name: server_name.into(),
            client_port: None,
            monitor_port: None,
            sync_always: true,
            accounts: None,
            cluster: None,
        }
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.join("jetstream")
    }

    fn ports_dir(&self) -> PathBuf {
        self.dir.join("ports")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("nats-server.log")
    }

    /// The server's configuration file, in nats-server's own format. With accounts, the
    /// server's JetStream serves the one account that enables it (the hub's).
    pub fn render(&self) -> String {
        let port = |p: Option<u16>| p.map_or("-1".to_owned(), |p| p.to_string());
        let quote =
            |p: PathBuf| serde_json::to_string(&p.display().to_string()).unwrap_or_default();
        let sync = if self.sync_always {
            "\n  sync_interval: always"
        } else {
            ""
        };
        format!(
            "# written by the hub; edits are overwritten\n\
             server_name: {name}\n\
             listen: \"127.0.0.1:{client}\"\n\
             http: \"127.0.0.1:{monitor}\"\n\
             ports_file_dir: {ports}\n\
             jetstream {{\n  store_dir: {store}{sync}\n}}\n{cluster}{accounts}",
            name = serde_json::to_string(&self.server_name).unwrap_or_default(),
            client = port(self.client_port),
            monitor = port(self.monitor_port),
            ports = quote(self.ports_dir()),
            store = quote(self.store_dir()),
            cluster = self
                .cluster
                .as_ref()
                .map(ClusterOptions::render)
                .unwrap_or_default(),
            accounts = self.accounts.as_deref().unwrap_or_default(),
        )
    }
}

#[derive(Debug, Deserialize)]
struct PortsFile {
    nats: Vec<String>,
    monitoring: Vec<String>,
}

/// A running nats-server. It is killed when dropped; [`NatsServer::stop`] stops it gracefully.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    options: ServerOptions,
    client_url: String,
    monitor_url: String,
}

impl NatsServer {
    /// Starts a server and waits until it reports its ports.
    pub async fn start(binary: &Path, options: ServerOptions) -> Result<Self, ServerError> {
        Self::start_within(binary, options, Duration::from_secs(20)).await
    }

    /// [`Self::start`], waiting at most `limit` for it to listen (a server recovering a big
    /// store after a crash rebuilds its indexes before it listens).
    pub async fn start_within(
        binary: &Path,
        options: ServerOptions,
        limit: Duration,
    ) -> Result<Self, ServerError> {
        let files = |source| ServerError::Files {
            dir: options.dir.clone(),
            source,
        };
        std::fs::create_dir_all(options.ports_dir()).map_err(files)?;
        // A ports file left by an earlier process would name dead ports.
        for entry in std::fs::read_dir(options.ports_dir())
            .map_err(files)?
            .flatten()
        {
            let _ = std::fs::remove_file(entry.path());
        }
        let config_path = options.dir.join("nats-server.conf");
        std::fs::write(&config_path, options.render()).map_err(files)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(options.log_path())
            .map_err(files)?;
        let log_err = log.try_clone().map_err(files)?;

        let mut command = Command::new(binary);
        command
            .arg("-c")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        stop_with_parent(&mut command);
        let child = command.spawn().map_err(|source| ServerError::Spawn {
            binary: binary.to_owned(),
            source,
        })?;
        let mut server = Self {
            child: Some(child),
            options,
            client_url: String::new(),
            monitor_url: String::new(),
        };
        server.wait_for_ports(limit).await?;
        Ok(server)
    }

    async fn wait_for_ports(&mut self, limit: Duration) -> Result<(), ServerError> {
        let started = Instant::now();
        let pid = self.pid().unwrap_or_default();
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(ServerError::Exited {
                    status,
                    log_tail: self.log_tail(),
                });
            }
            if let Some(ports) = self.read_ports(pid)
                && let (Some(client), Some(monitor)) =
                    (ports.nats.first(), ports.monitoring.first())
            {
                self.client_url = client.clone();
                self.monitor_url = monitor.clone();
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(ServerError::NotReady(limit, self.log_tail()));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    fn read_ports(&self, pid: u32) -> Option<PortsFile> {
        let suffix = format!("_{pid}.ports");
        let entry = std::fs::read_dir(self.options.ports_dir())
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?;
        // The server writes the file once it listens; a half-written file fails to parse and is read again.
        serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()
    }

    /// The last few lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let Ok(mut file) = std::fs::File::open(self.options.log_path()) else {
            return String::new();
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = file.seek(SeekFrom::Start(len.saturating_sub(2000)));
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        text.lines()
            .rev()
            .take(12)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    pub fn monitor_url(&self) -> &str {
        &self.monitor_url
    }

    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once the process has exited.
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok().flatten()?;
        self.child = None;
        Some(status)
    }

    /// Asks the server to shut down (SIGTERM) and waits for it; kills it after `grace`.
    pub async fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        let pid = self.pid()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exited() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill()
    }

    /// Kills the server at once (SIGKILL) and reaps it, as a crash would.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes the kernel stop the server (SIGTERM) if the process that started it dies, so a
/// crashed or killed hub never leaves an orphan holding the store.
#[allow(unsafe_code)]
pub fn stop_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only makes one
    // async-signal-safe system call (prctl).
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_does_not_listen_within_its_limit_is_refused_and_one_that_does_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Stands in for a nats-server still recovering a big store: it never listens.
        let slow = dir.path().join("slow-nats-server");
        std::fs::write(&slow, "#!/bin/sh\nexec sleep 60\n").expect("script");
        std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let options = ServerOptions::new(dir.path().join("n"), "n");
        let limit = Duration::from_millis(300);
        let mut tries = 0;
        let refused = loop {
            match NatsServer::start_within(&slow, options.clone(), limit).await {
                // The script was just written: a child forked meanwhile may still hold it
                // open for a moment (ETXTBSY).
                Err(ServerError::Spawn { source, .. })
                    if source.raw_os_error() == Some(26) && tries < 50 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => break other,
            }
        };
        assert!(
            matches!(refused, Err(ServerError::NotReady(l, _)) if l == limit),
            "{:?}",
            refused.map(|s| s.client_url().to_owned())
        );

        let binary = locate_binary().expect("nats-server (bash deploy/setup.sh)");
        let server = NatsServer::start_within(&binary, options, Duration::from_secs(30))
            .await
            .expect("a real server listens within the limit");
        assert!(server.client_url().starts_with("nats://127.0.0.1:"));
    }

    #[test]
    fn config_is_loopback_only_and_syncs_always() {
        let options = ServerOptions::new("/tmp/x y", "hub-dev");
        let text = options.render();
        assert!(text.contains("listen: \"127.0.0.1:-1\""), "{text}");
        assert!(text.contains("http: \"127.0.0.1:-1\""), "{text}");
        assert!(text.contains("sync_interval: always"), "{text}");
        assert!(text.contains("store_dir: \"/tmp/x y/jetstream\""), "{text}");
        let unsafe_text = ServerOptions {
            sync_always: false,
            ..options
        }
        .render();
        assert!(!unsafe_text.contains("sync_interval"), "{unsafe_text}");
    }

    #[test]
    fn a_cluster_member_routes_to_the_others_on_loopback() {
        let mut options = ServerOptions::new("/tmp/x", "n1");
        assert!(!options.render().contains("cluster"));
        options.cluster = Some(ClusterOptions {
            name: "hub-test".into(),
            port: 6002,
            peers: vec![6001, 6002, 6003],
        });
        let text = options.render();
        assert!(text.contains("listen: \"127.0.0.1:6002\""), "{text}");
        assert!(
            text.contains(
                "routes: [\"nats-route://127.0.0.1:6001\", \"nats-route://127.0.0.1:6003\"]"
            ),
            "{text}"
        );
        assert!(text.contains("name: \"hub-test\""), "{text}");
    }

    #[test]
    fn accounts_follow_the_jetstream_block() {
        let mut options = ServerOptions::new("/tmp/x", "hub-dev");
        assert!(!options.render().contains("accounts"));
        options.accounts = Some("accounts {\n}\n".into());
        let text = options.render();
        assert!(
            text.contains("sync_interval: always\n}\naccounts {\n}\n"),
            "{text}"
        );
    }
}
