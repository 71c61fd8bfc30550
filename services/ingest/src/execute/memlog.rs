//! An in-memory event log for the executor's unit tests: the expected-subject-sequence check,
//! message-id de-duplication with a window the test ends at will, and atomic batches, as
//! JetStream does them. Never used by the hub; the end-to-end tests run on real NATS.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use hub_log::append::Appended;
use hub_log::{AppendError, Entry, NewEvent, StoredEvent};

use crate::log::CommandLog;

#[derive(Default)]
struct Inner {
    entries: Vec<Entry>,
    /// Message ids inside the duplicate window, with their positions.
    recent_ids: HashMap<String, u64>,
    appends: usize,
    /// Another writer gets an event onto this subject just before every append.
    raced: Option<String>,
    /// The next appends fail like this.
    failures: Vec<AppendError>,
}

#[derive(Default)]
pub struct MemLog {
    inner: Mutex<Inner>,
    /// Runs once, after the next read of a subject (to move the index meanwhile).
    after_read: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

impl MemLog {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The duplicate window passes: no message id is remembered any more.
    pub fn forget_ids(&self) {
        self.lock().recent_ids.clear();
    }

    /// Stores a message as another writer would (a raw client, a newer hub version).
    pub fn push(&self, entry: impl FnOnce(u64) -> Entry) -> u64 {
        let mut inner = self.lock();
        let position = inner.entries.len() as u64 + 1;
        inner.entries.push(entry(position));
        position
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.lock().entries.clone()
    }

    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// From now on another writer beats every append onto `subject`.
    pub fn race_on(&self, subject: &str) {
        self.lock().raced = Some(subject.to_owned());
    }

    /// Runs `hook` once, right after the next read of a subject.
    pub fn after_next_read(&self, hook: impl FnOnce() + Send + 'static) {
        *self
            .after_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(hook));
    }

    /// The next append fails with `err` (the log down, say).
    pub fn fail_next(&self, err: AppendError) {
        self.lock().failures.push(err);
    }

    /// Appends that were attempted, refused ones included.
    pub fn appends(&self) -> usize {
        self.lock().appends
    }
}

fn last_of(entries: &[Entry], subject: &str) -> u64 {
    entries
        .iter()
        .rev()
        .find(|e| e.subject() == subject)
        .map_or(0, Entry::position)
}

#[tonic::async_trait]
impl CommandLog for MemLog {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        let mut inner = self.lock();
        inner.appends += 1;
        if let Some(err) = inner.failures.pop() {
            return Err(err);
        }
        if let Some(subject) = inner.raced.clone() {
            let position = inner.entries.len() as u64 + 1;
            let mut other = match events.first() {
                Some(event) => StoredEvent {
                    position,
                    subject: subject.clone(),
                    stored_at: jiff::Timestamp::now(),
                    envelope: event.envelope.clone(),
                    body: event.body.clone(),
                    upcast_from: None,
                },
                None => return Ok(Vec::new()),
            };
            other.envelope.id = format!("racer-{position}");
            other.envelope.request_id = format!("racer-{position}");
            inner.entries.push(Entry::Event(other));
        }
        let batch = events.len() > 1;
        let mut duplicates = Vec::new();
        for event in &events {
            if let Some(&position) = inner.recent_ids.get(&event.envelope.id) {
                duplicates.push(position);
            }
        }
        if !duplicates.is_empty() {
            // A single publish is acknowledged as a duplicate; a batch is refused whole.
            return if batch {
                Err(AppendError::Conflict)
            } else {
                Ok(vec![Appended {
                    position: duplicates[0],
                    duplicate: true,
                }])
            };
        }
        for event in &events {
            if let Some(expected) = event.expected_last_subject_sequence
                && last_of(&inner.entries, &event.subject) != expected
            {
                return Err(AppendError::Conflict);
            }
        }
        let mut appended = Vec::with_capacity(events.len());
        for event in events {
            let position = inner.entries.len() as u64 + 1;
            inner.recent_ids.insert(event.envelope.id.clone(), position);
            inner.entries.push(Entry::Event(StoredEvent {
                position,
                subject: event.subject,
                stored_at: jiff::Timestamp::now(),
                envelope: event.envelope,
                body: event.body,
                upcast_from: None,
            }));
            appended.push(Appended {
                position,
                duplicate: false,
            });
        }
        Ok(appended)
    }

    async fn read_subject(&self, subject: &str, position: u64) -> Result<Vec<Entry>, AppendError> {
        let entries = self
            .lock()
            .entries
            .iter()
            .filter(|e| e.subject() == subject && e.position() > position)
            .cloned()
            .collect();
        let hook = self
            .after_read
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(entries)
    }

    async fn read_at(&self, position: u64) -> Result<Option<Entry>, AppendError> {
        Ok(self
            .lock()
            .entries
            .iter()
            .find(|e| e.position() == position)
            .cloned())
    }

    async fn last_position(&self) -> Result<u64, AppendError> {
        Ok(self.lock().entries.len() as u64)
    }
}
