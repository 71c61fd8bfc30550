//! An aggregate's history and its state as of a position or a time, read from GOV_EVENTS.
//!
//! Both read the aggregate's subject straight from the log (batched direct gets), not from a
//! read model: an auditor sees what the log holds, including the events no read model could
//! apply.
//!
//! - [`get_history`] (here): every stored event with its envelope, a care record's body masked
//!   as for a department without a grant; an event the log holds in an older version of its
//!   type is shown upcast to the current one, naming the type and version stored;
//! - [`as_of`]: the aggregate folded by the domain's rules up to a position or a stored time.

mod as_of;

use std::collections::BTreeSet;

use hub_api::ApiError;
use hub_api::aggregate::{Aggregate, Care};
use hub_api::v1::{GetHistoryRequest, GetHistoryResponse, HistoryEvent};
use hub_api::{CARE_CLOSED, CARE_REGISTERED, CARE_RISK_LEVEL_CHANGED, CARE_VISIT_LOGGED};
use hub_domain::Violations;
use hub_log::names::event_subject;
use hub_log::{AppendError, Appender, Entry, StoredEvent, Unreadable};
use tracing::{error, warn};

pub(super) use as_of::get_state_as_of;

/// What a type URL names a `gov.hub.v1` message with.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";
const PACKAGE: &str = "gov.hub.v1.";

/// Every event of the request's aggregate after its page token, oldest first.
///
/// An aggregate without events (or one that never existed) is an empty page, not NOT_FOUND:
/// an auditor may ask about anything, and the call is recorded either way. The page token is
/// the position of the last event of the previous page; it is checked to be one of the
/// aggregate's events, so a token made up or taken from another aggregate is refused.
pub(super) async fn get_history(
    log: &Appender,
    request: &GetHistoryRequest,
) -> Result<GetHistoryResponse, ApiError> {
    let mut violations = Violations::new();
    let aggregate = super::parse_aggregate(&mut violations, "aggregate", &request.aggregate);
    let after = page_token(&mut violations, &request.page_token);
    let ((kind, id), after) = violations.finish(|| (aggregate.unwrap_or_default(), after))?;
    let limit = super::page_size(request.page_size);

    let subject = event_subject(kind, &id);
    // A page, one more to know whether another follows, and the token's own event: the
    // rest of a long aggregate is left for the pages after.
    let wanted = limit.saturating_add(2);
    let mut entries = match after {
        None => read_at_most(log, &subject, 0, wanted).await?,
        // Read from the token's own event, to see that it is one of this aggregate's.
        Some(token) => {
            let mut entries = read_at_most(log, &subject, token - 1, wanted).await?;
            if entries.first().map(Entry::position) != Some(token) {
                return Err(bad_token());
            }
            entries.remove(0);
            entries
        }
    };
    let more = entries.len() > limit;
    entries.truncate(limit);
    let next_page_token = match entries.last() {
        Some(last) if more => last.position().to_string(),
        _ => String::new(),
    };
    Ok(GetHistoryResponse {
        events: entries
            .iter()
            .map(|entry| history_event(kind, entry))
            .collect(),
        next_page_token,
    })
}

/// The page token as the position it names: `None` for the first page, a violation of
/// `page_token` (without its text) for anything but a position this service issues.
fn page_token(violations: &mut Violations, token: &str) -> Option<u64> {
    if token.is_empty() {
        return None;
    }
    // Only the canonical decimal form of a position: no sign, no leading zero, not 0.
    let position = token
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| token.parse::<u64>().ok())
        .flatten()
        .filter(|p| *p > 0 && p.to_string() == token);
    if position.is_none() {
        violations.push("page_token", "is not a token from a previous response");
    }
    position
}

fn bad_token() -> ApiError {
    let mut violations = Violations::new();
    violations.push("page_token", "is not a token from a previous response");
    violations.into()
}

/// Every message on `subject` after `position`.
pub(super) async fn read(
    log: &Appender,
    subject: &str,
    position: u64,
) -> Result<Vec<Entry>, ApiError> {
    read_at_most(log, subject, position, usize::MAX).await
}

/// The messages on `subject` after `position`, at least `at_most` of them if there are as
/// many.
async fn read_at_most(
    log: &Appender,
    subject: &str,
    position: u64,
    at_most: usize,
) -> Result<Vec<Entry>, ApiError> {
    log.read_subject_at_most(subject, position, at_most)
        .await
        .map_err(log_failed)
}

/// A failed read of the event log as an answer (an auditor's, an operator's): UNAVAILABLE
/// when the log cannot be reached now, INTERNAL (logged) otherwise.
pub fn log_failed(err: AppendError) -> ApiError {
    match err {
        AppendError::Unavailable(reason) => {
            warn!(reason = %reason, "the event log cannot be read");
            ApiError::Unavailable("the event log cannot be read now; retry later".into())
        }
        other => {
            error!(error = %other, "reading the event log failed");
            ApiError::Internal
        }
    }
}

