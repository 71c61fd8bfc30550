//! Time comes from outside: handlers pass a clock's reading into `decide`.

use jiff::Timestamp;

/// A source of the current instant (UTC).
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// A clock that stands still until moved: for tests.
#[derive(Debug)]
pub struct FixedClock(pub std::sync::Mutex<Timestamp>);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
