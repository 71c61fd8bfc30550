//! Dataset `property_complaint_stats` (open): property complaints per company (unified
//! social credit code), compound, category and month: received, resolved, and the ratings
//! residents gave. Row key `<month>/<district>/<company>/<category>/<compound>` (the compound,
//! free text, last); the month is the city's calendar month of the event.

use hub_domain::case::CaseEvent;
use serde_json::Value;

use super::case_model::{CaseChange, CaseRows};
use super::common::{month, row};
use super::rows::Rows;
use super::{
    Dataset, FieldType as T, Filters, OpenType, Owner, Publication, Sensitivity as S, ShareType,
    UpdateCycle, field as f,
};
use crate::projection::ProjectionError;

pub static DATASET: Dataset = Dataset {
    id: "property_complaint_stats",
    // 2: its case facts kept as postcard, not JSON.
    version: 2,
    title_zh: "物业服务投诉统计（按企业、小区、类别、月）",
    title_en: "Property complaints per company, compound, category and month",
    description_zh: "按统一社会信用代码标识的物业服务企业，每个小区每月各类投诉的受理数、办结数、评价数和评分合计，供信用监管使用。",
    description_en: "For each property company (by unified social credit code), compound, category and month: complaints received, resolved, rated, and the sum of ratings, for credit-based supervision.",
    owner: Owner::Department("housing"),
    share: ShareType::Unconditional,
    open: OpenType::Open,
    cycle: UpdateCycle::Continuous,
    keywords: &[
        "物业",
        "投诉",
        "信用监管",
        "property management",
        "complaints",
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
            "company_credit_code",
            T::Text,
            S::Public,
            "企业统一社会信用代码",
            "company's unified social credit code",
        ),
        f("compound", T::Text, S::Public, "小区", "compound"),
        f(
            "complaint_category",
            T::Text,
            S::Public,
            "投诉类别",
            "complaint category",
        ),
        f(
            "complaints",
            T::Integer,
            S::Public,
            "受理数",
            "complaints received",
        ),
        f("resolved", T::Integer, S::Public, "办结数", "resolved"),
        f("rated", T::Integer, S::Public, "评价数", "rated"),
        f(
            "rating_sum",
            T::Integer,
            S::Public,
            "评分合计（1–5分）",
            "sum of ratings (1 to 5)",
        ),
    ],
    filters: Filters {
        department: None,
        district: Some("district_code"),
        grid: None,
        time: Some("month"),
    },
    parties: &[],
    publication: Publication::Rows,
};

#[derive(Debug, Default)]
pub struct ComplaintStats;

impl CaseRows for ComplaintStats {
    fn dataset(&self) -> &'static Dataset {
        &DATASET
    }

    fn apply(&self, rows: &mut Rows<'_, '_>, c: &CaseChange<'_>) -> Result<(), ProjectionError> {
        let facts = c.after;
        let (Some(company), Some(compound), Some(category)) =
            (&facts.company, &facts.compound, &facts.complaint_category)
        else {
            return Ok(()); // not a property complaint
        };
        let counters: &[(&str, i64)] = match c.event {
            CaseEvent::Reported(_) => &[("complaints", 1)],
            CaseEvent::Resolved(_) => &[("resolved", 1)],
            CaseEvent::Rated(e) => &[("rated", 1), ("rating_sum", i64::from(e.rating))],
            _ => return Ok(()),
        };
        let at = match c.event {
            CaseEvent::Reported(e) => e.reported_at,
            CaseEvent::Resolved(e) => e.resolved_at,
            CaseEvent::Rated(e) => e.rated_at,
            _ => return Ok(()),
        };
        let month = month(c.tz, at);
        let key = format!("{month}/{}/{company}/{category}/{compound}", facts.district);
        for &(counter, by) in counters {
            let new = || {
                row([
                    ("month", Value::from(month.as_str())),
                    ("district_code", Value::from(facts.district.as_str())),
                    ("company_credit_code", Value::from(company.as_str())),
                    ("compound", Value::from(compound.as_str())),
                    ("complaint_category", Value::from(category.as_str())),
                    ("complaints", Value::from(0)),
                    ("resolved", Value::from(0)),
                    ("rated", Value::from(0)),
                    ("rating_sum", Value::from(0)),
                ])
            };
            rows.add(key.as_bytes(), new, counter, by)?;
        }
        Ok(())
    }
}
