//! Count tables read through small-count and complementary suppression.
//!
//! The stored rows of such a dataset are exact counts, one per (group, row, column) cell.
//! A reader gets, for each group matching the query (e.g. each district), the whole table
//! published at once: every cell, every row and column total and the group's total, with
//! counts below the threshold and enough others withheld that no withheld count follows from
//! the published ones. Suppression needs the whole table, so it is computed per read from
//! the group's stored cells; the page then walks the published rows in key order
//! (`<group>/<row>/<column>`, `*` for a total), so a cursor works as for stored rows.

use std::collections::BTreeMap;

use hub_projector::datasets::read::{Page, Query};
use hub_projector::datasets::rows::{Row, decode_row};
use hub_projector::datasets::suppression::{Cell, Table, publish};
use hub_projector::datasets::{DATA_PREFIX, Dataset, Publication};
use hub_store::{ReadModelStore, StoreError};
use serde_json::Value;

/// The label of a total in place of a row or column value.
pub const TOTAL: &str = "*";

pub fn publish_counts(
    store: &dyn ReadModelStore,
    dataset: &Dataset,
    query: &Query,
    threshold: u64,
) -> Result<Page, StoreError> {
    let Publication::SuppressedCounts {
        group,
        row,
        column,
        count,
    } = dataset.publication
    else {
        return Err(StoreError::Io(format!(
            "{} is not a count table",
            dataset.id
        )));
    };
    let text = |r: &Row, f: &str| {
        r.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    // group -> (row, column) -> count
    let mut groups: BTreeMap<String, BTreeMap<(String, String), u64>> = BTreeMap::new();
    let mut after = None;
    loop {
        let chunk = store.scan(DATA_PREFIX, after.as_deref(), 1024)?;
        let done = chunk.len() < 1024;
        for (key, value) in chunk {
            let stored = decode_row(&value)?;
            let g = text(&stored, group);
            if query.district.as_ref().is_some_and(|d| *d != g) {
                after = Some(key);
                continue;
            }
            let n = stored.get(count).and_then(Value::as_u64).unwrap_or(0);
            groups
                .entry(g)
                .or_default()
                .insert((text(&stored, row), text(&stored, column)), n);
            after = Some(key);
        }
        if done {
            break;
        }
    }

    let mut published: Vec<(String, Row)> = Vec::new();
    for (g, cells) in groups {
        let mut rows: Vec<String> = cells.keys().map(|(r, _)| r.clone()).collect();
        rows.dedup();
        let mut columns: Vec<String> = cells.keys().map(|(_, c)| c.clone()).collect();
        columns.sort();
        columns.dedup();
        let counts = rows
            .iter()
            .map(|r| {
                columns
                    .iter()
                    .map(|c| cells.get(&(r.clone(), c.clone())).copied().unwrap_or(0))
                    .collect()
            })
            .collect();
        let table = Table::new(rows.clone(), columns.clone(), counts)
            .map_err(|e| StoreError::Io(format!("count table of {g}: {e}")))?;
        let out = publish(&table, threshold);
        let mut emit = |r: &str, c: &str, cell: Cell| {
            let (value, suppressed) = match cell {
                Cell::Shown(n) => (Value::from(n), false),
                Cell::Suppressed => (Value::Null, true),
            };
            let mut entry = Row::new();
            entry.insert(group.into(), Value::from(g.as_str()));
            entry.insert(row.into(), Value::from(r));
            entry.insert(column.into(), Value::from(c));
            entry.insert(count.into(), value);
            entry.insert("suppressed".into(), Value::from(suppressed.to_string()));
            published.push((format!("{g}/{r}/{c}"), entry));
        };
        for (i, r) in rows.iter().enumerate() {
            for (j, c) in columns.iter().enumerate() {
                emit(r, c, out.cells[i][j]);
            }
            emit(r, TOTAL, out.row_totals[i]);
        }
        for (j, c) in columns.iter().enumerate() {
            emit(TOTAL, c, out.column_totals[j]);
        }
        emit(TOTAL, TOTAL, out.total);
    }
    published.sort_by(|a, b| a.0.cmp(&b.0));

    let start = match &query.after {
        None => 0,
        Some(after) => published.partition_point(|(k, _)| k.as_bytes() <= after.as_slice()),
    };
    let rest = &published[start..];
    let take = rest.len().min(query.limit);
    Ok(Page {
        rows: rest[..take].iter().map(|(_, r)| r.clone()).collect(),
        next: (take < rest.len()).then(|| rest[take - 1].0.as_bytes().to_vec()),
    })
}
