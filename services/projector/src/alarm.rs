//! Alarms: conditions an operator must look at that the hub works around rather than stops
//! for, such as an event this version cannot read. Each is logged once, when first raised, and
//! kept for the health service and status reports. Texts name events by type and position,
//! never by content.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;
use tracing::error;

#[derive(Clone)]
pub struct Alarms {
    raised: Arc<Mutex<BTreeMap<String, String>>>,
    count: watch::Sender<usize>,
}

impl std::fmt::Debug for Alarms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alarms")
            .field("raised", &self.list())
            .finish()
    }
}

impl Default for Alarms {
    fn default() -> Self {
        Self {
            raised: Arc::default(),
            count: watch::channel(0).0,
        }
    }
}

impl Alarms {
    /// Raises the alarm `key` (e.g. `blocked/case/<id>`) saying `text`; logged the first time.
    pub fn raise(&self, key: impl Into<String>, text: impl Into<String>) {
        let key = key.into();
        let mut raised = self.raised.lock().unwrap_or_else(PoisonError::into_inner);
        if raised.contains_key(&key) {
            return;
        }
        let text = text.into();
        error!(alarm = %key, text = %text, "alarm raised");
        raised.insert(key, text);
        self.count.send_replace(raised.len());
    }

    /// Clears the alarm `key`, once what raised it is mended (a halted read model rebuilt and
    /// swapped in); logged.
    pub fn clear(&self, key: &str) {
        let mut raised = self.raised.lock().unwrap_or_else(PoisonError::into_inner);
        if raised.remove(key).is_some() {
            tracing::info!(alarm = %key, "alarm cleared");
            self.count.send_replace(raised.len());
        }
    }

    /// Every alarm raised, as (key, text), in key order.
    pub fn list(&self) -> Vec<(String, String)> {
        self.raised
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The number of alarms raised, watched.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alarm_is_raised_once_and_counted() {
        let alarms = Alarms::default();
        let count = alarms.subscribe();
        alarms.raise("blocked/case/a", "event x at position 3 cannot be read");
        alarms.raise("blocked/case/a", "again");
        alarms.raise("blocked/care/b", "event y at position 9 cannot be read");
        assert_eq!(*count.borrow(), 2);
        assert_eq!(
            alarms.list()[1],
            (
                "blocked/case/a".to_owned(),
                "event x at position 3 cannot be read".to_owned()
            )
        );
    }
}
