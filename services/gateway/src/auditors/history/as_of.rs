//! An aggregate as it stood at a log position or a stored time: its events up to then, folded
//! by the domain's rules exactly as command handling folds them (`command_state`'s
//! [`AggregateRow::fold`]).

use hub_api::ApiError;
use hub_api::aggregate::{Aggregate, Care, Case, Grant};
use hub_api::v1::get_state_as_of_request::AsOf;
use hub_api::v1::{GetStateAsOfRequest, GetStateAsOfResponse};
use hub_domain::Violations;
use hub_log::names::event_subject;
use hub_log::{Appender, Entry, StoredEvent, Unreadable};
use hub_projector::command_state::AggregateRow;
use jiff::Timestamp;
use tracing::{error, warn};

/// The fields of a care record's state an auditor does not get (sensitive).
const WITHHELD: [&str; 2] = ["category", "risk_level"];

/// Where the fold stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cutoff {
    /// Events at or before this position.
    Position(u64),
    /// Events the log had stored by then: the aggregate's events in log order up to the first
    /// stored later. The log's stamps come from the server's clock, which JetStream does not
    /// keep monotonic; stopping at the first later one keeps the answer a state the aggregate
    /// really passed through.
    Time(Timestamp),
}

impl Cutoff {
    pub(super) fn includes(self, entry: &Entry) -> bool {
        match self {
            Cutoff::Position(p) => entry.position() <= p,
            Cutoff::Time(t) => entry.stored_at() <= t,
        }
    }
}

/// The request's aggregate as of its position or time.
///
/// An event up to then that this version cannot fold (an unreadable envelope, a body that does
/// not decode, a type it does not know, an event that does not fit the state) makes the answer
/// FAILED_PRECONDITION naming its position and type: the state past it cannot be told, and an
/// auditor must not be shown a state that silently skips an event. Command handling blocks the
/// aggregate at the same event. An earlier position or time still answers.
pub(in crate::auditors) async fn get_state_as_of(
    log: &Appender,
    request: &GetStateAsOfRequest,
) -> Result<GetStateAsOfResponse, ApiError> {
    let mut violations = Violations::new();
    let aggregate = super::super::parse_aggregate(&mut violations, "aggregate", &request.aggregate);
    let cutoff = cutoff(&mut violations, request.as_of.as_ref());
    let ((kind, id), cutoff) = violations.finish(|| {
        (
            aggregate.unwrap_or_default(),
            cutoff.unwrap_or(Cutoff::Position(0)),
        )
    })?;
    let entries = super::read(log, &event_subject(kind, &id), 0).await?;
    let entries = entries.iter().take_while(|e| cutoff.includes(e));
    match kind {
        Case::TYPE => fold::<Case>(entries),
        Care::TYPE => fold::<Care>(entries),
        Grant::TYPE => fold::<Grant>(entries),
        _ => {
            error!("audit: an aggregate type without a fold");
            Err(ApiError::Internal)
        }
    }
}

/// The request's `as_of`, or a violation (of `as_of` when it is missing, of `time` when it is
/// not a valid timestamp).
pub(super) fn cutoff(violations: &mut Violations, as_of: Option<&AsOf>) -> Option<Cutoff> {
    match as_of {
        None => {
            violations.push("as_of", "must be set: a position or a time");
            None
        }
        Some(AsOf::Position(position)) => Some(Cutoff::Position(*position)),
        Some(AsOf::Time(time)) => {
            let time = super::super::valid_time(time);
            if time.is_none() {
                violations.push("time", "must be a valid timestamp");
            }
            time.map(Cutoff::Time)
        }
    }
}

/// `entries` (the aggregate's, oldest first) folded by the rules of `A`.
pub(super) fn fold<'a, A: Aggregate>(
    entries: impl Iterator<Item = &'a Entry>,
) -> Result<GetStateAsOfResponse, ApiError> {
    let mut row = AggregateRow::<A::State>::default();
    let mut events = 0;
    for entry in entries {
        let event: Result<&StoredEvent, &Unreadable> = match entry {
            Entry::Event(e) => Ok(e),
            Entry::Unreadable(u) => Err(u),
        };
        if let Some(block) = row.fold::<A>(event) {
            warn!(
                position = block.position,
                "audit: an event the as-of state cannot fold"
            );
            let event_type = if block.event_type.is_empty() {
                "without a type"
            } else {
                &block.event_type
            };
            return Err(ApiError::FailedPrecondition(format!(
                "the {}'s state cannot be told from position {} on: its event {event_type} \
                 there {}",
                A::NOUN,
                block.position,
                block.why
            )));
        }
        events += 1;
    }
    let serialise_failed = |err: serde_json::Error| {
        error!(error = %err, position = row.version, "audit: a state does not serialise");
        ApiError::Internal
    };
    let mut withheld = Vec::new();
    let state_json = match &row.state {
        Some(state) => {
            let mut value = serde_json::to_value(state).map_err(serialise_failed)?;
            // A care record's category and risk level are sensitive: withheld here as in its
            // history (masked as for a department without a grant).
            if let Some(fields) = value.as_object_mut() {
                for field in WITHHELD.iter().filter(|_| A::TYPE == Care::TYPE) {
                    if fields.remove(*field).is_some() {
                        withheld.push((*field).to_owned());
                    }
                }
            }
            serde_json::to_string(&value).map_err(serialise_failed)?
        }
        None => String::new(),
    };
    Ok(GetStateAsOfResponse {
        exists: row.state.is_some(),
        state_json,
        position: row.version,
        events,
        withheld,
    })
}
