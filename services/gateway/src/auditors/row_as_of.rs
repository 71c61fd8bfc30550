//! One row of a dataset as it stood once the event at a log position had been applied: the
//! dataset's projection replayed over the log into a scratch store.
//!
//! The replay applies the messages of the dataset's subjects from position 1 up to the
//! position asked for, read in batches of direct gets and applied by the projector's own code
//! ([`hub_projector::apply_entries`], one batch at a time as the live projector commits), to a
//! [`MemStore`] made for the question and dropped with the answer. So a replay up to where the
//! live read model stands gives the live row. The live read model is never touched, and a
//! replay raises no alarm of the hub's: its projections are built with alarms of their own
//! (any it raises the live model raised for the same event).
//!
//! The work is O(position): every message of the dataset's subjects up to it is read and
//! applied (memory holds one batch and the dataset's rows, not the log). A row of a case's
//! own (case_timeline, transfer_ledger: keyed `<case id>/<position>`) depends on that case's
//! events alone, so only the case's subject is replayed: O(one case). To keep that bounded,
//! a position past the log's last one is refused with FAILED_PRECONDITION rather than
//! OUT_OF_RANGE: the hub's errors have no OUT_OF_RANGE, and the position names a state of the
//! log that has not come yet (retry once the log reaches it), which FAILED_PRECONDITION says;
//! GetStateAsOf, which reads one aggregate's subject, answers such a position with the state
//! now instead.
//!
//! What an auditor gets of the row is what a department without a grant gets: every field by
//! its masking form ([`mask_row`] with nothing granted). A row of a dataset about persons (the
//! care roster) is a disclosure of its care record, recorded as such.

use std::collections::BTreeSet;
use std::sync::Arc;

use hub_api::ApiError;
use hub_api::v1::{GetRowAsOfRequest, GetRowAsOfResponse};
use hub_domain::Violations;
use hub_log::Appender;
use hub_log::names::EVENTS_STREAM;
use hub_projector::datasets::access::{Access, mask_row};
use hub_projector::datasets::rows::{Row, data_key, decode_row};
use hub_projector::datasets::{Dataset, Mask, Publication, case_timeline, transfer_ledger};
use hub_projector::replay::ReplayError;
use hub_projector::{Projection, ProjectionError, case_queue};
use hub_store::{MemStore, ReadModelStore};
use tracing::{error, warn};

use crate::audited::Answered;
use crate::datasets::{clear_personal_fields, persons_in, to_struct};

/// The longest key taken: what a ReadDataset page token can name.
const MAX_KEY_BYTES: usize = 512;

