//! Conversions between the wire (protobuf) and the domain, validating on the way in.
//!
//! Field paths in violations are the request's own field names, so a client can point at
//! the input that was wrong.

use hub_domain::Violations;
use hub_domain::case::{
    CaseEvent, CaseId, CaseKind, ComplaintCategory, GridIncident, IncidentCategory, Location,
    PropertyComplaint, ReportCase, Reporter, Urgency,
};
use hub_domain::codes::{CreditCode, DepartmentCode, DivisionCode, GridCode};
use prost::Message;

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

pub const CASE_REPORTED: EventType = EventType {
    name: "gov.hub.case.reported.v1",
    dataschema: "type.googleapis.com/gov.hub.v1.CaseReported",
    schema_version: 1,
};

pub const CASE_DISPATCHED: EventType = EventType {
    name: "gov.hub.case.dispatched.v1",
    dataschema: "type.googleapis.com/gov.hub.v1.CaseDispatched",
    schema_version: 1,
};

/// Longest free text accepted in a description.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest free text accepted in a short text field (address, compound, staff number).
pub const MAX_SHORT_TEXT_CHARS: usize = 200;

pub fn timestamp(t: jiff::Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.as_second(),
        nanos: t.subsec_nanosecond(),
    }
}

pub fn from_timestamp(t: &prost_types::Timestamp) -> Option<jiff::Timestamp> {
    jiff::Timestamp::new(t.seconds, t.nanos).ok()
}

fn text(violations: &mut Violations, field: &str, value: &str, max: usize) -> Option<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        violations.push(field, "must not be empty");
        None
    } else if trimmed.chars().count() > max {
        violations.push(field, format!("must be at most {max} characters"));
        None
    } else if trimmed.chars().any(|c| c.is_control() && c != '\n') {
        violations.push(field, "must not contain control characters");
        None
    } else {
        Some(trimmed.to_owned())
    }
}

/// Validates a client request id: 1 to 64 printable ASCII characters.
pub fn request_id(violations: &mut Violations, field: &str, value: &str) -> Option<String> {
    if value.is_empty() {
        violations.push(field, "must not be empty");
        None
    } else if value.len() > 64 || !value.bytes().all(|b| b.is_ascii_graphic()) {
        violations.push(field, "must be 1 to 64 printable ascii characters");
        None
    } else {
        Some(value.to_owned())
    }
}

fn incident_category(c: i32) -> Option<IncidentCategory> {
    use v1::IncidentCategory as P;
    Some(match P::try_from(c).ok()? {
        P::Unspecified => return None,
        P::SafetyHazard => IncidentCategory::SafetyHazard,
        P::Dispute => IncidentCategory::Dispute,
        P::Sanitation => IncidentCategory::Sanitation,
        P::IllegalConstruction => IncidentCategory::IllegalConstruction,
        P::GroupRenting => IncidentCategory::GroupRenting,
        P::FireHazard => IncidentCategory::FireHazard,
        P::Other => IncidentCategory::Other,
    })
}

fn complaint_category(c: i32) -> Option<ComplaintCategory> {
    use v1::ComplaintCategory as P;
    Some(match P::try_from(c).ok()? {
        P::Unspecified => return None,
        P::Fees => ComplaintCategory::Fees,
        P::PublicRevenue => ComplaintCategory::PublicRevenue,
        P::MaintenanceFund => ComplaintCategory::MaintenanceFund,
        P::ServiceQuality => ComplaintCategory::ServiceQuality,
        P::Other => ComplaintCategory::Other,
    })
}

