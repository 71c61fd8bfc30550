//! Dataset `grant_register`: every data-sharing grant (共享申请) with its state, one row per
//! grant, key `<grant_id>`. The requester and the dataset's owner each read the grants they
//! are a party to; the hub reads it to decide what a department may see (see `access`).

use hub_api::aggregate::{Aggregate, Grant};
use hub_domain::grant::GrantEvent;
use hub_log::names::aggregate_filter;
use hub_log::{StoredEvent, Unreadable};
use hub_store::{Batch, ReadModelStore, StoreError};
use jiff::Timestamp;
use serde_json::Value;

use super::common::{decoded_or_passed, instant, misfit_passed, passed, row, unreadable_passed};
use super::rows::{Row, Rows, data_key, decode_row, party_prefix};
use super::{
    Dataset, FieldType as T, Filters, OpenType, Owner, Publication, Sensitivity as S, ShareType,
    UpdateCycle, field as f,
};
use crate::alarm::Alarms;
use crate::projection::{Projection, ProjectionError};

pub static DATASET: Dataset = Dataset {
    id: "grant_register",
    version: 1,
    title_zh: "数据共享申请登记簿",
    title_en: "Register of data-sharing grants",
    description_zh: "各部门提出的有条件共享申请：申请部门、数据集、字段、用途、有效期，以及批准、拒绝、撤销或到期的结果。",
    description_en: "Every conditional-sharing request between departments: who asked for which fields of which dataset, for what purpose and until when, and whether it was approved, rejected, revoked or expired.",
    owner: Owner::Hub,
    // The requester and the owner read their own grants; the hub has no owner to grant more.
    share: ShareType::NotShared,
    open: OpenType::NotOpen,
    cycle: UpdateCycle::Continuous,
    keywords: &["共享", "授权", "grant", "data sharing"],
    fields: &[
        f("grant_id", T::Text, S::Internal, "申请编号", "grant id"),
        f(
            "requester",
            T::Text,
            S::Internal,
            "申请部门",
            "requesting department",
        ),
        f(
            "owner",
            T::Text,
            S::Internal,
            "数据提供部门",
            "department owning the dataset",
        ),
        f("dataset", T::Text, S::Internal, "数据集", "dataset id"),
        f(
            "fields",
            T::Text,
            S::Internal,
            "申请字段（逗号分隔）",
            "fields asked for (comma-separated)",
        ),
        f("purpose", T::Text, S::Internal, "用途", "purpose"),
        f(
            "status",
            T::Text,
            S::Internal,
            "状态（requested/approved/rejected/revoked/expired/unreadable）",
            "status (requested, approved, rejected, revoked, expired; unreadable: an event of the grant this version cannot read, so it no longer counts)",
        ),
        f(
            "requested_at",
            T::Timestamp,
            S::Internal,
            "申请时间",
            "requested at",
        ),
        f(
            "expires_at",
            T::Timestamp,
            S::Internal,
            "有效期至",
            "expires at",
        ),
        f(
            "decided_at",
            T::Timestamp,
            S::Internal,
            "批准或拒绝时间",
            "approved or rejected at",
        ),
        f(
            "ended_at",
            T::Timestamp,
            S::Internal,
            "撤销或到期时间",
            "revoked or expired at",
        ),
    ],
    filters: Filters {
        department: Some("requester"),
        district: None,
        grid: None,
        time: Some("requested_at"),
    },
    parties: &["requester", "owner"],
    publication: Publication::Rows,
};

/// A grant as a row of the register tells it: what [`super::access`] decides with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRow {
    pub grant_id: String,
    pub requester: String,
    pub dataset: String,
    pub fields: Vec<String>,
    pub purpose: String,
    pub status: String,
    pub expires_at: Option<Timestamp>,
}

impl GrantRow {
    /// Reads a row of the register; `None` for one that lacks what a decision needs.
    pub fn from_row(row: &Row) -> Option<Self> {
        let text = |name: &str| row.get(name).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            grant_id: text("grant_id")?,
            requester: text("requester")?,
            dataset: text("dataset")?,
            fields: text("fields")?
                .split(',')
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect(),
            purpose: text("purpose").unwrap_or_default(),
            status: text("status")?,
            expires_at: text("expires_at").and_then(|t| t.parse().ok()),
        })
    }

    /// Whether the grant lets its requester read at `now`: approved and not yet expired
    /// (expiry acts at `expires_at`, before the hub's expiry event is even written).
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.status == "approved" && self.expires_at.is_some_and(|end| now < end)
    }
}

