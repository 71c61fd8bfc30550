//! The `hub` binary as a child process, for the tests that must kill it: SIGKILL at any
//! moment, or a crash point (`FAILPOINTS`) where it stops itself at one named instant.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hub_api::v1::care_command_service_client::CareCommandServiceClient;
use hub_api::v1::case_command_service_client::CaseCommandServiceClient;
use hub_api::v1::case_query_service_client::CaseQueryServiceClient;
use tonic::transport::{Channel, Endpoint};

use crate::nats::Nats;

/// How long a child hub may take to serve (a loaded 2-core machine).
const START_LIMIT: Duration = Duration::from_secs(60);

/// A `hub` process over a data dir, on a test nats-server.
pub struct HubProcess {
    child: Option<Child>,
    log: PathBuf,
    channel: Channel,
    addr: String,
}

/// How to start a child hub.
pub struct ProcessBuilder {
    binary: PathBuf,
    data_dir: PathBuf,
    nats_url: String,
    monitor_url: String,
    key_file: PathBuf,
    audit_key_file: PathBuf,
    /// The hub user's seed, on a server with accounts.
    nkey_file: Option<PathBuf>,
    failpoints: String,
    duplicate_window_secs: u64,
    /// More variables for the process (`OTEL_*`, `HUB_LOG_FORMAT`).
    env: Vec<(String, String)>,
}

