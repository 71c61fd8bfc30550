//! Holding a read model behind the log, deterministically: the failpoint `projector-hold`
//! names the consumers that apply nothing while held. In-process hubs only (the failpoint
//! registry is the test process's); several tests may hold models at once.

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

static HELD: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Keeps the read model whose durable consumer is `consumer` from applying anything until it
/// is dropped (or [`Hold::release`]d).
pub struct Hold {
    consumer: Option<String>,
}

fn configure(held: &BTreeSet<String>) {
    if held.is_empty() {
        fail::remove("projector-hold");
    } else {
        let names: Vec<&str> = held.iter().map(String::as_str).collect();
        fail::cfg("projector-hold", &format!("return({})", names.join(",")))
            .expect("failpoint projector-hold");
    }
}

impl Hold {
    pub fn new(consumer: &str) -> Self {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        held.insert(consumer.to_owned());
        configure(&held);
        Self {
            consumer: Some(consumer.to_owned()),
        }
    }

    pub fn release(mut self) {
        self.let_go();
    }

    fn let_go(&mut self) {
        if let Some(consumer) = self.consumer.take() {
            let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
            held.remove(&consumer);
            configure(&held);
        }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.let_go();
    }
}
