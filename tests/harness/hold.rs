//! Holding part of a hub, deterministically, with a failpoint that names what it holds:
//! `projector-hold` names the consumers that apply nothing while held, `group-commit-hold`
//! the group committers (by hub instance) that send nothing and gather every command that
//! arrives, so the commands held go out together. In-process hubs only (the failpoint
//! registry is the test process's); several tests may hold things at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

/// What each failpoint holds now.
static HELD: Mutex<BTreeMap<&'static str, BTreeSet<String>>> = Mutex::new(BTreeMap::new());

const PROJECTOR: &str = "projector-hold";
const GROUP_COMMIT: &str = "group-commit-hold";

/// Keeps a read model or a group committer held until it is dropped (or [`Hold::release`]d).
pub struct Hold {
    held: Option<(&'static str, String)>,
}

fn configure(point: &str, held: &BTreeSet<String>) {
    if held.is_empty() {
        fail::remove(point);
    } else {
        let names: Vec<&str> = held.iter().map(String::as_str).collect();
        fail::cfg(point, &format!("return({})", names.join(",")))
            .unwrap_or_else(|e| panic!("failpoint {point}: {e}"));
    }
}

impl Hold {
    /// Keeps the read model whose durable consumer is `consumer` from applying anything.
    pub fn new(consumer: &str) -> Self {
        Self::on(PROJECTOR, consumer)
    }

    /// Keeps the group committer of the hub instance `instance` from sending anything: the
    /// commands submitted meanwhile wait, and go out as one batch on release.
    pub fn commands(instance: &str) -> Self {
        Self::on(GROUP_COMMIT, instance)
    }

    fn on(point: &'static str, name: &str) -> Self {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        let names = held.entry(point).or_default();
        names.insert(name.to_owned());
        configure(point, names);
        Self {
            held: Some((point, name.to_owned())),
        }
    }

    pub fn release(mut self) {
        self.let_go();
    }

    fn let_go(&mut self) {
        if let Some((point, name)) = self.held.take() {
            let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
            let names = held.entry(point).or_default();
            names.remove(&name);
            configure(point, names);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.let_go();
    }
}
