//! Each class of bad input is refused with the right code, naming the field and why, and
//! nothing reaches the log; the same setup accepts a good request.

use hub_api::v1;
use hub_api::v1::report_case_request::Kind;
use hub_tests::{HubBuilder, Nats};
use tonic::Code;
use tonic_types::StatusExt;

use crate::{complaint, events_in_log, from, incident, violated_field};

fn grid(
    mut request: v1::ReportCaseRequest,
    change: impl FnOnce(&mut v1::GridIncident),
) -> v1::ReportCaseRequest {
    if let Some(Kind::GridIncident(g)) = request.kind.as_mut() {
        change(g);
    }
    request
}

fn property(
    mut request: v1::ReportCaseRequest,
    change: impl FnOnce(&mut v1::PropertyComplaint),
) -> v1::ReportCaseRequest {
    if let Some(Kind::PropertyComplaint(p)) = request.kind.as_mut() {
        change(p);
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_class_of_bad_report_is_refused_by_field_and_nothing_is_appended() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;

    let cases: Vec<(&str, v1::ReportCaseRequest, &str)> = vec![
        ("empty request id", incident(""), "request_id"),
        (
            "request id too long",
            incident(&"r".repeat(65)),
            "request_id",
        ),
        ("request id with a space", incident("r 1"), "request_id"),
        (
            "no kind",
            v1::ReportCaseRequest {
                kind: None,
                ..incident("r")
            },
            "kind",
        ),
        (
            "grid code too short",
            grid(incident("r"), |g| g.grid_code = "31010400100100".into()),
            "grid_incident.grid_code",
        ),
        (
            "grid code not digits",
            grid(incident("r"), |g| g.grid_code = "31010400100100A".into()),
            "grid_incident.grid_code",
        ),
        (
            "grid not in the registry",
            grid(incident("r"), |g| g.grid_code = "310104009009009".into()),
            "grid_incident.grid_code",
        ),
        (
            "unspecified category",
            grid(incident("r"), |g| g.category = 0),
            "grid_incident.category",
        ),
        (
            "unknown category number",
            grid(incident("r"), |g| g.category = 99),
            "grid_incident.category",
        ),
        (
            "longitude out of range",
            grid(incident("r"), |g| {
                g.location.as_mut().expect("location").longitude = 181.0
            }),
            "grid_incident.location.longitude",
        ),
        (
            "latitude not a number",
            grid(incident("r"), |g| {
                g.location.as_mut().expect("location").latitude = f64::NAN
            }),
            "grid_incident.location.latitude",
        ),
        (
            "empty description",
            v1::ReportCaseRequest {
                description: "  ".into(),
                ..incident("r")
            },
            "description",
        ),
        (
            "description too long",
            v1::ReportCaseRequest {
                description: "长".repeat(2001),
                ..incident("r")
            },
            "description",
        ),
        (
            "control characters",
            v1::ReportCaseRequest {
                description: "a\u{7}b".into(),
                ..incident("r")
            },
            "description",
        ),
        (
            "no reporter",
            v1::ReportCaseRequest {
                reporter: None,
                ..incident("r")
            },
            "reporter",
        ),
        (
            "unspecified reporter",
            v1::ReportCaseRequest {
                reporter: Some(v1::Reporter::default()),
                ..incident("r")
            },
            "reporter.kind",
        ),
        (
            "grid worker without staff number",
            v1::ReportCaseRequest {
                reporter: Some(v1::Reporter {
                    kind: v1::ReporterKind::GridWorker as i32,
                    grid_worker_id: String::new(),
                }),
                ..incident("r")
            },
            "reporter.grid_worker_id",
        ),
        (
            "resident with a staff number",
            v1::ReportCaseRequest {
                reporter: Some(v1::Reporter {
                    kind: v1::ReporterKind::Resident as i32,
                    grid_worker_id: "GW-1".into(),
                }),
                ..complaint("r")
            },
            "reporter.grid_worker_id",
        ),
        (
            "credit code check character",
            property(complaint("r"), |p| {
                p.company_credit_code = "91350100M000100Y44".into()
            }),
            "property_complaint.company_credit_code",
        ),
        (
            "credit code alphabet",
            property(complaint("r"), |p| {
                p.company_credit_code = "91350100M00010OY43".into()
            }),
            "property_complaint.company_credit_code",
        ),
        (
            "empty compound",
            property(complaint("r"), |p| p.compound = String::new()),
            "property_complaint.compound",
        ),
        (
            "district not digits",
            property(complaint("r"), |p| p.district_code = "31010X".into()),
            "property_complaint.district_code",
        ),
        (
            "district not in the registry",
            property(complaint("r"), |p| p.district_code = "110101".into()),
            "property_complaint.district_code",
        ),
        (
            "complaint category",
            property(complaint("r"), |p| p.category = 0),
            "property_complaint.category",
        ),
    ];

    for (name, request, field) in cases {
        let status = hub
            .commands()
            .report_case(from("urban-management", request))
            .await
            .expect_err(name);
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        let details = status
            .get_details_bad_request()
            .unwrap_or_else(|| panic!("{name}: no BadRequest details"));
        let fields: Vec<&str> = details
            .field_violations
            .iter()
            .map(|v| v.field.as_str())
            .collect();
        assert!(
            fields.contains(&field),
            "{name}: expected a violation of {field}, got {fields:?}"
        );
        assert!(
            details
                .field_violations
                .iter()
                .all(|v| !v.description.is_empty()),
            "{name}: every violation says why"
        );
        assert!(
            status.message().contains(field),
            "{name}: message names the field: {}",
            status.message()
        );
    }
    assert_eq!(
        events_in_log(&js).await,
        0,
        "nothing appended for any refused report"
    );

    // Several problems at once are all reported.
    let status = hub
        .commands()
        .report_case(from(
            "urban-management",
            v1::ReportCaseRequest {
                request_id: String::new(),
                description: String::new(),
                ..incident("")
            },
        ))
        .await
        .expect_err("two problems");
    let details = status.get_details_bad_request().expect("details");
    assert_eq!(details.field_violations.len(), 2, "{details:?}");

    // The same hub accepts the good requests the bad ones were made from.
    hub.commands()
        .report_case(from("urban-management", incident("r")))
        .await
        .expect("good incident");
    hub.commands()
        .report_case(from("urban-management", complaint("r2")))
        .await
        .expect("good complaint");
    assert_eq!(events_in_log(&js).await, 2);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_calling_department_must_be_named_and_known() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;

    let status = hub
        .commands()
        .report_case(tonic::Request::new(incident("r")))
        .await
        .expect_err("no department");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    for department in ["Urban Management", "x"] {
        let status = hub
            .commands()
            .report_case(from(department, incident("r")))
            .await
            .expect_err("malformed department");
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{department}: {status:?}"
        );
        let details = status.get_details_bad_request().expect("details");
        assert_eq!(details.field_violations[0].field, "x-hub-department");
    }
    let status = hub
        .commands()
        .report_case(from("tax-bureau", incident("r")))
        .await
        .expect_err("unknown department");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("x-hub-department"),
        "{}",
        status.message()
    );
    assert_eq!(events_in_log(&js).await, 0);

    hub.commands()
        .report_case(from("public-security", incident("r")))
        .await
        .expect("known department");
    assert_eq!(events_in_log(&js).await, 1);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_queries_are_refused_by_field_and_a_case_is_read_only_by_departments_with_a_role() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("q-1")))
        .await
        .expect("report")
        .into_inner();
    let mut queries = hub.queries();
    let get = |id: &str| v1::GetCaseRequest {
        case_id: id.into(),
        min_position: reported.position,
    };

    // The public reads no case; a department with a role reads it.
    let status = queries
        .get_case(get(&reported.case_id))
        .await
        .expect_err("anonymous");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    for (id, field) in [("", "case_id"), ("no/such", "case_id")] {
        let status = queries
            .get_case(from("dcc-310104", get(id)))
            .await
            .expect_err(field);
        assert_eq!(violated_field(&status), field);
    }
    // Who asks first: a department without a role on the case, and a case that does not
    // exist, get one and the same answer.
    let stranger = queries
        .get_case(from("housing", get(&reported.case_id)))
        .await
        .expect_err("housing has no role");
    let missing = queries
        .get_case(from("housing", get("00000000-0000-0000-0000-000000000000")))
        .await
        .expect_err("no such case");
    assert_eq!(stranger.code(), Code::PermissionDenied, "{stranger:?}");
    assert_eq!(
        (missing.code(), missing.message()),
        (stranger.code(), stranger.message())
    );
    // The command centre (holder) and the reporting department read it.
    for department in ["dcc-310104", "urban-management"] {
        let found = queries
            .get_case(from(department, get(&reported.case_id)))
            .await
            .unwrap_or_else(|s| panic!("{department}: {s:?}"));
        assert_eq!(
            found.into_inner().r#case.expect("case").case_id,
            reported.case_id
        );
    }

    let list = |holder: &str, page_size: u32, page_token: &str| v1::ListCasesRequest {
        holder: holder.into(),
        min_position: reported.position,
        page_size,
        page_token: page_token.into(),
    };
    for (request, field) in [
        (list("", 0, ""), "holder"),
        (list("nobody-here", 0, ""), "holder"),
        (list("dcc-310104", 10, "garbage"), "page_token"),
    ] {
        let status = queries
            .list_cases(from("dcc-310104", request))
            .await
            .expect_err(field);
        assert_eq!(violated_field(&status), field);
    }
    // A department lists its own queue, not another's, and the public none.
    let status = queries
        .list_cases(from("urban-management", list("dcc-310104", 500, "")))
        .await
        .expect_err("another's queue");
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = queries
        .list_cases(list("dcc-310104", 500, ""))
        .await
        .expect_err("anonymous");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let page = queries
        .list_cases(from("dcc-310104", list("dcc-310104", 500, "")))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.cases.len(), 1);
    // A page size above the maximum is lowered to it, not refused (AIP-158).
    let page = queries
        .list_cases(from("dcc-310104", list("dcc-310104", 100_000, "")))
        .await
        .expect("a big page is lowered")
        .into_inner();
    assert_eq!(page.cases.len(), 1);
    hub.stop().await.expect("clean stop");
}