impl ProcessBuilder {
    /// [`ProcessBuilder::start`], then waits until the command services serve: until
    /// `command_state` has caught up with the log far enough to rule out an earlier use of any
    /// request id (they answer UNAVAILABLE before, as a client would be told by health).
    pub async fn start_serving_commands(self) -> HubProcess {
        let hub = self.start().await;
        let mut health = tonic_health::pb::health_client::HealthClient::new(hub.channel());
        let started = Instant::now();
        loop {
            let answer = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: "gov.hub.v1.CaseCommandService".into(),
                })
                .await;
            if answer.is_ok_and(|a| {
                a.get_ref().status
                    == tonic_health::pb::health_check_response::ServingStatus::Serving as i32
            }) {
                return hub;
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "the command services did not serve within {START_LIMIT:?}:\n{}",
                tail(&hub.log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `binary` is the `hub` executable (`env!("CARGO_BIN_EXE_hub")` in the hub's tests).
    pub fn new(binary: &Path, data_dir: &Path, nats: &Nats) -> Self {
        Self {
            binary: binary.to_owned(),
            data_dir: data_dir.to_owned(),
            nats_url: nats.url().to_owned(),
            monitor_url: nats.monitor_url().to_owned(),
            key_file: nats.hash_key_file(),
            audit_key_file: nats.audit_key_file(),
            nkey_file: nats.hub_seed().map(|s| s.path().to_owned()),
            failpoints: String::new(),
            duplicate_window_secs: 120,
            env: Vec::new(),
        }
    }

    /// A child hub on a cluster: every node's client and monitoring URL, 3 replicas.
    pub fn on_cluster(binary: &Path, data_dir: &Path, cluster: &crate::Cluster) -> Self {
        Self {
            binary: binary.to_owned(),
            data_dir: data_dir.to_owned(),
            nats_url: cluster.urls(),
            monitor_url: cluster.monitor_urls(),
            key_file: cluster.hash_key_file(),
            audit_key_file: cluster.audit_key_file(),
            nkey_file: None,
            failpoints: String::new(),
            duplicate_window_secs: 120,
            env: vec![("HUB_NATS__REPLICAS".to_owned(), "3".to_owned())],
        }
    }

    /// Sets a variable of the process's environment.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Crash points, as the `fail` crate reads them (`after-append=return`).
    pub fn failpoints(mut self, failpoints: &str) -> Self {
        self.failpoints = failpoints.to_owned();
        self
    }

    pub fn duplicate_window_secs(mut self, secs: u64) -> Self {
        self.duplicate_window_secs = secs;
        self
    }

    /// Starts the process and waits until it serves gRPC; panics with its log otherwise.
    pub async fn start(self) -> HubProcess {
        std::fs::create_dir_all(&self.data_dir).expect("data dir");
        let log = self.data_dir.join(format!(
            "hub-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or_default()
        ));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut command = Command::new(&self.binary);
        // Only this test's settings: none of the caller's HUB_* variables.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("HUB_") {
                command.env_remove(name);
            }
        }
        command
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(["--nats-url", &self.nats_url])
            .args(["--nats-monitor-url", &self.monitor_url])
            .env("HUB_COMMANDS__HASH_KEY_FILE", &self.key_file)
            .env("HUB_AUDIT__SIGNING_KEY_FILE", &self.audit_key_file)
            .env(
                "HUB_NATS__DUPLICATE_WINDOW_SECS",
                self.duplicate_window_secs.to_string(),
            )
            .env("HUB_SUPERVISION_INTERVAL_MS", "50")
            // A killed instance's duties are taken over within seconds, not the default ten.
            .env("HUB_LEASE_MS", "3000")
            .env("HUB_IDENTITY__MODE", "development")
            .env("FAILPOINTS", &self.failpoints)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        // Only this test's OpenTelemetry settings too.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("OTEL_") {
                command.env_remove(name);
            }
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        match &self.nkey_file {
            Some(nkey_file) => command.env("HUB_NATS__NKEY_FILE", nkey_file),
            None => command.env("HUB_NATS__ACCEPT_NO_ISOLATION", "true"),
        };
        hub_log::server::stop_with_parent(&mut command);
        let mut child = command.spawn().expect("spawn the hub binary");
        let started = Instant::now();
        let addr = loop {
            if let Some(addr) = serving_addr(&log) {
                break addr;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("hub exited with {status} before serving:\n{}", tail(&log));
            }
            assert!(
                started.elapsed() < START_LIMIT,
                "hub did not serve within {START_LIMIT:?}:\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let channel = Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect_timeout(Duration::from_secs(5))
            .connect_lazy();
        HubProcess {
            child: Some(child),
            log,
            channel,
            addr,
        }
    }
}

/// The address in the hub's "hub serving gRPC addr=..." line (a text log) or its `addr`
/// field (a JSON log), once it is logged.
fn serving_addr(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("hub serving gRPC"))?;
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(line) {
        return json["fields"]["addr"].as_str().map(str::to_owned);
    }
    let rest = &line[line.find("addr=")? + 5..];
    Some(rest.split_whitespace().next()?.to_owned())
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut start = text.len().saturating_sub(4000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

impl HubProcess {
    pub fn commands(&self) -> CaseCommandServiceClient<Channel> {
        CaseCommandServiceClient::new(self.channel.clone())
    }

    pub fn care(&self) -> CareCommandServiceClient<Channel> {
        CareCommandServiceClient::new(self.channel.clone())
    }

    pub fn queries(&self) -> CaseQueryServiceClient<Channel> {
        CaseQueryServiceClient::new(self.channel.clone())
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The process's log so far (for assertion messages).
    pub fn log(&self) -> String {
        tail(&self.log)
    }

    /// Everything the process has written so far.
    pub fn whole_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `host:port` the hub serves gRPC and HTTP on.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Kills the process at once (SIGKILL), as a power cut would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the process to stop by itself (a crash point), within `limit`.
    pub async fn exited(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            let child = self.child.as_mut().expect("a running hub");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return status;
            }
            assert!(
                started.elapsed() < limit,
                "hub did not stop within {limit:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the process as an operator would (SIGTERM) and waits for it.
    pub async fn stop(mut self) -> ExitStatus {
        let pid = self.child.as_ref().map(|c| c.id()).expect("a running hub");
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        self.exited(Duration::from_secs(30)).await
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
