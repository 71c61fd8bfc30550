//! Dataset `incident_stats` (open): grid incidents per grid, day and category: how many were
//! reported, resolved and closed that day. Row key `<day>/<grid>/<category>`; the day is the
//! city's calendar day of the event.

use hub_domain::case::CaseEvent;
use serde_json::Value;

use super::case_model::{CaseChange, CaseRows};
use super::common::{day, row};
use super::rows::Rows;
use super::{
    Dataset, FieldType as T, Filters, OpenType, Owner, Publication, Sensitivity as S, ShareType,
    UpdateCycle, field as f,
};
use crate::projection::ProjectionError;

pub static DATASET: Dataset = Dataset {
    id: "incident_stats",
    // 2: its case facts kept as postcard, not JSON.
    version: 2,
    title_zh: "网格事件统计（按网格、日、类别）",
    title_en: "Grid incident statistics per grid, day and category",
    description_zh: "每个网格每天各类网格事件的上报数、办结数和结案数，按城市时区计日。",
    description_en: "For each grid, day and category: grid incidents reported, resolved and closed that day, days counted in the city's time zone.",
    owner: Owner::Hub,
    share: ShareType::Unconditional,
    open: OpenType::Open,
    cycle: UpdateCycle::Continuous,
    keywords: &["网格事件", "统计", "grid incidents", "statistics"],
    fields: &[
        f("day", T::Date, S::Public, "日期", "day"),
        f(
            "district_code",
            T::Text,
            S::Public,
            "区划代码",
            "district code",
        ),
        f("grid_code", T::Text, S::Public, "网格编码", "grid code"),
        f(
            "category",
            T::Text,
            S::Public,
            "事件类别",
            "incident category",
        ),
        f("reported", T::Integer, S::Public, "上报数", "reported"),
        f("resolved", T::Integer, S::Public, "办结数", "resolved"),
        f("closed", T::Integer, S::Public, "结案数", "closed"),
    ],
    filters: Filters {
        department: None,
        district: Some("district_code"),
        grid: Some("grid_code"),
        time: Some("day"),
    },
    parties: &[],
    publication: Publication::Rows,
};

#[derive(Debug, Default)]
pub struct IncidentStats;

impl CaseRows for IncidentStats {
    fn dataset(&self) -> &'static Dataset {
        &DATASET
    }

    fn apply(&self, rows: &mut Rows<'_, '_>, c: &CaseChange<'_>) -> Result<(), ProjectionError> {
        let (counter, at) = match c.event {
            CaseEvent::Reported(e) => ("reported", e.reported_at),
            CaseEvent::Resolved(e) => ("resolved", e.resolved_at),
            CaseEvent::Closed(e) => ("closed", e.closed_at),
            _ => return Ok(()),
        };
        let (Some(grid), Some(category)) = (&c.after.grid, &c.after.incident_category) else {
            return Ok(()); // not a grid incident
        };
        let day = day(c.tz, at);
        let key = format!("{day}/{grid}/{category}");
        let new = || {
            row([
                ("day", Value::from(day.as_str())),
                ("district_code", Value::from(c.after.district.as_str())),
                ("grid_code", Value::from(grid.as_str())),
                ("category", Value::from(category.as_str())),
                ("reported", Value::from(0)),
                ("resolved", Value::from(0)),
                ("closed", Value::from(0)),
            ])
        };
        rows.add(key.as_bytes(), new, counter, 1)
    }
}