/// Each dataset of the catalogue with the projection that builds it, as the live read models
/// are built (`hub::dataset_projections`), but with alarms of their own.
pub type Projections = Vec<(&'static Dataset, Arc<dyn Projection>)>;

/// The answer, and what its audit record names of it.
#[derive(Debug)]
pub(super) struct RowAsOf {
    pub response: GetRowAsOfResponse,
    /// The care records whose personal fields the row carried (masked), and the personal
    /// fields given in clear (none: an auditor reads as a department without a grant).
    persons: Vec<String>,
    clear_fields: Vec<String>,
}

/// What the audit record of an answer says.
pub(super) fn answered(answer: &RowAsOf) -> Answered {
    Answered {
        count: u64::from(answer.response.exists),
        position: answer.response.position,
        persons: answer.persons.clone(),
        clear_fields: answer.clear_fields.clone(),
        ..Answered::default()
    }
}

/// The dataset of a request as its audit record names it: a dataset of the catalogue, or
/// nothing (never the text of a request).
pub(super) fn dataset_of(id: &str) -> String {
    let known = id == case_queue::NAME
        || hub_projector::datasets::catalogue()
            .iter()
            .any(|d| d.id == id);
    if known { id.to_owned() } else { String::new() }
}

/// The request's row as of its position.
///
/// A message up to the position that the dataset's projection cannot apply (it would halt the
/// live read model there too) makes the answer FAILED_PRECONDITION naming its position: no
/// row past it can be told. A log whose first messages are gone cannot be replayed:
/// FAILED_PRECONDITION too.
pub(super) async fn get_row_as_of(
    log: &Appender,
    projections: &Projections,
    request: &GetRowAsOfRequest,
) -> Result<RowAsOf, ApiError> {
    let Parsed {
        dataset,
        projection,
        key,
        position,
    } = parse(projections, request)?;
    let (first, last) = bounds(log).await?;
    if position > last {
        return Err(ApiError::FailedPrecondition(format!(
            "the position is past the end of the event log (its last position is {last}): \
             no row stands there yet"
        )));
    }
    if first > 1 {
        return Err(ApiError::FailedPrecondition(format!(
            "the event log no longer holds its messages before position {first}: a row cannot \
             be replayed from the start"
        )));
    }
    // A case's own rows depend on its events alone: only its subject is replayed.
    let filter = case_of(dataset, &key)
        .map(|case| hub_log::names::event_subject("case", case))
        .unwrap_or_else(|| projection.filter_subject());
    let store = replay(log, (projection, &filter), position).await?;
    let (row, applied) = tokio::task::spawn_blocking(move || {
        let row = store
            .get(&data_key(&key))?
            .map(|b| decode_row(&b))
            .transpose()?;
        Ok::<_, hub_store::StoreError>((row, store.checkpoint()?))
    })
    .await
    .map_err(|err| err.to_string())
    .and_then(|read| read.map_err(|err| err.to_string()))
    .map_err(|reason| {
        error!(dataset = dataset.id, reason = %reason, "audit: reading a replayed row failed");
        ApiError::Internal
    })?;
    Ok(answer(dataset, row, applied))
}

/// The answer for `row` (as stored; `None`: there was none) of `dataset`, the replay having
/// applied up to `applied`.
fn answer(dataset: &'static Dataset, row: Option<Row>, applied: u64) -> RowAsOf {
    let Some(row) = row else {
        return RowAsOf {
            response: GetRowAsOfResponse {
                position: applied,
                ..GetRowAsOfResponse::default()
            },
            persons: Vec::new(),
            clear_fields: Vec::new(),
        };
    };
    let (row, masked, withheld) = release(dataset, row);
    let without_grant = Access::Masked {
        granted: BTreeSet::new(),
        grants: Vec::new(),
    };
    let (persons, clear_fields) = match clear_personal_fields(dataset, &without_grant) {
        Some(clear) => (persons_in(std::slice::from_ref(&row)), clear),
        None => (Vec::new(), Vec::new()),
    };
    RowAsOf {
        response: GetRowAsOfResponse {
            exists: true,
            row: Some(to_struct(row)),
            position: applied,
            masked,
            withheld,
        },
        persons,
        clear_fields,
    }
}

/// `row` as a department without a grant gets it, with the fields shown masked and the fields
/// left out, in the dataset's order (a field it does not declare last, left out).
fn release(dataset: &Dataset, row: Row) -> (Row, Vec<String>, Vec<String>) {
    let released = mask_row(dataset, &BTreeSet::new(), row.clone());
    let (mut masked, mut withheld) = (Vec::new(), Vec::new());
    for field in dataset.fields.iter().filter(|f| row.contains_key(f.name)) {
        if !released.contains_key(field.name) {
            withheld.push(field.name.to_owned());
        } else if field.mask != Mask::Clear {
            masked.push(field.name.to_owned());
        }
    }
    withheld.extend(
        row.keys()
            .filter(|name| dataset.field(name).is_none())
            .cloned(),
    );
    (released, masked, withheld)
}

/// A well-formed request.
struct Parsed {
    dataset: &'static Dataset,
    projection: Arc<dyn Projection>,
    /// The row's key as stored.
    key: Vec<u8>,
    position: u64,
}

/// The request, or every violation, none repeating the request's text.
fn parse(projections: &Projections, request: &GetRowAsOfRequest) -> Result<Parsed, ApiError> {
    let mut violations = Violations::new();
    let found = dataset(&mut violations, projections, &request.dataset);
    let key_ok = !request.key.is_empty()
        && request.key.len() <= MAX_KEY_BYTES
        && !request.key.chars().any(char::is_control);
    if !key_ok {
        violations.push(
            "key",
            format!(
                "must be a row's key as the dataset keys its rows: 1 to {MAX_KEY_BYTES} bytes, \
                 no control characters"
            ),
        );
    }
    if request.position == 0 {
        violations.push("position", "must be a log position: 1 or more");
    }
    let (dataset, projection) = violations.finish(|| found)?.ok_or(ApiError::Internal)?;
    let key = stored_key(dataset, &request.key).into_bytes();
    Ok(Parsed {
        dataset,
        projection: projection.clone(),
        key,
        position: request.position,
    })
}

/// The dataset named `id` with its projection, or a violation of `dataset` saying why not.
fn dataset<'p>(
    violations: &mut Violations,
    projections: &'p Projections,
    id: &str,
) -> Option<(&'static Dataset, &'p Arc<dyn Projection>)> {
    let found = projections.iter().find(|(d, _)| d.id == id);
    let why = match found {
        Some((d, _)) if matches!(d.publication, Publication::SuppressedCounts { .. }) => {
            "is published only as suppressed count tables: one exact count, read alone, could \
             single out a person"
        }
        Some((d, p)) => return Some((d, p)),
        None if id == case_queue::NAME => {
            "is each holder's queue of case views, not one table of rows: GetStateAsOf gives a \
             case as of a position"
        }
        None => "must be the id of a dataset of the catalogue",
    };
    violations.push("dataset", why);
    None
}

