//! The case queue read as a dataset: the reader's own queue (`case_queue`'s `q/<holder>/`
//! rows, oldest report first), each case view turned into a row of the catalogue's fields.

use hub_api::v1;
use hub_projector::case_queue::{QueueCursor, list_queue, queue_key, queue_prefix};
use hub_projector::datasets::Dataset;
use hub_projector::datasets::read::{Page, Query, SCAN_BUDGET, matches};
use hub_projector::datasets::rows::Row;
use hub_store::{ReadModelStore, StoreError};
use serde_json::Value;

/// Cases looked at per step of the queue.
const STEP: usize = 256;

/// A page of the reader's queue. Only a party (the holder) reads a queue: without one the
/// page is empty.
pub fn read_queue(
    store: &dyn ReadModelStore,
    dataset: &Dataset,
    query: &Query,
) -> Result<Page, StoreError> {
    let Some(holder) = query.party.as_deref() else {
        return Ok(Page::default());
    };
    let prefix = queue_prefix(holder);
    // A token of another queue is refused before this; one that does not parse starts over.
    let mut cursor = query.after.as_ref().and_then(|key| cursor_of(key, &prefix));
    let mut page = Page::default();
    let mut scanned = 0;
    loop {
        let (cases, next) = list_queue(store, holder, cursor.as_ref(), STEP)?;
        for view in cases {
            scanned += 1;
            let key = queue_key(holder, view.reported_position, &view.case_id);
            let row = to_row(view);
            if matches(dataset, query, &row) {
                page.rows.push(row);
            }
            if page.rows.len() == query.limit || scanned >= SCAN_BUDGET {
                page.next = Some(key);
                return Ok(page);
            }
        }
        match next {
            None => return Ok(page),
            Some(next) => cursor = Some(next),
        }
    }
}

/// The queue cursor a page token (a queue key of this holder's) stands for.
fn cursor_of(key: &[u8], prefix: &[u8]) -> Option<QueueCursor> {
    let rest = key.strip_prefix(prefix)?;
    let (position, case_id) = rest.split_at_checked(8)?;
    Some(QueueCursor {
        reported_position: u64::from_be_bytes(position.try_into().ok()?),
        case_id: String::from_utf8(case_id.to_vec()).ok()?,
    })
}

fn instant(t: Option<prost_types::Timestamp>) -> Value {
    t.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map_or(Value::Null, |t| Value::from(t.to_string()))
}

fn to_row(view: v1::CaseView) -> Row {
    let (kind, category, grid) = match view.kind {
        Some(v1::case_view::Kind::GridIncident(g)) => (
            "grid_incident",
            v1::IncidentCategory::try_from(g.category)
                .map(|c| c.as_str_name())
                .unwrap_or_default(),
            Value::from(g.grid_code),
        ),
        Some(v1::case_view::Kind::PropertyComplaint(p)) => (
            "property_complaint",
            v1::ComplaintCategory::try_from(p.category)
                .map(|c| c.as_str_name())
                .unwrap_or_default(),
            Value::Null,
        ),
        None => ("", "", Value::Null),
    };
    let status = v1::CaseStatus::try_from(view.status)
        .map(|s| s.as_str_name())
        .unwrap_or_default();
    let urgency = v1::Urgency::try_from(view.urgency)
        .map(|u| u.as_str_name())
        .unwrap_or_default();
    let channel = v1::ReportChannel::try_from(view.channel)
        .map(|c| c.as_str_name())
        .unwrap_or_default();
    let mut row = Row::new();
    let mut put = |k: &str, v: Value| {
        row.insert(k.to_owned(), v);
    };
    put("case_id", Value::from(view.case_id));
    put("status", Value::from(status));
    put("holder", Value::from(view.holder));
    put("kind", Value::from(kind));
    put("category", Value::from(category));
    put("grid_code", grid);
    put("district_code", Value::from(view.district_code));
    put("urgency", Value::from(urgency));
    put("channel", Value::from(channel));
    put("reported_at", instant(view.reported_at));
    put("accept_by", instant(view.accept_by));
    put("resolve_by", instant(view.resolve_by));
    put("escalation_tier", Value::from(view.escalation_tier));
    put(
        "pending_transfer_to",
        if view.pending_transfer_to.is_empty() {
            Value::Null
        } else {
            Value::from(view.pending_transfer_to)
        },
    );
    put("last_position", Value::from(view.last_position));
    row
}
