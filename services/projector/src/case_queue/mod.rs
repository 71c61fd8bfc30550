//! Read model `case_queue`: every case with its current state, and each department's or
//! dispatch unit's queue of the cases it holds, oldest report first.
//!
//! Rows:
//! - `c/<case_id>`: the case, a protobuf `gov.hub.v1.CaseView`;
//! - `q/<holder>/<reported position, 8 bytes big-endian><case_id>`: the holder's queue (empty value);
//! - `b/<case_id>`: a case whose row is behind, with the first event passed over.

use hub_api::aggregate::{Aggregate, Case};
use hub_api::{
    decode_case_event, kind_to_proto, report_channel_to_proto, reporter_to_proto, timestamp,
    urgency_to_proto, v1,
};
use hub_domain::case::{CaseEvent, CaseReported};
use hub_log::names::{aggregate_filter, parse_event_subject};
use hub_log::{StoredEvent, Unreadable};
use hub_store::{Batch, ReadModelStore, StoreError};
use prost::Message;

use crate::alarm::Alarms;
use crate::command_state::Blocked;
use crate::datasets::{
    Dataset, FieldType as T, Filters, OpenType, Owner, Publication, Sensitivity as S, ShareType,
    UpdateCycle, field as f,
};
use crate::projection::{Projection, ProjectionError};

pub const NAME: &str = "case_queue";

/// The case queue as the catalogue lists it: each department's (and dispatch unit's) queue
/// of the open cases it holds, read by that department alone.
pub static DATASET: Dataset = Dataset {
    id: NAME,
    // 2: each case's report channel (gov.hub.case.reported.v2; a v1 report's as upcast).
    version: 2,
    title_zh: "部门案件待办队列",
    title_en: "Each department's case queue",
    description_zh: "每个部门及区网格化服务管理中心手上尚未结案的案件，按上报先后排列：状态、类别、网格、时限和督办层级。各部门只读自己的队列。",
    description_en: "The open cases each department or district command centre holds, oldest report first: status, category, grid, deadlines and supervision tier. Each reads its own queue only.",
    owner: Owner::Hub,
    share: ShareType::NotShared,
    open: OpenType::NotOpen,
    cycle: UpdateCycle::Continuous,
    keywords: &["案件", "待办", "case queue", "dispatch"],
    fields: &[
        f("case_id", T::Text, S::Internal, "案件编号", "case id"),
        f("status", T::Text, S::Internal, "状态", "status"),
        f("holder", T::Text, S::Internal, "承办单位", "holding unit"),
        f(
            "kind",
            T::Text,
            S::Internal,
            "案件种类",
            "kind (grid_incident, property_complaint)",
        ),
        f("category", T::Text, S::Internal, "类别", "category"),
        f("grid_code", T::Text, S::Internal, "网格编码", "grid code"),
        f(
            "district_code",
            T::Text,
            S::Internal,
            "区划代码",
            "district code",
        ),
        f("urgency", T::Text, S::Internal, "紧急程度", "urgency"),
        f(
            "channel",
            T::Text,
            S::Internal,
            "上报渠道",
            "report channel",
        ),
        f(
            "reported_at",
            T::Timestamp,
            S::Internal,
            "上报时间",
            "reported at",
        ),
        f(
            "accept_by",
            T::Timestamp,
            S::Internal,
            "受理时限",
            "accept by",
        ),
        f(
            "resolve_by",
            T::Timestamp,
            S::Internal,
            "办结时限",
            "resolve by",
        ),
        f(
            "escalation_tier",
            T::Integer,
            S::Internal,
            "督办层级",
            "supervision tier",
        ),
        f(
            "pending_transfer_to",
            T::Text,
            S::Internal,
            "待接收流转部门",
            "transfer asked of",
        ),
        f(
            "last_position",
            T::Integer,
            S::Internal,
            "最新日志位置",
            "last log position",
        ),
    ],
    filters: Filters {
        department: None,
        district: Some("district_code"),
        grid: Some("grid_code"),
        time: Some("reported_at"),
    },
    parties: &["holder"],
    publication: Publication::CaseQueue,
};

