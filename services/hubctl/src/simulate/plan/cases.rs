//! A reported case's chain of commands: report, dispatch, transfer, acceptance,
//! resolution, rating, reopening and close, and where each category goes.

use super::*;

/// The department that handles a category, and the one a case of it is mistaken for.
pub(super) fn route(category: Option<v1::IncidentCategory>) -> (&'static str, &'static str) {
    use v1::IncidentCategory as C;
    match category {
        None => (HOUSING, URBAN_MANAGEMENT),
        Some(C::FireHazard) => (PUBLIC_SECURITY, URBAN_MANAGEMENT),
        Some(C::Dispute) => (PUBLIC_SECURITY, CIVIL_AFFAIRS),
        Some(C::GroupRenting) => (HOUSING, PUBLIC_SECURITY),
        Some(C::IllegalConstruction) => (URBAN_MANAGEMENT, HOUSING),
        Some(C::Sanitation) | Some(C::SafetyHazard) => (URBAN_MANAGEMENT, HOUSING),
        Some(C::Other) | Some(C::Unspecified) => (CIVIL_AFFAIRS, URBAN_MANAGEMENT),
    }
}

pub(super) fn urgency(category: Option<v1::IncidentCategory>) -> v1::Urgency {
    use v1::IncidentCategory as C;
    match category {
        Some(C::FireHazard | C::SafetyHazard) => v1::Urgency::Urgent,
        Some(C::Dispute | C::GroupRenting | C::IllegalConstruction) => v1::Urgency::Important,
        _ => v1::Urgency::General,
    }
}

pub(super) const INCIDENTS: [(v1::IncidentCategory, u32); 7] = [
    (v1::IncidentCategory::Sanitation, 35),
    (v1::IncidentCategory::SafetyHazard, 12),
    (v1::IncidentCategory::FireHazard, 8),
    (v1::IncidentCategory::Dispute, 12),
    (v1::IncidentCategory::IllegalConstruction, 10),
    (v1::IncidentCategory::GroupRenting, 8),
    (v1::IncidentCategory::Other, 15),
];

pub(super) const COMPLAINTS: [(v1::ComplaintCategory, u32); 5] = [
    (v1::ComplaintCategory::Fees, 30),
    (v1::ComplaintCategory::ServiceQuality, 35),
    (v1::ComplaintCategory::MaintenanceFund, 15),
    (v1::ComplaintCategory::PublicRevenue, 10),
    (v1::ComplaintCategory::Other, 10),
];

/// Reports by hour of the day: few at night, most in working hours.
pub(super) const HOURS: [u32; 24] = [
    1, 1, 1, 1, 1, 1, 2, 4, 8, 9, 9, 8, 5, 6, 8, 8, 8, 7, 5, 4, 3, 2, 2, 1,
];

