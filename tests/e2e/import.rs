//! Bulk import of historic cases: client-streamed chunks, atomic batches, all or nothing.

use hub_api::v1;
use hub_tests::{Hub, HubBuilder, Nats};
use tonic::Code;
use tonic_types::StatusExt;

use crate::{events_in_log, from, read_case};

fn historic(i: usize) -> v1::HistoricCase {
    let grid = if i % 2 == 0 {
        "310104001001001"
    } else {
        "310105001001002"
    };
    v1::HistoricCase {
        request_id: format!("legacy-{i}"),
        kind: Some(v1::historic_case::Kind::GridIncident(v1::GridIncident {
            grid_code: grid.into(),
            category: v1::IncidentCategory::Sanitation as i32,
            location: None,
        })),
        description: format!("历史案件 {i}"),
        reporter: Some(v1::Reporter {
            kind: v1::ReporterKind::GridWorker as i32,
            grid_worker_id: format!("GW-{}", i % 40),
        }),
        channel: v1::ReportChannel::GridPatrol as i32,
        reported_at: Some(prost_types::Timestamp {
            seconds: 1_700_000_000 + i as i64 * 60,
            nanos: 0,
        }),
    }
}

async fn import(
    hub: &Hub,
    cases: Vec<v1::HistoricCase>,
    chunk: usize,
) -> Result<v1::ImportCasesResponse, tonic::Status> {
    let chunks: Vec<v1::ImportCasesRequest> = cases
        .chunks(chunk)
        .map(|c| v1::ImportCasesRequest { cases: c.to_vec() })
        .collect();
    hub.commands()
        .import_cases(from("urban-management", futures::stream::iter(chunks)))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_stores_every_case_once_and_a_rerun_stores_nothing() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;

    let cases: Vec<_> = (0..2500).map(historic).collect();
    let done = import(&hub, cases.clone(), 500).await.expect("import");
    assert_eq!((done.imported, done.already_imported), (2500, 0));
    assert_eq!(done.position, 2500);
    assert_eq!(events_in_log(&js).await, 2500);

    // A case reads back with its historic time, in its district's queue.
    let id = hub_ingest::case_id("urban-management", "legacy-7");
    let case = read_case(&hub, &id, done.position).await;
    assert_eq!(
        case.reported_at.expect("reported_at").seconds,
        1_700_000_000 + 7 * 60
    );
    assert_eq!(case.holder, "dcc-310105");

    let again = import(&hub, cases, 1000).await.expect("import again");
    assert_eq!((again.imported, again.already_imported), (0, 2500));
    assert_eq!(events_in_log(&js).await, 2500, "a re-run stores nothing");

    // Half old, half new: the old ones are recognised, the new ones stored.
    let mixed: Vec<_> = (2495..2505).map(historic).collect();
    let done = import(&hub, mixed, 10).await.expect("mixed import");
    assert_eq!((done.imported, done.already_imported), (5, 5));
    assert_eq!(events_in_log(&js).await, 2505);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_case_refuses_the_whole_import_naming_it() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;

    let mut cases: Vec<_> = (0..100).map(historic).collect();
    if let Some(v1::historic_case::Kind::GridIncident(g)) = cases[57].kind.as_mut() {
        g.grid_code = "310104009009009".into();
    }
    cases[3].reported_at = Some(prost_types::Timestamp {
        seconds: 4_000_000_000,
        nanos: 0,
    });
    cases[80].description = String::new();
    let status = import(&hub, cases.clone(), 30)
        .await
        .expect_err("bad cases");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let fields: Vec<String> = status
        .get_details_bad_request()
        .expect("details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect();
    assert_eq!(
        fields,
        [
            "cases[3].reported_at",
            "cases[57].grid_incident.grid_code",
            "cases[80].description"
        ]
    );
    assert_eq!(
        events_in_log(&js).await,
        0,
        "nothing of a refused import is stored"
    );

    let too_big = v1::ImportCasesRequest {
        cases: (0..1001).map(historic).collect(),
    };
    let status = hub
        .commands()
        .import_cases(from("urban-management", futures::stream::iter([too_big])))
        .await
        .expect_err("chunk too large");
    assert_eq!(status.code(), Code::InvalidArgument);

    // A request id twice in one import, or one the department used for a report, refuses
    // the whole import before anything is stored.
    let mut twice: Vec<_> = (0..10).map(historic).collect();
    twice[6].request_id = "legacy-2".into();
    let status = import(&hub, twice, 4).await.expect_err("an id twice");
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "cases[6].request_id"
    );
    let mut live = crate::incident("legacy-42");
    live.description = "reported live, not imported".into();
    hub.commands()
        .report_case(from("urban-management", live))
        .await
        .expect("live report");
    let status = import(&hub, (40..50).map(historic).collect(), 3)
        .await
        .expect_err("an id used by a report");
    assert_eq!(
        status
            .get_details_bad_request()
            .expect("details")
            .field_violations[0]
            .field,
        "cases[2].request_id"
    );
    assert_eq!(
        events_in_log(&js).await,
        1,
        "only the live report is stored"
    );

    // The same import, corrected (and without the live report's id), is stored.
    let good: Vec<_> = (0..100).filter(|i| *i != 42).map(historic).collect();
    let done = import(&hub, good, 30).await.expect("corrected import");
    assert_eq!(done.imported, 99);
    assert_eq!(events_in_log(&js).await, 100);
    hub.stop().await.expect("clean stop");
}
