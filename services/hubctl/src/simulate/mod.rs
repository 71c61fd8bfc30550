//! `hubctl simulate`: a simulated city for demos and benchmarks.
//!
//! `simulate reference` writes reference data for a city of N districts with M grids each;
//! `simulate run` drives a running hub (in development mode: it acts as every unit by the
//! x-hub-department header) with the commands of a stretch of simulated days in that city:
//! reports, dispatches, acceptances, transfers, resolutions, ratings, closes, care
//! registrations and visits, grants. The commands come from a plan that is a pure function of
//! the seed, the options and the city ([`plan::plan`]), sent by [`drive::drive`].

mod city;
mod drive;
mod people;
mod plan;
mod reference;
mod words;

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context, anyhow};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use crate::Failure;
use crate::connect::Connection;

pub use plan::Scenario;

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    #[command(subcommand)]
    pub command: SimulateCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SimulateCommand {
    /// Writes reference data (TOML) for a simulated city of N districts with M grids each,
    /// keeping the demo's departments, command centres, auditors, operator and calendar and
    /// adding a command centre per district. Load it into the hub as `reference_data` (or
    /// HUB_REFERENCE_DATA) and run the simulation with `--reference` naming the same file.
    ///
    /// Example: hubctl simulate reference --districts 6 --grids 40 --seed 7 --out city.toml
    Reference(ReferenceArgs),
    /// Drives a running hub with a simulated city's commands: every grid's reports at
    /// --rate a day for --days days (grid incidents and property complaints), dispatched by
    /// the district's command centre to the department that handles them, accepted (some
    /// never: the hub escalates them once their deadline passes on its clock), some
    /// transferred, resolved, rated (a poor rating reopens the case), closed; civil affairs
    /// registers made-up people for care and logs visits; public security asks for grants on
    /// the care roster, which civil affairs approves or rejects. The hub must run in
    /// development mode (units named by the x-hub-department header). The same seed and
    /// options send the same commands with the same request ids: run again, the hub answers
    /// with its first answers and stores nothing new. Exit 1 if a command was refused as
    /// invalid input (INVALID_ARGUMENT: the hub loads other reference data than the
    /// simulation, or a bug) or not answered.
    ///
    /// Example: hubctl simulate run --seed 7 --days 1
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReferenceArgs {
    /// Districts (the demo's Xuhui and Changning first, then Shanghai's others, then
    /// made-up ones).
    #[arg(long, default_value_t = 2)]
    pub districts: u32,
    /// Grids per district (three to a community, four communities to a street).
    #[arg(long, default_value_t = 4)]
    pub grids: u32,
    /// Seed of the street names.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: Scenario,
    /// The city's reference data, as the hub loads it; default: the demo data built in.
    #[arg(long, value_name = "FILE", help_heading = "Run")]
    pub reference: Option<PathBuf>,
    /// Commands in flight at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1024), help_heading = "Run")]
    pub concurrency: u16,
    /// Print the plan as JSON lines (one command each, with when it happens, who sends it
    /// and what it waits for) instead of sending it.
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,
    /// With --dry-run: write the plan to this file instead of stdout.
    #[arg(long, value_name = "FILE", requires = "dry_run", help_heading = "Run")]
    pub out: Option<PathBuf>,
}

pub async fn run(connection: &Connection, json: bool, args: &SimulateArgs) -> Result<(), Failure> {
    match &args.command {
        SimulateCommand::Reference(a) => {
            let text = reference::generate(a.districts, a.grids, a.seed)?;
            let mut out = crate::output(a.out.as_ref())?;
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
        SimulateCommand::Run(a) => simulate(connection, json, a).await,
    }
}

async fn simulate(connection: &Connection, json: bool, args: &RunArgs) -> Result<(), Failure> {
    let city = city::City::load(args.reference.as_deref())?;
    let today = plan::city_date(jiff::Timestamp::now());
    let until = args.scenario.until.unwrap_or(today);
    if until > today {
        return Err(
            anyhow!("--until {until} is in the future: visits cannot be logged ahead").into(),
        );
    }
    if until < today.saturating_sub(jiff::Span::new().days(300)) {
        return Err(anyhow!(
            "--until {until} is more than 300 days ago: the grants' expiries would be past"
        )
        .into());
    }
    let plan = plan::plan(&city, &args.scenario, until);
    if args.dry_run {
        let mut out = crate::output(args.out.as_ref())?;
        for step in &plan.steps {
            let line = json!({
                "at": step.at.to_string(),
                "aggregate": plan.aggregates[step.aggregate].key,
                "after": step.after,
                "unit": step.unit,
                "person": step.person,
                "rpc": step.command.rpc(),
                "request": step.command.to_json()?,
            });
            writeln!(out, "{line}")?;
        }
        out.flush()?;
        return Ok(());
    }
    if connection.token_file.is_some() || connection.cert.is_some() {
        return Err(anyhow!(
            "simulate acts as every unit of the city, named by the x-hub-department header: it \
             runs against a hub in development mode, without --token-file or --cert"
        )
        .into());
    }
    let caller = connection.caller();
    let channel = hub::audit_cli::channel(&caller).await?;
    if !json {
        let (first, last) = plan.days();
        eprintln!(
            "simulating {} ({} districts, {} grids), {first} to {last}: {} commands to {}",
            plan.scenario,
            city.districts.len(),
            city.grids(),
            plan.steps.len(),
            caller.hub
        );
    }
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(plan.steps.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} simulate [{bar:40}] {pos}/{len} commands ({per_sec}, {eta} left)",
        )
        .context("progress style")?
        .progress_chars("=> "),
    );
    let summary = drive::drive(&plan, channel, usize::from(args.concurrency), &bar).await;
    bar.finish_and_clear();
    let tally = plan.tally();
    if json {
        println!("{}", summary_json(&plan, &city, &tally, &summary, args));
    } else {
        print!("{}", summary_text(&plan, &city, &tally, &summary, args));
    }
    let total = summary.total();
    if summary.invalid_input > 0 {
        return Err(anyhow!(
            "{} command(s) refused as invalid input: does the hub load the reference data \
             the simulation ran with (--reference)?",
            summary.invalid_input
        )
        .into());
    }
    if summary.unanswered > 0 {
        return Err(anyhow!(
            "{} command(s) got no answer from the hub",
            summary.unanswered
        )
        .into());
    }
    if total.sent > 0 && total.accepted == 0 {
        return Err(
            anyhow!("the hub accepted none of the commands: is it in development mode?").into(),
        );
    }
    Ok(())
}

