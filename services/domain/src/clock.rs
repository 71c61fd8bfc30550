//! Time comes from outside: handlers pass a clock's reading into `decide`.

use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

/// A source of the current instant (UTC).
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A clock that stands still until moved: for tests that must cross deadlines without
/// waiting for them.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn new(at: Timestamp) -> Self {
        Self(Mutex::new(at))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Timestamp> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.lock();
        *now = now.saturating_add(by).unwrap_or(Timestamp::MAX);
    }

    pub fn set(&self, at: Timestamp) {
        *self.lock() = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.lock()
    }
}
