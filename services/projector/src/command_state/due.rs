//! The due index: when the hub must next act on an aggregate by itself.
//!
//! A due time depends on the policy (calendar, escalation delays) as well as on the events,
//! so each row remembers the due key it wrote: applying an event replaces exactly that key,
//! and when the hub starts with another policy than the index was built with, every due time
//! is computed again ([`reschedule`]) instead of leaving entries behind that nothing removes.

use hub_api::aggregate::{Aggregate, Care, Case, Grant};
use hub_domain::policy::Policy;
use hub_store::{Batch, ReadModelStore, StoreError, Write};
use jiff::Timestamp;

use super::{AggregateRow, read, write};

const DUE_PREFIX: &[u8] = b"d/";
const AGGREGATE_PREFIX: &[u8] = b"a/";
const POLICY_KEY: &[u8] = b"p/policy";
/// Writes per commit while rescheduling.
const CHUNK: usize = 4096;

/// Orders instants as unsigned big-endian bytes (the sign bit flipped).
fn instant_bytes(at: Timestamp) -> [u8; 8] {
    ((at.as_second() as u64) ^ (1 << 63)).to_be_bytes()
}

fn instant_from(bytes: &[u8]) -> Option<Timestamp> {
    let array: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Timestamp::from_second((u64::from_be_bytes(array) ^ (1 << 63)) as i64).ok()
}

pub fn due_key(at: Timestamp, aggregate_type: &str, id: &str) -> Vec<u8> {
    [
        DUE_PREFIX,
        &instant_bytes(at),
        aggregate_type.as_bytes(),
        b"/",
        id.as_bytes(),
    ]
    .concat()
}

/// An aggregate the hub must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub at: Timestamp,
    pub aggregate_type: String,
    pub id: String,
}

/// Moves `row`'s due entry to where the policy puts it now (none for a blocked aggregate).
pub(super) fn reschedule_row<A: Aggregate>(
    row: &mut AggregateRow<A::State>,
    id: &str,
    policy: &Policy,
    batch: &mut Batch<'_>,
) {
    let due = match (&row.blocked, &row.state) {
        (None, Some(state)) => A::due(state, policy),
        _ => None,
    };
    if due != row.due {
        if let Some(at) = row.due {
            batch.delete(due_key(at, A::TYPE, id));
        }
        if let Some(at) = due {
            batch.put(due_key(at, A::TYPE, id), Vec::new());
        }
        row.due = due;
    }
}

/// Up to `limit` aggregates due at or before `now`, earliest first, after the key `after`
/// (the cursor of the previous page); with the cursor of the next page when there may be more.
pub fn due_page(
    store: &dyn ReadModelStore,
    now: Timestamp,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<(Vec<Due>, Option<Vec<u8>>), StoreError> {
    let now = instant_bytes(now);
    let rows = store.scan(DUE_PREFIX, after, limit)?;
    let full = rows.len() == limit;
    let mut page = Vec::with_capacity(rows.len());
    let mut last = None;
    for (key, _) in rows {
        let rest = &key[DUE_PREFIX.len()..];
        if rest.len() <= 8 || rest[..8] > now[..] {
            return Ok((page, None));
        }
        let parsed = instant_from(rest).zip(
            std::str::from_utf8(&rest[8..])
                .ok()
                .and_then(|r| r.split_once('/')),
        );
        if let Some((at, (aggregate_type, id))) = parsed {
            page.push(Due {
                at,
                aggregate_type: aggregate_type.to_owned(),
                id: id.to_owned(),
            });
        }
        last = Some(key);
    }
    Ok((page, last.filter(|_| full)))
}

/// Computes every due time again when the index was built with another policy than `policy`:
/// the due keys are all removed, then each row writes the key the policy gives it now. Returns
/// the number of due entries written (0 when the policy is unchanged). Runs before the
/// projector starts; safe to interrupt, since the policy is recorded last.
pub fn reschedule(store: &dyn ReadModelStore, policy: &Policy) -> Result<usize, StoreError> {
    let described = policy.describe();
    if read::<String>(store.get(POLICY_KEY)?)?.as_deref() == Some(described.as_str()) {
        return Ok(0);
    }
    let checkpoint = store.checkpoint()?;
    each_page(store, DUE_PREFIX, |rows, writes| {
        writes.extend(
            rows.iter()
                .map(|(key, _)| Write::Delete { key: key.clone() }),
        );
        Ok(())
    })?;
    let mut scheduled = 0;
    each_page(store, AGGREGATE_PREFIX, |rows, writes| {
        for (key, value) in rows {
            let rest = String::from_utf8_lossy(&key[AGGREGATE_PREFIX.len()..]).into_owned();
            let Some((aggregate_type, id)) = rest.split_once('/') else {
                continue;
            };
            let written = match aggregate_type {
                Case::TYPE => recompute::<Case>(id, value, policy, writes)?,
                Care::TYPE => recompute::<Care>(id, value, policy, writes)?,
                Grant::TYPE => recompute::<Grant>(id, value, policy, writes)?,
                _ => false,
            };
            scheduled += usize::from(written);
        }
        Ok(())
    })?;
    store.commit(
        vec![Write::Put {
            key: POLICY_KEY.to_vec(),
            value: write(&described)?,
        }],
        checkpoint,
    )?;
    Ok(scheduled)
}

/// The row's due entry under `policy`, written afresh; whether it has one.
fn recompute<A: Aggregate>(
    id: &str,
    value: &[u8],
    policy: &Policy,
    writes: &mut Vec<Write>,
) -> Result<bool, StoreError> {
    let Some(mut row) = read::<AggregateRow<A::State>>(Some(value.to_vec()))? else {
        return Ok(false);
    };
    row.due = match (&row.blocked, &row.state) {
        (None, Some(state)) => A::due(state, policy),
        _ => None,
    };
    if let Some(at) = row.due {
        writes.push(Write::Put {
            key: due_key(at, A::TYPE, id),
            value: Vec::new(),
        });
    }
    writes.push(Write::Put {
        key: super::aggregate_key(A::TYPE, id),
        value: write(&row)?,
    });
    Ok(row.due.is_some())
}

/// Calls `each` with every page of rows under `prefix` and commits the writes it asks for, a
/// chunk at a time, keeping the checkpoint where it is.
fn each_page(
    store: &dyn ReadModelStore,
    prefix: &[u8],
    mut each: impl FnMut(&[(Vec<u8>, Vec<u8>)], &mut Vec<Write>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let checkpoint = store.checkpoint()?;
    let mut after: Option<Vec<u8>> = None;
    loop {
        let rows = store.scan(prefix, after.as_deref(), CHUNK)?;
        let Some((last, _)) = rows.last() else {
            return Ok(());
        };
        after = Some(last.clone());
        let mut writes = Vec::new();
        each(&rows, &mut writes)?;
        store.commit(writes, checkpoint)?;
    }
}
