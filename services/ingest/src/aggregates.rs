//! Current state of cases for command handling, kept where the handler can read it.
//!
//! A bounded in-memory cache in front of the `command_state` read model. An entry holds a
//! case's state and version together with the records of the commands that produced it, so
//! a state that includes a command's events always comes with that command's record. A
//! stale entry is caught by the expected-sequence check of the next append, and brought up
//! to date from the log (direct gets of the case's subject after its version), never by
//! replaying the whole case.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use hub_api::{ApiError, decode_case_event};
use hub_domain::case::{self, CaseState};
use hub_log::names::{AggregateType, event_subject};
use hub_log::{Appender, StoredEvent};
use hub_projector::ReadModel;
use hub_projector::command_state::{self, CaseRow, RequestRecord};
use lru::LruCache;
use tracing::error;

use crate::append_error;

/// A case as the handler knows it (`row: None`: no event yet).
#[derive(Debug, Clone, Default)]
pub struct Known {
    pub row: Option<CaseRow>,
    /// Records of commands on this case, by (source, request id), as far as known here.
    pub requests: Vec<(String, String, RequestRecord)>,
}

impl Known {
    pub fn version(&self) -> u64 {
        self.row.as_ref().map_or(0, |r| r.version)
    }

    pub fn state(&self) -> Option<&CaseState> {
        self.row.as_ref().map(|r| &r.state)
    }

    pub fn request(&self, source: &str, request_id: &str) -> Option<&RequestRecord> {
        self.requests
            .iter()
            .find(|(s, r, _)| s == source && r == request_id)
            .map(|(_, _, record)| record)
    }

    /// Applies events read from the log, with the records of the commands they carry.
    fn absorb(&mut self, case_id: &str, events: &[StoredEvent]) -> Result<(), ApiError> {
        for event in events {
            let Some(decoded) = decode_case_event(&event.envelope.event_type, &event.body).map_err(|e| {
                error!(position = event.position, error = %e, "stored case event does not decode");
                ApiError::Internal
            })?
            else {
                continue;
            };
            let state = case::apply(self.row.take().map(|r| r.state), &decoded);
            self.row = state.map(|state| CaseRow {
                version: event.position,
                state,
            });
            let envelope = &event.envelope;
            if envelope.request_id.is_empty() {
                continue;
            }
            match self
                .requests
                .iter_mut()
                .find(|(s, r, _)| *s == envelope.source && *r == envelope.request_id)
            {
                Some((_, _, record)) => {
                    record.event_ids.push(envelope.id.clone());
                    record.position = event.position;
                }
                None => self.requests.push((
                    envelope.source.clone(),
                    envelope.request_id.clone(),
                    RequestRecord {
                        hash: envelope.command_hash.clone(),
                        aggregate: format!("case/{case_id}"),
                        event_ids: vec![envelope.id.clone()],
                        position: event.position,
                    },
                )),
            }
        }
        // Keep the records of recent commands only; older ones are in the read model.
        let excess = self.requests.len().saturating_sub(16);
        self.requests.drain(..excess);
        Ok(())
    }
}

pub struct Cases {
    model: ReadModel,
    appender: Appender,
    cache: Mutex<LruCache<String, Known>>,
}

impl Cases {
    pub fn new(model: ReadModel, appender: Appender, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            model,
            appender,
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, Known>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The case as known here, with the record of (`source`, `request_id`) if there is one.
    pub async fn load(
        &self,
        case_id: &str,
        source: &str,
        request_id: &str,
    ) -> Result<(Known, Option<RequestRecord>), ApiError> {
        if let Some(known) = self.cache().get(case_id).cloned()
            && let Some(record) = known.request(source, request_id).cloned()
        {
            return Ok((known, Some(record)));
        }
        // The read model: state first, then the record (see command_state).
        let model = self.model.clone();
        let (case_id_owned, source, request_id) =
            (case_id.to_owned(), source.to_owned(), request_id.to_owned());
        let (row, record) = tokio::task::spawn_blocking(move || {
            let row = command_state::get_case(model.store(), &case_id_owned)?;
            let record = command_state::get_request(model.store(), &source, &request_id)?;
            Ok::<_, hub_store::StoreError>((row, record))
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            error!(error = %e, "command state read failed");
            ApiError::Internal
        })?;
        let mut cache = self.cache();
        let known = match cache.get(case_id) {
            // The cache is newer than the read model when this hub appended since.
            Some(cached) if cached.version() >= row.as_ref().map_or(0, |r| r.version) => {
                cached.clone()
            }
            _ => Known {
                row,
                requests: Vec::new(),
            },
        };
        Ok((known, record))
    }

    /// Brings `known` up to date from the log; returns it and the events that were missing.
    pub async fn refresh(
        &self,
        case_id: &str,
        mut known: Known,
    ) -> Result<(Known, Vec<StoredEvent>), ApiError> {
        let subject = event_subject(AggregateType::Case, case_id);
        let events = self
            .appender
            .events_after(&subject, known.version())
            .await
            .map_err(append_error)?;
        known.absorb(case_id, &events)?;
        self.remember(case_id, &known);
        Ok((known, events))
    }

    /// Records `events` this hub just appended on top of `known`.
    pub fn appended(
        &self,
        case_id: &str,
        mut known: Known,
        events: &[StoredEvent],
    ) -> Result<Known, ApiError> {
        known.absorb(case_id, events)?;
        self.remember(case_id, &known);
        Ok(known)
    }

    fn remember(&self, case_id: &str, known: &Known) {
        let mut cache = self.cache();
        let newer = cache
            .peek(case_id)
            .is_none_or(|cached| cached.version() <= known.version());
        if newer {
            cache.put(case_id.to_owned(), known.clone());
        }
    }
}
