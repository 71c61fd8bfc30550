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

    /// Raises the alarm `key` saying `text`, or says `text` instead if it is raised already
    /// for another reason (a condition checked again and again, whose cause can change);
    /// logged when raised and when its reason changes.
    pub fn set(&self, key: impl Into<String>, text: impl Into<String>) {
        let key = key.into();
        let text = text.into();
        let mut raised = self.raised.lock().unwrap_or_else(PoisonError::into_inner);
        match raised.get(&key) {
            Some(now) if *now == text => {}
            Some(_) => {
                error!(alarm = %key, text = %text, "alarm's reason changed");
                raised.insert(key, text);
                // Watchers see the new reason too.
                self.count.send_replace(raised.len());
            }
            None => {
                error!(alarm = %key, text = %text, "alarm raised");
                raised.insert(key, text);
                self.count.send_replace(raised.len());
            }
        }
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

    /// The number of alarms raised, watched (a reason that changes wakes watchers too).
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_alarm_takes_its_latest_reason() {
        let alarms = Alarms::default();
        alarms.set("nats/durability", "n2 unsafe");
        alarms.set("nats/durability", "n2 does not answer");
        assert_eq!(
            alarms.list(),
            [(
                "nats/durability".to_owned(),
                "n2 does not answer".to_owned()
            )]
        );
        assert_eq!(*alarms.subscribe().borrow(), 1);
        alarms.clear("nats/durability");
        assert!(alarms.list().is_empty());
    }

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
