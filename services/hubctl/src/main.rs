//! `hubctl`: the operators' (and auditors') command line for a running hub.
//!
//! It talks to the hub's AdminService over gRPC as an operator unit; every call it makes is
//! audited by the hub. Exit status: 0 done; 1 the hub refused or could not be reached, or a
//! file could not be read or written (the message says which, with the gRPC code); 2 the
//! command line itself is wrong; 3 a check ran and found a difference (`verify`).

mod backup;
mod connect;
mod rebuild;
mod replay;
mod simulate;
mod status;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::connect::Connection;

const EXAMPLES: &str = "\
Examples:
  hubctl status                                  where the streams, read models and feeds stand
  hubctl status --json | jq '.readModels[] | select(.lag != \"0\")'
  hubctl replay --aggregate case/<id>            one case's events as JSON lines
  hubctl replay --from 100 --to 200 --out part.jsonl
  hubctl replay --type care --since 2026-12-01T00:00:00+08:00
  hubctl replay --from 100 --into-feed urban-management   re-deliver into a department's feed
  hubctl rebuild incident_stats --swap           build it again beside the live one, then swap
  hubctl verify incident_stats                   live digest against a fresh build
  hubctl export --out backup.hublog              a backup of the event log, with checksums
  hubctl --hub http://other:50051 import --file backup.hublog
  hubctl simulate run --seed 7 --days 1          a simulated city's day of commands
  hubctl completions bash > /etc/bash_completion.d/hubctl

Against the development hub (./deploy/dev.sh) the defaults work as they are: the hub at
http://127.0.0.1:50051, as the demo operator unit big-data-centre (a development-mode header).
Elsewhere name the operator's certificate (--cert, --key, --ca) or token (--token-file).";

/// The hub's operator CLI.
#[derive(Debug, Parser)]
#[command(name = "hubctl", version, about, after_help = EXAMPLES)]
struct Cli {
    #[command(flatten)]
    connection: Connection,
    /// Print machine-readable JSON (one object, or one per line for streams) instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Where everything stands: the streams (messages, bytes, first and last position),
    /// every read model (position, lag, state, rows, rebuilding or not), every department's
    /// feed (position, lag, consumers), health, alarms and the durability guard's findings.
    ///
    /// Example: hubctl status --json
    Status {
        /// Exit 3 when anything needs a look: an alarm, a halted read model, a service not
        /// serving, or a server that does not fsync every write.
        #[arg(long)]
        check: bool,
    },
    /// Replays the log's events, oldest first, as JSON lines (each event's position, stored
    /// time, envelope and decoded body; a care record's body masked as for a department
    /// without a grant). The filters combine. With --into-feed, the selected events go into
    /// a department's feed again instead, as it was sent them.
    ///
    /// Example: hubctl replay --type case --event-type gov.hub.case.escalated.v1 --out escalations.jsonl
    Replay(replay::ReplayArgs),
    /// Builds a read model again from position 1 beside the live one, which keeps serving,
    /// with a progress bar; the build then follows the log until `hubctl swap` (or --swap)
    /// makes it live.
    ///
    /// Example: hubctl rebuild response_efficiency --swap
    Rebuild {
        /// The read model (`hubctl status` lists them).
        read_model: String,
        /// Swap it in as soon as it has caught up.
        #[arg(long)]
        swap: bool,
    },
    /// Makes a caught-up rebuild the live read model.
    ///
    /// Example: hubctl swap response_efficiency
    Swap { read_model: String },
    /// Compares a read model's live digest with a fresh build from the log at the same
    /// position. Exit 3 when they differ.
    ///
    /// Example: hubctl verify case_timeline
    Verify { read_model: String },
    /// Writes a backup of the event log to FILE: every message as stored, with its
    /// position, and the checks an import verifies (a SHA-256 and the log's chained
    /// digest). It holds personal data in clear: keep it as the hub's data is kept.
    ///
    /// Example: hubctl export --out hub-2026-12-03.hublog
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Restores a backup into an empty hub: the file is checked whole first, then each
    /// message is appended at its own position; the hub's digest of what it stored is
    /// compared with the backup's (exit 3 when they differ). An import that stopped
    /// halfway resumes when run again.
    ///
    /// Example: hubctl --hub http://new-hub:50051 import --file hub-2026-12-03.hublog
    Import {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// A simulated city, for demos and benchmarks: reference data for N districts and
    /// grids, and days of reports, dispatches, acceptances, transfers, resolutions, ratings,
    /// care visits and grants sent to a hub in development mode, deterministic under a seed.
    ///
    /// Example: hubctl simulate run --seed 7 --days 1 --rate 5
    Simulate(simulate::SimulateArgs),
    /// Prints a completion script for SHELL.
    ///
    /// Example: hubctl completions zsh > ~/.zfunc/_hubctl
    Completions { shell: clap_complete::Shell },
}

/// Why a command failed, and the exit status that says so.
#[derive(Debug)]
pub enum Failure {
    /// The hub refused, could not be reached, or a file failed: exit 1.
    Error(anyhow::Error),
    /// A check ran and found a difference: exit 3.
    Found(String),
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(err: E) -> Self {
        Failure::Error(err.into())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Error(err)) => {
            eprintln!("hubctl: {err:#}");
            ExitCode::from(1)
        }
        Err(Failure::Found(what)) => {
            eprintln!("hubctl: {what}");
            ExitCode::from(3)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let Cli {
        connection,
        json,
        command,
    } = cli;
    match command {
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "hubctl", &mut out);
            out.flush()?;
            Ok(())
        }
        Command::Status { check } => status::run(&connection, json, check).await,
        Command::Replay(args) => replay::run(&connection, json, &args).await,
        Command::Rebuild { read_model, swap } => {
            rebuild::rebuild(&connection, json, &read_model, swap).await
        }
        Command::Swap { read_model } => rebuild::swap(&connection, json, &read_model).await,
        Command::Verify { read_model } => rebuild::verify(&connection, json, &read_model).await,
        Command::Export { out } => backup::export(&connection, json, &out).await,
        Command::Import { file } => backup::import(&connection, json, &file).await,
        Command::Simulate(args) => simulate::run(&connection, json, &args).await,
    }
}

/// Where output goes: a file named on the command line, or stdout.
pub fn output(path: Option<&PathBuf>) -> anyhow::Result<Box<dyn std::io::Write + Send>> {
    Ok(match path {
        Some(path) => Box::new(std::io::BufWriter::new(private_file(path)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}

/// A new file only its owner may read (mode 0600): replays and backups hold what the log
/// holds, a backup personal data in clear.
pub fn private_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use anyhow::Context as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}
