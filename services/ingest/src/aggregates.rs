//! Current state of aggregates for command handling, kept where the handler can read it.
//!
//! A bounded in-memory cache in front of the `command_state` read model. An entry holds an
//! aggregate's state and version together with the records of the commands that produced
//! it, so a state that includes a command's events always comes with that command's record.
//! A stale entry is caught by the expected-sequence check of the next append, and brought
//! up to date from the log (direct gets of the aggregate's subject after its version),
//! never by replaying the whole aggregate.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use hub_api::ApiError;
use hub_api::aggregate::Aggregate;
use hub_log::names::event_subject;
use hub_log::{Appender, StoredEvent};
use hub_projector::ReadModel;
use hub_projector::command_state::{self, AggregateRow, RequestRecord};
use lru::LruCache;
use tracing::error;

use crate::append_error;

/// An aggregate as the handler knows it (`row: None`: no event yet).
#[derive(Debug)]
pub struct Known<A: Aggregate> {
    pub row: Option<AggregateRow<A::State>>,
    /// Records of commands on this case, by (source, request id), as far as known here.
    pub requests: Vec<(String, String, RequestRecord)>,
}

impl<A: Aggregate> Clone for Known<A> {
    fn clone(&self) -> Self {
        Self {
            row: self.row.clone(),
            requests: self.requests.clone(),
        }
    }
}

impl<A: Aggregate> Known<A> {
    pub fn version(&self) -> u64 {
        self.row.as_ref().map_or(0, |r| r.version)
    }

    pub fn state(&self) -> Option<&A::State> {
        self.row.as_ref().map(|r| &r.state)
    }

    pub fn request(&self, source: &str, request_id: &str) -> Option<&RequestRecord> {
        self.requests
            .iter()
            .find(|(s, r, _)| s == source && r == request_id)
            .map(|(_, _, record)| record)
    }

    /// Applies events read from the log, with the records of the commands they carry.
    fn absorb(&mut self, id: &str, events: &[StoredEvent]) -> Result<(), ApiError> {
        for event in events {
            let Some(decoded) =
                A::decode(&event.envelope.event_type, &event.body).map_err(|e| {
                    error!(position = event.position, error = %e, "stored event does not decode");
                    ApiError::Internal
                })?
            else {
                continue;
            };
            let state = A::apply(self.row.take().map(|r| r.state), &decoded);
            self.row = state.map(|state| AggregateRow {
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
                        aggregate: format!("{}/{id}", A::TYPE),
                        event_ids: vec![envelope.id.clone()],
                        position: event.position,
                    },
                )),
            }
        }
        // Keep the records of the creating command and of recent ones only; older ones are
        // in the read model.
        let excess = self.requests.len().saturating_sub(16);
        if excess > 0 {
            self.requests.drain(1..=excess);
        }
        Ok(())
    }
}

pub struct Aggregates<A: Aggregate> {
    model: ReadModel,
    appender: Appender,
    cache: Mutex<LruCache<String, Known<A>>>,
}

impl<A: Aggregate> Aggregates<A> {
    pub fn new(model: ReadModel, appender: Appender, capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            model,
            appender,
            cache: Mutex::new(LruCache::new(capacity)),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, LruCache<String, Known<A>>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Refuses to act on a read model that stopped rather than serve wrong data.
    fn usable(&self) -> Result<(), ApiError> {
        match self.model.state().halted {
            Some(_) => Err(ApiError::Unavailable(
                "the command state read model is halted; see the hub's log".into(),
            )),
            None => Ok(()),
        }
    }

    /// The record of (`source`, `request_id`) in the read model, if there is one.
    pub async fn request(
        &self,
        source: &str,
        request_id: &str,
    ) -> Result<Option<RequestRecord>, ApiError> {
        self.usable()?;
        let model = self.model.clone();
        let (source, request_id) = (source.to_owned(), request_id.to_owned());
        tokio::task::spawn_blocking(move || {
            command_state::get_request(model.store(), &source, &request_id)
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            error!(error = %e, "command state read failed");
            ApiError::Internal
        })
    }

    /// The records of many (aggregate id, request id) of `source`, in order: from the cache
    /// where it holds them, else from the read model in one blocking read.
    pub async fn requests(
        &self,
        source: &str,
        items: Vec<(String, String)>,
    ) -> Result<Vec<Option<RequestRecord>>, ApiError> {
        self.usable()?;
        let cached: Vec<Option<RequestRecord>> = {
            let cache = self.cache();
            items
                .iter()
                .map(|(id, rid)| cache.peek(id).and_then(|k| k.request(source, rid)).cloned())
                .collect()
        };
        let model = self.model.clone();
        let source = source.to_owned();
        tokio::task::spawn_blocking(move || {
            items
                .iter()
                .zip(cached)
                .map(|((_, rid), cached)| match cached {
                    Some(record) => Ok(Some(record)),
                    None => command_state::get_request(model.store(), &source, rid),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|e| {
            error!(error = %e, "command state read failed");
            ApiError::Internal
        })
    }

    /// The aggregate as known here, with the record of (`source`, `request_id`) if there is one.
    pub async fn load(
        &self,
        id: &str,
        source: &str,
        request_id: &str,
    ) -> Result<(Known<A>, Option<RequestRecord>), ApiError> {
        if let Some(known) = self.cache().get(id).cloned()
            && let Some(record) = known.request(source, request_id).cloned()
        {
            return Ok((known, Some(record)));
        }
        // The read model: state first, then the record (see command_state).
        self.usable()?;
        let model = self.model.clone();
        let (owned_id, source, request_id) =
            (id.to_owned(), source.to_owned(), request_id.to_owned());
        let (row, record) = tokio::task::spawn_blocking(move || {
            let row = command_state::get_aggregate::<A>(model.store(), &owned_id)?;
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
        let known = match cache.get(id) {
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

    /// The aggregate as this hub's cache knows it, or as not existing yet: for a command that
    /// creates it, where the log itself (an append expecting an empty subject) is the check.
    pub fn cached_or_new(&self, id: &str) -> Known<A> {
        self.cache().get(id).cloned().unwrap_or(Known {
            row: None,
            requests: Vec::new(),
        })
    }

    /// Brings `known` up to date from the log; returns it and the events that were missing.
    pub async fn refresh(
        &self,
        id: &str,
        mut known: Known<A>,
    ) -> Result<(Known<A>, Vec<StoredEvent>), ApiError> {
        let subject = event_subject(A::TYPE, id);
        let events = self
            .appender
            .events_after(&subject, known.version())
            .await
            .map_err(append_error)?;
        known.absorb(id, &events)?;
        self.remember(id, &known);
        Ok((known, events))
    }

    /// Records `events` this hub just appended on top of `known`.
    pub fn appended(
        &self,
        id: &str,
        mut known: Known<A>,
        events: &[StoredEvent],
    ) -> Result<Known<A>, ApiError> {
        known.absorb(id, events)?;
        self.remember(id, &known);
        Ok(known)
    }

    fn remember(&self, id: &str, known: &Known<A>) {
        let mut cache = self.cache();
        let newer = cache
            .peek(id)
            .is_none_or(|cached| cached.version() <= known.version());
        if newer {
            cache.put(id.to_owned(), known.clone());
        }
    }
}
