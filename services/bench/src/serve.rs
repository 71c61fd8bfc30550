//! The hub in a process of its own, so that the load client (this process) and the hub do
//! not share a runtime, and the hub's CPU and memory can be read from its own pid.
//!
//! The bench runs itself again (`std::env::current_exe()`) with the hidden subcommand
//! `serve-hub`, which runs `hub::run` with the configuration below and writes the address it
//! listens on to a file. The child stops when its stdin closes (the parent stops it that
//! way, or dies), on SIGTERM, and, through `stop_with_parent`, when the parent dies.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hub_log::server::{NatsServer, stop_with_parent};
use tokio::net::TcpListener;

/// The hub's configuration in the bench: the production defaults, on the bench's nats-server.
pub fn config(data_dir: &Path, nats_url: &str, monitor_url: &str) -> anyhow::Result<hub::Config> {
    // `HUB_*` variables first, as for the hub binary (`HUB_READ_MODELS__CACHE_MB=64`), and
    // the bench's own settings over them: a variable cannot move the hub to another server,
    // data dir or identity than the ones the bench measures against.
    let mut config = hub::Config {
        data_dir: data_dir.to_owned(),
        listen: ([127, 0, 0, 1], 0).into(),
        // A known instance, so the bench finds the hub's audit chain.
        instance: crate::audit::HUB_INSTANCE.to_owned(),
        ..hub::Config::default().with_env()?
    };
    config.nats.url = Some(nats_url.to_owned());
    config.nats.monitor_url = Some(monitor_url.to_owned());
    // One server of the bench's, without credentials, and durable (the guard is not waived).
    config.nats.nkey_file = None;
    config.nats.replicas = 1;
    config.nats.accept_durability_risk = false;
    // The benchmark's own server, without department accounts.
    config.nats.accept_no_isolation = true;
    // Departments named by header, as on a developer's machine.
    config.identity.mode = hub_api::identity::Mode::Development;
    // A hub on an external NATS is given its command hash key.
    std::fs::create_dir_all(data_dir)?;
    let key = data_dir.join("command-hash.key");
    std::fs::write(&key, "a".repeat(64))?;
    config.commands.hash_key_file = Some(key);
    // And its audit signing key.
    let audit_key = data_dir.join("audit-signing.key");
    std::fs::write(
        &audit_key,
        hub_audit::signing::CheckpointSigner::from_bytes(&crate::audit::SIGNING_KEY)
            .to_pkcs8_pem()
            .map_err(anyhow::Error::msg)?,
    )?;
    config.audit.signing_key_file = Some(audit_key);
    Ok(config)
}

/// The read models' settings of the bench's hub process (the defaults under `HUB_*`
/// variables), for the baselines that copy them. A variable the hub would refuse is an
/// error here too, so a baseline never runs on defaults the hub does not have.
pub fn read_models() -> anyhow::Result<hub::config::ReadModelsConfig> {
    let config = hub::Config::default().with_env()?;
    Ok(config.read_models)
}

/// What `hub-bench serve-hub` is given.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    nats_url: String,
    #[arg(long)]
    monitor_url: String,
    /// Where the hub's address is written once it listens.
    #[arg(long)]
    addr_file: PathBuf,
}

/// The child: runs the hub until stdin closes or SIGTERM comes.
pub async fn serve_hub(args: ServeArgs) -> anyhow::Result<()> {
    // Logs and metrics as the hub binary sets them up (its log goes to the parent's file).
    let telemetry = hub_telemetry::init(hub_telemetry::LogFormat::Text);
    let outcome = serve(args).await;
    telemetry.shutdown().await;
    outcome
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = config(&args.data_dir, &args.nats_url, &args.monitor_url)?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    // Written aside and renamed, so the parent never reads half an address.
    let aside = args.addr_file.with_extension("new");
    std::fs::write(&aside, addr.to_string())?;
    std::fs::rename(&aside, &args.addr_file)?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    // End of stdin (or an error reading it) is the signal to stop, read on a thread of its
    // own (std's blocking read; the process exits without waiting for it).
    let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(std::io::Read::read(&mut stdin, &mut buf), Ok(n) if n > 0) {}
        let _ = closed_tx.send(());
    });
    // Once told to stop, the hub has `STOP_GRACE` to do so; past it (its NATS gone with a
    // dead parent, say) the process ends anyway, so that it never outlives the bench.
    let stopping = Arc::new(tokio::sync::Notify::new());
    let told = stopping.clone();
    let run = hub::run(config, listener, async move {
        tokio::select! {
            _ = closed => {}
            _ = terminate.recv() => {}
        }
        told.notify_one();
    });
    tokio::select! {
        outcome = run => outcome,
        () = async {
            stopping.notified().await;
            tokio::time::sleep(STOP_GRACE).await;
        } => anyhow::bail!("the hub did not stop within {STOP_GRACE:?} of being told to"),
    }
}

/// How long the hub process is given to stop once told to.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The parent's handle on the hub process.
pub struct HubProcess {
    child: Child,
    pub addr: std::net::SocketAddr,
    log: PathBuf,
}

impl HubProcess {
    /// Starts `hub-bench serve-hub` on `nats` with its data in `data_dir` and waits until it
    /// listens, for at most `limit` (a hub on a big log folds it into its indexes first).
    /// Its log goes to `data_dir` with the extension `log`.
    pub async fn start(
        nats: &NatsServer,
        data_dir: &Path,
        limit: Duration,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let addr_file = data_dir.with_extension("addr");
        let _ = std::fs::remove_file(&addr_file);
        let log_path = data_dir.with_extension("log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("serve-hub")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--nats-url", nats.client_url()])
            .args(["--monitor-url", nats.monitor_url()])
            .arg("--addr-file")
            .arg(&addr_file)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log);
        stop_with_parent(&mut command);
        let mut child = command.spawn()?;
        let started = Instant::now();
        let addr = loop {
            if let Ok(text) = std::fs::read_to_string(&addr_file) {
                break text.trim().parse()?;
            }
            if let Some(status) = child.try_wait()? {
                anyhow::bail!(
                    "the hub process exited before it listened ({status}); see {}",
                    log_path.display()
                );
            }
            anyhow::ensure!(
                started.elapsed() < limit,
                "the hub process did not listen within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Ok(Self {
            child,
            addr,
            log: log_path,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The hub's log file.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// What the hub's log says of warnings and errors, as a line for the notes (those about
    /// the bench's NATS having no department accounts and about departments named by
    /// header are expected, and left out).
    pub fn log_findings(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let found: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .filter(|l| !l.contains("departments NOT isolated") && !l.contains("DEVELOPMENT MODE"))
            .collect();
        match found.first() {
            None => format!(
                "the hub logged no warning or error ({})",
                self.log.display()
            ),
            Some(first) => format!(
                "the hub logged {} warnings or errors ({}); the first: {first}",
                found.len(),
                self.log.display()
            ),
        }
    }

    /// Fails if the hub process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => anyhow::bail!("the hub process exited ({status})"),
            None => Ok(()),
        }
    }

    /// Closes its stdin (it shuts down) and waits for it; kills it after `grace`.
    pub async fn stop(mut self, grace: Duration) -> anyhow::Result<()> {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(status.success(), "the hub process ended with {status}");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.child.kill()?;
        self.child.wait()?;
        anyhow::bail!("the hub process did not stop within {grace:?}; killed")
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        // Stopped already, or the bench is failing: never leave it running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
