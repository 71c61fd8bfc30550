//! Replay: the log's events selected by position range, stored-time range, aggregate or
//! aggregate type, and event type, oldest first, a batch of direct gets at a time.
//!
//! Each event goes out as an auditor's history shows it ([`hub_gateway::history_event`]): its
//! envelope and its typed body, a care record's masked as for a department without a grant.
//! The range is fixed when the replay starts: it ends at the log's last position then (or
//! the one asked for, if lower), so a replay of a busy log ends. A stored-time range starts
//! at the first position the server stamped at or after its start and selects the messages
//! stored in it up to the range's last position; stored times are the ones readers see (a
//! restored log's messages keep the time their first log stored them).

use std::collections::BTreeSet;

use hub_api::ApiError;
use hub_api::identity::Identity;
use hub_api::v1::{ReplayRequest, ReplayResponse};
use hub_domain::Violations;
use hub_gateway::log_failed as unavailable;
use hub_gateway::{history_event, parse_aggregate, valid_time};
use hub_log::names::{EVENTS_SUBJECTS, aggregate_filter, event_subject, parse_event_subject};
use hub_log::{Appender, Entry, StoredEvent};
use jiff::Timestamp;
use tokio::sync::mpsc;

/// The action of a replay's records.
pub(super) const REPLAYED: &str = "gov.hub.v1.AdminService/Replay";

/// The aggregate types a replay may name.
const AGGREGATE_TYPES: [&str; 3] = ["case", "care", "grant"];
/// Most event types one replay names.
const MAX_EVENT_TYPES: usize = 32;

/// A replay, checked and bounded.
#[derive(Debug, Clone)]
pub(super) struct Planned {
    filter: String,
    /// Positions after `after` up to `to`.
    after: u64,
    pub(super) to: u64,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    event_types: BTreeSet<String>,
    /// The aggregate named, as its audit record names it (`case/<id>`).
    pub(super) aggregate: String,
}

/// Checks `request` (every field at once, none repeated back) and fixes where it ends.
pub(super) async fn plan(log: &Appender, request: &ReplayRequest) -> Result<Planned, ApiError> {
    let mut violations = Violations::new();
    if request.to_position != 0 && request.from_position > request.to_position {
        violations.push("to_position", "is before from_position");
    }
    let time = |violations: &mut Violations, field: &str, t: &Option<prost_types::Timestamp>| {
        let t = t.as_ref()?;
        let valid = valid_time(t);
        if valid.is_none() {
            violations.push(field, "is not a valid time");
        }
        valid
    };
    let since = time(&mut violations, "from_time", &request.from_time);
    let until = time(&mut violations, "to_time", &request.to_time);
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        violations.push("to_time", "is before from_time");
    }
    let aggregate = (!request.aggregate.is_empty())
        .then(|| parse_aggregate(&mut violations, "aggregate", &request.aggregate))
        .flatten();
    let kind = request.aggregate_type.as_str();
    if !kind.is_empty() && !AGGREGATE_TYPES.contains(&kind) {
        violations.push("aggregate_type", "must be case, care or grant");
    }
    if !kind.is_empty() && !request.aggregate.is_empty() {
        violations.push("aggregate_type", "cannot be given with aggregate");
    }
    if request.event_types.len() > MAX_EVENT_TYPES {
        violations.push("event_types", "names more than 32 event types");
    }
    // A type the hub writes, or an older version of one it reads through an upcaster: a
    // misspelt one is refused rather than answered with nothing.
    let well_formed = |t: &String| {
        hub_api::upcast::read_as(t).is_some()
            || [
                hub_api::CASE_EVENT_TYPES,
                hub_api::CARE_EVENT_TYPES,
                hub_api::GRANT_EVENT_TYPES,
            ]
            .iter()
            .any(|types| types.iter().any(|known| known.name == t.as_str()))
    };
    if !request.event_types.iter().all(well_formed) {
        violations.push(
            "event_types",
            "each must be an event type such as gov.hub.case.reported.v1",
        );
    }
    violations.finish(|| ())?;

    let filter = match (&aggregate, kind) {
        (Some((kind, id)), _) => event_subject(kind, id),
        (None, "") => EVENTS_SUBJECTS.to_owned(),
        (None, kind) => aggregate_filter(kind),
    };
    let last = log.last_position().await.map_err(unavailable)?;
    let to = match request.to_position {
        0 => last,
        to => to.min(last),
    };
    let mut after = request.from_position.saturating_sub(1);
    if let Some(since) = since {
        match log.first_position_at(since).await.map_err(unavailable)? {
            Some(first) => after = after.max(first - 1),
            None => after = to, // nothing stored since
        }
    }
    Ok(Planned {
        filter,
        after,
        to,
        since,
        until,
        // A type of an older version selects the events read as its current version.
        event_types: request
            .event_types
            .iter()
            .map(|t| hub_api::upcast::read_as(t).map_or_else(|| t.clone(), |c| c.name.into()))
            .collect(),
        aggregate: aggregate
            .map(|(kind, id)| format!("{kind}/{id}"))
            .unwrap_or_default(),
    })
}