fn summary_json(
    plan: &plan::Plan,
    city: &city::City,
    tally: &plan::Tally,
    summary: &drive::Summary,
    args: &RunArgs,
) -> serde_json::Value {
    let total = summary.total();
    let by_rpc: serde_json::Map<String, serde_json::Value> = plan::RPCS
        .iter()
        .filter_map(|rpc| summary.by_rpc.get(rpc).map(|c| (rpc, c)))
        .map(|(rpc, c)| {
            let value = json!({
                "sent": c.sent, "accepted": c.accepted, "refused": c.refused, "skipped": c.skipped,
            });
            ((*rpc).to_owned(), value)
        })
        .collect();
    json!({
        "scenario": plan.scenario,
        "seed": args.scenario.seed,
        "from": plan.from.to_string(),
        "until": plan.until.to_string(),
        "firstDay": plan.days().0.to_string(),
        "lastDay": plan.days().1.to_string(),
        "days": args.scenario.days,
        "city": {
            "districts": city.districts.len(),
            "grids": city.grids(),
            "communities": city.communities(),
        },
        "planned": {
            "commands": plan.steps.len(),
            "gridIncidents": tally.grid_incidents,
            "propertyComplaints": tally.property_complaints,
            "careRecords": tally.care_records,
            "grants": tally.grants,
            "casesAtEnd": tally.cases_at_end,
        },
        "commands": {
            "sent": total.sent,
            "accepted": total.accepted,
            "refused": total.refused,
            "invalidInput": summary.invalid_input,
            "unanswered": summary.unanswered,
            "skipped": total.skipped,
            "retries": summary.retries,
        },
        "byRpc": by_rpc,
        "refusedByCode": summary.refused_by_code,
        "refusals": summary.refusals,
        "events": summary.events,
        "lastPosition": summary.last_position,
        "concurrency": args.concurrency,
        "elapsedSeconds": summary.elapsed.as_secs_f64(),
        "commandsPerSecond": summary.commands_per_second(),
    })
}

fn summary_text(
    plan: &plan::Plan,
    city: &city::City,
    tally: &plan::Tally,
    summary: &drive::Summary,
    args: &RunArgs,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let (first, last) = plan.days();
    let _ = writeln!(
        out,
        "simulated city {}: {} districts, {} grids, {} communities; {} day(s), {first} to {last}",
        plan.scenario,
        city.districts.len(),
        city.grids(),
        city.communities(),
        args.scenario.days,
    );
    let at_end: Vec<String> = tally
        .cases_at_end
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let _ = writeln!(
        out,
        "planned: {} grid incidents, {} property complaints, {} people in care, {} grants; cases at the end: {}",
        tally.grid_incidents,
        tally.property_complaints,
        tally.care_records,
        tally.grants,
        if at_end.is_empty() {
            "none".to_owned()
        } else {
            at_end.join(", ")
        }
    );
    let _ = writeln!(
        out,
        "\n{:<22} {:>8} {:>9} {:>8} {:>8}",
        "RPC", "sent", "accepted", "refused", "skipped"
    );
    for rpc in plan::RPCS {
        if let Some(c) = summary.by_rpc.get(rpc) {
            let _ = writeln!(
                out,
                "{rpc:<22} {:>8} {:>9} {:>8} {:>8}",
                c.sent, c.accepted, c.refused, c.skipped
            );
        }
    }
    let total = summary.total();
    let _ = writeln!(
        out,
        "{:<22} {:>8} {:>9} {:>8} {:>8}\n",
        "total", total.sent, total.accepted, total.refused, total.skipped
    );
    if summary.refused_by_code.is_empty() {
        let _ = writeln!(out, "refused: none");
    } else {
        let codes: Vec<String> = summary
            .refused_by_code
            .iter()
            .map(|(code, n)| format!("{n} {code}"))
            .collect();
        let _ = writeln!(
            out,
            "refused: {} ({} invalid input, {} unanswered)",
            codes.join(", "),
            summary.invalid_input,
            summary.unanswered
        );
        for refusal in &summary.refusals {
            let _ = writeln!(out, "  {refusal}");
        }
    }
    let _ = writeln!(
        out,
        "events: {} in the answers (a repeated run is answered with the first run's), last position {}",
        summary.events, summary.last_position
    );
    let _ = writeln!(
        out,
        "elapsed {:.2} s: {:.1} commands/s at concurrency {}{}",
        summary.elapsed.as_secs_f64(),
        summary.commands_per_second(),
        args.concurrency,
        if summary.retries > 0 {
            format!(", {} retries", summary.retries)
        } else {
            String::new()
        }
    );
    if tally.cases_at_end.contains_key("awaiting acceptance") {
        let _ = writeln!(
            out,
            "cases awaiting acceptance are escalated by the hub's deadline supervision once their accept deadline passes on its clock"
        );
    }
    out
}
