//! Dataset `transfer_ledger`: who passed which case to whom, when, and whether it was
//! accepted. One row per transfer request, key `<case_id>/<requested position, 20 digits>`.

use hub_domain::case::CaseEvent;
use serde_json::Value;

use super::case_facts::transfer_key;
use super::case_model::{CaseChange, CaseRows};
use super::common::{instant, row};
use super::rows::Rows;
use super::{
    Dataset, FieldType as T, Filters, OpenType, Owner, Publication, Sensitivity as S, ShareType,
    UpdateCycle, field as f,
};
use crate::projection::ProjectionError;

pub static DATASET: Dataset = Dataset {
    id: "transfer_ledger",
    // 2: its case facts kept as postcard, not JSON.
    version: 2,
    title_zh: "跨部门案件流转台账",
    title_en: "Cross-department transfer ledger",
    description_zh: "案件在部门之间的每一次流转申请：由谁转给谁、何时、理由，以及接收或退回的结果。",
    description_en: "Every request to pass a case from one department to another: from whom to whom, when, why, and whether it was accepted or rejected.",
    owner: Owner::Hub,
    // Each department reads the rows it is a party to; the hub has no owner to grant more.
    share: ShareType::NotShared,
    open: OpenType::NotOpen,
    cycle: UpdateCycle::Continuous,
    keywords: &["流转", "交办", "transfer", "accountability"],
    fields: &[
        f("case_id", T::Text, S::Internal, "案件编号", "case id"),
        f(
            "from_department",
            T::Text,
            S::Internal,
            "转出部门",
            "from department",
        ),
        f(
            "to_department",
            T::Text,
            S::Internal,
            "转入部门",
            "to department",
        ),
        f("reason", T::Text, S::Internal, "流转理由", "reason"),
        f(
            "requested_at",
            T::Timestamp,
            S::Internal,
            "申请时间",
            "requested at",
        ),
        f(
            "requested_position",
            T::Integer,
            S::Internal,
            "申请日志位置",
            "request's log position",
        ),
        f(
            "outcome",
            T::Text,
            S::Internal,
            "结果（pending/accepted/rejected）",
            "outcome (pending, accepted, rejected)",
        ),
        f(
            "decided_at",
            T::Timestamp,
            S::Internal,
            "处理时间",
            "decided at",
        ),
        f(
            "decision_reason",
            T::Text,
            S::Internal,
            "退回理由",
            "reason given for a rejection",
        ),
        f(
            "district_code",
            T::Text,
            S::Internal,
            "区划代码",
            "district code",
        ),
    ],
    filters: Filters {
        department: Some("to_department"),
        district: Some("district_code"),
        grid: None,
        time: Some("requested_at"),
    },
    parties: &["from_department", "to_department"],
    publication: Publication::Rows,
};

#[derive(Debug, Default)]
pub struct TransferLedger;

impl TransferLedger {
    fn decide(
        rows: &mut Rows<'_, '_>,
        c: &CaseChange<'_>,
        outcome: &str,
        at: jiff::Timestamp,
        reason: Option<&str>,
    ) -> Result<(), ProjectionError> {
        let Some(key) = &c.before.transfer_key else {
            return Err(ProjectionError::Inconsistent {
                position: c.stored.position,
                reason: "a transfer decided that was never requested".into(),
            });
        };
        let Some(mut entry) = rows.get(key.as_bytes())? else {
            return Err(ProjectionError::Inconsistent {
                position: c.stored.position,
                reason: "the transfer's ledger row is missing".into(),
            });
        };
        entry.insert("outcome".into(), Value::from(outcome));
        entry.insert("decided_at".into(), instant(at));
        entry.insert(
            "decision_reason".into(),
            reason.map_or(Value::Null, Value::from),
        );
        rows.put(key.as_bytes(), &entry)
    }
}

impl CaseRows for TransferLedger {
    fn dataset(&self) -> &'static Dataset {
        &DATASET
    }

    fn apply(&self, rows: &mut Rows<'_, '_>, c: &CaseChange<'_>) -> Result<(), ProjectionError> {
        match c.event {
            CaseEvent::TransferRequested(e) => {
                let key = transfer_key(e.case_id.as_str(), c.stored.position);
                rows.put_for_parties(
                    &DATASET,
                    key.as_bytes(),
                    &row([
                        ("case_id", Value::from(e.case_id.as_str())),
                        ("from_department", Value::from(e.from.as_str())),
                        ("to_department", Value::from(e.to.as_str())),
                        ("reason", Value::from(e.reason.as_str())),
                        ("requested_at", instant(e.requested_at)),
                        ("requested_position", Value::from(c.stored.position)),
                        ("outcome", Value::from("pending")),
                        ("decided_at", Value::Null),
                        ("decision_reason", Value::Null),
                        ("district_code", Value::from(c.after.district.as_str())),
                    ]),
                )
            }
            CaseEvent::TransferAccepted(e) => {
                Self::decide(rows, c, "accepted", e.accepted_at, None)
            }
            CaseEvent::TransferRejected(e) => {
                Self::decide(rows, c, "rejected", e.rejected_at, Some(&e.reason))
            }
            _ => Ok(()),
        }
    }
}
