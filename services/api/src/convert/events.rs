//! Case events on the log: their versioned types, and protobuf bodies both ways.

use hub_domain::case::*;
use hub_domain::codes::{CreditCode, DepartmentCode, DivisionCode, GridCode};
use prost::Message;

use super::enums::*;
use super::{from_timestamp, timestamp};
use crate::v1;

/// A versioned event type as it appears on the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// CloudEvents `type`, e.g. `gov.hub.case.reported.v1`.
    pub name: &'static str,
    /// CloudEvents `dataschema`: the protobuf type of the body.
    pub dataschema: &'static str,
    pub schema_version: u32,
}

/// Defines one `EventType` constant per event, and the list of them all under `$list`. The
/// schema version is 1 unless given after the message (`=> "CaseReported" @ 2`); the name
/// ends in the same version (`.v2`).
macro_rules! event_types {
    (
        $(#[$doc:meta])*
        $list:ident {
            $($konst:ident: $name:literal => $proto:literal $(@ $version:literal)?),* $(,)?
        }
    ) => {
        $(pub const $konst: EventType = EventType {
            name: $name,
            dataschema: concat!("type.googleapis.com/gov.hub.v1.", $proto),
            schema_version: event_types!(@version $($version)?),
        };)*
        $(#[$doc])*
        pub const $list: &[EventType] = &[$($konst),*];
    };
    (@version) => { 1 };
    (@version $version:literal) => { $version };
}
pub(crate) use event_types;

/// Version 1 of `gov.hub.case.reported`, without the channel: the log still holds such
/// events; they are read through [`crate::upcast`] as version 2.
pub const CASE_REPORTED_V1: EventType = EventType {
    name: "gov.hub.case.reported.v1",
    dataschema: "type.googleapis.com/gov.hub.v1.CaseReported",
    schema_version: 1,
};

event_types! {
    /// Every case event type the hub writes, each in its current version.
    CASE_EVENT_TYPES {
        CASE_REPORTED: "gov.hub.case.reported.v2" => "CaseReported" @ 2,
        CASE_DISPATCHED: "gov.hub.case.dispatched.v1" => "CaseDispatched",
        CASE_ACCEPTED: "gov.hub.case.accepted.v1" => "CaseAccepted",
        CASE_TRANSFER_REQUESTED: "gov.hub.case.transfer_requested.v1" => "CaseTransferRequested",
        CASE_TRANSFER_ACCEPTED: "gov.hub.case.transfer_accepted.v1" => "CaseTransferAccepted",
        CASE_TRANSFER_REJECTED: "gov.hub.case.transfer_rejected.v1" => "CaseTransferRejected",
        CASE_ESCALATED: "gov.hub.case.escalated.v1" => "CaseEscalated",
        CASE_RESOLVED: "gov.hub.case.resolved.v1" => "CaseResolved",
        CASE_RATED: "gov.hub.case.rated.v1" => "CaseRated",
        CASE_REOPENED: "gov.hub.case.reopened.v1" => "CaseReopened",
        CASE_CLOSED: "gov.hub.case.closed.v1" => "CaseClosed",
    }
}

/// A stored event that cannot be read back into the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {event_type} cannot be decoded: {reason}")]
pub struct DecodeError {
    pub event_type: String,
    pub reason: String,
}

pub fn kind_to_proto(kind: &CaseKind) -> v1::case_reported::Kind {
    match kind {
        CaseKind::GridIncident(g) => v1::case_reported::Kind::GridIncident(v1::GridIncident {
            grid_code: g.grid.to_string(),
            category: incident_category_to_proto(g.category) as i32,
            location: g.location.as_ref().map(|l| v1::Location {
                longitude: l.longitude,
                latitude: l.latitude,
                address: l.address.clone(),
            }),
        }),
        CaseKind::PropertyComplaint(p) => {
            v1::case_reported::Kind::PropertyComplaint(v1::PropertyComplaint {
                company_credit_code: p.company.to_string(),
                compound: p.compound.clone(),
                category: complaint_category_to_proto(p.category) as i32,
                district_code: p.district.to_string(),
            })
        }
    }
}

pub fn reporter_to_proto(reporter: &Reporter) -> v1::Reporter {
    match reporter {
        Reporter::GridWorker { id } => v1::Reporter {
            kind: v1::ReporterKind::GridWorker as i32,
            grid_worker_id: id.clone(),
        },
        Reporter::Resident => v1::Reporter {
            kind: v1::ReporterKind::Resident as i32,
            grid_worker_id: String::new(),
        },
    }
}

/// Encodes a domain event as its type and protobuf body, ready for the log.
pub fn encode_case_event(event: &CaseEvent) -> (EventType, Vec<u8>) {
    let id = event.case_id().as_str().to_owned();
    let ts = |t: &jiff::Timestamp| Some(timestamp(*t));
    match event {
        CaseEvent::Reported(e) => (
            CASE_REPORTED,
            v1::CaseReported {
                case_id: id,
                kind: Some(kind_to_proto(&e.kind)),
                description: e.description.clone(),
                reporter: Some(reporter_to_proto(&e.reporter)),
                district_code: e.district.to_string(),
                dispatch_unit: e.dispatch_unit.to_string(),
                urgency: urgency_to_proto(e.urgency) as i32,
                reported_at: ts(&e.reported_at),
                reported_by: e.reported_by.to_string(),
                channel: report_channel_to_proto(e.channel) as i32,
            }
            .encode_to_vec(),
        ),
        CaseEvent::Dispatched(e) => (
            CASE_DISPATCHED,
            v1::CaseDispatched {
                case_id: id,
                department: e.department.to_string(),
                dispatched_by: e.dispatched_by.to_string(),
                dispatched_at: ts(&e.dispatched_at),
                accept_by: ts(&e.accept_by),
                resolve_by: ts(&e.resolve_by),
            }
            .encode_to_vec(),
        ),
        CaseEvent::Accepted(e) => (
            CASE_ACCEPTED,
            v1::CaseAccepted {
                case_id: id,
                department: e.department.to_string(),
                accepted_at: ts(&e.accepted_at),
            }
            .encode_to_vec(),
        ),
        CaseEvent::TransferRequested(e) => (
            CASE_TRANSFER_REQUESTED,
            v1::CaseTransferRequested {
                case_id: id,
                from_department: e.from.to_string(),
                to_department: e.to.to_string(),
                reason: e.reason.clone(),
                requested_at: ts(&e.requested_at),
            }
            .encode_to_vec(),
        ),
        CaseEvent::TransferAccepted(e) => (
            CASE_TRANSFER_ACCEPTED,
            v1::CaseTransferAccepted {
                case_id: id,
                from_department: e.from.to_string(),
                to_department: e.to.to_string(),
                accepted_at: ts(&e.accepted_at),
                resolve_by: ts(&e.resolve_by),
            }
            .encode_to_vec(),
        ),
        CaseEvent::TransferRejected(e) => (
            CASE_TRANSFER_REJECTED,
            v1::CaseTransferRejected {
                case_id: id,
                from_department: e.from.to_string(),
                to_department: e.to.to_string(),
                reason: e.reason.clone(),
                rejected_at: ts(&e.rejected_at),
            }
            .encode_to_vec(),
        ),
        CaseEvent::Escalated(e) => (
            CASE_ESCALATED,
            v1::CaseEscalated {
                case_id: id,
                tier: u32::from(e.tier),
                deadline: deadline_to_proto(e.deadline) as i32,
                due: ts(&e.due),
                holder: e.holder.to_string(),
                escalated_at: ts(&e.escalated_at),
            }
            .encode_to_vec(),
        ),
        CaseEvent::Resolved(e) => (
            CASE_RESOLVED,
            v1::CaseResolved {
                case_id: id,
                department: e.department.to_string(),
                outcome: e.outcome.clone(),
                resolved_at: ts(&e.resolved_at),
            }
            .encode_to_vec(),
        ),
        CaseEvent::Rated(e) => (
            CASE_RATED,
            v1::CaseRated {
                case_id: id,
                rating: u32::from(e.rating),
                rated_by: e.rated_by.to_string(),
                rated_at: ts(&e.rated_at),
            }
            .encode_to_vec(),
        ),
        CaseEvent::Reopened(e) => (
            CASE_REOPENED,
            v1::CaseReopened {
                case_id: id,
                holder: e.holder.to_string(),
                reopened_at: ts(&e.reopened_at),
                resolve_by: ts(&e.resolve_by),
            }
            .encode_to_vec(),
        ),
        CaseEvent::Closed(e) => (
            CASE_CLOSED,
            v1::CaseClosed {
                case_id: id,
                closed_by: e.closed_by.to_string(),
                closed_at: ts(&e.closed_at),
            }
            .encode_to_vec(),
        ),
    }
}

/// Reads fields of a stored event back into domain values; the first failure names its field.
struct Reader<'a> {
    event_type: &'a str,
}

impl Reader<'_> {
    fn fail(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            event_type: self.event_type.to_owned(),
            reason: reason.into(),
        }
    }

    fn dept(&self, field: &str, value: &str) -> Result<DepartmentCode, DecodeError> {
        DepartmentCode::parse(value).map_err(|e| self.fail(format!("{field}: {e}")))
    }

    fn time(
        &self,
        field: &str,
        value: &Option<prost_types::Timestamp>,
    ) -> Result<jiff::Timestamp, DecodeError> {
        value
            .as_ref()
            .and_then(from_timestamp)
            .ok_or_else(|| self.fail(format!("{field}: missing or invalid")))
    }

    fn some<T>(&self, field: &str, value: Option<T>) -> Result<T, DecodeError> {
        value.ok_or_else(|| self.fail(format!("{field}: missing or invalid")))
    }

    fn body<M: Message + Default>(&self, body: &[u8]) -> Result<M, DecodeError> {
        M::decode(body).map_err(|e| self.fail(e.to_string()))
    }

    fn kind(&self, kind: Option<v1::case_reported::Kind>) -> Result<CaseKind, DecodeError> {
        Ok(match self.some("kind", kind)? {
            v1::case_reported::Kind::GridIncident(g) => CaseKind::GridIncident(GridIncident {
                grid: GridCode::parse(&g.grid_code)
                    .map_err(|e| self.fail(format!("grid_code: {e}")))?,
                category: self.some("category", incident_category(g.category))?,
                location: g.location.map(|l| Location {
                    longitude: l.longitude,
                    latitude: l.latitude,
                    address: l.address,
                }),
            }),
            v1::case_reported::Kind::PropertyComplaint(p) => {
                CaseKind::PropertyComplaint(PropertyComplaint {
                    company: CreditCode::parse(&p.company_credit_code)
                        .map_err(|e| self.fail(format!("company_credit_code: {e}")))?,
                    compound: p.compound,
                    category: self.some("category", complaint_category(p.category))?,
                    district: DivisionCode::parse(&p.district_code)
                        .map_err(|e| self.fail(format!("district_code: {e}")))?,
                })
            }
        })
    }

    fn reporter(&self, r: Option<v1::Reporter>) -> Result<Reporter, DecodeError> {
        let r = self.some("reporter", r)?;
        match v1::ReporterKind::try_from(r.kind) {
            Ok(v1::ReporterKind::GridWorker) => Ok(Reporter::GridWorker {
                id: r.grid_worker_id,
            }),
            Ok(v1::ReporterKind::Resident) => Ok(Reporter::Resident),
            _ => Err(self.fail("reporter.kind: unknown")),
        }
    }

    fn tier(&self, tier: u32) -> Result<u8, DecodeError> {
        u8::try_from(tier).map_err(|_| self.fail("tier: out of range"))
    }
}

