//! The allocator of every program that runs the hub: jemalloc.
//!
//! Measured in hub-bench on the same machine over a 100,000-event log, glibc's malloc (cache
//! 64 MiB, then 16) against jemalloc (cache 16 MiB): the hub's resident memory after the
//! import was 908 and 757 MiB against 505; its rebuild of every read model took 57–70 s
//! against 33; its projector code applied 1,198–1,280 events a second against 4,378, and its
//! ratio to the sled-only baseline (which runs in the bench process, on the same allocator)
//! rose from 0.35 to 0.51. glibc gives the hub's ~50 threads (tokio's workers and blocking
//! pool, sled's flushers) up to 16 arenas and keeps much of what they free (capping them at 2
//! saved 250 MiB but slowed the rebuild to 98 s); jemalloc's background threads hand unused
//! pages back to the kernel. mimalloc was fast but held 2.8 GiB.

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Turns on jemalloc's background purging, so that memory freed after a burst (an import, a
/// rebuild) goes back to the kernel while the hub is idle. Idempotent; a failure only costs
/// memory, so it is logged, not returned.
pub fn purge_in_background() {
    if let Err(err) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(%err, "jemalloc background threads not started");
    }
}