/// The grants `department` asked for, in any state, from the register's store.
pub fn grants_of(
    store: &dyn ReadModelStore,
    department: &str,
) -> Result<Vec<GrantRow>, StoreError> {
    let prefix = party_prefix(department);
    let mut grants = Vec::new();
    let mut after: Option<Vec<u8>> = None;
    loop {
        let entries = store.scan(&prefix, after.as_deref(), 512)?;
        let done = entries.len() < 512;
        for (key, _) in entries {
            if let Some(value) = store.get(&data_key(&key[prefix.len()..]))?
                && let Some(grant) = GrantRow::from_row(&decode_row(&value)?)
                && grant.requester == department
            {
                grants.push(grant);
            }
            after = Some(key);
        }
        if done {
            return Ok(grants);
        }
    }
}

#[derive(Debug)]
pub struct GrantRegister {
    alarms: Alarms,
}

impl GrantRegister {
    pub fn new(alarms: Alarms) -> Self {
        Self { alarms }
    }

    fn register(
        rows: &mut Rows<'_, '_>,
        event: &GrantEvent,
        position: u64,
    ) -> Result<(), ProjectionError> {
        let key = event.grant_id().as_str().as_bytes();
        if let GrantEvent::Requested(e) = event {
            return rows.put_for_parties(
                &DATASET,
                key,
                &row([
                    ("grant_id", Value::from(e.grant_id.as_str())),
                    ("requester", Value::from(e.requester.as_str())),
                    ("owner", Value::from(e.owner.as_str())),
                    ("dataset", Value::from(e.dataset.as_str())),
                    ("fields", Value::from(e.fields.join(","))),
                    ("purpose", Value::from(e.purpose.as_str())),
                    ("status", Value::from("requested")),
                    ("requested_at", instant(e.requested_at)),
                    ("expires_at", instant(e.expires_at)),
                    ("decided_at", Value::Null),
                    ("ended_at", Value::Null),
                ]),
            );
        }
        let Some(mut entry) = rows.get(key)? else {
            return Err(ProjectionError::Inconsistent {
                position,
                reason: "an event of a grant whose request was not applied".into(),
            });
        };
        let (status, field, at) = match event {
            GrantEvent::Requested(_) => return Ok(()),
            GrantEvent::Approved(e) => ("approved", "decided_at", e.at),
            GrantEvent::Rejected(e) => ("rejected", "decided_at", e.at),
            GrantEvent::Revoked(e) => ("revoked", "ended_at", e.at),
            GrantEvent::Expired(e) => ("expired", "ended_at", e.at),
        };
        entry.insert("status".into(), Value::from(status));
        entry.insert(field.into(), instant(at));
        rows.put(key, &entry)
    }
}

impl GrantRegister {
    /// An event of a grant that cannot be read might revoke it: the grant stops counting
    /// (status `unreadable`), rather than stay in force on what the model last understood.
    fn fail_closed(batch: &mut Batch<'_>, subject: &str) -> Result<(), ProjectionError> {
        let Some((_, id)) = hub_log::names::parse_event_subject(subject) else {
            return Ok(());
        };
        let mut rows = Rows::new(batch);
        if let Some(mut entry) = rows.get(id.as_bytes())? {
            entry.insert("status".into(), Value::from("unreadable"));
            rows.put(id.as_bytes(), &entry)?;
        }
        Ok(())
    }
}

impl Projection for GrantRegister {
    fn name(&self) -> &'static str {
        DATASET.id
    }

    fn filter_subject(&self) -> String {
        aggregate_filter(Grant::TYPE)
    }

    fn version(&self) -> u32 {
        DATASET.version
    }

    fn apply(&self, stored: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let event_type = stored.envelope.event_type.as_str();
        let at = (stored.subject.as_str(), stored.position, event_type);
        if passed(batch, &stored.subject)? {
            return Ok(());
        }
        let decoded = Grant::decode(event_type, &stored.body);
        if !matches!(decoded, Ok(Some(_))) {
            Self::fail_closed(batch, &stored.subject)?;
        }
        let Some(event) = decoded_or_passed(self.name(), &self.alarms, batch, at, decoded)? else {
            return Ok(());
        };
        let mut rows = Rows::new(batch);
        let applied = Self::register(&mut rows, &event, stored.position);
        misfit_passed(self.name(), &self.alarms, batch, at, applied)
    }

    fn apply_unreadable(
        &self,
        unreadable: &Unreadable,
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        Self::fail_closed(batch, &unreadable.subject)?;
        unreadable_passed(self.name(), &self.alarms, batch, unreadable)
    }
}