/// The case queue. An event it cannot read or place (a newer type during a rolling upgrade,
/// a corrupt body, an event of a case it never saw reported) is passed over with an alarm,
/// and the case is marked behind: reads of that one case are refused, saying which event, and
/// every other case stays served.
#[derive(Debug, Default)]
pub struct CaseQueue {
    alarms: Alarms,
}

const BEHIND_PREFIX: &[u8] = b"b/";

fn behind_key(case_id: &str) -> Vec<u8> {
    [BEHIND_PREFIX, case_id.as_bytes()].concat()
}

/// The alarm key and text of a case the queue passed an event of.
pub fn behind_alarm(case_id: &str, block: &Blocked) -> (String, String) {
    (
        format!("{NAME}/{case_id}"),
        format!(
            "read model {NAME} passed over event {} at position {} of case {case_id}: it {}; the case's row is behind",
            block.event_type, block.position, block.why
        ),
    )
}

impl CaseQueue {
    pub fn new(alarms: Alarms) -> Self {
        Self { alarms }
    }

    /// Marks the case behind (the first event passed over counts) and raises the alarm.
    fn pass_over(
        &self,
        batch: &mut Batch<'_>,
        subject: &str,
        position: u64,
        event_type: &str,
        why: &str,
    ) -> Result<(), ProjectionError> {
        let Some((_, case_id)) = parse_event_subject(subject) else {
            return Ok(());
        };
        let key = behind_key(case_id);
        if batch.get(&key)?.is_some() {
            return Ok(());
        }
        let block = Blocked {
            event_type: event_type.to_owned(),
            position,
            why: why.to_owned(),
        };
        let bytes = serde_json::to_vec(&block).map_err(|e| ProjectionError::Decode {
            position,
            reason: e.to_string(),
        })?;
        batch.put(key, bytes);
        let (key, text) = behind_alarm(case_id, &block);
        self.alarms.raise(key, text);
        Ok(())
    }
}

/// Why a case's row is behind the log, if it is.
pub fn behind(store: &dyn ReadModelStore, case_id: &str) -> Result<Option<Blocked>, StoreError> {
    store
        .get(&behind_key(case_id))?
        .map(|bytes| {
            serde_json::from_slice(&bytes).map_err(|e| StoreError::Io(format!("behind row: {e}")))
        })
        .transpose()
}

/// Every case whose row is behind, for the alarms at start.
pub fn all_behind(store: &dyn ReadModelStore) -> Result<Vec<(String, Blocked)>, StoreError> {
    crate::command_state::blocks_under(store, BEHIND_PREFIX)
}

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

fn load(
    batch: &Batch<'_>,
    event: &StoredEvent,
    case_id: &str,
) -> Result<Option<v1::CaseView>, ProjectionError> {
    let Some(bytes) = batch.get(&case_key(case_id))? else {
        return Ok(None);
    };
    v1::CaseView::decode(bytes.as_slice())
        .map(Some)
        .map_err(|e| ProjectionError::Decode {
            position: event.position,
            reason: format!("stored case row: {e}"),
        })
}

/// Moves a case between queues when its holder changes; a closed case leaves its queue.
fn requeue(batch: &mut Batch<'_>, view: &v1::CaseView, old_holder: &str, was_queued: bool) {
    let queued = view.status != v1::CaseStatus::Closed as i32;
    if was_queued && (!queued || old_holder != view.holder) {
        batch.delete(queue_key(old_holder, view.reported_position, &view.case_id));
    }
    if queued {
        batch.put(
            queue_key(&view.holder, view.reported_position, &view.case_id),
            Vec::new(),
        );
    }
}

