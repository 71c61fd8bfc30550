//! Auditors read one row of a dataset as it stood at a log position, replayed from the log:
//! at each event the row the projection made of it, at the end exactly the live read model's
//! row; a care record's row masked and recorded as a disclosure; only auditors ask.

use hub_api::v1::{
    self, GetRowAsOfRequest, GetRowAsOfResponse, ListAccessRequest, ListDisclosuresRequest,
};
use hub_tests::{Hub, HubBuilder, fixtures};
use prost::Message;
use tonic::Code;

use crate::cmd::*;
use crate::datasets::{read, rows_as, text};
use crate::{from, incident, violated_field};

const AUDITOR: &str = "discipline-inspection";
const ACTION: &str = "gov.hub.v1.AuditService/GetRowAsOf";

fn as_of(dataset: &str, key: &str, position: u64) -> GetRowAsOfRequest {
    GetRowAsOfRequest {
        dataset: dataset.into(),
        key: key.into(),
        position,
    }
}

async fn row_as_of(hub: &Hub, dataset: &str, key: &str, position: u64) -> GetRowAsOfResponse {
    hub.auditors()
        .get_row_as_of(from(AUDITOR, as_of(dataset, key, position)))
        .await
        .unwrap_or_else(|s| panic!("{dataset} row {key} as of {position}: {s:?}"))
        .into_inner()
}

/// The row of an answer that found one.
fn found(answer: &GetRowAsOfResponse) -> &prost_types::Struct {
    assert!(answer.exists, "{answer:?}");
    answer.row.as_ref().expect("an existing row comes with it")
}

/// The live row of `dataset` whose `field` is `value`, read by `reader` (`None`: the public)
/// once the read model has applied the log up to `at`.
async fn live_row(
    hub: &Hub,
    reader: Option<&str>,
    dataset: &str,
    at: u64,
    (field, value): (&str, &str),
) -> prost_types::Struct {
    let page = rows_as(hub, reader, read(dataset, at))
        .await
        .unwrap_or_else(|s| panic!("live {dataset}: {s:?}"));
    assert!(page.position >= at);
    let mut rows = page
        .rows
        .into_iter()
        .filter(|r| text(r, field).as_deref() == Some(value));
    let row = rows.next().unwrap_or_else(|| panic!("{dataset}: no row"));
    assert!(rows.next().is_none(), "{dataset}: one row");
    row
}

