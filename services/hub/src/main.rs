//! `hub`: the city data-sharing hub server.
//!
//! With no NATS configured it runs everything on embedded defaults: its own nats-server
//! child (JetStream under the data dir, loopback only), the read models in sled beside it,
//! and the demo reference data. Ctrl-C stops it cleanly, the child included.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use figment::providers::Serialized;
use figment::value::{Dict, Value};
use tokio::net::TcpListener;

#[derive(Debug, Parser)]
#[command(
    name = "hub",
    version,
    about = "The city data-sharing hub: event-sourced on NATS JetStream"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Configuration file (TOML); see deploy/hub.example.toml.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Folder for the hub's data (nats-server store, read models).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// gRPC address to listen on.
    #[arg(long)]
    listen: Option<String>,
    /// Use this NATS instead of starting a nats-server child (a cluster: every member's URL,
    /// comma-separated).
    #[arg(long)]
    nats_url: Option<String>,
    /// Monitoring endpoint of the NATS given by --nats-url, for the durability guard (a
    /// cluster: every member's, comma-separated).
    #[arg(long)]
    nats_monitor_url: Option<String>,
    /// Start against a NATS whose durability cannot be checked (no monitoring URL).
    #[arg(long)]
    accept_durability_risk: bool,
    /// Start against a NATS without a hub seed (nats.nkey_file): departments not isolated.
    #[arg(long)]
    accept_no_isolation: bool,
    /// Development mode (identity.mode): the x-hub-department header names the calling
    /// department unproven. Loopback only; the hub says so at start-up.
    #[arg(long)]
    dev: bool,
    /// Restore mode: takes a backup of the event log (`hubctl import`) into an empty hub, with
    /// the command services off (UNAVAILABLE) and no deadline supervision meanwhile, so
    /// nothing else writes to the log; restart without it afterwards.
    #[arg(long)]
    restore: bool,
    /// Log lines as `text` or `json` (one object per line, with the trace id).
    #[arg(long, env = "HUB_LOG_FORMAT", default_value = "text")]
    log_format: hub_telemetry::LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes the NATS accounts of the hub and of every unit of the reference data (the
    /// configured file, else the demo data) for a nats-server you run yourself: DIR/accounts.conf
    /// to include in its configuration, and the users' seeds DIR/hub.nk and DIR/<unit>.nk
    /// (mode 0600; seeds already in DIR are kept).
    NatsAccounts {
        /// Folder to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Writes a development CA for department identity: DIR/ca.pem, the hub's server
    /// certificate DIR/hub.pem (localhost and every --host), per unit of the reference data a
    /// client certificate DIR/units/<unit>.pem named by its code and a signed token
    /// DIR/units/<unit>.token, the token public key, and DIR/identity.toml, the [identity]
    /// lines for the hub's configuration. Keys and tokens are mode 0600; a CA and token key
    /// already in DIR are kept, so what was handed out before stays valid.
    DevCa {
        /// Folder to write into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A name or IP address the hub is reached at, beyond localhost (repeatable).
        #[arg(long = "host", value_name = "NAME")]
        hosts: Vec<String>,
        /// How long the units' tokens are valid, in days.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
        token_days: u32,
    },
    /// The audit log: an auditor's export from a running hub, and its verification offline.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// Who asks a hub for an export, and which hub.
#[derive(Debug, clap::Args)]
struct CallerArgs {
    /// The hub's gRPC address (https:// with TLS).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051")]
    hub: String,
    /// The auditor unit, as x-hub-department (a hub in development mode only).
    #[arg(long, value_name = "CODE")]
    department: Option<String>,
    /// A signed token of the auditor unit (as `hub dev-ca` writes them).
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// The auditor unit's client certificate (PEM), with --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// The CA (PEM) the hub's certificate is checked against.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// The person acting (x-hub-user).
    #[arg(long)]
    user: String,
    /// Why (x-hub-purpose), e.g. the inspection's reference.
    #[arg(long)]
    purpose: String,
}

impl CallerArgs {
    fn caller(&self) -> hub::audit_cli::Caller {
        hub::audit_cli::Caller {
            hub: self.hub.clone(),
            department: self.department.clone(),
            token_file: self.token_file.clone(),
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
            ca_file: self.ca.clone(),
            user: self.user.clone(),
            purpose: self.purpose.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Asks a running hub (AuditService, auditors only) for an export of its audit log up to
    /// a checkpoint it signs for the export, and writes it to FILE.
    ///
    /// Example: hub audit export --hub http://127.0.0.1:50051 --department
    /// discipline-inspection --user inspector-01 --purpose "inspection 2026-17" --out
    /// audit.export
    Export {
        #[command(flatten)]
        caller: CallerArgs,
        /// Where to write the export.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Asks a running hub (auditors only) for one aggregate's history with the proof that the
    /// event log holds it as it is (against the log's chained digest, at a head the hub signs
    /// for the export), and writes it to FILE. A care record's is refused: the proof would
    /// carry its personal data in clear.
    ///
    /// Example: hub audit export-history --aggregate case/<id> --department
    /// discipline-inspection --user inspector-01 --purpose "inspection 2026-17" --out
    /// case.history
    ExportHistory {
        /// The aggregate, as case/<id> or grant/<id>.
        #[arg(long)]
        aggregate: String,
        #[command(flatten)]
        caller: CallerArgs,
        /// Where to write the export.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Verifies an aggregate's history export with the hub's public key alone. Exits 0 when
    /// the events are what the log stored, 2 naming the first item that is not, 1 when the
    /// file or a key cannot be read.
    ///
    /// Example: hub audit verify-history --file case.history --public-key
    /// hub-data/secrets/audit-signing.pub
    VerifyHistory {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The hub's audit public key (SPKI PEM); repeatable.
        #[arg(long = "public-key", value_name = "FILE", required = true)]
        public_keys: Vec<PathBuf>,
    },
    /// Verifies an export with the hub's public key alone (no hub, no NATS). Exits 0 when
    /// the export is what the hub stored and signed, 2 naming the first item that is not, 1
    /// when the file or a key cannot be read.
    ///
    /// Example: hub audit verify --file audit.export --public-key
    /// hub-data/secrets/audit-signing.pub
    Verify {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The hub's audit public key (SPKI PEM; audit-signing.pub beside a generated signing
        /// key). Repeat it for every key that signed: earlier keys after a rotation.
        #[arg(long = "public-key", value_name = "FILE", required = true)]
        public_keys: Vec<PathBuf>,
        /// An earlier export of the same hub: everything it vouched for must be in this one,
        /// unchanged (repeatable). Keep each export to check the next against it.
        #[arg(long, value_name = "FILE")]
        previous: Vec<PathBuf>,
    },
}

impl Cli {
    /// The flags that were given, as configuration keys.
    fn overrides(&self) -> Serialized<Dict> {
        let mut top = Dict::new();
        let mut nats = Dict::new();
        if let Some(v) = &self.data_dir {
            top.insert("data_dir".into(), Value::from(v.display().to_string()));
        }
        if let Some(v) = &self.listen {
            top.insert("listen".into(), Value::from(v.clone()));
        }
        if let Some(v) = &self.nats_url {
            nats.insert("url".into(), Value::from(v.clone()));
        }
        if let Some(v) = &self.nats_monitor_url {
            nats.insert("monitor_url".into(), Value::from(v.clone()));
        }
        if self.accept_durability_risk {
            nats.insert("accept_durability_risk".into(), Value::from(true));
        }
        if self.accept_no_isolation {
            nats.insert("accept_no_isolation".into(), Value::from(true));
        }
        if self.restore {
            top.insert("restore".into(), Value::from(true));
        }
        if self.dev {
            let mut identity = Dict::new();
            identity.insert("mode".into(), Value::from("development"));
            top.insert("identity".into(), Value::from(identity));
        }
        if !nats.is_empty() {
            top.insert("nats".into(), Value::from(nats));
        }
        Serialized::defaults(top)
    }
}

/// Completes on Ctrl-C or SIGTERM. A signal that cannot be listened for is logged; if
/// neither can, the hub runs until killed.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %err, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; ctrl-c stops the hub");
                ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Crash points for the crash tests, read from FAILPOINTS; empty unless built with the
    // `failpoints` feature.
    let _failpoints = hub_store::failpoint::from_env();
    // Logs, traces (exported over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT names a collector)
    // and metrics; what is still queued is exported on the way out.
    let telemetry = hub_telemetry::init(cli.log_format);
    if let Some(endpoint) = &telemetry.traces_endpoint {
        tracing::info!(%endpoint, "exporting traces over OTLP");
    }
    let outcome = match start(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err:#}");
            eprintln!("hub: {err:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    outcome
}

async fn start(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Audit(command)) = &cli.command {
        return audit(command).await;
    }
    let config = hub::Config::load(cli.config.as_deref(), cli.overrides())?;
    match &cli.command {
        Some(Command::NatsAccounts { out }) => return nats_accounts(&config, out),
        Some(Command::DevCa {
            out,
            hosts,
            token_days,
        }) => {
            let options = hub::dev_ca::DevCaOptions {
                hosts: hosts.clone(),
                token_days: *token_days,
                now: jiff::Timestamp::now(),
            };
            return dev_ca(&config, out, &options);
        }
        Some(Command::Audit(_)) | None => {}
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("binding {}: {e}", config.listen))?;
    hub::run(config, listener, shutdown_signal()).await
}

/// `hub audit export`, `export-history`, `verify` and `verify-history` (the verifiers exit
/// 2 when an export is tampered with).
async fn audit(command: &AuditCommand) -> anyhow::Result<()> {
    use hub::audit_cli as cli;
    match command {
        AuditCommand::Export { caller, out } => {
            written(out, cli::export(&caller.caller(), out).await?);
            Ok(())
        }
        AuditCommand::ExportHistory {
            aggregate,
            caller,
            out,
        } => {
            written(
                out,
                cli::export_history(&caller.caller(), aggregate, out).await?,
            );
            Ok(())
        }
        AuditCommand::Verify {
            file,
            public_keys,
            previous,
        } => verified(cli::verify(file, public_keys, previous), cli::describe),
        AuditCommand::VerifyHistory { file, public_keys } => verified(
            cli::verify_history(file, public_keys),
            cli::describe_history,
        ),
    }
}

fn written(out: &std::path::Path, exported: hub::audit_cli::Exported) {
    println!(
        "wrote {} ({} items, {} bytes)",
        out.display(),
        exported.items,
        exported.bytes
    );
}

/// Prints what a verifier found; a tampered export ends the process with status 2.
fn verified<T>(
    outcome: Result<T, hub::audit_cli::NotVerified>,
    describe: fn(&T) -> String,
) -> anyhow::Result<()> {
    match outcome {
        Ok(found) => {
            println!("{}", describe(&found));
            Ok(())
        }
        Err(hub::audit_cli::NotVerified::Tampered(tampered)) => {
            println!("TAMPERED: {tampered}");
            std::process::exit(2);
        }
        Err(err) => Err(anyhow::anyhow!("{err}")),
    }
}

/// `hub nats-accounts --out DIR`: says what it wrote, never a seed.
fn nats_accounts(config: &hub::Config, out: &std::path::Path) -> anyhow::Result<()> {
    let registry = hub::load_registry(config.reference_data.as_deref())?;
    let (file, credentials) = hub::nats_accounts::write(out, &registry)?;
    println!("accounts configuration: {}", file.display());
    println!(
        "hub seed (nats.nkey_file): {}",
        credentials.hub.path().display()
    );
    for (code, seed) in &credentials.units {
        println!("{code} seed: {}", seed.path().display());
    }
    Ok(())
}

/// `hub dev-ca --out DIR`: says what it wrote, never a key or a token.
fn dev_ca(
    config: &hub::Config,
    out: &std::path::Path,
    options: &hub::dev_ca::DevCaOptions,
) -> anyhow::Result<()> {
    let registry = hub::load_registry(config.reference_data.as_deref())?;
    let written = hub::dev_ca::write(out, &registry, options)?;
    println!(
        "CA certificate (identity.client_ca_file): {}",
        written.ca_cert.display()
    );
    println!(
        "CA key (keep; hand out to no one): {}",
        written.ca_key.display()
    );
    println!(
        "hub certificate (identity.tls_cert_file): {}",
        written.server_cert.display()
    );
    println!(
        "hub key (identity.tls_key_file): {}",
        written.server_key.display()
    );
    println!(
        "token public key (identity.token_public_key_file): {}",
        written.token_public_key.display()
    );
    println!(
        "token signing key (keep; hand out to no one): {}",
        written.token_signing_key.display()
    );
    println!("hub configuration lines: {}", written.config.display());
    for unit in &written.units {
        println!(
            "{} certificate: {} key: {} token: {}",
            unit.code,
            unit.cert.display(),
            unit.key.display(),
            unit.token.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_accounts_is_a_subcommand_with_an_out_dir() {
        let cli =
            Cli::try_parse_from(["hub", "nats-accounts", "--out", "nats-keys"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::NatsAccounts { out }) if out == std::path::Path::new("nats-keys")
        ));
        assert!(Cli::try_parse_from(["hub", "nats-accounts"]).is_err());
        let plain = Cli::try_parse_from(["hub", "--nats-url", "nats://x"]).expect("parses");
        assert!(plain.command.is_none());
    }

    #[test]
    fn dev_ca_is_a_subcommand_with_an_out_dir_hosts_and_token_days() {
        let cli = Cli::try_parse_from(["hub", "dev-ca", "--out", "ca"]).expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::DevCa { out, hosts, token_days: 30 })
                if out == std::path::Path::new("ca") && hosts.is_empty()
        ));
        let cli = Cli::try_parse_from([
            "hub",
            "dev-ca",
            "--out",
            "ca",
            "--host",
            "hub.city.example",
            "--host",
            "10.0.0.7",
            "--token-days",
            "7",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::DevCa { hosts, token_days: 7, .. })
                if hosts == ["hub.city.example", "10.0.0.7"]
        ));
        assert!(Cli::try_parse_from(["hub", "dev-ca"]).is_err());
        assert!(
            Cli::try_parse_from(["hub", "dev-ca", "--out", "ca", "--token-days", "0"]).is_err()
        );
    }

    #[test]
    fn audit_export_and_verify_are_subcommands() {
        let cli = Cli::try_parse_from([
            "hub",
            "audit",
            "export",
            "--department",
            "audit-bureau",
            "--user",
            "a-1",
            "--purpose",
            "p",
            "--out",
            "x.export",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Audit(AuditCommand::Export { caller, out }))
                if caller.hub == "http://127.0.0.1:50051"
                    && caller.department.as_deref() == Some("audit-bureau")
                    && out == std::path::Path::new("x.export")
        ));
        // The acting person and the purpose are required, as every department request's are.
        assert!(
            Cli::try_parse_from(["hub", "audit", "export", "--user", "a-1", "--out", "x"]).is_err()
        );
        // A certificate comes with its key.
        assert!(
            Cli::try_parse_from([
                "hub",
                "audit",
                "export",
                "--user",
                "a",
                "--purpose",
                "p",
                "--out",
                "x",
                "--cert",
                "c.pem",
            ])
            .is_err()
        );
        let cli = Cli::try_parse_from([
            "hub",
            "audit",
            "verify",
            "--file",
            "x.export",
            "--public-key",
            "k.pub",
            "--public-key",
            "old.pub",
            "--previous",
            "last-month.export",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Audit(AuditCommand::Verify { file, public_keys, previous }))
                if file == std::path::Path::new("x.export") && public_keys.len() == 2
                    && previous.len() == 1
        ));
        assert!(Cli::try_parse_from(["hub", "audit", "verify", "--file", "x"]).is_err());
        let cli = Cli::try_parse_from([
            "hub",
            "audit",
            "export-history",
            "--aggregate",
            "case/c-1",
            "--user",
            "a-1",
            "--purpose",
            "p",
            "--out",
            "c.history",
        ])
        .expect("parses");
        assert!(matches!(
            cli.command,
            Some(Command::Audit(AuditCommand::ExportHistory { aggregate, .. }))
                if aggregate == "case/c-1"
        ));
        assert!(
            Cli::try_parse_from(["hub", "audit", "verify-history", "--file", "c.history"]).is_err()
        );
    }
}
