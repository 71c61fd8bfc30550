//! The allocator of every program that runs the hub: jemalloc.
//!
//! Measured in hub-bench on the same machine over a 100,000-event log, glibc's malloc against
//! jemalloc (both with 16 MiB sled caches): the projector applied 1,198 against 4,378 events
//! a second, the rebuild of every read model took 57 s against 33 s, and the hub's resident
//! memory after the import was 757 against 505 MiB. glibc gives each of the hub's ~50
//! threads (tokio's workers and blocking pool, sled's flushers) one of up to 16 arenas and
//! keeps what they free; jemalloc's background threads hand unused pages back to the
//! kernel. mimalloc was faster still but held 2.8 GiB.

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
