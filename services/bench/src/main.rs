//! `hub-bench`: the hub against raw JetStream, in one run, on one nats-server with the
//! production settings (`sync_interval: always`, file storage, the events stream's limits).
//!
//! Run with `cargo run --release -p hub-bench` (add `-- --help` for sizes; a quick run:
//! `-- --rebuild-events 100000 --visible-seconds 3`). It prints absolute figures beside their
//! baselines and the ratios the design sets targets for; it asserts nothing about speed (the
//! machine is shared and noisy; figures go into notes, not into tests), but fails loudly when
//! something does not work. `--results FILE` writes the table and the machine to FILE.
//!
//! The hub runs in a process of its own ([`serve`]), started by the bench from its own
//! binary, so that the load client (this process) and the hub share no runtime, and the
//! hub's CPU time and memory are its own pid's. What each row measures, and how, is said in
//! [`bench`] and in the module of each part.
//!
//! The audit rows show what auditing costs reads (see [`audit`]): audited dataset queries
//! against the rate one append per audit record would cap them at, a query's median time
//! against the audit writer's own wait at the same concurrency, and the writer (which puts
//! every record waiting into one append) against one record per append.

mod audit;
mod bench;
mod peer;
mod procfs;
mod projection;
mod raw;
mod rebuild;
mod report;
mod scale;
mod serve;
mod table;
mod visible;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    about = "Benchmarks the hub against raw JetStream publishing",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    args: Args,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the hub for the bench (the bench starts this itself).
    #[command(hide = true)]
    ServeHub(serve::ServeArgs),
    /// The log and the read models at a city's scale (10M events by default): the fill,
    /// nats-server's memory and restore time, aggregate reads, the read models' build time
    /// and size. Build hubctl first (cargo build --release -p hubctl -p hub-bench).
    Scale(scale::ScaleArgs),
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Events for the concurrent runs.
    #[arg(long, default_value_t = 4000)]
    events: usize,
    /// Concurrent clients (gRPC calls in flight, or raw publishers awaiting their acks).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Sequential calls for the latency runs (and appends on one chain, one record each).
    #[arg(long, default_value_t = 400)]
    sequential: usize,
    /// Cases for the bulk import runs (at most 100000: one ImportCases call).
    #[arg(long, default_value_t = 20000)]
    bulk: usize,
    /// Audited dataset queries (at --concurrency).
    #[arg(long, default_value_t = 4000)]
    queries: usize,
    /// Rows per page of those queries.
    #[arg(long, default_value_t = 10)]
    query_page: u32,
    /// Audit records for the writer alone and for one record per append (at --concurrency).
    #[arg(long, default_value_t = 4000)]
    audit_records: usize,
    /// Reports a second for the visibility run (open loop).
    #[arg(long, default_value_t = 1000.0)]
    visible_rate: f64,
    /// Seconds of the visibility run.
    #[arg(long, default_value_t = 10.0)]
    visible_seconds: f64,
    /// Events in the log the rebuild, projection and memory figures are taken over: the log
    /// is filled up to this by imports of 100000 cases. 0 skips those figures.
    #[arg(long, default_value_t = 1_000_000)]
    rebuild_events: u64,
    /// Leave out the projection figures over that log (the projector and the sled-only loop
    /// from position 1 again): at 1M events they take about as long as the rebuild itself.
    #[arg(long)]
    no_projection: bool,
    /// Folder to put the run's data in (nats-server's store, the hub's, the sled baselines);
    /// a temporary folder under it is removed at the end. Default: the system's temp folder.
    /// Put it on the disk you mean to measure: fsync cost is most of what is measured.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also run the same command workloads against the peer a city would pick instead, an
    /// event table on PostgreSQL with full durability (Debian's package, installed with
    /// apt-get when missing; its own cluster in a temp dir, stopped after), and print the
    /// hub's figure beside the peer's.
    #[arg(long)]
    peer: bool,
    /// Also write the table, the notes and the machine to this file (Markdown).
    #[arg(long)]
    results: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::ServeHub(args)) => {
            let outcome = serve::serve_hub(args).await;
            if let Err(err) = &outcome {
                eprintln!("hub-bench serve-hub: {err:#}");
            }
            // Not waiting for the runtime's blocking threads: one may still be reading stdin.
            std::process::exit(i32::from(outcome.is_err()));
        }
        Some(Command::Scale(args)) => scale::run(args).await,
        None => bench::run(cli.args).await,
    }
}
