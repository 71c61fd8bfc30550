//! The auditors' access log and disclosure ledger: who read what, and which department
//! received which care record (by care id), under which grant and purpose, what in clear.

use hub_api::v1::{self, ListAccessRequest, ListDisclosuresRequest};
use hub_tests::{Hub, HubBuilder, Nats, fixtures};
use tonic::Code;

use crate::datasets::{read, rows_as};
use crate::feeds::feed_reaches;
use crate::sharing::{approve, asked};
use crate::{from, violated_field};
use hub_tests::fixtures::from_for;

const AUDITOR: &str = "discipline-inspection";
const READ: &str = "gov.hub.v1.DatasetService/ReadDataset";

async fn access(hub: &Hub, request: ListAccessRequest) -> v1::ListAccessResponse {
    hub.auditors()
        .list_access(from(AUDITOR, request))
        .await
        .expect("the auditor reads the access log")
        .into_inner()
}

async fn disclosures(hub: &Hub, request: ListDisclosuresRequest) -> v1::ListDisclosuresResponse {
    hub.auditors()
        .list_disclosures(from(AUDITOR, request))
        .await
        .expect("the auditor reads the ledger")
        .into_inner()
}

/// Civil affairs registers a person for care; the care id and position.
async fn register(hub: &Hub, rid: &str) -> (String, u64) {
    let result = hub
        .care()
        .register_care(from("civil-affairs", fixtures::care(rid)))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    (result.id, result.position)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_names_who_received_a_care_record_under_which_grant_and_the_log_who_was_refused()
{
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let hub = HubBuilder::on(&nats).start().await;
    let (care_id, registered_at) = register(&hub, "reg-1").await;
    let (other_id, at) = {
        let (id, p) = register(&hub, "reg-2").await;
        (id, p.max(registered_at))
    };
    // Civil affairs' own feed received both records whole before anyone read them.
    feed_reaches(&js, "FEED_CIVIL_AFFAIRS", at).await;
    let until = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .expect("time");
    let grant = asked(&hub, "g-1", &["name"], until).await.id;
    let at = approve(&hub, "a-1", &grant).await.max(at);

    // Civil affairs reads its own roster (every field in clear); public security reads it under
    // the grant, naming it (name in clear, the rest masked); housing, with no grant, is refused.
    rows_as(&hub, Some("civil-affairs"), read("care_roster", at))
        .await
        .expect("the owner reads");
    let purpose = format!("grant:{grant}");
    hub.datasets()
        .read_dataset(from_for(
            "public-security",
            &purpose,
            read("care_roster", at),
        ))
        .await
        .expect("read under the grant");
    let refused = rows_as(&hub, Some("housing"), read("care_roster", at))
        .await
        .expect_err("no grant");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Only auditors ask, in the same setup as the auditor's answers below.
    let public = hub
        .auditors()
        .list_disclosures(fixtures::acting(
            fixtures::PURPOSE,
            ListDisclosuresRequest::default(),
        ))
        .await
        .expect_err("the public");
    assert_eq!(public.code(), Code::Unauthenticated);
    let department = hub
        .auditors()
        .list_access(from("civil-affairs", ListAccessRequest::default()))
        .await
        .expect_err("a department");
    assert_eq!(department.code(), Code::PermissionDenied);

    // Who received the first person's record: civil affairs in its feed and by reading its
    // roster, with everything in clear; public security with the name only, under its grant
    // and the purpose that named it.
    let ledger = disclosures(
        &hub,
        ListDisclosuresRequest {
            care_id: care_id.clone(),
            ..Default::default()
        },
    )
    .await;
    let got: Vec<(&str, &str, Vec<&str>)> = ledger
        .disclosures
        .iter()
        .map(|d| {
            (
                d.department.as_str(),
                d.purpose.as_str(),
                d.clear_fields.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    assert_eq!(got.len(), 3, "{ledger:?}");
    let fed = &ledger.disclosures[0];
    assert_eq!(fed.action, "PUBLISH FEED_CIVIL_AFFAIRS", "{ledger:?}");
    assert_eq!(fed.position, registered_at);
    assert!(!fed.event_id.is_empty());
    assert!(fed.grants.is_empty(), "its own record");
    for owner in &got[..2] {
        assert_eq!(owner.0, "civil-affairs");
        assert!(owner.2.contains(&"identity_number"), "{got:?}");
    }
    assert_eq!(
        got[2],
        ("public-security", purpose.as_str(), vec!["name"]),
        "{ledger:?}"
    );
    assert_eq!(ledger.disclosures[2].grants, std::slice::from_ref(&grant));
    assert!(ledger.disclosures.iter().all(|d| d.care_id == care_id));
    assert!(ledger.disclosures[1..].iter().all(|d| d.action == READ));
    // The other person was disclosed by the same reads; by department, public security
    // received both.
    let by_department = disclosures(
        &hub,
        ListDisclosuresRequest {
            department: "public-security".into(),
            ..Default::default()
        },
    )
    .await;
    let mut ids: Vec<&str> = by_department
        .disclosures
        .iter()
        .map(|d| d.care_id.as_str())
        .collect();
    ids.sort();
    let mut expected = vec![care_id.as_str(), other_id.as_str()];
    expected.sort();
    assert_eq!(ids, expected);

    // The refusal is in the access log, not in the ledger.
    let housing = access(
        &hub,
        ListAccessRequest {
            department: "housing".into(),
            dataset: "care_roster".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(housing.entries.len(), 1, "{housing:?}");
    let record = housing.entries[0].record.as_ref().expect("record");
    assert_eq!(record.outcome, "permission_denied");
    assert!(record.persons.is_empty());

    // The auditor's own questions are in the log too, refusals of others' included.
    let auditors = access(
        &hub,
        ListAccessRequest {
            department: AUDITOR.into(),
            ..Default::default()
        },
    )
    .await;
    let actions: Vec<&str> = auditors
        .entries
        .iter()
        .map(|e| e.record.as_ref().expect("record").action.as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "gov.hub.v1.AuditService/ListDisclosures",
            "gov.hub.v1.AuditService/ListDisclosures",
            "gov.hub.v1.AuditService/ListAccess",
        ]
    );
    // The access log by person concerned: the two roster reads that carried the record (no
    // refusal, which carried nothing), and the auditor's ledger query naming it.
    let concerning = access(
        &hub,
        ListAccessRequest {
            care_id: care_id.clone(),
            ..Default::default()
        },
    )
    .await;
    let departments: Vec<&str> = concerning
        .entries
        .iter()
        .map(|e| e.record.as_ref().expect("record").department.as_str())
        .collect();
    assert_eq!(
        departments,
        [
            "civil-affairs",
            "civil-affairs",
            "public-security",
            "discipline-inspection"
        ]
    );

    // Each refused call of the audit service left exactly one record.
    let refusals = |entries: &[v1::AccessEntry], outcome: &str| {
        entries
            .iter()
            .filter_map(|e| e.record.as_ref())
            .filter(|r| r.action.starts_with("gov.hub.v1.AuditService/") && r.outcome == outcome)
            .count()
    };
    let civil = access(
        &hub,
        ListAccessRequest {
            department: "civil-affairs".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refusals(&civil.entries, "permission_denied"), 1);
    let public = access(
        &hub,
        ListAccessRequest {
            department: "public".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refusals(&public.entries, "unauthenticated"), 1);

    // An auditor reading the record's history received it too (masked): the ledger says so.
    hub.auditors()
        .get_history(from(
            AUDITOR,
            v1::GetHistoryRequest {
                aggregate: format!("care/{care_id}"),
                ..Default::default()
            },
        ))
        .await
        .expect("history");
    let ledger = disclosures(
        &hub,
        ListDisclosuresRequest {
            care_id: care_id.clone(),
            ..Default::default()
        },
    )
    .await;
    let last = ledger.disclosures.last().expect("a disclosure");
    assert_eq!(ledger.disclosures.len(), 4, "{ledger:?}");
    assert_eq!(last.department, AUDITOR);
    assert!(last.clear_fields.is_empty(), "masked: {last:?}");
    let anonymous = access(
        &hub,
        ListAccessRequest {
            department: "public".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(
        anonymous
            .entries
            .iter()
            .any(|e| e.record.as_ref().expect("record").outcome == "unauthenticated"),
        "{anonymous:?}"
    );

    // A person registered once the grant is in force reaches public security's feed masked,
    // the name in clear: the ledger names the grant, the event and its position.
    let (third, third_at) = register(&hub, "reg-3").await;
    feed_reaches(&js, "FEED_PUBLIC_SECURITY", third_at).await;
    let ledger = disclosures(
        &hub,
        ListDisclosuresRequest {
            care_id: third.clone(),
            ..Default::default()
        },
    )
    .await;
    let mut fed: Vec<&v1::Disclosure> = ledger.disclosures.iter().collect();
    fed.sort_by(|a, b| a.department.cmp(&b.department));
    assert_eq!(fed.len(), 2, "{ledger:?}");
    let (owner, grantee) = (fed[0], fed[1]);
    assert_eq!(
        (owner.department.as_str(), owner.action.as_str()),
        ("civil-affairs", "PUBLISH FEED_CIVIL_AFFAIRS")
    );
    assert_eq!(
        owner.clear_fields.len(),
        6,
        "every personal field: {owner:?}"
    );
    assert_eq!(
        (grantee.department.as_str(), grantee.action.as_str()),
        ("public-security", "PUBLISH FEED_PUBLIC_SECURITY")
    );
    assert_eq!(grantee.clear_fields, ["name"]);
    assert_eq!(grantee.grants, std::slice::from_ref(&grant));
    assert_eq!(
        grantee.purpose, purpose,
        "the grant's, named as a read names it"
    );
    assert!(owner.purpose.is_empty());
    assert_eq!(grantee.event_id, owner.event_id);
    assert_eq!((grantee.position, owner.position), (third_at, third_at));
    // Housing, with no grant, received nothing of it.
    let housing = disclosures(
        &hub,
        ListDisclosuresRequest {
            department: "housing".into(),
            ..Default::default()
        },
    )
    .await;
    assert!(housing.disclosures.is_empty(), "{housing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_pages_with_stable_cursors_and_refuses_bad_queries_by_field() {
    let hub = HubBuilder::dev().start().await;
    for _ in 0..5 {
        hub.datasets()
            .read_dataset(read("incident_stats", 0))
            .await
            .expect("open data");
    }
    let page = |token: String| ListAccessRequest {
        department: "public".into(),
        dataset: "incident_stats".into(),
        page_size: 2,
        page_token: token,
        ..Default::default()
    };
    let mut walked = Vec::new();
    let mut token = String::new();
    let mut tokens = Vec::new();
    loop {
        let answer = access(&hub, page(token.clone())).await;
        assert!(answer.entries.len() <= 2);
        walked.extend(answer.entries.iter().map(|e| (e.sequence, e.index)));
        if answer.next_page_token.is_empty() {
            break;
        }
        tokens.push(answer.next_page_token.clone());
        token = answer.next_page_token;
    }
    assert_eq!(walked.len(), 5, "{walked:?}");
    assert!(
        walked.windows(2).all(|w| w[0] < w[1]),
        "in order, no repeats"
    );
    // The same token gives the same page again, though the log grew since.
    let again = access(&hub, page(tokens[0].clone())).await;
    let again: Vec<(u64, u32)> = again
        .entries
        .iter()
        .map(|e| (e.sequence, e.index))
        .collect();
    assert_eq!(again, walked[2..4]);
    // A token goes on only with the query that gave it (a page size of its own is fine).
    let wider = access(
        &hub,
        ListAccessRequest {
            page_size: 3,
            ..page(tokens[0].clone())
        },
    )
    .await;
    assert_eq!(wider.entries.len(), 3, "{wider:?}");
    let refused = hub
        .auditors()
        .list_access(from(
            AUDITOR,
            ListAccessRequest {
                dataset: "care_roster".into(),
                ..page(tokens[0].clone())
            },
        ))
        .await
        .expect_err("another query's token");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(violated_field(&refused), "page_token");
    let refused = hub
        .auditors()
        .list_disclosures(from(
            AUDITOR,
            ListDisclosuresRequest {
                page_token: tokens[0].clone(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("another call's token");
    assert_eq!(violated_field(&refused), "page_token");

    // A time range after everything: nothing.
    let later = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .expect("time");
    let none = access(
        &hub,
        ListAccessRequest {
            from: Some(prost_types::Timestamp {
                seconds: later.as_second(),
                nanos: 0,
            }),
            ..Default::default()
        },
    )
    .await;
    assert!(none.entries.is_empty());

    // Bad queries, each named by its field (and nothing echoed back).
    for (request, field) in [
        (
            ListAccessRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            ListAccessRequest {
                aggregate: "person/110105194912310021".into(),
                ..Default::default()
            },
            "aggregate",
        ),
        (
            ListAccessRequest {
                department: "No Such Unit!".into(),
                ..Default::default()
            },
            "department",
        ),
        (
            ListAccessRequest {
                page_token: "0.3".into(),
                ..Default::default()
            },
            "page_token",
        ),
        (
            ListAccessRequest {
                care_id: "110105194912310021 ".into(),
                ..Default::default()
            },
            "care_id",
        ),
        (
            ListAccessRequest {
                from: Some(prost_types::Timestamp {
                    seconds: later.as_second(),
                    nanos: 0,
                }),
                to: Some(prost_types::Timestamp {
                    seconds: later.as_second() - 10,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "to",
        ),
    ] {
        let refused = hub
            .auditors()
            .list_access(from(AUDITOR, request))
            .await
            .expect_err("a bad query");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&refused), field);
        assert!(!refused.message().contains("110105194912310021"));
    }
    // The ledger refuses a malformed care id, and a time that is not one.
    for (request, field) in [
        (
            ListDisclosuresRequest {
                care_id: "110105194912310021 ".into(),
                ..Default::default()
            },
            "care_id",
        ),
        (
            ListDisclosuresRequest {
                to: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..Default::default()
            },
            "to",
        ),
    ] {
        let refused = hub
            .auditors()
            .list_disclosures(from(AUDITOR, request))
            .await
            .expect_err("a bad query");
        assert_eq!(refused.code(), Code::InvalidArgument);
        assert_eq!(violated_field(&refused), field);
        assert!(!refused.message().contains("110105194912310021"));
    }
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_halts_with_an_alarm_when_the_audit_log_is_created_again() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let hub = HubBuilder::on(&nats).data_dir(dir.path()).start().await;
    let (care_id, at) = register(&hub, "reg-h").await;
    feed_reaches(&js, "FEED_CIVIL_AFFAIRS", at).await;
    let by_care = || ListDisclosuresRequest {
        care_id: care_id.clone(),
        ..Default::default()
    };
    // Following its own log, the ledger answers: the owner's feed received the record.
    let before = disclosures(&hub, by_care()).await;
    assert_eq!(before.disclosures.len(), 1, "{before:?}");
    hub.stop().await.expect("clean stop");

    // The audit log deleted and created again: the ledger keeps what it holds, halts, and
    // raises an alarm; the ledger's queries are refused, the access log (read from the new
    // log itself) still answers.
    js.delete_stream("GOV_AUDIT")
        .await
        .expect("delete GOV_AUDIT");
    let hub = HubBuilder::on(&nats).data_dir(dir.path()).start().await;
    let key = "audit/disclosure-ledger";
    let mut raised = hub.alarms().subscribe();
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        while !hub.alarms().list().iter().any(|(k, _)| k == key) {
            raised.changed().await.expect("alarms");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no alarm {key}"));
    let refused = hub
        .auditors()
        .list_disclosures(from(AUDITOR, by_care()))
        .await
        .expect_err("the ledger has halted");
    assert_eq!(refused.code(), Code::Unavailable);
    assert!(refused.message().contains("halted"), "{refused:?}");
    let log = access(&hub, ListAccessRequest::default()).await;
    assert!(
        log.entries
            .iter()
            .any(|e| e.record.as_ref().expect("record").outcome == "unavailable"),
        "the refusal is recorded in the new log: {log:?}"
    );
    hub.stop().await.expect("clean stop");
}
