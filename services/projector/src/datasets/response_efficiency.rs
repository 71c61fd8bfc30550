//! Dataset `response_efficiency` (open): how fast each department answers the cases of each
//! grid, per month, for the performance assessment of district leadership (考核). Row key
//! `<month>/<district>/<grid or "-">/<department>`; property complaints, which have no grid,
//! count under `-` in their district. Each measure counts in the city's month of the event it measures.
//!
//! - time to accept: from dispatch to acceptance (a transfer accepted counts in
//!   `transfers_accepted`, not here: its clock is the transfer's);
//! - time to resolve: from acceptance (of the dispatch or transfer) or reopening to resolution;
//! - overdue: accepted after the accept deadline, resolved after the resolve deadline;
//! - escalated: supervision (督办) steps taken against the holder;
//! - satisfaction: ratings (1–5) of the department that resolved the case; 4 and 5 satisfied.

use hub_domain::case::CaseEvent;
use jiff::Timestamp;
use serde_json::Value;

use super::case_facts::seconds;
use super::case_model::{CaseChange, CaseRows};
use super::common::{month, row};
use super::rows::{Row, Rows};
use super::{
    Dataset, FieldType as T, Filters, OpenType, Owner, Publication, Sensitivity as S, ShareType,
    UpdateCycle, field as f,
};
use crate::projection::ProjectionError;

pub static DATASET: Dataset = Dataset {
    id: "response_efficiency",
    // 2: its case facts kept as postcard, not JSON.
    version: 2,
    title_zh: "响应效率（按网格、部门、月）",
    title_en: "Response efficiency per grid, department and month",
    description_zh: "各部门处置各网格案件的响应效率：受理用时、办结用时、超期数、督办数和群众满意度，按月统计，纳入区领导班子绩效考核。",
    description_en: "How fast each department handles each grid's cases, per month: time to accept, time to resolve, overdue and escalated counts, and residents' satisfaction from ratings.",
    owner: Owner::Hub,
    share: ShareType::Unconditional,
    open: OpenType::Open,
    cycle: UpdateCycle::Continuous,
    keywords: &[
        "响应效率",
        "考核",
        "满意度",
        "response time",
        "performance assessment",
    ],
    fields: &[
        f("month", T::Month, S::Public, "月份", "month"),
        f(
            "district_code",
            T::Text,
            S::Public,
            "区划代码",
            "district code",
        ),
        f(
            "grid_code",
            T::Text,
            S::Public,
            "网格编码（物业投诉为 -）",
            "grid code (- for property complaints)",
        ),
        f("department", T::Text, S::Public, "承办部门", "department"),
        f(
            "dispatched",
            T::Integer,
            S::Public,
            "派单数",
            "cases dispatched",
        ),
        f(
            "accepted",
            T::Integer,
            S::Public,
            "受理数",
            "dispatches accepted",
        ),
        f(
            "accept_seconds",
            T::Integer,
            S::Public,
            "受理用时合计（秒）",
            "total time to accept (s)",
        ),
        f(
            "mean_accept_minutes",
            T::Decimal,
            S::Public,
            "平均受理用时（分钟）",
            "mean time to accept (min)",
        ),
        f(
            "overdue_accept",
            T::Integer,
            S::Public,
            "超期受理数",
            "accepted after the deadline",
        ),
        f(
            "transfers_accepted",
            T::Integer,
            S::Public,
            "接收流转数",
            "transfers accepted",
        ),
        f("resolved", T::Integer, S::Public, "办结数", "resolved"),
        f(
            "resolve_seconds",
            T::Integer,
            S::Public,
            "办结用时合计（秒）",
            "total time to resolve (s)",
        ),
        f(
            "mean_resolve_hours",
            T::Decimal,
            S::Public,
            "平均办结用时（小时）",
            "mean time to resolve (h)",
        ),
        f(
            "overdue_resolve",
            T::Integer,
            S::Public,
            "超期办结数",
            "resolved after the deadline",
        ),
        f("escalated", T::Integer, S::Public, "督办数", "escalations"),
        f("rated", T::Integer, S::Public, "评价数", "ratings"),
        f(
            "satisfied",
            T::Integer,
            S::Public,
            "满意数（4–5分）",
            "ratings of 4 or 5",
        ),
        f(
            "rating_sum",
            T::Integer,
            S::Public,
            "评分合计",
            "sum of ratings",
        ),
        f(
            "mean_rating",
            T::Decimal,
            S::Public,
            "平均评分",
            "mean rating",
        ),
    ],
    filters: Filters {
        department: Some("department"),
        district: Some("district_code"),
        grid: Some("grid_code"),
        time: Some("month"),
    },
    parties: &[],
    publication: Publication::Rows,
};