/// Whether the last part of the dataset's keys is a log position (stored as 20 digits, so
/// that a case's rows go in log order).
fn position_keyed(dataset: &Dataset) -> bool {
    [case_timeline::DATASET.id, transfer_ledger::DATASET.id].contains(&dataset.id)
}

/// The key as the dataset stores it: a position at the end of a position-keyed dataset's key
/// taken in plain decimal too, and padded to the stored 20 digits.
fn stored_key(dataset: &Dataset, key: &str) -> String {
    if position_keyed(dataset)
        && let Some((head, tail)) = key.rsplit_once('/')
        && !tail.is_empty()
        && tail.bytes().all(|b| b.is_ascii_digit())
        && let Ok(position) = tail.parse::<u64>()
    {
        return format!("{head}/{position:020}");
    }
    key.to_owned()
}

/// The case a row of a position-keyed dataset (one row per event of a case, keyed
/// `<case id>/<position>`) belongs to, when its key names a well-formed case id.
fn case_of<'k>(dataset: &Dataset, stored_key: &'k [u8]) -> Option<&'k str> {
    if !position_keyed(dataset) {
        return None;
    }
    let key = std::str::from_utf8(stored_key).ok()?;
    let (case, _) = key.rsplit_once('/')?;
    let well_formed = !case.is_empty()
        && case.len() <= 64
        && case.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    well_formed.then_some(case)
}

/// Where the event log starts and ends.
async fn bounds(log: &Appender) -> Result<(u64, u64), ApiError> {
    let stream = log
        .context()
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|err| {
            warn!(error = %err, "audit: the event log's bounds cannot be read");
            ApiError::Unavailable("the event log cannot be read now; retry later".into())
        })?;
    let state = &stream.cached_info().state;
    Ok((state.first_sequence, state.last_sequence))
}

/// The dataset of `projection` built from the messages on `filter` from position 1 up to
/// `up_to`, in a store of its own.
async fn replay(
    log: &Appender,
    (projection, filter): (Arc<dyn Projection>, &str),
    up_to: u64,
) -> Result<Arc<MemStore>, ApiError> {
    let store = Arc::new(MemStore::new());
    let name = projection.name();
    match hub_projector::replay::build_to(log, store.clone(), (projection, filter), up_to).await {
        Ok(_) => Ok(store),
        Err(ReplayError::Log(err)) => Err(super::history::log_failed(err)),
        Err(ReplayError::Apply(
            ProjectionError::Decode { position, .. }
            | ProjectionError::Inconsistent { position, .. },
        )) => {
            warn!(
                dataset = name,
                position, "audit: a replay stops at an event its dataset cannot apply"
            );
            Err(ApiError::FailedPrecondition(format!(
                "dataset {name} cannot be built past position {position}: the event there does \
                 not apply (its read model halts there too); no row from there on can be told"
            )))
        }
        Err(err) => {
            error!(dataset = name, error = %err, "audit: a replay failed");
            Err(ApiError::Internal)
        }
    }
}

#[cfg(test)]
mod tests {
    use hub_projector::Alarms;
    use hub_projector::datasets::{care, grant_register};
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn a_cases_own_row_replays_that_case_alone() {
        let key = |k: &str| stored_key(&case_timeline::DATASET, k).into_bytes();
        assert_eq!(case_of(&case_timeline::DATASET, &key("c-1/7")), Some("c-1"));
        assert_eq!(
            case_of(
                &transfer_ledger::DATASET,
                &key("3f2a-9b/00000000000000000012")
            ),
            Some("3f2a-9b")
        );
        // Nothing that could widen the subject filter, and no other dataset.
        for bad in ["c.1/7", "c*/7", "c>/7", "/7", "c-1"] {
            assert_eq!(case_of(&case_timeline::DATASET, &key(bad)), None, "{bad}");
        }
        assert_eq!(case_of(&grant_register::DATASET, b"c-1/7"), None);
    }

    fn row(value: Value) -> Row {
        match value {
            Value::Object(map) => map,
            _ => Row::new(),
        }
    }

