//! Datasets: the read models as the catalogue (政务信息资源目录) lists them.
//!
//! Every read model that serves data is a dataset: it declares here what it holds (title and
//! description in Chinese and English, owner, share and open types, update cycle, fields with
//! type and sensitivity) and which of its fields the query service filters on. The rows of a
//! dataset are JSON objects stored under [`DATA_PREFIX`] in the model's sled database, in key
//! order; a page cursor is the key of the last row returned, so it stays valid while new rows
//! arrive.

pub mod access;
pub mod care;
pub mod case_facts;
pub mod case_model;
pub mod case_timeline;
pub mod common;
pub mod complaint_stats;
pub mod grant_register;
pub mod incident_stats;
pub mod read;
pub mod response_efficiency;
pub mod rows;
pub mod suppression;
pub mod transfer_ledger;

#[cfg(test)]
mod tests;

pub use hub_domain::masking::Mask;
pub use hub_domain::registry::Sensitivity;

/// How a dataset may be shared between departments (政务数据共享).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareType {
    /// 无条件共享: any department reads it.
    Unconditional,
    /// 有条件共享: a department reads it under an approved grant.
    Conditional,
    /// 不予共享: the owner alone reads it.
    NotShared,
}

/// How a dataset may be opened to the public (公共数据开放).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenType {
    /// 无条件开放: anyone, the anonymous public included, reads it.
    Open,
    /// 有条件开放: the public reads it under an agreement.
    Conditional,
    /// 不予开放.
    NotOpen,
}

/// How often the dataset changes (the EU frequency vocabulary's terms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateCycle {
    /// Continuously: every accepted event reaches the dataset within moments.
    Continuous,
    Daily,
    Monthly,
}

/// The type of a field's values as the rows carry them (JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text, e.g. a code or a description.
    Text,
    /// A whole number.
    Integer,
    /// A number with a fraction (a mean, a rate).
    Decimal,
    /// An instant, RFC 3339 in UTC.
    Timestamp,
    /// A calendar date in the city's time zone, `YYYY-MM-DD`.
    Date,
    /// A calendar month in the city's time zone, `YYYY-MM`.
    Month,
}

/// One field of a dataset's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub kind: FieldType,
    pub sensitivity: Sensitivity,
    pub title_zh: &'static str,
    pub title_en: &'static str,
    /// How the field reaches a department whose grant does not name it (see `access`).
    pub mask: Mask,
}

/// Who provides a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// One department of the registry, by code (e.g. `civil-affairs`).
    Department(&'static str),
    /// The hub itself, for datasets that span departments (each department's case queue, the
    /// transfer ledger): a department reads the rows it is a party to (see [`Dataset::parties`]).
    Hub,
}

/// Which fields the query service filters on. A filter on a dimension the dataset lacks
/// is refused (INVALID_ARGUMENT), not ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filters {
    pub department: Option<&'static str>,
    pub district: Option<&'static str>,
    pub grid: Option<&'static str>,
    /// A field of type Timestamp, Date or Month.
    pub time: Option<&'static str>,
}

/// A dataset as the catalogue lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dataset {
    /// The dataset id: also the read model's name, its folder and its consumer.
    pub id: &'static str,
    /// The version of the code that builds it, shown in the catalogue. Raise it when the rows
    /// change: a stored model of a lower version is rebuilt beside the live one and swapped in.
    pub version: u32,
    pub title_zh: &'static str,
    pub title_en: &'static str,
    pub description_zh: &'static str,
    pub description_en: &'static str,
    pub owner: Owner,
    pub share: ShareType,
    pub open: OpenType,
    pub cycle: UpdateCycle,
    /// Keywords for catalogue search, in both languages.
    pub keywords: &'static [&'static str],
    pub fields: &'static [Field],
    pub filters: Filters,
    /// For datasets the hub owns: the fields naming the departments (or dispatch units) a row
    /// concerns; such a department reads the row.
    pub parties: &'static [&'static str],
    pub publication: Publication,
}

/// How a dataset's stored rows become what readers get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publication {
    /// As stored.
    Rows,
    /// The case queue's own rows (protobuf case views, a queue per holder), each reader's
    /// queue read as rows.
    CaseQueue,
    /// The stored rows are exact counts; readers get each `group`'s table of `row` by
    /// `column` with totals, small counts and their complements withheld.
    SuppressedCounts {
        group: &'static str,
        row: &'static str,
        column: &'static str,
        count: &'static str,
    },
}

/// Declares a field (for the datasets' static declarations).
pub const fn field(
    name: &'static str,
    kind: FieldType,
    sensitivity: Sensitivity,
    title_zh: &'static str,
    title_en: &'static str,
) -> Field {
    Field {
        name,
        kind,
        sensitivity,
        title_zh,
        title_en,
        // Personal data is withheld unless a masking form says what of it may be shown.
        mask: match sensitivity {
            Sensitivity::Public | Sensitivity::Internal => Mask::Clear,
            Sensitivity::Personal | Sensitivity::Sensitive => Mask::Drop,
        },
    }
}

impl Field {
    /// The field with its masking form, for a personal field part of which may be shown.
    pub const fn masked(self, mask: Mask) -> Self {
        Self { mask, ..self }
    }
}

/// Every dataset the hub builds, in catalogue order.
pub fn catalogue() -> [&'static Dataset; 8] {
    [
        &incident_stats::DATASET,
        &response_efficiency::DATASET,
        &complaint_stats::DATASET,
        &care::COUNTS,
        &case_timeline::DATASET,
        &transfer_ledger::DATASET,
        &care::ROSTER,
        &grant_register::DATASET,
    ]
}

impl Dataset {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The most sensitive of its fields.
    pub fn sensitivity(&self) -> Sensitivity {
        self.fields
            .iter()
            .map(|f| f.sensitivity)
            .max()
            .unwrap_or(Sensitivity::Public)
    }
}

/// Rows of a dataset live under this key prefix; anything else in the model's database is its
/// own bookkeeping.
pub const DATA_PREFIX: &[u8] = b"d/";
