//! `hubctl replay`: the log's events as JSON lines.

use std::path::PathBuf;

use anyhow::Context;
use hub_api::v1::{RedeliverFeedRequest, RedeliverFeedResponse, ReplayRequest};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Failure;
use crate::connect::{Connection, refused, request};

#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// From this log position (inclusive).
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// Up to this log position (inclusive).
    #[arg(long, value_name = "POSITION")]
    pub to: Option<u64>,
    /// Events the log stored at or after this time (RFC 3339, e.g. 2026-12-01T08:00:00+08:00).
    #[arg(long, value_name = "TIME")]
    pub since: Option<jiff::Timestamp>,
    /// Events the log stored at or before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<jiff::Timestamp>,
    /// One aggregate, as case/<id>, care/<id> or grant/<id>.
    #[arg(long, value_name = "TYPE/ID", conflicts_with = "aggregate_type")]
    pub aggregate: Option<String>,
    /// Every aggregate of one type: case, care or grant.
    #[arg(long = "type", value_name = "TYPE")]
    pub aggregate_type: Option<String>,
    /// Only events of this type (repeatable), e.g. gov.hub.case.escalated.v1.
    #[arg(long = "event-type", value_name = "TYPE")]
    pub event_types: Vec<String>,
    /// Write the events to FILE instead of stdout (with a progress bar on a terminal).
    #[arg(long, value_name = "FILE", conflicts_with = "into_feed")]
    pub out: Option<PathBuf>,
    /// Send the selected events into DEPARTMENT's feed again (re-delivery): what it was sent
    /// of each, masked as then, and nothing a grant ended since no longer allows. The
    /// receiver de-duplicates by event id (`ce-id`).
    #[arg(long, value_name = "DEPARTMENT")]
    pub into_feed: Option<String>,
    /// Names the re-delivery (default: one made from the time); run again with the same id,
    /// nothing is sent twice inside the feed's duplicate window.
    #[arg(long, value_name = "ID", requires = "into_feed")]
    pub redelivery_id: Option<String>,
}

impl ReplayArgs {
    fn request(&self) -> ReplayRequest {
        let time = |t: &Option<jiff::Timestamp>| {
            t.map(|t| prost_types::Timestamp {
                seconds: t.as_second(),
                nanos: t.subsec_nanosecond(),
            })
        };
        ReplayRequest {
            from_position: self.from.unwrap_or(0),
            to_position: self.to.unwrap_or(0),
            from_time: time(&self.since),
            to_time: time(&self.until),
            aggregate: self.aggregate.clone().unwrap_or_default(),
            aggregate_type: self.aggregate_type.clone().unwrap_or_default(),
            event_types: self.event_types.clone(),
        }
    }
}

pub async fn run(connection: &Connection, json: bool, args: &ReplayArgs) -> Result<(), Failure> {
    if let Some(department) = &args.into_feed {
        return redeliver(connection, json, args, department).await;
    }
    let (mut admin, caller) = connection.admin().await?;
    let mut batches = admin
        .replay(request(&caller, args.request())?)
        .await
        .map_err(|s| refused("replay", s))?
        .into_inner();
    let mut out = crate::output(args.out.as_ref())?;
    // A bar only when the events go to a file: on stdout it would mix with them.
    let bar = match &args.out {
        Some(_) => ProgressBar::new(0),
        None => ProgressBar::hidden(),
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} replay [{bar:40}] position {pos}/{len} {msg}")
            .context("progress style")?
            .progress_chars("=> "),
    );
    let (mut events, mut first, mut last) = (0u64, None, 0u64);
    while let Some(batch) = batches
        .message()
        .await
        .map_err(|s| refused("the replay broke off", s))?
    {
        bar.set_length(batch.last);
        bar.set_position(batch.reached);
        for event in &batch.events {
            let line = hub::proto_json::to_json("gov.hub.v1.HistoryEvent", event)?;
            writeln!(out, "{line}").context("writing the replay")?;
            events += 1;
            first.get_or_insert(event.position);
            last = event.position;
        }
        bar.set_message(format!("{events} events"));
    }
    out.flush().context("writing the replay")?;
    bar.finish_and_clear();
    let span = match first {
        Some(first) => format!("positions {first} to {last}"),
        None => "none matched".to_owned(),
    };
    match (&args.out, json) {
        (Some(path), true) => println!(
            "{}",
            serde_json::json!({"events": events, "firstPosition": first, "lastPosition": last, "file": path})
        ),
        (Some(path), false) => println!("replayed {events} events ({span}) to {}", path.display()),
        (None, _) => eprintln!("replayed {events} events ({span})"),
    }
    Ok(())
}

/// `replay --into-feed DEPARTMENT`: a re-delivery, with a progress bar on a terminal (one
/// progress object per line with --json).
async fn redeliver(
    connection: &Connection,
    json: bool,
    args: &ReplayArgs,
    department: &str,
) -> Result<(), Failure> {
    let (mut admin, caller) = connection.admin().await?;
    let id = args
        .redelivery_id
        .clone()
        .unwrap_or_else(|| format!("hubctl-{}", jiff::Timestamp::now().as_millisecond()));
    let asked = RedeliverFeedRequest {
        department: department.to_owned(),
        selection: Some(args.request()),
        redelivery_id: id.clone(),
    };
    let mut progress = admin
        .redeliver_feed(request(&caller, asked)?)
        .await
        .map_err(|s| refused("re-delivery", s))?
        .into_inner();
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:40}] position {pos}/{len} {msg}")
            .context("progress style")?
            .progress_chars("=> "),
    );
    let mut done: Option<RedeliverFeedResponse> = None;
    while let Some(p) = progress
        .message()
        .await
        .map_err(|s| refused("the re-delivery broke off", s))?
    {
        if json {
            println!(
                "{}",
                hub::proto_json::to_json("gov.hub.v1.RedeliverFeedResponse", &p)?
            );
        }
        bar.set_prefix(p.phase.clone());
        bar.set_length(p.last);
        bar.set_position(p.reached);
        bar.set_message(format!(
            "{} sent, {} there already, {} withheld",
            p.sent, p.duplicates, p.withheld
        ));
        if p.phase == "done" {
            done = Some(p);
        }
    }
    bar.finish_and_clear();
    let Some(p) = done else {
        return Err(Failure::Error(anyhow::anyhow!(
            "the hub stopped reporting re-delivery {id} before it was done; run it again with \
             --redelivery-id {id}"
        )));
    };
    if !json {
        let span = match p.last_position {
            0 => String::new(),
            _ => format!(" (positions {} to {})", p.first_position, p.last_position),
        };
        println!(
            "re-delivered {} events into {department}'s feed{span} as {id}; {} there already \
             (asked again), {} withheld (a grant they were masked under has ended)",
            p.sent, p.duplicates, p.withheld
        );
    }
    Ok(())
}
