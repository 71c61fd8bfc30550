//! Dataset `case_timeline`: every event of every case, with who issued it, when, and its
//! position in the log. Row key `<case_id>/<position, 20 digits>`: a case's events in order.

use serde_json::Value;

use super::case_model::{CaseChange, CaseRows};
use super::common::{instant, issuer, row};
use super::rows::Rows;
use super::{
    Dataset, FieldType as T, Filters, OpenType, Owner, Publication, Sensitivity as S, ShareType,
    UpdateCycle, field as f,
};
use crate::projection::ProjectionError;

pub static DATASET: Dataset = Dataset {
    id: "case_timeline",
    // 2: its case facts kept as postcard, not JSON.
    version: 2,
    title_zh: "案件处置时间线",
    title_en: "Case timelines",
    description_zh: "每个案件的全部事件：事件类型、发出部门、时间、在事件日志中的位置，以及事件后的承办单位。",
    description_en: "Every event of every case: its type, the issuing department, its time, its position in the event log, and the unit holding the case after it.",
    owner: Owner::Hub,
    // Each department reads the rows it is a party to; the hub has no owner to grant more.
    share: ShareType::NotShared,
    open: OpenType::NotOpen,
    cycle: UpdateCycle::Continuous,
    keywords: &["案件", "时间线", "case", "timeline"],
    fields: &[
        f("case_id", T::Text, S::Internal, "案件编号", "case id"),
        f(
            "position",
            T::Integer,
            S::Internal,
            "日志位置",
            "log position",
        ),
        f("event_type", T::Text, S::Internal, "事件类型", "event type"),
        f(
            "actor",
            T::Text,
            S::Internal,
            "发出部门",
            "issuing department",
        ),
        f("time", T::Timestamp, S::Internal, "发生时间", "time"),
        f("holder", T::Text, S::Internal, "承办单位", "holding unit"),
        f(
            "dispatch_unit",
            T::Text,
            S::Internal,
            "派单中心",
            "district command centre",
        ),
        f(
            "district_code",
            T::Text,
            S::Internal,
            "区划代码",
            "district code",
        ),
        f("grid_code", T::Text, S::Internal, "网格编码", "grid code"),
    ],
    filters: Filters {
        department: Some("holder"),
        district: Some("district_code"),
        grid: Some("grid_code"),
        time: Some("time"),
    },
    parties: &["actor", "holder", "dispatch_unit"],
    publication: Publication::Rows,
};

#[derive(Debug, Default)]
pub struct CaseTimeline;

impl CaseRows for CaseTimeline {
    fn dataset(&self) -> &'static Dataset {
        &DATASET
    }

    fn apply(&self, rows: &mut Rows<'_, '_>, c: &CaseChange<'_>) -> Result<(), ProjectionError> {
        let envelope = &c.stored.envelope;
        let case_id = c.event.case_id().as_str();
        let key = format!("{case_id}/{:020}", c.stored.position);
        rows.put_for_parties(
            &DATASET,
            key.as_bytes(),
            &row([
                ("case_id", Value::from(case_id)),
                ("position", Value::from(c.stored.position)),
                ("event_type", Value::from(envelope.event_type.as_str())),
                ("actor", Value::from(issuer(&envelope.source))),
                ("time", instant(envelope.time)),
                ("holder", Value::from(c.after.holder.as_str())),
                ("dispatch_unit", Value::from(c.after.dispatch_unit.as_str())),
                ("district_code", Value::from(c.after.district.as_str())),
                (
                    "grid_code",
                    c.after.grid.clone().map_or(Value::Null, Value::from),
                ),
            ]),
        )
    }
}