fn location(violations: &mut Violations, l: &v1::Location) -> Option<Location> {
    let mut ok = true;
    if !(l.longitude.is_finite() && (-180.0..=180.0).contains(&l.longitude)) {
        violations.push(
            "grid_incident.location.longitude",
            "must be between -180 and 180",
        );
        ok = false;
    }
    if !(l.latitude.is_finite() && (-90.0..=90.0).contains(&l.latitude)) {
        violations.push(
            "grid_incident.location.latitude",
            "must be between -90 and 90",
        );
        ok = false;
    }
    let address = if l.address.is_empty() {
        Some(String::new())
    } else {
        text(
            violations,
            "grid_incident.location.address",
            &l.address,
            MAX_SHORT_TEXT_CHARS,
        )
    };
    let address = address?;
    ok.then(|| Location {
        longitude: l.longitude,
        latitude: l.latitude,
        address,
    })
}

fn grid_incident(violations: &mut Violations, g: &v1::GridIncident) -> Option<GridIncident> {
    let grid = violations.check("grid_incident.grid_code", GridCode::parse(&g.grid_code));
    let category = incident_category(g.category);
    if category.is_none() {
        violations.push(
            "grid_incident.category",
            "must name a known incident category",
        );
    }
    let location = match &g.location {
        Some(l) => Some(location(violations, l)?),
        None => None,
    };
    Some(GridIncident {
        grid: grid?,
        category: category?,
        location,
    })
}

fn property_complaint(
    violations: &mut Violations,
    p: &v1::PropertyComplaint,
) -> Option<PropertyComplaint> {
    let company = violations.check(
        "property_complaint.company_credit_code",
        CreditCode::parse(&p.company_credit_code),
    );
    let compound = text(
        violations,
        "property_complaint.compound",
        &p.compound,
        MAX_SHORT_TEXT_CHARS,
    );
    let category = complaint_category(p.category);
    if category.is_none() {
        violations.push(
            "property_complaint.category",
            "must name a known complaint category",
        );
    }
    let district = violations.check(
        "property_complaint.district_code",
        DivisionCode::parse(&p.district_code),
    );
    Some(PropertyComplaint {
        company: company?,
        compound: compound?,
        category: category?,
        district: district?,
    })
}

fn reporter(violations: &mut Violations, r: Option<&v1::Reporter>) -> Option<Reporter> {
    let Some(r) = r else {
        violations.push("reporter", "must be given");
        return None;
    };
    match v1::ReporterKind::try_from(r.kind) {
        Ok(v1::ReporterKind::GridWorker) => {
            let id = text(violations, "reporter.grid_worker_id", &r.grid_worker_id, 32)?;
            Some(Reporter::GridWorker { id })
        }
        Ok(v1::ReporterKind::Resident) => {
            if !r.grid_worker_id.is_empty() {
                violations.push("reporter.grid_worker_id", "must be empty for a resident");
                return None;
            }
            Some(Reporter::Resident)
        }
        _ => {
            violations.push("reporter.kind", "must be grid worker or resident");
            None
        }
    }
}

/// The validated request, with the fields that decide the ids.
#[derive(Debug, Clone)]
pub struct ValidReport {
    pub request_id: String,
    pub kind: CaseKind,
    pub description: String,
    pub reporter: Reporter,
}

impl TryFrom<&v1::ReportCaseRequest> for ValidReport {
    type Error = Violations;

    fn try_from(req: &v1::ReportCaseRequest) -> Result<Self, Violations> {
        let mut violations = Violations::new();
        let request_id = request_id(&mut violations, "request_id", &req.request_id);
        let kind = match &req.kind {
            Some(v1::report_case_request::Kind::GridIncident(g)) => {
                grid_incident(&mut violations, g).map(CaseKind::GridIncident)
            }
            Some(v1::report_case_request::Kind::PropertyComplaint(p)) => {
                property_complaint(&mut violations, p).map(CaseKind::PropertyComplaint)
            }
            None => {
                violations.push("kind", "must be a grid_incident or a property_complaint");
                None
            }
        };
        let description = text(
            &mut violations,
            "description",
            &req.description,
            MAX_DESCRIPTION_CHARS,
        );
        let reporter = reporter(&mut violations, req.reporter.as_ref());
        match (request_id, kind, description, reporter) {
            (Some(request_id), Some(kind), Some(description), Some(reporter))
                if violations.is_empty() =>
            {
                Ok(ValidReport {
                    request_id,
                    kind,
                    description,
                    reporter,
                })
            }
            _ => Err(violations),
        }
    }
}

