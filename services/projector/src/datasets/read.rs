//! Reading a page of a dataset: filtered, in key order, after a cursor.

use hub_store::{ReadModelStore, StoreError};
use jiff::Timestamp;
use serde_json::Value;

use super::rows::{Row, data_key, decode_row, party_prefix};
use super::{DATA_PREFIX, Dataset, FieldType};

/// Rows looked at, at most, per call: a filter that matches little returns a short (even
/// empty) page with a cursor rather than scanning a whole large dataset in one call.
pub const SCAN_BUDGET: usize = 10_000;

/// What to read. Filters on dimensions the dataset lacks must be refused before this.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub department: Option<String>,
    pub district: Option<String>,
    pub grid: Option<String>,
    /// Inclusive lower bound on the time field, in its own form.
    pub time_from: Option<TimeBound>,
    /// Exclusive upper bound on the time field, in its own form.
    pub time_to: Option<TimeBound>,
    /// Only rows naming this department in one of the dataset's party fields.
    pub party: Option<String>,
    /// The key of the last row of the previous page.
    pub after: Option<Vec<u8>>,
    pub limit: usize,
}

/// A bound on a time field: an instant for timestamps, text (`YYYY-MM-DD`, `YYYY-MM`) for
/// dates and months, which order as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeBound {
    Instant(Timestamp),
    Text(String),
}

impl TimeBound {
    /// Parses a bound for a field of type `kind`; `None` when it is not of that form.
    pub fn parse(kind: FieldType, text: &str) -> Option<Self> {
        let fixed = |len: usize, digits_at: &[usize]| {
            text.len() == len
                && text.bytes().enumerate().all(|(i, b)| {
                    if digits_at.contains(&i) {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                })
        };
        match kind {
            FieldType::Timestamp => text.parse().ok().map(TimeBound::Instant),
            FieldType::Date if fixed(10, &[4, 7]) => Some(TimeBound::Text(text.to_owned())),
            FieldType::Month if fixed(7, &[4]) => Some(TimeBound::Text(text.to_owned())),
            _ => None,
        }
    }

    /// Compares a row's value with the bound; `None` when the value is not of the bound's form.
    fn cmp_value(&self, value: &Value) -> Option<std::cmp::Ordering> {
        let text = value.as_str()?;
        match self {
            TimeBound::Instant(bound) => Some(text.parse::<Timestamp>().ok()?.cmp(bound)),
            TimeBound::Text(bound) => Some(text.cmp(bound.as_str())),
        }
    }
}

/// A page of rows and the cursor after it (`None`: nothing more).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub rows: Vec<Row>,
    pub next: Option<Vec<u8>>,
}

/// Whether `row` passes the query's filters and, for a party's read, names the party.
pub fn matches(dataset: &Dataset, query: &Query, row: &Row) -> bool {
    let equal = |field: Option<&str>, wanted: &Option<String>| match (field, wanted) {
        (_, None) => true,
        (Some(field), Some(wanted)) => row.get(field).and_then(Value::as_str) == Some(wanted),
        (None, Some(_)) => false,
    };
    let filters = &dataset.filters;
    if !(equal(filters.department, &query.department)
        && equal(filters.district, &query.district)
        && equal(filters.grid, &query.grid))
    {
        return false;
    }
    if let Some(party) = &query.party
        && !dataset
            .parties
            .iter()
            .any(|f| row.get(*f).and_then(Value::as_str) == Some(party.as_str()))
    {
        return false;
    }
    let time = filters.time.and_then(|f| row.get(f));
    let within = |bound: &Option<TimeBound>, ok: fn(std::cmp::Ordering) -> bool| match bound {
        None => true,
        Some(bound) => time.and_then(|v| bound.cmp_value(v)).is_some_and(ok),
    };
    within(&query.time_from, |o| o.is_ge()) && within(&query.time_to, |o| o.is_lt())
}

/// Reads up to `query.limit` matching rows after the cursor, looking at no more than
/// [`SCAN_BUDGET`] rows. The returned cursor is the key of the last row looked at, so
/// the next page starts where this one stopped even when nothing matched. A read for a
/// party walks that party's index, so the rows it looks at, and the cursor it returns, are
/// the party's own: a cursor never names another department's row.
pub fn read_page(
    store: &dyn ReadModelStore,
    dataset: &Dataset,
    query: &Query,
) -> Result<Page, StoreError> {
    let prefix = match &query.party {
        Some(party) => party_prefix(party),
        None => DATA_PREFIX.to_vec(),
    };
    let mut page = Page::default();
    let mut after = query
        .after
        .as_ref()
        .map(|k| [prefix.as_slice(), k].concat());
    let mut scanned = 0;
    while page.rows.len() < query.limit && scanned < SCAN_BUDGET {
        let chunk = (SCAN_BUDGET - scanned).min(512);
        let rows = store.scan(&prefix, after.as_deref(), chunk)?;
        let done = rows.len() < chunk;
        for (key, value) in rows {
            scanned += 1;
            let value = match &query.party {
                None => value,
                // An index entry: the row is under its data key.
                Some(_) => match store.get(&data_key(&key[prefix.len()..]))? {
                    Some(value) => value,
                    None => {
                        after = Some(key);
                        continue;
                    }
                },
            };
            let row = decode_row(&value)?;
            after = Some(key);
            if matches(dataset, query, &row) {
                page.rows.push(row);
                if page.rows.len() == query.limit {
                    break;
                }
            }
        }
        if done && page.rows.len() < query.limit {
            return Ok(page); // the end of the dataset: no cursor
        }
    }
    page.next = after.map(|k| k[prefix.len()..].to_vec());
    Ok(page)
}
