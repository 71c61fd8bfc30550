//! The care datasets, from key-population care records (重点人群关爱), owned by civil affairs:
//!
//! - `care_roster` (sensitive; conditional share; not open): one row per person cared for,
//!   key `<care_id>`;
//! - `care_counts` (open): active records per district, community and category, key
//!   `<district>/<community>/<category>`. The rows hold exact counts; the public reads them
//!   only through small-count and complementary suppression (see `suppression`), applied to
//!   each district's table as a whole when it is read.

use hub_api::aggregate::{Aggregate, Care};
use hub_domain::care::CareEvent;
use hub_log::names::aggregate_filter;
use hub_log::{StoredEvent, Unreadable};
use hub_store::Batch;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{
    decoded_or_passed, instant, load, misfit_passed, passed, row, save, unreadable_passed,
};
use super::rows::Rows;
use super::{
    Dataset, FieldType as T, Filters, Mask, OpenType, Owner, Publication, Sensitivity as S,
    ShareType, UpdateCycle, field as f,
};
use crate::alarm::Alarms;
use crate::projection::{Projection, ProjectionError};

pub static ROSTER: Dataset = Dataset {
    id: "care_roster",
    // 2: a phone number and an address. 3: its care facts kept as postcard, not JSON.
    version: 3,
    title_zh: "重点人群关爱名册",
    title_en: "Key-population care roster",
    description_zh: "民政部门登记的重点人群（社区戒毒康复人员、严重精神障碍患者、困难老人、留守儿童）及其走访和风险等级。敏感个人信息，经批准的共享申请方可使用，并按策略脱敏。",
    description_en: "The people civil affairs cares for (community drug rehabilitation, severe mental disorders, elderly in hardship, left-behind children), with visits and risk levels. Sensitive personal information: shared only under an approved grant, masked by policy.",
    owner: Owner::Department("civil-affairs"),
    share: ShareType::Conditional,
    open: OpenType::NotOpen,
    cycle: UpdateCycle::Continuous,
    keywords: &["重点人群", "关爱", "key populations", "care"],
    fields: &[
        f(
            "care_id",
            T::Text,
            S::Internal,
            "关爱记录编号",
            "care record id",
        ),
        f("name", T::Text, S::Personal, "姓名", "name").masked(Mask::Name),
        f(
            "identity_number",
            T::Text,
            S::Sensitive,
            "居民身份证号码",
            "resident identity number",
        )
        .masked(Mask::IdentityNumber),
        f(
            "category",
            T::Text,
            S::Sensitive,
            "人群类别",
            "key-population category",
        ),
        f("phone", T::Text, S::Personal, "联系电话", "phone number").masked(Mask::Phone),
        f("address", T::Text, S::Personal, "住址", "home address")
            .masked(Mask::Community("community_code")),
        f(
            "community_code",
            T::Text,
            S::Internal,
            "社区代码",
            "community code",
        ),
        f(
            "district_code",
            T::Text,
            S::Internal,
            "区划代码",
            "district code",
        ),
        f(
            "risk_level",
            T::Text,
            S::Sensitive,
            "风险等级",
            "risk level",
        ),
        f(
            "status",
            T::Text,
            S::Internal,
            "状态（open/closed）",
            "status (open, closed)",
        ),
        f(
            "registered_at",
            T::Timestamp,
            S::Internal,
            "登记时间",
            "registered at",
        ),
        f(
            "visits",
            T::Integer,
            S::Internal,
            "走访次数",
            "visits logged",
        ),
        f(
            "last_visit_at",
            T::Timestamp,
            S::Internal,
            "最近走访时间",
            "last visit",
        ),
        f(
            "closed_at",
            T::Timestamp,
            S::Internal,
            "结束时间",
            "closed at",
        ),
    ],
    filters: Filters {
        department: None,
        district: Some("district_code"),
        grid: None,
        time: Some("registered_at"),
    },
    parties: &[],
    publication: Publication::Rows,
};

pub static COUNTS: Dataset = Dataset {
    id: "care_counts",
    // 2: its care facts kept as postcard, not JSON.
    version: 2,
    title_zh: "重点人群关爱人数（按社区、类别）",
    title_en: "Key-population care counts per community and category",
    description_zh: "各区每个社区各类重点人群的在册关爱人数，含社区合计、类别合计和全区合计。小于阈值的数字不予公布，并作补充隐匿，使任何隐匿数字都无法由公布的数字和合计相减得出。",
    description_en: "Active care records per district, community and category, with community, category and district totals. Counts below the threshold are withheld, and further cells too, so that no withheld count can be worked out by subtracting published cells from published totals.",
    owner: Owner::Department("civil-affairs"),
    share: ShareType::Unconditional,
    open: OpenType::Open,
    cycle: UpdateCycle::Continuous,
    keywords: &["重点人群", "统计", "key populations", "statistics"],
    fields: &[
        f(
            "district_code",
            T::Text,
            S::Public,
            "区划代码",
            "district code",
        ),
        f(
            "community_code",
            T::Text,
            S::Public,
            "社区代码（* 为全区合计）",
            "community code (* for the district total)",
        ),
        f(
            "category",
            T::Text,
            S::Public,
            "人群类别（* 为合计）",
            "category (* for the total)",
        ),
        f(
            "count",
            T::Integer,
            S::Public,
            "人数（隐匿时为空）",
            "count (null when withheld)",
        ),
        f(
            "suppressed",
            T::Text,
            S::Public,
            "是否隐匿（true/false）",
            "withheld (true or false)",
        ),
    ],
    filters: Filters {
        department: None,
        district: Some("district_code"),
        grid: None,
        time: None,
    },
    parties: &[],
    publication: Publication::SuppressedCounts {
        group: "district_code",
        row: "community_code",
        column: "category",
        count: "count",
    },
};

