//! What the dataset models share: labels, the city's days and months, and passing over an
//! event a model cannot read.

use hub_domain::case::{ComplaintCategory, IncidentCategory};
use hub_log::names::parse_event_subject;
use hub_store::Batch;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Map, Value};

use crate::alarm::Alarms;
use crate::command_state::Blocked;
use crate::projection::ProjectionError;

pub fn incident_category(category: IncidentCategory) -> &'static str {
    match category {
        IncidentCategory::SafetyHazard => "safety_hazard",
        IncidentCategory::Dispute => "dispute",
        IncidentCategory::Sanitation => "sanitation",
        IncidentCategory::IllegalConstruction => "illegal_construction",
        IncidentCategory::GroupRenting => "group_renting",
        IncidentCategory::FireHazard => "fire_hazard",
        IncidentCategory::Other => "other",
    }
}

pub fn complaint_category(category: ComplaintCategory) -> &'static str {
    match category {
        ComplaintCategory::Fees => "fees",
        ComplaintCategory::PublicRevenue => "public_revenue",
        ComplaintCategory::MaintenanceFund => "maintenance_fund",
        ComplaintCategory::ServiceQuality => "service_quality",
        ComplaintCategory::Other => "other",
    }
}

/// The city's calendar day of an instant, `YYYY-MM-DD`.
pub fn day(tz: &TimeZone, at: Timestamp) -> String {
    at.to_zoned(tz.clone()).date().to_string()
}

/// The city's calendar month of an instant, `YYYY-MM`.
pub fn month(tz: &TimeZone, at: Timestamp) -> String {
    let date = at.to_zoned(tz.clone()).date();
    format!("{:04}-{:02}", date.year(), date.month())
}

/// An instant as rows carry it: RFC 3339, UTC.
pub fn instant(at: Timestamp) -> Value {
    Value::from(at.to_string())
}

/// The department that issued an event, from its CloudEvents source `/departments/<code>`.
pub fn issuer(source: &str) -> &str {
    source.strip_prefix("/departments/").unwrap_or(source)
}

/// Builds a row from (field, value) pairs.
pub fn row<const N: usize>(fields: [(&str, Value); N]) -> Map<String, Value> {
    fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

const PASSED_PREFIX: &[u8] = b"b/";

/// Passes over an event the model cannot read or place: the first such event of an
/// aggregate is recorded under `b/<id>` and raises an alarm, and the model goes on with
/// every other aggregate (a rolling upgrade that brings a new event type must not stop the
/// city's statistics). The alarm names the event, never its content.
pub fn pass_over(
    model: &str,
    alarms: &Alarms,
    batch: &mut Batch<'_>,
    (subject, position, event_type): At<'_>,
    why: &str,
) -> Result<(), ProjectionError> {
    let Some((_, id)) = parse_event_subject(subject) else {
        return Ok(());
    };
    let key = [PASSED_PREFIX, id.as_bytes()].concat();
    if batch.get(&key)?.is_some() {
        return Ok(());
    }
    let block = Blocked {
        event_type: event_type.to_owned(),
        position,
        why: why.to_owned(),
    };
    let bytes = serde_json::to_vec(&block).map_err(|e| ProjectionError::Decode {
        position,
        reason: e.to_string(),
    })?;
    batch.put(key, bytes);
    let (key, text) = passed_alarm(model, id, &block);
    alarms.raise(key, text);
    Ok(())
}

/// Where an event stands, for [`pass_over`]: its subject, position and type.
pub type At<'a> = (&'a str, u64, &'a str);

/// The decoded event, or `None` once an event of a type this version does not know, or
/// with a body it cannot decode, is passed over.
pub fn decoded_or_passed<E, D>(
    model: &str,
    alarms: &Alarms,
    batch: &mut Batch<'_>,
    at: At<'_>,
    decoded: Result<Option<E>, D>,
) -> Result<Option<E>, ProjectionError> {
    let why = match decoded {
        Ok(Some(event)) => return Ok(Some(event)),
        Ok(None) => "has a type this version does not know",
        Err(_) => "has a body this version cannot decode",
    };
    pass_over(model, alarms, batch, at, why)?;
    Ok(None)
}

/// Passes over a message whose envelope cannot be read.
pub fn unreadable_passed(
    model: &str,
    alarms: &Alarms,
    batch: &mut Batch<'_>,
    unreadable: &hub_log::Unreadable,
) -> Result<(), ProjectionError> {
    let at = (
        unreadable.subject.as_str(),
        unreadable.position,
        unreadable.event_type.as_str(),
    );
    pass_over(
        model,
        alarms,
        batch,
        at,
        "has an envelope this version cannot read",
    )
}

/// An event that did not fit what the model saw of its aggregate (a decision on a transfer it
/// never saw requested, a visit to a record it never saw registered) is passed over like an
/// unreadable one; any other outcome stands.
pub fn misfit_passed(
    model: &str,
    alarms: &Alarms,
    batch: &mut Batch<'_>,
    at: At<'_>,
    applied: Result<(), ProjectionError>,
) -> Result<(), ProjectionError> {
    match applied {
        Err(ProjectionError::Inconsistent { reason, .. }) => {
            let why = format!("does not fit the aggregate as the model saw it ({reason})");
            pass_over(model, alarms, batch, at, &why)
        }
        other => other,
    }
}

/// The alarm key and text of an event a dataset passed over.
pub fn passed_alarm(model: &str, id: &str, block: &Blocked) -> (String, String) {
    (
        format!("{model}/{id}"),
        format!(
            "read model {model} passed over event {} at position {} of {id}: it {}",
            block.event_type, block.position, block.why
        ),
    )
}

/// Every aggregate a dataset passed an event of, for the alarms at start.
pub fn passed_over(
    store: &dyn hub_store::ReadModelStore,
) -> Result<Vec<(String, Blocked)>, hub_store::StoreError> {
    crate::command_state::blocks_under(store, PASSED_PREFIX)
}

/// Whether an earlier event of aggregate `id` was passed over: its later events are passed
/// over too, since the model's view of the aggregate is missing that event.
pub fn passed(batch: &Batch<'_>, subject: &str) -> Result<bool, ProjectionError> {
    let Some((_, id)) = parse_event_subject(subject) else {
        return Ok(false);
    };
    Ok(batch
        .get(&[PASSED_PREFIX, id.as_bytes()].concat())?
        .is_some())
}

/// Reads a bookkeeping record of the model at `key`. Records are postcard, a compact
/// binary form: one is read and written again for nearly every event, and sled's cost per
/// write grows with the bytes it copies (JSON made them about three times as large).
pub fn load<T: serde::de::DeserializeOwned>(
    batch: &Batch<'_>,
    key: &[u8],
    position: u64,
) -> Result<Option<T>, ProjectionError> {
    match batch.get(key)? {
        None => Ok(None),
        Some(bytes) => postcard::from_bytes(&bytes).map(Some).map_err(|e| {
            ProjectionError::CorruptRow(format!("record read at position {position}: {e}"))
        }),
    }
}

/// Writes a bookkeeping record of the model.
pub fn save<T: serde::Serialize>(batch: &mut Batch<'_>, key: Vec<u8>, value: &T) {
    // Serialising plain structs of strings, numbers and timestamps cannot fail.
    if let Ok(bytes) = postcard::to_allocvec(value) {
        batch.put(key, bytes);
    }
}
