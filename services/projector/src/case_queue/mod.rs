//! Read model `case_queue`: every case with its current state, and each department's or
//! dispatch unit's queue of the cases it holds, oldest report first.
//!
//! Rows:
//! - `c/<case_id>`: the case, a protobuf `gov.hub.v1.CaseView`;
//! - `q/<holder>/<reported position, 8 bytes big-endian><case_id>`: the holder's queue (empty value).

use hub_api::v1;
use hub_api::{CASE_DISPATCHED, CASE_REPORTED};
use hub_log::StoredEvent;
use hub_log::names::{AggregateType, aggregate_filter};
use hub_store::{Batch, ReadModelStore, StoreError};
use prost::Message;

use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = "case_queue";

#[derive(Debug, Default)]
pub struct CaseQueue;

pub fn case_key(case_id: &str) -> Vec<u8> {
    [b"c/", case_id.as_bytes()].concat()
}

/// Prefix of one holder's queue.
pub fn queue_prefix(holder: &str) -> Vec<u8> {
    [b"q/", holder.as_bytes(), b"/"].concat()
}

pub fn queue_key(holder: &str, reported_position: u64, case_id: &str) -> Vec<u8> {
    [
        queue_prefix(holder).as_slice(),
        &reported_position.to_be_bytes(),
        case_id.as_bytes(),
    ]
    .concat()
}

fn decode<M: Message + Default>(event: &StoredEvent) -> Result<M, ProjectionError> {
    M::decode(event.body.as_ref()).map_err(|e| ProjectionError::Decode {
        position: event.position,
        reason: e.to_string(),
    })
}

fn load(
    batch: &Batch<'_>,
    event: &StoredEvent,
    case_id: &str,
) -> Result<v1::CaseView, ProjectionError> {
    let bytes = batch
        .get(&case_key(case_id))?
        .ok_or_else(|| ProjectionError::Inconsistent {
            position: event.position,
            reason: "event for a case that was never reported".to_owned(),
        })?;
    v1::CaseView::decode(bytes.as_slice()).map_err(|e| ProjectionError::Decode {
        position: event.position,
        reason: format!("stored case row: {e}"),
    })
}

impl Projection for CaseQueue {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter_subject(&self) -> String {
        aggregate_filter(AggregateType::Case)
    }

    fn apply(&self, event: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let event_type = event.envelope.event_type.as_str();
        if event_type == CASE_REPORTED.name {
            let e: v1::CaseReported = decode(event)?;
            let kind = e.kind.map(|k| match k {
                v1::case_reported::Kind::GridIncident(g) => v1::case_view::Kind::GridIncident(g),
                v1::case_reported::Kind::PropertyComplaint(p) => {
                    v1::case_view::Kind::PropertyComplaint(p)
                }
            });
            let view = v1::CaseView {
                case_id: e.case_id.clone(),
                status: v1::CaseStatus::Reported as i32,
                holder: e.dispatch_unit.clone(),
                kind,
                description: e.description,
                reporter: e.reporter,
                district_code: e.district_code,
                urgency: e.urgency,
                reported_by: e.reported_by,
                reported_at: e.reported_at,
                accept_by: None,
                resolve_by: None,
                last_position: event.position,
                reported_position: event.position,
            };
            batch.put(
                queue_key(&view.holder, event.position, &view.case_id),
                Vec::new(),
            );
            batch.put(case_key(&e.case_id), view.encode_to_vec());
        } else if event_type == CASE_DISPATCHED.name {
            let e: v1::CaseDispatched = decode(event)?;
            let mut view = load(batch, event, &e.case_id)?;
            batch.delete(queue_key(
                &view.holder,
                view.reported_position,
                &view.case_id,
            ));
            view.status = v1::CaseStatus::Dispatched as i32;
            view.holder = e.department;
            view.accept_by = e.accept_by;
            view.resolve_by = e.resolve_by;
            view.last_position = event.position;
            batch.put(
                queue_key(&view.holder, view.reported_position, &view.case_id),
                Vec::new(),
            );
            batch.put(case_key(&e.case_id), view.encode_to_vec());
        }
        Ok(())
    }
}

/// Reads one case.
pub fn get_case(
    store: &dyn ReadModelStore,
    case_id: &str,
) -> Result<Option<v1::CaseView>, StoreError> {
    store
        .get(&case_key(case_id))?
        .map(|bytes| {
            v1::CaseView::decode(bytes.as_slice())
                .map_err(|e| StoreError::Io(format!("case row: {e}")))
        })
        .transpose()
}

/// A cursor into a holder's queue: the last row returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCursor {
    pub reported_position: u64,
    pub case_id: String,
}

impl QueueCursor {
    pub fn to_token(&self) -> String {
        format!("{}.{}", self.reported_position, self.case_id)
    }

    pub fn from_token(token: &str) -> Option<Self> {
        let (position, case_id) = token.split_once('.')?;
        Some(Self {
            reported_position: position.parse().ok()?,
            case_id: case_id.to_owned(),
        })
    }
}

/// Lists up to `limit` cases a holder holds, after `cursor`; returns the cursor of the next page.
pub fn list_queue(
    store: &dyn ReadModelStore,
    holder: &str,
    cursor: Option<&QueueCursor>,
    limit: usize,
) -> Result<(Vec<v1::CaseView>, Option<QueueCursor>), StoreError> {
    let prefix = queue_prefix(holder);
    let after = cursor.map(|c| queue_key(holder, c.reported_position, &c.case_id));
    let rows = store.scan(&prefix, after.as_deref(), limit + 1)?;
    let more = rows.len() > limit;
    let mut cases = Vec::with_capacity(limit.min(rows.len()));
    for (key, _) in rows.into_iter().take(limit) {
        let case_id = String::from_utf8_lossy(&key[prefix.len() + 8..]).into_owned();
        if let Some(view) = get_case(store, &case_id)? {
            cases.push(view);
        }
    }
    let next = if more {
        cases.last().map(|c| QueueCursor {
            reported_position: c.reported_position,
            case_id: c.case_id.clone(),
        })
    } else {
        None
    };
    Ok((cases, next))
}

#[cfg(test)]
mod tests;
