//! `ReportCaseRequest` -> the domain's `ReportCase`, validated.

use hub_domain::Violations;
use hub_domain::case::{
    CaseId, CaseKind, GridIncident, Location, PropertyComplaint, ReportCase, ReportChannel,
    Reporter,
};
use hub_domain::codes::{CreditCode, DepartmentCode, DivisionCode, GridCode};

use super::enums::{complaint_category, incident_category, report_channel};
use super::{MAX_DESCRIPTION_CHARS, MAX_SHORT_TEXT_CHARS, request_id, text};
use crate::v1;

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
    ok.then_some(Location {
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

/// The channel a report names; `Some(None)` when it names none (the reporter's default
/// applies), `None` for a number that is no channel.
fn channel(violations: &mut Violations, value: i32) -> Option<Option<ReportChannel>> {
    if value == v1::ReportChannel::Unspecified as i32 {
        return Some(None);
    }
    let channel = report_channel(value);
    if channel.is_none() {
        violations.push("channel", "must name a known report channel");
    }
    channel.map(Some)
}

/// The validated request, with the fields that decide the ids.
#[derive(Debug, Clone)]
pub struct ValidReport {
    pub request_id: String,
    pub kind: CaseKind,
    pub description: String,
    pub reporter: Reporter,
    /// As named, or the reporter's default ([`ReportChannel::default_for`]).
    pub channel: ReportChannel,
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
        let channel = channel(&mut violations, req.channel);
        match (request_id, kind, description, reporter, channel) {
            (Some(request_id), Some(kind), Some(description), Some(reporter), Some(channel))
                if violations.is_empty() =>
            {
                Ok(ValidReport {
                    request_id,
                    kind,
                    description,
                    channel: channel.unwrap_or_else(|| ReportChannel::default_for(&reporter)),
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
            channel: self.channel,
            reported_by,
        }
    }
}

/// A historic case's kind as a report's: an import is a batch of reports of the past.
impl From<v1::historic_case::Kind> for v1::report_case_request::Kind {
    fn from(kind: v1::historic_case::Kind) -> Self {
        match kind {
            v1::historic_case::Kind::GridIncident(g) => Self::GridIncident(g),
            v1::historic_case::Kind::PropertyComplaint(p) => Self::PropertyComplaint(p),
        }
    }
}

/// A report's kind as a historic case's.
impl From<v1::report_case_request::Kind> for v1::historic_case::Kind {
    fn from(kind: v1::report_case_request::Kind) -> Self {
        match kind {
            v1::report_case_request::Kind::GridIncident(g) => Self::GridIncident(g),
            v1::report_case_request::Kind::PropertyComplaint(p) => Self::PropertyComplaint(p),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(reporter: v1::Reporter, channel: i32) -> v1::ReportCaseRequest {
        v1::ReportCaseRequest {
            request_id: "r-1".into(),
            kind: Some(v1::report_case_request::Kind::GridIncident(
                v1::GridIncident {
                    grid_code: "310104001001001".into(),
                    category: v1::IncidentCategory::Dispute as i32,
                    location: None,
                },
            )),
            description: "dispute".into(),
            reporter: Some(reporter),
            channel,
        }
    }

    fn grid_worker() -> v1::Reporter {
        v1::Reporter {
            kind: v1::ReporterKind::GridWorker as i32,
            grid_worker_id: "GW-1".into(),
        }
    }

    fn resident() -> v1::Reporter {
        v1::Reporter {
            kind: v1::ReporterKind::Resident as i32,
            grid_worker_id: String::new(),
        }
    }

    #[test]
    fn a_report_naming_no_channel_gets_its_reporters_default() {
        let channel = |reporter, channel| {
            ValidReport::try_from(&request(reporter, channel))
                .expect("valid")
                .channel
        };
        let unspecified = v1::ReportChannel::Unspecified as i32;
        assert_eq!(
            channel(grid_worker(), unspecified),
            ReportChannel::GridPatrol
        );
        assert_eq!(channel(resident(), unspecified), ReportChannel::Unrecorded);
        assert_eq!(
            channel(resident(), v1::ReportChannel::Hotline as i32),
            ReportChannel::Hotline
        );
    }

    #[test]
    fn a_channel_number_that_is_no_channel_is_refused() {
        let violations = ValidReport::try_from(&request(resident(), 99)).expect_err("refused");
        assert_eq!(violations.as_slice()[0].field, "channel");
    }
}