/// Decodes a stored case event, upcast first when it is of an older version
/// ([`crate::upcast`]); `Ok(None)` for a type this version does not know.
pub fn decode_case_event(event_type: &str, body: &[u8]) -> Result<Option<CaseEvent>, DecodeError> {
    match crate::upcast::upcast(event_type, body)? {
        Some(current) => decode_current(current.event_type.name, &current.body),
        None => decode_current(event_type, body),
    }
}

/// Decodes a case event of a current type.
fn decode_current(event_type: &str, body: &[u8]) -> Result<Option<CaseEvent>, DecodeError> {
    let r = Reader { event_type };
    let id = |case_id: String| CaseId::new(case_id);
    let event = match event_type {
        t if t == CASE_REPORTED.name => {
            let e: v1::CaseReported = r.body(body)?;
            CaseEvent::Reported(CaseReported {
                case_id: id(e.case_id),
                kind: r.kind(e.kind)?,
                description: e.description,
                reporter: r.reporter(e.reporter)?,
                channel: r.some("channel", report_channel(e.channel))?,
                district: DivisionCode::parse(&e.district_code)
                    .map_err(|e| r.fail(format!("district_code: {e}")))?,
                dispatch_unit: r.dept("dispatch_unit", &e.dispatch_unit)?,
                urgency: r.some("urgency", urgency(e.urgency))?,
                reported_at: r.time("reported_at", &e.reported_at)?,
                reported_by: r.dept("reported_by", &e.reported_by)?,
            })
        }
        t if t == CASE_DISPATCHED.name => {
            let e: v1::CaseDispatched = r.body(body)?;
            CaseEvent::Dispatched(CaseDispatched {
                case_id: id(e.case_id),
                department: r.dept("department", &e.department)?,
                dispatched_by: r.dept("dispatched_by", &e.dispatched_by)?,
                dispatched_at: r.time("dispatched_at", &e.dispatched_at)?,
                accept_by: r.time("accept_by", &e.accept_by)?,
                resolve_by: r.time("resolve_by", &e.resolve_by)?,
            })
        }
        t if t == CASE_ACCEPTED.name => {
            let e: v1::CaseAccepted = r.body(body)?;
            CaseEvent::Accepted(CaseAccepted {
                case_id: id(e.case_id),
                department: r.dept("department", &e.department)?,
                accepted_at: r.time("accepted_at", &e.accepted_at)?,
            })
        }
        t if t == CASE_TRANSFER_REQUESTED.name => {
            let e: v1::CaseTransferRequested = r.body(body)?;
            CaseEvent::TransferRequested(TransferRequested {
                case_id: id(e.case_id),
                from: r.dept("from_department", &e.from_department)?,
                to: r.dept("to_department", &e.to_department)?,
                reason: e.reason,
                requested_at: r.time("requested_at", &e.requested_at)?,
            })
        }
        t if t == CASE_TRANSFER_ACCEPTED.name => {
            let e: v1::CaseTransferAccepted = r.body(body)?;
            CaseEvent::TransferAccepted(TransferAccepted {
                case_id: id(e.case_id),
                from: r.dept("from_department", &e.from_department)?,
                to: r.dept("to_department", &e.to_department)?,
                accepted_at: r.time("accepted_at", &e.accepted_at)?,
                resolve_by: r.time("resolve_by", &e.resolve_by)?,
            })
        }
        t if t == CASE_TRANSFER_REJECTED.name => {
            let e: v1::CaseTransferRejected = r.body(body)?;
            CaseEvent::TransferRejected(TransferRejected {
                case_id: id(e.case_id),
                from: r.dept("from_department", &e.from_department)?,
                to: r.dept("to_department", &e.to_department)?,
                reason: e.reason,
                rejected_at: r.time("rejected_at", &e.rejected_at)?,
            })
        }
        t if t == CASE_ESCALATED.name => {
            let e: v1::CaseEscalated = r.body(body)?;
            CaseEvent::Escalated(CaseEscalated {
                case_id: id(e.case_id),
                tier: r.tier(e.tier)?,
                deadline: r.some("deadline", deadline(e.deadline))?,
                due: r.time("due", &e.due)?,
                holder: r.dept("holder", &e.holder)?,
                escalated_at: r.time("escalated_at", &e.escalated_at)?,
            })
        }
        t if t == CASE_RESOLVED.name => {
            let e: v1::CaseResolved = r.body(body)?;
            CaseEvent::Resolved(CaseResolved {
                case_id: id(e.case_id),
                department: r.dept("department", &e.department)?,
                outcome: e.outcome,
                resolved_at: r.time("resolved_at", &e.resolved_at)?,
            })
        }
        t if t == CASE_RATED.name => {
            let e: v1::CaseRated = r.body(body)?;
            CaseEvent::Rated(CaseRated {
                case_id: id(e.case_id),
                rating: r.tier(e.rating)?,
                rated_by: r.dept("rated_by", &e.rated_by)?,
                rated_at: r.time("rated_at", &e.rated_at)?,
            })
        }
        t if t == CASE_REOPENED.name => {
            let e: v1::CaseReopened = r.body(body)?;
            CaseEvent::Reopened(CaseReopened {
                case_id: id(e.case_id),
                holder: r.dept("holder", &e.holder)?,
                reopened_at: r.time("reopened_at", &e.reopened_at)?,
                resolve_by: r.time("resolve_by", &e.resolve_by)?,
            })
        }
        t if t == CASE_CLOSED.name => {
            let e: v1::CaseClosed = r.body(body)?;
            CaseEvent::Closed(CaseClosed {
                case_id: id(e.case_id),
                closed_by: r.dept("closed_by", &e.closed_by)?,
                closed_at: r.time("closed_at", &e.closed_at)?,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}
