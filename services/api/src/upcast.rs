//! Upcasting: an event stored in an older version of its type, read in the current version.
//!
//! Event types are versioned (`gov.hub.case.reported.v1`, `.v2`) and only ever added to: a
//! new version is the same protobuf message with fields added, and its type names the new
//! version. The log is never rewritten. An event keeps the type and body it was written with,
//! and every reader sees it in the current version through the upcasters registered here, one
//! per old version, chained until the current version:
//!
//! - `hub_log` upcasts each event as it reads it from the log (consumers and direct gets
//!   alike), so command handling, the read models, the feeds and the auditors' history get
//!   the current version and can still tell what the log holds;
//! - the decoders ([`crate::decode_case_event`] and the others) upcast too, so a body of an
//!   older version decodes whoever hands it over;
//! - operators' tools call [`upcast`] on a stored type and body.
//!
//! An upcaster that cannot read its body fails with a [`DecodeError`] naming the stored type:
//! the event is then as unreadable as any corrupt body, and only its aggregate is stopped.

use hub_domain::case::{ReportChannel, Reporter};
use prost::Message;

use crate::v1;
use crate::{CASE_REPORTED, CASE_REPORTED_V1, DecodeError, EventType, report_channel_to_proto};

/// Turns a body of one version of an event type into the next version's.
#[derive(Debug, Clone, Copy)]
pub struct Upcaster {
    /// The version read: its type (`ce-type`, which names the version) and schema version.
    pub from: EventType,
    /// The version written.
    pub to: EventType,
    /// Reads a body of `from`, writes it in the shape of `to`; `Err` says why it cannot.
    pub upcast: fn(&[u8]) -> Result<Vec<u8>, String>,
}

/// Every upcaster, keyed by the type and version it reads (`from`).
pub static UPCASTERS: &[Upcaster] = &[Upcaster {
    from: CASE_REPORTED_V1,
    to: CASE_REPORTED,
    upcast: case_reported_v1_to_v2,
}];

/// A stored event in the current version of its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upcast {
    /// The current version: its `ce-type`, `ce-dataschema` and schema version.
    pub event_type: EventType,
    /// The body in the current version's shape.
    pub body: Vec<u8>,
    /// The version the log holds.
    pub from: EventType,
}

/// The upcaster that reads events stored as `event_type`, if that is an older version.
pub fn upcaster(event_type: &str) -> Option<&'static Upcaster> {
    UPCASTERS.iter().find(|u| u.from.name == event_type)
}

/// The version an event stored as `event_type` is read as: `None` when it is read as stored
/// (a current type, or one this version does not know).
pub fn read_as(event_type: &str) -> Option<EventType> {
    let mut current = upcaster(event_type)?.to;
    // Each step reads one version and writes a later one, so the chain ends within as many
    // steps as there are upcasters.
    for _ in 0..UPCASTERS.len() {
        match upcaster(current.name) {
            Some(next) => current = next.to,
            None => break,
        }
    }
    Some(current)
}

/// A stored event of type `event_type` with `body`, upcast to the current version of its
/// type: `Ok(None)` when it is read as stored (a current type, or one this version does not
/// know); `Err` naming `event_type` when an upcaster cannot read the body.
pub fn upcast(event_type: &str, body: &[u8]) -> Result<Option<Upcast>, DecodeError> {
    let Some(first) = upcaster(event_type) else {
        return Ok(None);
    };
    let failed = |reason: String| DecodeError {
        event_type: event_type.to_owned(),
        reason,
    };
    let mut body = (first.upcast)(body).map_err(failed)?;
    let mut current = first.to;
    for _ in 0..UPCASTERS.len() {
        let Some(next) = upcaster(current.name) else {
            break;
        };
        body = (next.upcast)(&body).map_err(failed)?;
        current = next.to;
    }
    Ok(Some(Upcast {
        event_type: current,
        body,
        from: first.from,
    }))
}

/// `gov.hub.case.reported.v1` -> `.v2`: version 1 did not record how a report reached the
/// hub. Its channel is the one a report naming none gets ([`ReportChannel::default_for`]):
/// grid patrol for a grid worker's report, unrecorded for a resident's (or a reporter that
/// does not decode, which the decoder then refuses). A channel the body carries is kept.
fn case_reported_v1_to_v2(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut event = v1::CaseReported::decode(body).map_err(|e| e.to_string())?;
    if event.channel == v1::ReportChannel::Unspecified as i32 {
        let reporter = event.reporter.as_ref().map(|r| (r.kind, &r.grid_worker_id));
        let channel = match reporter {
            Some((kind, id)) if kind == v1::ReporterKind::GridWorker as i32 => {
                ReportChannel::default_for(&Reporter::GridWorker { id: id.clone() })
            }
            _ => ReportChannel::default_for(&Reporter::Resident),
        };
        event.channel = report_channel_to_proto(channel) as i32;
    }
    Ok(event.encode_to_vec())
}

#[cfg(test)]
mod tests;