/// Each field of `row` as text (numbers too; null as None), for field-by-field comparison.
fn fields(row: &prost_types::Struct, names: &[&str]) -> Vec<Option<String>> {
    names.iter().map(|n| text(row, n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rows_replay_follows_the_case_event_by_event_and_ends_at_the_live_row() {
    let hub = HubBuilder::dev().start().await;
    let h = &hub;
    let reported = h
        .commands()
        .report_case(from("urban-management", incident("row-1")))
        .await
        .expect("report")
        .into_inner();
    let id = reported.case_id.as_str();
    let d = dispatch(h, "dcc-310104", "d-1", id, "urban-management", None)
        .await
        .expect("dispatch");
    let a = accept(h, "urban-management", "a-1", id, None)
        .await
        .expect("accept");
    let t = transfer(h, "urban-management", "t-1", id, "housing")
        .await
        .expect("transfer");
    let m = accept_transfer(h, "housing", "t-1-yes", id)
        .await
        .expect("transfer accepted");
    let r = resolve(h, "housing", "r-1", id).await.expect("resolve");
    let positions = [
        reported.position,
        d.position,
        a.position,
        t.position,
        m.position,
        r.position,
    ];
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");

    // The transfer ledger's row of the transfer, keyed by the case and the request's position
    // (in decimal, as the row shows it): none before the request, pending, then accepted.
    let ledger_key = format!("{id}/{}", t.position);
    const LEDGER: [&str; 8] = [
        "case_id",
        "from_department",
        "to_department",
        "reason",
        "requested_position",
        "outcome",
        "decision_reason",
        "district_code",
    ];
    let request_position = t.position.to_string();
    let ledger = |outcome: &str| -> Vec<Option<String>> {
        [
            Some(id),
            Some("urban-management"),
            Some("housing"),
            Some("涉及物业维修资金 a property matter"),
            Some(request_position.as_str()),
            Some(outcome),
            None,
            Some("310104"),
        ]
        .into_iter()
        .map(|v| v.map(str::to_owned))
        .collect()
    };
    // The case timeline's row of the dispatch: there from the dispatch on, never changed.
    let timeline_key = format!("{id}/{:020}", d.position);
    const TIMELINE: [&str; 8] = [
        "case_id",
        "position",
        "event_type",
        "actor",
        "holder",
        "dispatch_unit",
        "district_code",
        "grid_code",
    ];
    let dispatch_position = d.position.to_string();
    let timeline: Vec<Option<String>> = [
        id,
        &dispatch_position,
        "gov.hub.case.dispatched.v1",
        "dcc-310104",
        "urban-management",
        "dcc-310104",
        "310104",
        "310104001001001",
    ]
    .into_iter()
    .map(|v| Some(v.to_owned()))
    .collect();

    let mut decided_at = None;
    for (i, position) in positions.into_iter().enumerate() {
        let answer = row_as_of(h, "transfer_ledger", &ledger_key, position).await;
        // Every message of the log so far is this case's: the replay applied up to the one asked.
        assert_eq!(answer.position, position);
        assert!(answer.masked.is_empty() && answer.withheld.is_empty());
        match i {
            0..=2 => assert_eq!(
                answer,
                GetRowAsOfResponse {
                    position,
                    ..Default::default()
                },
                "no transfer requested yet at {position}"
            ),
            3 => {
                let row = found(&answer);
                assert_eq!(fields(row, &LEDGER), ledger("pending"));
                assert!(text(row, "requested_at").is_some());
                assert_eq!(text(row, "decided_at"), None, "not decided yet");
            }
            _ => {
                let row = found(&answer);
                assert_eq!(fields(row, &LEDGER), ledger("accepted"), "at {position}");
                let decided = text(row, "decided_at");
                assert!(decided.is_some(), "decided at {position}");
                // Resolving the case leaves the ledger's row as the acceptance made it.
                assert!(decided_at.is_none() || decided_at == decided);
                decided_at = decided;
            }
        }

        let answer = row_as_of(h, "case_timeline", &timeline_key, position).await;
        if position < d.position {
            assert!(!answer.exists && answer.row.is_none(), "{answer:?}");
        } else {
            assert_eq!(fields(found(&answer), &TIMELINE), timeline, "at {position}");
        }
    }

    // As of the last position, each row is the live read model's, read through the dataset API
    // by a party to it once the model has applied that position.
    let last = r.position;
    let live = live_row(
        h,
        Some("urban-management"),
        "transfer_ledger",
        last,
        ("requested_position", &request_position),
    )
    .await;
    let replayed = row_as_of(h, "transfer_ledger", &ledger_key, last).await;
    assert_eq!(found(&replayed), &live);
    let live = live_row(
        h,
        Some("urban-management"),
        "case_timeline",
        last,
        ("position", &dispatch_position),
    )
    .await;
    // The stored key's zero-padded form names the same row.
    let replayed = row_as_of(h, "case_timeline", &timeline_key, last).await;
    assert_eq!(found(&replayed), &live);
    let plain = row_as_of(h, "case_timeline", &format!("{id}/{}", d.position), last).await;
    assert_eq!(plain, replayed);

    // An open statistic, counted per day of the city's time zone: the replay's day is the
    // live model's, and the report's count is there from the report on.
    let live = live_row(h, None, "incident_stats", last, ("reported", "1")).await;
    let day_key = ["day", "grid_code", "category"]
        .map(|f| text(&live, f).expect("a key field"))
        .join("/");
    assert_eq!(
        found(&row_as_of(h, "incident_stats", &day_key, last).await),
        &live
    );
    let at_report = row_as_of(h, "incident_stats", &day_key, reported.position).await;
    assert_eq!(
        fields(found(&at_report), &["reported", "resolved", "closed"]),
        [Some("1".into()), Some("0".into()), Some("0".into())]
    );

    // A row that never was: none, at any position.
    let never = row_as_of(h, "transfer_ledger", &format!("{id}/{}", d.position), last).await;
    assert!(!never.exists && never.row.is_none());

    // Past the end of the log: refused, where the last position answers.
    let beyond = h
        .auditors()
        .get_row_as_of(from(
            AUDITOR,
            as_of("transfer_ledger", &ledger_key, last + 1_000),
        ))
        .await
        .expect_err("a position the log has not reached");
    assert_eq!(beyond.code(), Code::FailedPrecondition, "{beyond:?}");
    let at_end = row_as_of(h, "transfer_ledger", &ledger_key, last).await;
    assert_eq!(text(found(&at_end), "outcome").as_deref(), Some("accepted"));
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_goes_through_the_log_batch_by_batch_up_to_the_position_asked() {
    const CASES: u64 = 600;
    let hub = HubBuilder::dev().start().await;
    // One day's historic reports: one row of the statistics counts them all.
    let cases: Vec<v1::HistoricCase> = (0..CASES)
        .map(|i| fixtures::historic(&format!("many-{i}"), 1_790_000_000))
        .collect();
    let done = hub
        .commands()
        .import_cases(fixtures::import_chunks(&cases, 1000))
        .await
        .expect("import")
        .into_inner();
    assert_eq!((u64::from(done.imported), done.position), (CASES, CASES));

    let live = live_row(
        &hub,
        None,
        "incident_stats",
        done.position,
        ("reported", "600"),
    )
    .await;
    let key = ["day", "grid_code", "category"]
        .map(|f| text(&live, f).expect("a key field"))
        .join("/");
    assert_eq!(
        found(&row_as_of(&hub, "incident_stats", &key, done.position).await),
        &live
    );
    // Within the first batch of the log's reads, just past it, and in the last.
    for position in [1, 255, 256, 257, 300, 513, CASES - 1] {
        let answer = row_as_of(&hub, "incident_stats", &key, position).await;
        assert_eq!(answer.position, position);
        assert_eq!(
            text(found(&answer), "reported"),
            Some(position.to_string()),
            "as of {position}"
        );
    }
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_care_roster_row_as_of_a_position_is_masked_and_recorded_as_a_disclosure() {
    use hub_tests::fixtures::{
        CARE_ADDRESS as ADDRESS, CARE_IDENTITY as IDENTITY, CARE_NAME as NAME, CARE_PHONE as PHONE,
    };
    let hub = HubBuilder::dev().start().await;
    let registered = hub
        .care()
        .register_care(from("civil-affairs", hub_tests::fixtures::care("care-1")))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    let care_id = registered.id.as_str();
    let visited = hub
        .care()
        .log_care_visit(from(
            "civil-affairs",
            v1::LogCareVisitRequest {
                request_id: "visit-1".into(),
                care_id: care_id.into(),
                expected_version: None,
                visited_at: Some(prost_types::Timestamp {
                    seconds: jiff::Timestamp::now().as_second(),
                    nanos: 0,
                }),
                visitor: "CA-017".into(),
                notes: "身体状况稳定".into(),
            },
        ))
        .await
        .expect("visit")
        .into_inner()
        .result
        .expect("result");

    let then = row_as_of(&hub, "care_roster", care_id, registered.position).await;
    let bytes = then.encode_to_vec();
    for secret in [NAME, IDENTITY, PHONE, ADDRESS] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in clear in the answer"
        );
    }
    let row = found(&then);
    assert_eq!(text(row, "care_id").as_deref(), Some(care_id));
    assert_eq!(text(row, "visits").as_deref(), Some("0"));
    for field in ["name", "identity_number", "phone"] {
        assert!(text(row, field).is_some_and(|v| !v.is_empty()), "{field}");
    }
    // The address as its community; the category and risk level left out.
    assert_eq!(text(row, "address").as_deref(), Some("310104001001"));
    assert!(!row.fields.contains_key("category") && !row.fields.contains_key("risk_level"));
    assert_eq!(then.masked, ["name", "identity_number", "phone", "address"]);
    assert_eq!(then.withheld, ["category", "risk_level"]);
    assert_eq!(then.position, registered.position);

    // One audit record of the call, naming the care record, nothing in clear.
    let records: Vec<v1::AuditRecord> = hub
        .auditors()
        .list_access(from(
            AUDITOR,
            ListAccessRequest {
                department: AUDITOR.into(),
                dataset: "care_roster".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("access log")
        .into_inner()
        .entries
        .into_iter()
        .filter_map(|e| e.record)
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(
        (
            record.action.as_str(),
            record.outcome.as_str(),
            record.count
        ),
        (ACTION, "ok", 1)
    );
    assert_eq!(record.persons, [care_id]);
    assert!(record.clear_fields.is_empty());
    let ledger = hub
        .auditors()
        .list_disclosures(from(
            AUDITOR,
            ListDisclosuresRequest {
                care_id: care_id.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("ledger")
        .into_inner()
        .disclosures;
    let by_auditor: Vec<_> = ledger.iter().filter(|d| d.department == AUDITOR).collect();
    assert_eq!(by_auditor.len(), 1, "{ledger:?}");
    assert_eq!(by_auditor[0].action, ACTION);
    assert!(by_auditor[0].clear_fields.is_empty());

    // Later, the visit counted; as the owner reads it, but masked.
    let now = row_as_of(&hub, "care_roster", care_id, visited.position).await;
    assert_eq!(text(found(&now), "visits").as_deref(), Some("1"));
    let owner = live_row(
        &hub,
        Some("civil-affairs"),
        "care_roster",
        visited.position,
        ("care_id", care_id),
    )
    .await;
    assert_eq!(text(&owner, "name").as_deref(), Some(NAME));
    let unmasked = [
        "care_id",
        "visits",
        "last_visit_at",
        "status",
        "registered_at",
    ];
    assert_eq!(fields(found(&now), &unmasked), fields(&owner, &unmasked));
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_auditors_read_rows_as_of_a_position_and_malformed_requests_name_the_field() {
    let hub = HubBuilder::dev().start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("who-1")))
        .await
        .expect("report")
        .into_inner();
    let key = format!("{}/{}", reported.case_id, reported.position);
    let at = || as_of("case_timeline", &key, reported.position);
    let mut auditors = hub.auditors();

    let public = auditors
        .get_row_as_of(fixtures::acting(fixtures::PURPOSE, at()))
        .await
        .expect_err("the public reads no row as of a position");
    assert_eq!(public.code(), Code::Unauthenticated, "{public:?}");
    let department = auditors
        .get_row_as_of(from("urban-management", at()))
        .await
        .expect_err("a department reads none, not even of its own case");
    assert_eq!(department.code(), Code::PermissionDenied, "{department:?}");
    // Refused before anything is parsed: malformed input is refused to them the same way.
    let department = auditors
        .get_row_as_of(from("civil-affairs", as_of("", "", 0)))
        .await
        .expect_err("a department");
    assert_eq!(department.code(), Code::PermissionDenied, "{department:?}");
    let answer = auditors
        .get_row_as_of(from(AUDITOR, at()))
        .await
        .expect("an auditor reads it")
        .into_inner();
    assert_eq!(
        text(found(&answer), "event_type").as_deref(),
        Some("gov.hub.case.reported.v2")
    );

    // Malformed requests name the field and never repeat its text.
    const SECRET: &str = "11010519491231002X";
    let bad = [
        (as_of(SECRET, &key, 1), "dataset"),
        (as_of("", &key, 1), "dataset"),
        (as_of("care_counts", &key, 1), "dataset"),
        (as_of("case_queue", &key, 1), "dataset"),
        (as_of("case_timeline", "", 1), "key"),
        (as_of("case_timeline", &format!("{SECRET}\n"), 1), "key"),
        (as_of("case_timeline", &"k".repeat(513), 1), "key"),
        (as_of("case_timeline", &key, 0), "position"),
    ];
    let malformed = bad.len();
    for (request, field) in bad {
        let asked = format!("{request:?}");
        let status = auditors
            .get_row_as_of(from(AUDITOR, request))
            .await
            .expect_err("malformed");
        assert_eq!(violated_field(&status), field, "{asked}");
        assert!(
            !format!("{status:?}").contains(SECRET),
            "echoed: {status:?}"
        );
    }

    // Every call left exactly one record, refusals included; none names a dataset it was not.
    let records = |department: &str| {
        let mut auditors = hub.auditors();
        let department = department.to_owned();
        async move {
            auditors
                .list_access(from(
                    AUDITOR,
                    ListAccessRequest {
                        department,
                        ..Default::default()
                    },
                ))
                .await
                .expect("access log")
                .into_inner()
                .entries
                .into_iter()
                .filter_map(|e| e.record)
                .filter(|r| r.action == ACTION)
                .collect::<Vec<_>>()
        }
    };
    let outcomes = |records: &[v1::AuditRecord]| {
        records
            .iter()
            .map(|r| r.outcome.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(outcomes(&records("public").await), ["unauthenticated"]);
    assert_eq!(
        outcomes(&records("urban-management").await),
        ["permission_denied"]
    );
    assert_eq!(
        outcomes(&records("civil-affairs").await),
        ["permission_denied"]
    );
    let mine = records(AUDITOR).await;
    let mut expected = vec!["ok".to_owned()];
    expected.extend(std::iter::repeat_n(
        "invalid_argument".to_owned(),
        malformed,
    ));
    assert_eq!(outcomes(&mine), expected);
    assert_eq!(mine[0].dataset, "case_timeline");
    assert_eq!(mine[0].position, reported.position);
    assert!(mine.iter().all(|r| !format!("{r:?}").contains(SECRET)));
    let named: Vec<&str> = mine[1..].iter().map(|r| r.dataset.as_str()).collect();
    assert_eq!(
        named,
        [
            "",
            "",
            "care_counts",
            "case_queue",
            "case_timeline",
            "case_timeline",
            "case_timeline",
            "case_timeline"
        ]
    );
    hub.stop().await.expect("clean stop");
}