/// A text that may be empty, as a row holds it: null when empty.
fn text_or_null(text: &str) -> Value {
    if text.is_empty() {
        Value::Null
    } else {
        Value::from(text)
    }
}

/// What a care model remembers of each record (`i/<care_id>`): never a name or number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CareFacts {
    district: String,
    community: String,
    category: String,
    active: bool,
}

fn facts_key(care_id: &str) -> Vec<u8> {
    [b"i/", care_id.as_bytes()].concat()
}

/// Which of the two datasets a [`CareModel`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CareDataset {
    Roster,
    Counts,
}

pub struct CareModel {
    which: CareDataset,
    alarms: Alarms,
}

impl CareModel {
    pub fn new(which: CareDataset, alarms: Alarms) -> Self {
        Self { which, alarms }
    }

    pub fn dataset(&self) -> &'static Dataset {
        match self.which {
            CareDataset::Roster => &ROSTER,
            CareDataset::Counts => &COUNTS,
        }
    }

    fn roster(
        rows: &mut Rows<'_, '_>,
        event: &CareEvent,
        position: u64,
    ) -> Result<(), ProjectionError> {
        let id = event.care_id().as_str();
        if let CareEvent::Registered(e) = event {
            return rows.put(
                id.as_bytes(),
                &row([
                    ("care_id", Value::from(id)),
                    ("name", Value::from(e.name.as_str())),
                    ("identity_number", Value::from(e.identity_number.expose())),
                    ("phone", text_or_null(&e.phone)),
                    ("address", text_or_null(&e.address)),
                    ("category", Value::from(e.category.as_str())),
                    ("community_code", Value::from(e.community.as_str())),
                    ("district_code", Value::from(e.district.as_str())),
                    ("risk_level", Value::from(e.risk_level.as_str())),
                    ("status", Value::from("open")),
                    ("registered_at", instant(e.registered_at)),
                    ("visits", Value::from(0)),
                    ("last_visit_at", Value::Null),
                    ("closed_at", Value::Null),
                ]),
            );
        }
        let Some(mut entry) = rows.get(id.as_bytes())? else {
            return Err(ProjectionError::Inconsistent {
                position,
                reason: "an event of a care record whose registration was not applied".into(),
            });
        };
        match event {
            CareEvent::Registered(_) => {}
            CareEvent::VisitLogged(e) => {
                let visits = entry.get("visits").and_then(Value::as_i64).unwrap_or(0);
                entry.insert("visits".into(), Value::from(visits + 1));
                entry.insert("last_visit_at".into(), instant(e.visited_at));
            }
            CareEvent::RiskLevelChanged(e) => {
                entry.insert("risk_level".into(), Value::from(e.to.as_str()));
            }
            CareEvent::Closed(e) => {
                entry.insert("status".into(), Value::from("closed"));
                entry.insert("closed_at".into(), instant(e.closed_at));
            }
        }
        rows.put(id.as_bytes(), &entry)
    }

    fn counts(
        rows: &mut Rows<'_, '_>,
        event: &CareEvent,
        position: u64,
    ) -> Result<(), ProjectionError> {
        let key = facts_key(event.care_id().as_str());
        let (facts, by) = match event {
            CareEvent::Registered(e) => {
                let facts = CareFacts {
                    district: e.district.to_string(),
                    community: e.community.as_str().to_owned(),
                    category: e.category.as_str().to_owned(),
                    active: true,
                };
                save(rows.batch(), key, &facts);
                (facts, 1)
            }
            CareEvent::Closed(_) => {
                let Some(mut facts) = load::<CareFacts>(rows.batch(), &key, position)? else {
                    return Err(ProjectionError::Inconsistent {
                        position,
                        reason: "a care record closed whose registration was not applied".into(),
                    });
                };
                if !facts.active {
                    return Ok(());
                }
                facts.active = false;
                save(rows.batch(), key, &facts);
                (facts, -1)
            }
            _ => return Ok(()),
        };
        let cell = format!("{}/{}/{}", facts.district, facts.community, facts.category);
        let new = || {
            row([
                ("district_code", Value::from(facts.district.as_str())),
                ("community_code", Value::from(facts.community.as_str())),
                ("category", Value::from(facts.category.as_str())),
                ("count", Value::from(0)),
            ])
        };
        rows.add(cell.as_bytes(), new, "count", by)
    }
}

impl Projection for CareModel {
    fn name(&self) -> &'static str {
        self.dataset().id
    }

    fn filter_subject(&self) -> String {
        aggregate_filter(Care::TYPE)
    }

    fn version(&self) -> u32 {
        self.dataset().version
    }

    fn apply(&self, stored: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let event_type = stored.envelope.event_type.as_str();
        let at = (stored.subject.as_str(), stored.position, event_type);
        if passed(batch, &stored.subject)? {
            return Ok(());
        }
        let decoded = Care::decode(event_type, &stored.body);
        let Some(event) = decoded_or_passed(self.name(), &self.alarms, batch, at, decoded)? else {
            return Ok(());
        };
        let mut rows = Rows::new(batch);
        let applied = match self.which {
            CareDataset::Roster => Self::roster(&mut rows, &event, stored.position),
            CareDataset::Counts => Self::counts(&mut rows, &event, stored.position),
        };
        misfit_passed(self.name(), &self.alarms, batch, at, applied)
    }

    fn apply_unreadable(
        &self,
        unreadable: &Unreadable,
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        unreadable_passed(self.name(), &self.alarms, batch, unreadable)
    }
}
