//! The audit log: every read path leaves exactly one record in GOV_AUDIT, refusals included,
//! on the hub instance's own hash chain, which a changed or dropped batch breaks.

use hub_api::v1;
use hub_audit::signing::CheckpointSigner;
use hub_audit::{Audit, AuditRecord, Checkpoints, check_chain, read_chain};
use hub_tests::{HubBuilder, Nats};
use tonic::Code;

use crate::datasets::read;
use crate::{from, incident};

/// A record's (action, department, outcome).
fn summary(record: &AuditRecord) -> (String, String, String) {
    (
        record.action.clone(),
        record.department.clone(),
        record.outcome.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_read_and_refusal_leaves_one_record_on_the_instances_chain() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let hub = HubBuilder::on(&nats).start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("au-1")))
        .await
        .expect("report")
        .into_inner();
    let at = reported.position;
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", hub.http_url())).send();

    // Each read path once, answered or refused (commands are not reads: not audited here).
    let mut datasets = hub.datasets();
    datasets
        .read_dataset(read("incident_stats", at))
        .await
        .expect("public reads open data");
    let refused = datasets
        .read_dataset(read("care_roster", at))
        .await
        .expect_err("public refused the roster");
    assert_eq!(refused.code(), Code::Unauthenticated);
    datasets
        .list_readable(from("housing", v1::ListReadableRequest::default()))
        .await
        .expect("list readable");
    let mut catalog = hub.catalog();
    catalog
        .list_datasets(v1::ListDatasetsRequest::default())
        .await
        .expect("catalogue");
    catalog
        .get_dataset(v1::GetDatasetRequest {
            dataset_id: "incident_stats".into(),
        })
        .await
        .expect("one entry");
    let mut queries = hub.queries();
    let get_case = |by: &str| {
        from(
            by,
            v1::GetCaseRequest {
                case_id: reported.case_id.clone(),
                min_position: at,
            },
        )
    };
    queries
        .get_case(get_case("dcc-310104"))
        .await
        .expect("holder");
    let refused = queries
        .get_case(get_case("housing"))
        .await
        .expect_err("no role");
    assert_eq!(refused.code(), Code::PermissionDenied);
    queries
        .list_cases(from(
            "dcc-310104",
            v1::ListCasesRequest {
                holder: "dcc-310104".into(),
                min_position: at,
                ..Default::default()
            },
        ))
        .await
        .expect("own queue");
    let refused = queries
        .list_cases(from(
            "housing",
            v1::ListCasesRequest {
                holder: "dcc-310104".into(),
                min_position: at,
                ..Default::default()
            },
        ))
        .await
        .expect_err("another's queue");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let turtle = get("/catalog.ttl").await.expect("http");
    assert_eq!(turtle.status(), reqwest::StatusCode::OK);
    let rows = get("/datasets/incident_stats").await.expect("http");
    assert_eq!(rows.status(), reqwest::StatusCode::OK);
    let roster = get("/datasets/care_roster").await.expect("http");
    assert_eq!(roster.status(), reqwest::StatusCode::UNAUTHORIZED);
    let jsonld = get("/catalog.jsonld").await.expect("http");
    assert_eq!(jsonld.status(), reqwest::StatusCode::OK);
    let unacceptable = http
        .get(format!("{}/catalog", hub.http_url()))
        .header("accept", "application/xml")
        .send()
        .await
        .expect("http");
    assert_eq!(unacceptable.status(), reqwest::StatusCode::NOT_ACCEPTABLE);
    // Refused parameters: the record keeps a fixed reason, never the request's own text (a
    // parameter named like an identity number stays out of the audit log).
    let misspelt = get("/catalog.ttl?pgae=2").await.expect("http");
    assert_eq!(misspelt.status(), reqwest::StatusCode::BAD_REQUEST);
    let personal = get("/datasets/incident_stats?11010519491231002X=1")
        .await
        .expect("http");
    assert_eq!(personal.status(), reqwest::StatusCode::BAD_REQUEST);
    // An unknown dataset is named by nothing in its record.
    let unknown = datasets
        .read_dataset(read("no-such-dataset-11010519491231002X", at))
        .await
        .expect_err("unknown dataset");
    assert_eq!(unknown.code(), Code::NotFound);
    let feed = hub
        .feeds()
        .subscribe(from("public-security", v1::SubscribeRequest::default()))
        .await
        .expect("a department's feed");
    drop(feed);
    let refused = hub
        .feeds()
        .subscribe(v1::SubscribeRequest::default())
        .await
        .expect_err("the public has no feed");
    assert_eq!(refused.code(), Code::Unauthenticated);

    // Every answer waited for its record, so all are stored now, in order, one each.
    let chain = read_chain(&js, hub.instance()).await.expect("chain");
    let records: Vec<&AuditRecord> = chain.iter().flat_map(|b| &b.batch.records).collect();
    let got: Vec<_> = records.iter().map(|r| summary(r)).collect();
    let want: Vec<(String, String, String)> = [
        ("gov.hub.v1.DatasetService/ReadDataset", "", "ok"),
        (
            "gov.hub.v1.DatasetService/ReadDataset",
            "",
            "unauthenticated",
        ),
        ("gov.hub.v1.DatasetService/ListReadable", "housing", "ok"),
        ("gov.hub.v1.CatalogService/ListDatasets", "", "ok"),
        ("gov.hub.v1.CatalogService/GetDataset", "", "ok"),
        ("gov.hub.v1.CaseQueryService/GetCase", "dcc-310104", "ok"),
        (
            "gov.hub.v1.CaseQueryService/GetCase",
            "housing",
            "permission_denied",
        ),
        ("gov.hub.v1.CaseQueryService/ListCases", "dcc-310104", "ok"),
        (
            "gov.hub.v1.CaseQueryService/ListCases",
            "housing",
            "permission_denied",
        ),
        ("GET /catalog", "", "ok"),
        ("GET /datasets/{id}", "", "ok"),
        ("GET /datasets/{id}", "", "unauthenticated"),
        ("GET /catalog", "", "ok"),
        ("GET /catalog", "", "invalid_argument"),
        ("GET /catalog", "", "invalid_argument"),
        ("GET /datasets/{id}", "", "invalid_argument"),
        ("gov.hub.v1.DatasetService/ReadDataset", "", "not_found"),
        ("gov.hub.v1.FeedService/Subscribe", "public-security", "ok"),
        ("gov.hub.v1.FeedService/Subscribe", "", "unauthenticated"),
    ]
    .iter()
    .map(|(a, d, o)| (a.to_string(), d.to_string(), o.to_string()))
    .collect();
    assert_eq!(got, want);

    // Who, what, why: the acting person and purpose, the dataset or case, rows, position.
    let rows_read = records[0];
    assert_eq!(rows_read.dataset, "incident_stats");
    assert!(
        rows_read.count >= 1 && rows_read.position >= at,
        "{rows_read:?}"
    );
    let case_read = records[5];
    assert_eq!(case_read.aggregate, format!("case/{}", reported.case_id));
    assert_eq!(
        (case_read.acting_person.as_str(), case_read.purpose.as_str()),
        (
            hub_tests::fixtures::ACTING_PERSON,
            hub_tests::fixtures::PURPOSE
        )
    );
    assert_eq!(case_read.proof, "header");
    assert!(records[6].reason.contains("no role"), "{:?}", records[6]);
    assert!(records.iter().all(|r| r.time.is_some()));
    for refused in &records[13..17] {
        let text = format!("{refused:?}");
        assert!(
            !text.contains("1949") && !text.contains("pgae"),
            "request text in the audit log: {text}"
        );
    }
    assert_eq!(records[16].dataset, "");
    assert_eq!(records[15].dataset, "incident_stats");

    // The chain is whole (each answer waited for its record, so one batch each); without
    // its first batch it is not.
    assert_eq!(chain.len(), want.len());
    check_chain(hub.instance(), &chain).expect("the chain as stored is whole");
    let broken = check_chain(hub.instance(), &chain[1..]).expect_err("first batch dropped");
    assert_eq!(broken.index, 1, "{broken}");

    // A second writer on the same chain cannot fork it. It appends after the hub's last
    // batch; the hub's next append, expecting the old last sequence, is refused, so that
    // read is answered UNAVAILABLE (no answer without its record); the hub then goes on from
    // the chain's new tail, and the chain stays one line.
    let checkpoints = Checkpoints {
        signer: CheckpointSigner::from_bytes(&[1; 32]),
        every_records: 1000,
        every: std::time::Duration::from_secs(86_400),
        log_head: Box::new(v1::LogDigestHead::default),
    };
    let (intruder, _writer) = Audit::start(js.clone(), hub.instance(), checkpoints)
        .await
        .expect("a second writer");
    intruder
        .record(AuditRecord {
            action: "intruder".into(),
            ..Default::default()
        })
        .await
        .expect("appended at the tail");
    let mut catalog = hub.catalog();
    let refused = catalog
        .list_datasets(v1::ListDatasetsRequest::default())
        .await
        .expect_err("the hub's append expected the old tail");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    catalog
        .list_datasets(v1::ListDatasetsRequest::default())
        .await
        .expect("the hub goes on from the new tail");
    let chain = read_chain(&js, hub.instance()).await.expect("chain");
    check_chain(hub.instance(), &chain).expect("still one whole chain");
    let actions: Vec<&str> = chain
        .iter()
        .flat_map(|b| &b.batch.records)
        .skip(want.len())
        .map(|r| r.action.as_str())
        .collect();
    assert_eq!(
        actions,
        ["intruder", "gov.hub.v1.CatalogService/ListDatasets"]
    );
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_commands_grant_decisions_and_reads_under_grants_are_recorded_and_accepted_commands_are_not()
 {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let hub = HubBuilder::on(&nats).start().await;

    // Accepted: on the event log, not in the audit log.
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("cm-1")))
        .await
        .expect("report")
        .into_inner();
    // Refused: who asks (no role), no identity, bad input.
    let refused = crate::cmd::resolve(&hub, "housing", "cm-r1", &reported.case_id)
        .await
        .expect_err("housing has no role");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = hub
        .commands()
        .report_case(incident("cm-2"))
        .await
        .expect_err("no identity");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut bad = incident("cm-3");
    bad.description = String::new();
    let refused = hub
        .commands()
        .report_case(from("urban-management", bad))
        .await
        .expect_err("bad input");
    assert_eq!(refused.code(), Code::InvalidArgument);
    // A grant asked for and approved: both recorded, with the grant.
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    let id = crate::sharing::grant(&hub, "cm-g1", &["name"], expires).await;
    let approved = crate::sharing::approve(&hub, "cm-ap1", &id).await;
    // A read under that grant: its record names the grant it relied on.
    let registered = crate::sharing::register(&hub, "cm-c1").await;
    hub.datasets()
        .read_dataset(hub_tests::fixtures::from_for(
            "public-security",
            &format!("grant:{id}"),
            read("care_roster", registered.max(approved)),
        ))
        .await
        .expect("read under the grant");

    // The registration reached both feeds (the owner's whole, the grantee's masked).
    crate::feeds::feed_reaches(&js, "FEED_CIVIL_AFFAIRS", registered).await;
    crate::feeds::feed_reaches(&js, "FEED_PUBLIC_SECURITY", registered).await;

    let chain = read_chain(&js, hub.instance()).await.expect("chain");
    check_chain(hub.instance(), &chain).expect("whole");
    // The feed publisher's records of those deliveries are made on its own schedule: checked
    // apart from the answers' records, whose order the test sets.
    let (delivered, records): (Vec<&AuditRecord>, Vec<&AuditRecord>) = chain
        .iter()
        .flat_map(|b| &b.batch.records)
        .partition(|r| r.action.starts_with("PUBLISH "));
    let mut delivered: Vec<_> = delivered
        .iter()
        .map(|r| (summary(r), r.position, r.grants.clone()))
        .collect();
    delivered.sort();
    let fed = |stream: &str, department: &str, grants: Vec<String>| {
        (
            (
                format!("PUBLISH {stream}"),
                department.to_owned(),
                "ok".to_owned(),
            ),
            registered,
            grants,
        )
    };
    assert_eq!(
        delivered,
        [
            fed("FEED_CIVIL_AFFAIRS", "civil-affairs", Vec::new()),
            fed("FEED_PUBLIC_SECURITY", "public-security", vec![id.clone()]),
        ]
    );
    let got: Vec<_> = records.iter().map(|r| summary(r)).collect();
    let want: Vec<(String, String, String)> = [
        (
            "gov.hub.v1.CaseCommandService/ResolveCase",
            "housing",
            "permission_denied",
        ),
        (
            "gov.hub.v1.CaseCommandService/ReportCase",
            "",
            "unauthenticated",
        ),
        (
            "gov.hub.v1.CaseCommandService/ReportCase",
            "urban-management",
            "invalid_argument",
        ),
        (
            "gov.hub.v1.GrantCommandService/RequestGrant",
            "public-security",
            "ok",
        ),
        (
            "gov.hub.v1.GrantCommandService/ApproveGrant",
            "civil-affairs",
            "ok",
        ),
        (
            "gov.hub.v1.DatasetService/ReadDataset",
            "public-security",
            "ok",
        ),
    ]
    .iter()
    .map(|(a, d, o)| (a.to_string(), d.to_string(), o.to_string()))
    .collect();
    assert_eq!(got, want);
    assert_eq!(records[4].aggregate, format!("grant/{id}"));
    assert_eq!(records[4].position, approved);
    assert_eq!(records[3].aggregate, format!("grant/{id}"));
    assert_eq!(records[5].grants, vec![id.clone()]);
    assert_eq!(records[5].purpose, format!("grant:{id}"));
    assert_eq!(records[5].count, 1);
    hub.stop().await.expect("clean stop");
}