fn reported_view(e: CaseReported, position: u64) -> v1::CaseView {
    v1::CaseView {
        case_id: e.case_id.to_string(),
        status: v1::CaseStatus::Reported as i32,
        holder: e.dispatch_unit.to_string(),
        kind: Some(match kind_to_proto(&e.kind) {
            v1::case_reported::Kind::GridIncident(g) => v1::case_view::Kind::GridIncident(g),
            v1::case_reported::Kind::PropertyComplaint(p) => {
                v1::case_view::Kind::PropertyComplaint(p)
            }
        }),
        description: e.description,
        reporter: Some(reporter_to_proto(&e.reporter)),
        channel: report_channel_to_proto(e.channel) as i32,
        district_code: e.district.to_string(),
        urgency: urgency_to_proto(e.urgency) as i32,
        reported_by: e.reported_by.to_string(),
        reported_at: Some(timestamp(e.reported_at)),
        last_position: position,
        reported_position: position,
        ..Default::default()
    }
}

impl Projection for CaseQueue {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter_subject(&self) -> String {
        aggregate_filter(Case::TYPE)
    }

    fn version(&self) -> u32 {
        DATASET.version
    }

    fn apply(&self, event: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let event_type = event.envelope.event_type.as_str();
        let decoded = match decode_case_event(event_type, &event.body) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => {
                let why = "has a type this version does not know";
                return self.pass_over(batch, &event.subject, event.position, event_type, why);
            }
            Err(_) => {
                let why = "has a body this version cannot decode";
                return self.pass_over(batch, &event.subject, event.position, event_type, why);
            }
        };
        if let CaseEvent::Reported(e) = decoded {
            let view = reported_view(e, event.position);
            requeue(batch, &view, &view.holder, false);
            batch.put(case_key(&view.case_id), view.encode_to_vec());
            return Ok(());
        }
        let Some(mut view) = load(batch, event, decoded.case_id().as_str())? else {
            let why = "belongs to a case whose report it has not applied";
            return self.pass_over(batch, &event.subject, event.position, event_type, why);
        };
        let old_holder = view.holder.clone();
        let was_queued = view.status != v1::CaseStatus::Closed as i32;
        let status = |s: v1::CaseStatus| s as i32;
        match decoded {
            CaseEvent::Reported(_) => {}
            CaseEvent::Dispatched(e) => {
                view.status = status(v1::CaseStatus::Dispatched);
                view.holder = e.department.to_string();
                view.accept_by = Some(timestamp(e.accept_by));
                view.resolve_by = Some(timestamp(e.resolve_by));
                view.escalation_tier = 0;
            }
            CaseEvent::Accepted(_) => {
                view.status = status(v1::CaseStatus::Accepted);
                view.escalation_tier = 0;
            }
            CaseEvent::TransferRequested(e) => view.pending_transfer_to = e.to.to_string(),
            CaseEvent::TransferAccepted(e) => {
                view.status = status(v1::CaseStatus::Accepted);
                view.holder = e.to.to_string();
                view.pending_transfer_to.clear();
                view.accept_by = None;
                view.resolve_by = Some(timestamp(e.resolve_by));
                view.escalation_tier = 0;
            }
            CaseEvent::TransferRejected(_) => view.pending_transfer_to.clear(),
            CaseEvent::Escalated(e) => {
                view.escalation_tier = view.escalation_tier.max(u32::from(e.tier))
            }
            CaseEvent::Resolved(e) => {
                view.status = status(v1::CaseStatus::Resolved);
                view.outcome = e.outcome;
            }
            CaseEvent::Rated(e) => {
                view.status = status(v1::CaseStatus::Rated);
                view.rating = u32::from(e.rating);
            }
            CaseEvent::Reopened(e) => {
                view.status = status(v1::CaseStatus::Accepted);
                view.resolve_by = Some(timestamp(e.resolve_by));
                view.escalation_tier = 0;
                view.reopened += 1;
            }
            CaseEvent::Closed(_) => view.status = status(v1::CaseStatus::Closed),
        }
        view.last_position = event.position;
        requeue(batch, &view, &old_holder, was_queued);
        batch.put(case_key(&view.case_id), view.encode_to_vec());
        Ok(())
    }

    fn apply_unreadable(
        &self,
        unreadable: &Unreadable,
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        self.pass_over(
            batch,
            &unreadable.subject,
            unreadable.position,
            &unreadable.event_type,
            "has an envelope this version cannot read",
        )
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