impl ValidReport {
    pub fn into_command(self, case_id: CaseId, reported_by: DepartmentCode) -> ReportCase {
        ReportCase {
            case_id,
            kind: self.kind,
            description: self.description,
            reporter: self.reporter,
            reported_by,
        }
    }
}

fn urgency(u: Urgency) -> v1::Urgency {
    match u {
        Urgency::Urgent => v1::Urgency::Urgent,
        Urgency::Important => v1::Urgency::Important,
        Urgency::General => v1::Urgency::General,
    }
}

fn kind_to_proto(kind: &CaseKind) -> v1::case_reported::Kind {
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

fn incident_category_to_proto(c: IncidentCategory) -> v1::IncidentCategory {
    use v1::IncidentCategory as P;
    match c {
        IncidentCategory::SafetyHazard => P::SafetyHazard,
        IncidentCategory::Dispute => P::Dispute,
        IncidentCategory::Sanitation => P::Sanitation,
        IncidentCategory::IllegalConstruction => P::IllegalConstruction,
        IncidentCategory::GroupRenting => P::GroupRenting,
        IncidentCategory::FireHazard => P::FireHazard,
        IncidentCategory::Other => P::Other,
    }
}

fn complaint_category_to_proto(c: ComplaintCategory) -> v1::ComplaintCategory {
    use v1::ComplaintCategory as P;
    match c {
        ComplaintCategory::Fees => P::Fees,
        ComplaintCategory::PublicRevenue => P::PublicRevenue,
        ComplaintCategory::MaintenanceFund => P::MaintenanceFund,
        ComplaintCategory::ServiceQuality => P::ServiceQuality,
        ComplaintCategory::Other => P::Other,
    }
}

/// Encodes a domain event as its type and protobuf body, ready for the log.
pub fn encode_case_event(event: &CaseEvent) -> (EventType, Vec<u8>) {
    match event {
        CaseEvent::Reported(e) => {
            let body = v1::CaseReported {
                case_id: e.case_id.as_str().to_owned(),
                kind: Some(kind_to_proto(&e.kind)),
                description: e.description.clone(),
                reporter: Some(match &e.reporter {
                    Reporter::GridWorker { id } => v1::Reporter {
                        kind: v1::ReporterKind::GridWorker as i32,
                        grid_worker_id: id.clone(),
                    },
                    Reporter::Resident => v1::Reporter {
                        kind: v1::ReporterKind::Resident as i32,
                        grid_worker_id: String::new(),
                    },
                }),
                district_code: e.district.to_string(),
                dispatch_unit: e.dispatch_unit.to_string(),
                urgency: urgency(e.urgency) as i32,
                reported_at: Some(timestamp(e.reported_at)),
                reported_by: e.reported_by.to_string(),
            };
            (CASE_REPORTED, body.encode_to_vec())
        }
        CaseEvent::Dispatched(e) => {
            let body = v1::CaseDispatched {
                case_id: e.case_id.as_str().to_owned(),
                department: e.department.to_string(),
                dispatched_by: e.dispatched_by.to_string(),
                dispatched_at: Some(timestamp(e.dispatched_at)),
                accept_by: Some(timestamp(e.accept_by)),
                resolve_by: Some(timestamp(e.resolve_by)),
            };
            (CASE_DISPATCHED, body.encode_to_vec())
        }
    }
}

/// Case id of a domain event.
pub fn case_event_id(event: &CaseEvent) -> &CaseId {
    match event {
        CaseEvent::Reported(e) => &e.case_id,
        CaseEvent::Dispatched(e) => &e.case_id,
    }
}