    #[test]
    fn a_position_at_the_end_of_a_case_datasets_key_is_taken_in_decimal_or_as_stored() {
        let timeline = &case_timeline::DATASET;
        let stored = "c-1/00000000000000000042";
        assert_eq!(stored_key(timeline, "c-1/42"), stored);
        assert_eq!(stored_key(timeline, stored), stored);
        assert_eq!(
            stored_key(&transfer_ledger::DATASET, "c-1/7"),
            "c-1/00000000000000000007"
        );
        // Anything else is the key as given: no position to pad, or a dataset keyed otherwise.
        for key in ["c-1/", "c-1/4x", "c-1", "c-1/99999999999999999999999"] {
            assert_eq!(stored_key(timeline, key), key);
        }
        assert_eq!(stored_key(&grant_register::DATASET, "g/42"), "g/42");
    }

    #[test]
    fn a_roster_row_is_masked_as_for_a_department_without_a_grant_and_says_what_was() {
        let stored = row(json!({
            "care_id": "c-1",
            "name": "张三丰",
            "identity_number": "11010519491231002X",
            "phone": "13812345678",
            "address": "漕溪北路88弄3号",
            "category": "elderly_in_hardship",
            "community_code": "310104001001",
            "risk_level": "medium",
            "visits": 1,
            "undeclared": "x",
        }));
        let (released, masked, withheld) = release(&care::ROSTER, stored);
        assert_eq!(masked, ["name", "identity_number", "phone", "address"]);
        assert_eq!(withheld, ["category", "risk_level", "undeclared"]);
        let text = Value::Object(released.clone()).to_string();
        for secret in ["张三丰", "11010519491231002X", "13812345678", "漕溪北路"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert_eq!(released["address"], "310104001001");
        assert_eq!(released["visits"], 1);

        // The answer names the person for the ledger, nothing in clear.
        let answer = answer(&care::ROSTER, Some(row(json!({"care_id": "c-1"}))), 9);
        assert_eq!(answer.persons, ["c-1"]);
        assert!(answer.clear_fields.is_empty());
        assert_eq!(
            (answer.response.exists, answer.response.position),
            (true, 9)
        );
        let none = super::answer(&care::ROSTER, None, 3);
        assert!(!none.response.exists && none.response.row.is_none());
        assert!(none.persons.is_empty() && none.response.masked.is_empty());
        assert_eq!(none.response.position, 3);
    }

    #[test]
    fn a_case_datasets_row_is_whole_and_names_no_person() {
        let stored = row(json!({"case_id": "c-1", "outcome": "pending", "reason": "r"}));
        let (released, masked, withheld) = release(&transfer_ledger::DATASET, stored.clone());
        assert_eq!(released, stored);
        assert!(masked.is_empty() && withheld.is_empty());
        let answer = answer(&transfer_ledger::DATASET, Some(stored), 5);
        assert!(answer.persons.is_empty() && answer.clear_fields.is_empty());
    }

    #[test]
    fn only_datasets_with_rows_are_replayed_and_bad_input_names_its_field() {
        let model = |which| -> Arc<dyn Projection> {
            Arc::new(care::CareModel::new(which, Alarms::default()))
        };
        let projections: Projections = vec![
            (&care::COUNTS, model(care::CareDataset::Counts)),
            (&care::ROSTER, model(care::CareDataset::Roster)),
        ];
        let request = |dataset: &str, key: &str, position| GetRowAsOfRequest {
            dataset: dataset.into(),
            key: key.into(),
            position,
        };
        let fields = |request: GetRowAsOfRequest| match parse(&projections, &request) {
            Err(ApiError::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect::<Vec<_>>(),
            other => panic!("{:?}", other.map(|p| (p.dataset.id, p.key, p.position))),
        };
        assert_eq!(fields(request("", "", 0)), ["dataset", "key", "position"]);
        assert_eq!(fields(request(case_queue::NAME, "k", 1)), ["dataset"]);
        assert_eq!(fields(request(care::COUNTS.id, "k", 1)), ["dataset"]);
        assert_eq!(fields(request(care::ROSTER.id, "c-1", 0)), ["position"]);
        let parsed =
            parse(&projections, &request(care::ROSTER.id, "c-1", 4)).expect("a good request");
        assert_eq!(
            (
                parsed.dataset.id,
                parsed.projection.name(),
                parsed.key.as_slice(),
                parsed.position
            ),
            (care::ROSTER.id, care::ROSTER.id, b"c-1".as_slice(), 4)
        );
        assert_eq!(fields(request("x", "a\nb", 1)), ["dataset", "key"]);
        assert_eq!(
            fields(request("x", &"k".repeat(MAX_KEY_BYTES + 1), 1)),
            ["dataset", "key"]
        );
        assert_eq!(dataset_of(case_queue::NAME), case_queue::NAME);
        assert_eq!(dataset_of("care_roster"), "care_roster");
        assert_eq!(dataset_of("11010519491231002X"), "");
    }
}
