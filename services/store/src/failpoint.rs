//! Named points where a test stops or holds the hub (the `fail` crate), compiled in only with
//! the `failpoints` feature; without it every function here is empty.
//!
//! A child `hub` process reads them from `FAILPOINTS` (`after-append=return` stops it right
//! after an append is acknowledged, as a crash there would); an in-process test sets them
//! with `fail::cfg`. Points:
//! - `after-append`: the events are stored, the command not yet answered;
//! - `between-group-batches`: a batch of the group committer is stored, its commands not yet
//!   answered (`1*off->return` stops at the second batch);
//! - `group-commit-gather`: with `1*return(<n>)`, the group committer's first batch waits for
//!   n commands (a child process's batch of several, deterministically);
//! - `group-commit-hold`: with `return(<name>,...)`, those group committers send nothing and
//!   take every command in as it arrives, so the commands held go out as one batch;
//! - `after-batch-write`: a read model's rows and checkpoint are written, not yet flushed;
//! - `after-apply`: a read model's batch is written and visible to reads, not yet flushed,
//!   its events not yet acknowledged;
//! - `between-import-batches`: an import has stored some of its batches;
//! - `rebuild-before-pointer`: a rebuild beside a read model is complete and durable, not yet
//!   named live;
//! - `rebuild-after-pointer`: it is named live, the old folder not yet removed;
//! - `feed-after-audit`: the care events of a feed round are recorded in the audit log, not
//!   yet sent;
//! - `feed-after-publish`: feed messages are stored in their feeds, not yet forgotten by the
//!   publisher's outbox;
//! - `redelivery-hold`: with `return(<redelivery id>,...)`, those re-deliveries wait after a
//!   round's grants are checked and its care events audited, before it is sent;
//! - `projector-hold`: with `return(<consumer name>,...)`, those read models apply nothing
//!   and learn nothing of the log until the point changes (a model held behind the log,
//!   deterministically).

/// Stops the process at once, as a crash would, when the point `name` is set to `return`.
#[cfg(feature = "failpoints")]
pub fn crash(name: &str) {
    if fail::eval(name, |_| ()).is_some() {
        // One write: stderr is unbuffered, and a line written in pieces can interleave with
        // the log lines the test reads beside it.
        let line = format!("failpoint {name}: stopping the process\n");
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn crash(_name: &str) {}

/// Whether the point `name` is set to `return(<args>)` with `arg` among the comma-separated
/// `args`.
#[cfg(feature = "failpoints")]
pub fn holds(name: &str, arg: &str) -> bool {
    fail::eval(name, |set| {
        set.as_deref()
            .is_some_and(|set| set.split(',').any(|a| a == arg))
    })
    .unwrap_or(false)
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn holds(_name: &str, _arg: &str) -> bool {
    false
}

/// The argument of the point `name` when it is set to `return(<arg>)`.
#[cfg(feature = "failpoints")]
pub fn returned(name: &str) -> Option<String> {
    fail::eval(name, |set| set.unwrap_or_default())
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn returned(_name: &str) -> Option<String> {
    None
}

/// Reads `FAILPOINTS` from the environment; keep the value alive while they should apply.
#[cfg(feature = "failpoints")]
pub fn from_env() -> Option<fail::FailScenario<'static>> {
    Some(fail::FailScenario::setup())
}

#[cfg(not(feature = "failpoints"))]
pub fn from_env() -> Option<()> {
    None
}