const COUNTERS: [&str; 12] = [
    "dispatched",
    "accepted",
    "accept_seconds",
    "overdue_accept",
    "transfers_accepted",
    "resolved",
    "resolve_seconds",
    "overdue_resolve",
    "escalated",
    "rated",
    "satisfied",
    "rating_sum",
];

#[derive(Debug, Default)]
pub struct ResponseEfficiency;

fn late(at: Timestamp, by: Option<Timestamp>) -> i64 {
    i64::from(by.is_some_and(|by| at > by))
}

fn int(row: &Row, field: &str) -> i64 {
    row.get(field).and_then(Value::as_i64).unwrap_or(0)
}

/// `sum / count / unit`, to two decimals; null with nothing counted.
fn mean(row: &Row, sum: &str, count: &str, unit: f64) -> Value {
    let n = int(row, count);
    if n == 0 {
        return Value::Null;
    }
    let mean = int(row, sum) as f64 / n as f64 / unit;
    Value::from((mean * 100.0).round() / 100.0)
}

impl CaseRows for ResponseEfficiency {
    fn dataset(&self) -> &'static Dataset {
        &DATASET
    }

    fn apply(&self, rows: &mut Rows<'_, '_>, c: &CaseChange<'_>) -> Result<(), ProjectionError> {
        let (before, after) = (c.before, c.after);
        let (department, at, counts): (&str, Timestamp, Vec<(&str, i64)>) = match c.event {
            CaseEvent::Dispatched(e) => (
                e.department.as_str(),
                e.dispatched_at,
                vec![("dispatched", 1)],
            ),
            CaseEvent::Accepted(e) => {
                let waited = before
                    .accept_from
                    .map_or(0, |from| seconds(from, e.accepted_at));
                let counts = vec![
                    ("accepted", 1),
                    ("accept_seconds", waited),
                    ("overdue_accept", late(e.accepted_at, before.accept_by)),
                ];
                (e.department.as_str(), e.accepted_at, counts)
            }
            CaseEvent::TransferAccepted(e) => (
                e.to.as_str(),
                e.accepted_at,
                vec![("transfers_accepted", 1)],
            ),
            CaseEvent::Escalated(e) => (e.holder.as_str(), e.escalated_at, vec![("escalated", 1)]),
            CaseEvent::Resolved(e) => {
                let took = before
                    .resolve_from
                    .map_or(0, |from| seconds(from, e.resolved_at));
                let counts = vec![
                    ("resolved", 1),
                    ("resolve_seconds", took),
                    ("overdue_resolve", late(e.resolved_at, before.resolve_by)),
                ];
                (e.department.as_str(), e.resolved_at, counts)
            }
            CaseEvent::Rated(e) => {
                let Some(department) = before.resolved_by.as_deref() else {
                    return Ok(());
                };
                let counts = vec![
                    ("rated", 1),
                    ("satisfied", i64::from(e.rating >= 4)),
                    ("rating_sum", i64::from(e.rating)),
                ];
                (department, e.rated_at, counts)
            }
            _ => return Ok(()),
        };
        let month = month(c.tz, at);
        let grid = after.grid.as_deref().unwrap_or("-");
        let key = format!("{month}/{}/{grid}/{department}", after.district);
        let mut entry = match rows.get(key.as_bytes())? {
            Some(entry) => entry,
            None => {
                let mut entry = row([
                    ("month", Value::from(month.as_str())),
                    ("district_code", Value::from(after.district.as_str())),
                    ("grid_code", Value::from(grid)),
                    ("department", Value::from(department)),
                ]);
                for counter in COUNTERS {
                    entry.insert(counter.into(), Value::from(0));
                }
                entry
            }
        };
        for (counter, by) in counts {
            let now = int(&entry, counter);
            entry.insert(counter.into(), Value::from(now + by));
        }
        entry.insert(
            "mean_accept_minutes".into(),
            mean(&entry, "accept_seconds", "accepted", 60.0),
        );
        entry.insert(
            "mean_resolve_hours".into(),
            mean(&entry, "resolve_seconds", "resolved", 3600.0),
        );
        entry.insert(
            "mean_rating".into(),
            mean(&entry, "rating_sum", "rated", 1.0),
        );
        rows.put(key.as_bytes(), &entry)
    }
}