/// Whether `entry` is one the replay selects (its position is in range already).
fn selected(planned: &Planned, entry: &Entry) -> bool {
    let event_type = match entry {
        Entry::Event(e) => &e.envelope.event_type,
        Entry::Unreadable(u) => &u.event_type,
    };
    planned.takes(entry.stored_at(), event_type)
}

impl Planned {
    /// Whether an event stored at `stored_at` of `event_type` is selected, its position and
    /// subject being in range already.
    fn takes(&self, stored_at: Timestamp, event_type: &str) -> bool {
        // A restored log's messages keep their first stored time, earlier than the server's
        // own stamp that found where to start; stored times need not rise with positions.
        if self.since.is_some_and(|since| stored_at < since)
            || self.until.is_some_and(|until| stored_at > until)
        {
            return false;
        }
        self.event_types.is_empty() || self.event_types.contains(event_type)
    }

    /// Whether no position is in range.
    pub(super) fn selects_nothing(&self) -> bool {
        self.after >= self.to
    }

    /// Whether the replay selects `event`, wherever it is in the log (a re-delivery decides
    /// every event from position 1 and sends the selected ones).
    pub(super) fn selects(&self, event: &StoredEvent) -> bool {
        self.after < event.position
            && event.position <= self.to
            && subject_matches(&self.filter, &event.subject)
            && self.takes(event.stored_at, &event.envelope.event_type)
    }
}

/// Whether `subject` is on `filter`, a NATS subject whose `*` stands for one token and a
/// final `>` for one or more.
fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut tokens = subject.split('.');
    for want in filter.split('.') {
        match (want, tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (want, Some(token)) if want == token => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

fn subject(entry: &Entry) -> &str {
    match entry {
        Entry::Event(e) => &e.subject,
        Entry::Unreadable(u) => &u.subject,
    }
}

/// Sends the planned replay down `tx`, a batch at a time, until it ends or the receiver goes.
/// A batch that carries care records goes out only once `audit` holds a record of it naming
/// them (their personal fields go out masked, as for a department without a grant): the
/// disclosure ledger learns who was replayed to `who`, whatever the selection.
pub(super) async fn send(
    (log, audit): (&Appender, &hub_audit::Audit),
    who: &Identity,
    planned: Planned,
    tx: &mpsc::Sender<Result<ReplayResponse, ApiError>>,
) {
    let mut after = planned.after;
    let mut sent_any = false;
    while after < planned.to {
        let entries = match log.read_filter_batch(&planned.filter, after).await {
            Ok(entries) => entries,
            Err(err) => {
                let _ = tx.send(Err(unavailable(err))).await;
                return;
            }
        };
        let Some(read_to) = entries.last().map(Entry::position) else {
            break; // nothing more on the filter's subjects
        };
        let mut events = Vec::new();
        let mut persons = BTreeSet::new();
        let mut ended = false;
        for entry in &entries {
            if entry.position() > planned.to {
                ended = true;
                break;
            }
            if selected(&planned, entry) {
                let (kind, id) = parse_event_subject(subject(entry)).unwrap_or_default();
                if kind == "care" {
                    persons.insert(id.to_owned());
                }
                events.push(history_event(kind, entry));
            }
        }
        after = if ended {
            planned.to
        } else {
            read_to.min(planned.to)
        };
        if !persons.is_empty() {
            let record = hub_api::v1::AuditRecord {
                aggregate: planned.aggregate.clone(),
                count: events.len() as u64,
                position: after,
                persons: persons.into_iter().collect(),
                ..hub_audit::record_status(Some(who), REPLAYED, None)
            };
            if let Err(err) = audit.record(record).await {
                tracing::warn!(error = %err, "replay: the audit log cannot be written");
                let _ = tx
                    .send(Err(ApiError::Unavailable(
                        "the replay stopped: the audit log cannot be written now; retry".into(),
                    )))
                    .await;
                return;
            }
        }
        let batch = ReplayResponse {
            events,
            reached: after,
            last: planned.to,
        };
        if tx.send(Ok(batch)).await.is_err() {
            return; // the caller went away
        }
        sent_any = true;
    }
    if !sent_any {
        // Nothing matched: one empty batch says where the replay ended.
        let _ = tx
            .send(Ok(ReplayResponse {
                events: Vec::new(),
                reached: planned.to,
                last: planned.to,
            }))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subjects_match_as_nats_matches_them() {
        assert!(subject_matches("gov.events.>", "gov.events.case.c-1"));
        assert!(subject_matches("gov.events.case.*", "gov.events.case.c-1"));
        assert!(subject_matches(
            "gov.events.case.c-1",
            "gov.events.case.c-1"
        ));
        assert!(!subject_matches("gov.events.case.*", "gov.events.care.c-1"));
        assert!(!subject_matches(
            "gov.events.case.c-1",
            "gov.events.case.c-10"
        ));
        assert!(!subject_matches("gov.events.case.*", "gov.events.case"));
        assert!(!subject_matches("gov.events.>", "gov.events"));
        assert!(!subject_matches("gov.events.case", "gov.events.case.c-1"));
    }
}
