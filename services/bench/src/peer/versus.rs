//! The hub beside its peer (`hub-bench --peer`): the workloads the hub ran, run again
//! against the event table on PostgreSQL, each figure the hub's beside the peer's.

use std::path::Path;
use std::time::Duration;

use super::{Peer, event};
use crate::bench::ms;
use crate::raw::{median, percentile};
use crate::table::Table;

/// What the hub did in the same run, for the rows against the peer.
#[derive(Debug, Clone)]
pub struct HubFigures {
    pub concurrency: usize,
    /// Reports in the concurrent run, and how many a second.
    pub events: usize,
    pub concurrent: f64,
    /// CPU seconds per 1000 concurrent reports, the hub and nats-server together.
    pub cpu_per_thousand: f64,
    pub sequential: Vec<Duration>,
    /// Imported events a second, and the batch size the import appends.
    pub bulk: f64,
    pub bulk_events: usize,
    pub batch: usize,
}

/// Starts the peer under `dir`, runs its workloads at the hub's sizes and adds a row each.
pub async fn rows(table: &mut Table, hub: &HubFigures, dir: &Path) -> anyhow::Result<()> {
    let peer = Peer::start(dir).await?;
    let outcome = measure(table, hub, &peer).await;
    peer.stop().await?;
    outcome
}

async fn measure(table: &mut Table, hub: &HubFigures, peer: &Peer) -> anyhow::Result<()> {
    // The table's concurrency check works as the hub's does: a second append expecting the
    // same version is refused.
    let probe = event(u64::MAX >> 1);
    anyhow::ensure!(
        peer.append_one(&probe, 0).await?.is_some(),
        "the peer refused a new stream's first append"
    );
    anyhow::ensure!(
        peer.append_one(&probe, 0).await?.is_none(),
        "the peer took a second append expecting the same version"
    );
    peer.concurrent(200, 8).await?; // warm, as the hub was

    let events = hub.events;
    let before = peer.cpu_seconds()? + peer.client_cpu_seconds();
    let rate = peer.concurrent(events, hub.concurrency).await?;
    // The run's backends exit once their connections close; their CPU belongs to it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu = (peer.cpu_seconds()? + peer.client_cpu_seconds() - before) * 1000.0 / events as f64;
    let name = format!("PostgreSQL {}", peer.version());
    table.row(
        format!(
            "concurrent reports vs the peer ({} clients), events/s",
            hub.concurrency
        ),
        hub.concurrent,
        rate,
        "hub/peer > 1 (aim, with group commit)",
    );
    table.row(
        "CPU s/1000: hub + nats-server vs the peer's server + client",
        hub.cpu_per_thousand,
        cpu,
        "",
    );
    let times = peer.sequential(hub.sequential.len().max(1)).await?;
    table.row(
        "sequential report vs the peer, median ms",
        ms(median(hub.sequential.clone())),
        ms(median(times.clone())),
        "",
    );
    table.row(
        "sequential report vs the peer, p99 ms",
        ms(percentile(hub.sequential.clone(), 0.99)),
        ms(percentile(times, 0.99)),
        "",
    );
    let insert = peer.bulk_insert(hub.bulk_events, hub.batch).await?;
    let copy = peer.bulk_copy(hub.bulk_events, hub.batch).await?;
    table.row(
        format!(
            "bulk import vs the peer's multi-row INSERTs of {}, events/s",
            hub.batch
        ),
        hub.bulk,
        insert,
        "",
    );
    table.row(
        format!("bulk import vs the peer's COPY of {}, events/s", hub.batch),
        hub.bulk,
        copy,
        "",
    );
    table.note(format!(
        "the peer: {name}, fsync, synchronous_commit and full_page_writes on, its own cluster \
         in a temp dir; an event table with a UNIQUE (stream, version), a {} byte body and \
         about 615 bytes of jsonb metadata per event; the concurrent run's {events} appends \
         each open a new stream; its CPU counts the server's processes and this process",
        super::BODY_BYTES
    ));
    Ok(())
}