/// One message of the log as an auditor (or an operator's replay) receives it: its envelope,
/// and its body typed, a care record's masked as for a department without a grant.
pub fn history_event(kind: &str, entry: &Entry) -> HistoryEvent {
    match entry {
        Entry::Event(event) => stored_event(kind, event),
        Entry::Unreadable(unreadable) => unreadable_event(unreadable),
    }
}

fn stored_event(kind: &str, event: &StoredEvent) -> HistoryEvent {
    let envelope = &event.envelope;
    let type_url = type_url(&envelope.dataschema);
    let (body, masked, withheld) = if kind == <Care as Aggregate>::TYPE {
        match hub_projector::feed::mask::mask_care_event(
            &envelope.event_type,
            &event.body,
            &BTreeSet::new(),
        ) {
            Some(m) => (
                Some(any(type_url, m.body)),
                names(&m.masked),
                names(&m.withheld),
            ),
            // Never in clear: left out, with every roster field it could carry.
            None => {
                warn!(
                    position = event.position,
                    "audit: a care event's body cannot be masked; left out"
                );
                let mut withheld = vec!["body".to_owned()];
                withheld.extend(names(care_fields(&envelope.event_type)));
                (None, Vec::new(), withheld)
            }
        }
    } else {
        (
            Some(any(type_url, event.body.to_vec())),
            Vec::new(),
            Vec::new(),
        )
    };
    HistoryEvent {
        position: event.position,
        stored_at: Some(hub_api::timestamp(event.stored_at)),
        event_id: envelope.id.clone(),
        event_type: envelope.event_type.clone(),
        time: Some(hub_api::timestamp(envelope.time)),
        department: envelope.department.clone(),
        source: envelope.source.clone(),
        acting_person: envelope.acting_person.clone(),
        request_id: envelope.request_id.clone(),
        correlation_id: envelope.correlation_id.clone(),
        causation_id: envelope.causation_id.clone(),
        schema_version: envelope.schema_version,
        body,
        masked,
        withheld,
        stored_event_type: event
            .upcast_from
            .as_ref()
            .map(|stored| stored.event_type.clone())
            .unwrap_or_default(),
        stored_schema_version: event
            .upcast_from
            .as_ref()
            .map_or(0, |stored| stored.schema_version),
    }
}

/// A message whose envelope cannot be read: where it is, its type as stored, no body.
fn unreadable_event(unreadable: &Unreadable) -> HistoryEvent {
    HistoryEvent {
        position: unreadable.position,
        stored_at: Some(hub_api::timestamp(unreadable.stored_at)),
        event_type: unreadable.event_type.clone(),
        withheld: vec!["body".to_owned()],
        ..HistoryEvent::default()
    }
}

fn any(type_url: String, value: Vec<u8>) -> prost_types::Any {
    prost_types::Any { type_url, value }
}

fn names(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

/// The type URL of a body whose `ce-dataschema` is `dataschema`. The hub writes the full URL
/// (`type.googleapis.com/gov.hub.v1.CaseReported`); a bare message name, with or without
/// its package, is completed to one.
fn type_url(dataschema: &str) -> String {
    if dataschema.starts_with(TYPE_URL_PREFIX) {
        dataschema.to_owned()
    } else if dataschema.starts_with(PACKAGE) {
        format!("{TYPE_URL_PREFIX}{dataschema}")
    } else {
        format!("{TYPE_URL_PREFIX}{PACKAGE}{dataschema}")
    }
}

/// The personal and free-text fields a care event of `event_type` can carry (what masking
/// treats); every one of them for a type this version does not know.
fn care_fields(event_type: &str) -> &'static [&'static str] {
    const REGISTERED: &[&str] = &[
        "name",
        "identity_number",
        "phone",
        "address",
        "category",
        "risk_level",
    ];
    const VISIT: &[&str] = &["notes", "visitor"];
    const RISK: &[&str] = &["risk_level", "reason"];
    const CLOSED: &[&str] = &["reason"];
    const ANY: &[&str] = &[
        "name",
        "identity_number",
        "phone",
        "address",
        "category",
        "risk_level",
        "notes",
        "visitor",
        "reason",
    ];
    match event_type {
        t if t == CARE_REGISTERED.name => REGISTERED,
        t if t == CARE_VISIT_LOGGED.name => VISIT,
        t if t == CARE_RISK_LEVEL_CHANGED.name => RISK,
        t if t == CARE_CLOSED.name => CLOSED,
        _ => ANY,
    }
}

#[cfg(test)]
mod tests;