/// A case's life: reported, dispatched, accepted (or handed on), resolved, rated, closed.
pub(super) fn case(
    s: &Scenario,
    place: &Place<'_>,
    grid: &Grid,
    rng: &mut ChaCha8Rng,
    at: i64,
    tie: String,
) -> Chain {
    let mut chain = Chain::new(AggregateKind::Case, at, tie);
    let centre = place.district.command_centre.as_str();
    let complaint = rng.gen_bool(s.complaint_share);
    let (report, category) = if complaint {
        let weights: Vec<u32> = place.companies.iter().map(|c| c.weight).collect();
        let company = &place.companies[weighted(rng, &weights)];
        let compound = pick(rng, &company.compounds).clone();
        let weights: Vec<u32> = COMPLAINTS.iter().map(|c| c.1).collect();
        let category = COMPLAINTS[weighted(rng, &weights)].0;
        let text = *pick(rng, words::complaint(category));
        let request = v1::ReportCaseRequest {
            request_id: String::new(),
            kind: Some(v1::report_case_request::Kind::PropertyComplaint(
                v1::PropertyComplaint {
                    company_credit_code: company.credit_code.clone(),
                    compound: compound.clone(),
                    category: category as i32,
                    district_code: place.district.code.clone(),
                },
            )),
            description: format!("{compound}: {}", both(text)),
            reporter: Some(v1::Reporter {
                kind: v1::ReporterKind::Resident as i32,
                grid_worker_id: String::new(),
            }),
            // Residents complain through the 12345 hotline.
            channel: v1::ReportChannel::Hotline as i32,
        };
        (request, None)
    } else {
        let weights: Vec<u32> = INCIDENTS.iter().map(|c| c.1).collect();
        let category = INCIDENTS[weighted(rng, &weights)].0;
        let text = *pick(rng, words::incident(category));
        let resident = rng.gen_bool(s.resident_share);
        // Each grid somewhere near its district's centre.
        let offset = fnv(&grid.code);
        let (lon, lat) = (
            place.base.0 + (offset % 1000) as f64 / 50_000.0 + rng.gen_range(0.0..0.002),
            place.base.1 + (offset / 1000 % 1000) as f64 / 50_000.0 + rng.gen_range(0.0..0.002),
        );
        let address = format!(
            "{}路{}号附近",
            pick(rng, &place.roads),
            rng.gen_range(1..=800)
        );
        let request = v1::ReportCaseRequest {
            request_id: String::new(),
            kind: Some(v1::report_case_request::Kind::GridIncident(
                v1::GridIncident {
                    grid_code: grid.code.clone(),
                    category: category as i32,
                    location: Some(v1::Location {
                        longitude: (lon * 1e5).round() / 1e5,
                        latitude: (lat * 1e5).round() / 1e5,
                        address,
                    }),
                },
            )),
            description: both(text),
            channel: if resident {
                v1::ReportChannel::Hotline
            } else {
                v1::ReportChannel::GridPatrol
            } as i32,
            reporter: Some(if resident {
                v1::Reporter {
                    kind: v1::ReporterKind::Resident as i32,
                    grid_worker_id: String::new(),
                }
            } else {
                v1::Reporter {
                    kind: v1::ReporterKind::GridWorker as i32,
                    grid_worker_id: grid_worker(grid),
                }
            }),
        };
        (request, Some(category))
    };
    // Grid workers report from their app, residents through the hotline: both reach the
    // district's command centre, which also calls the reporter back for the rating.
    let reporter = match report.reporter.as_ref() {
        Some(r) if !r.grid_worker_id.is_empty() => r.grid_worker_id.clone(),
        _ => format!("{centre}-hotline{}", rng.gen_range(1..=3)),
    };
    chain.push(at, "rep", centre, &reporter, Command::ReportCase(report));

    let urgency = urgency(category);
    let (right, wrong) = route(category);
    let minutes = |lo: i64, hi: i64| (lo * 60, hi * 60);
    let (dispatch, accept, resolve) = match urgency {
        v1::Urgency::Urgent => (minutes(3, 20), minutes(3, 25), minutes(30, 12 * 60)),
        v1::Urgency::Important => (minutes(10, 90), minutes(10, 100), (2 * HOUR, 36 * HOUR)),
        _ => (minutes(10, 180), minutes(20, 360), (2 * HOUR, 72 * HOUR)),
    };
    let transfer = rng.gen_bool(s.transfer_share);
    let handed_on = transfer && rng.gen_bool(s.transfer_accept_share);
    let first = if handed_on { wrong } else { right };
    let operator = place.operator(rng);
    let t = chain.last() + span(rng, dispatch.0, dispatch.1, false);
    chain.push(
        t,
        "dsp",
        centre,
        &operator,
        Command::DispatchCase(v1::DispatchCaseRequest {
            department: first.to_owned(),
            ..Default::default()
        }),
    );
    if rng.gen_bool(s.miss_share) {
        // Never accepted: left for the hub's deadline supervision.
        return chain;
    }
    let handler = place.staff(right, rng);
    if handed_on {
        let t = chain.last() + span(rng, 10 * 60, 120 * 60, false);
        chain.push(
            t,
            "trq",
            wrong,
            &place.staff(wrong, rng),
            Command::RequestCaseTransfer(v1::RequestCaseTransferRequest {
                to_department: right.to_owned(),
                reason: format!("不属于本部门职责 not our remit: for {right}"),
                ..Default::default()
            }),
        );
        let t = chain.last() + span(rng, 15 * 60, 240 * 60, false);
        chain.push(
            t,
            "tra",
            right,
            &handler,
            Command::AcceptCaseTransfer(v1::AcceptCaseTransferRequest::default()),
        );
    } else {
        let t = chain.last() + span(rng, accept.0, accept.1, false);
        chain.push(
            t,
            "acc",
            right,
            &handler,
            Command::AcceptCase(v1::AcceptCaseRequest::default()),
        );
        if transfer {
            let t = chain.last() + span(rng, 30 * 60, 480 * 60, false);
            chain.push(
                t,
                "trq",
                right,
                &handler,
                Command::RequestCaseTransfer(v1::RequestCaseTransferRequest {
                    to_department: wrong.to_owned(),
                    reason: format!("建议由对方牵头处理 suggest {wrong} takes the lead"),
                    ..Default::default()
                }),
            );
            let t = chain.last() + span(rng, 15 * 60, 240 * 60, false);
            chain.push(
                t,
                "trj",
                wrong,
                &place.staff(wrong, rng),
                Command::RejectCaseTransfer(v1::RejectCaseTransferRequest {
                    reason: both(words::REJECT_TRANSFER),
                    ..Default::default()
                }),
            );
        }
    }
    let outcome = match category {
        Some(category) => words::incident_outcome(category),
        None => words::COMPLAINT_OUTCOME,
    };
    let t = chain.last() + span(rng, resolve.0, resolve.1, true);
    chain.push(t, "res", right, &handler, resolve_command(outcome));
    if !rng.gen_bool(s.rated_share) {
        let t = chain.last() + span(rng, 12 * HOUR, 36 * HOUR, false);
        chain.push(t, "cls", centre, &place.operator(rng), close_case());
        return chain;
    }
    let poor = (s.poor_rating_share * if complaint { 2.0 } else { 1.0 }).min(1.0);
    let t = chain.last() + span(rng, HOUR, 12 * HOUR, false);
    if rng.gen_bool(poor) {
        let rating = rng.gen_range(1..=2);
        chain.push(t, "rat", centre, &place.operator(rng), rate_command(rating));
        let t = chain.last() + span(rng, 4 * HOUR, 30 * HOUR, true);
        chain.push(
            t,
            "res2",
            right,
            &handler,
            resolve_command(words::SECOND_OUTCOME),
        );
        let t = chain.last() + span(rng, HOUR, 12 * HOUR, false);
        chain.push(
            t,
            "rat2",
            centre,
            &place.operator(rng),
            rate_command(good(rng)),
        );
    } else {
        chain.push(
            t,
            "rat",
            centre,
            &place.operator(rng),
            rate_command(good(rng)),
        );
    }
    let t = chain.last() + span(rng, 30 * 60, 8 * HOUR, false);
    chain.push(t, "cls", centre, &place.operator(rng), close_case());
    chain
}

/// A grid's worker's staff number (at most 10 digits in a row, as headers require).
pub(super) fn grid_worker(grid: &Grid) -> String {
    format!("GW-{}-{}", &grid.code[3..6], &grid.code[6..15])
}

/// A satisfied rating: mostly 5, some 4, a few 3.
pub(super) fn good<R: Rng>(rng: &mut R) -> u32 {
    [5, 4, 3][weighted(rng, &[55, 30, 15])]
}

pub(super) fn resolve_command(outcome: words::Text) -> Command {
    Command::ResolveCase(v1::ResolveCaseRequest {
        outcome: both(outcome),
        ..Default::default()
    })
}

pub(super) fn rate_command(rating: u32) -> Command {
    Command::RateCase(v1::RateCaseRequest {
        rating,
        ..Default::default()
    })
}

pub(super) fn close_case() -> Command {
    Command::CloseCase(v1::CloseCaseRequest::default())
}
