//! Who asks is checked first: a department with no role on a case, a care record or a grant
//! gets the same answer whether it exists or not, whatever version it names, and before any
//! state comparison; the department with the role succeeds in the same setup.

use hub_api::v1;
use hub_tests::{Hub, HubBuilder, Nats};
use tonic::Status;

use crate::{cmd, events_in_log, from, incident};

/// A well-formed id that names nothing.
const MISSING: &str = "6f1c2b7e-0000-4000-8000-000000000000";

/// The (aggregate id, expected version) pairs a stranger tries: the existing aggregate with no
/// version, its own and a wrong one; a missing one with no version and a version; numbered.
fn calls(existing: &str, version: u64) -> impl Iterator<Item = (usize, (&str, Option<u64>))> {
    [
        (existing, None),
        (existing, Some(version)),
        (existing, Some(version + 5)),
        (MISSING, None),
        (MISSING, Some(version)),
    ]
    .into_iter()
    .enumerate()
}

/// (code, message) of every refusal, which must all be one.
fn one_answer(what: &str, refusals: Vec<Status>) -> (tonic::Code, String) {
    let answers: Vec<(tonic::Code, String)> = refusals
        .iter()
        .map(|s| (s.code(), s.message().to_owned()))
        .collect();
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "{what}: a stranger's answers differ: {answers:#?}"
    );
    assert_eq!(answers[0].0, tonic::Code::PermissionDenied, "{what}");
    answers[0].clone()
}

async fn accept_case(hub: &Hub, by: &str, rid: &str, id: &str, expected: Option<u64>) -> Status {
    cmd::accept(hub, by, rid, id, expected)
        .await
        .expect_err("a stranger's accept")
}

async fn accept_transfer(
    hub: &Hub,
    by: &str,
    rid: &str,
    id: &str,
    expected: Option<u64>,
) -> Status {
    let request = v1::AcceptCaseTransferRequest {
        request_id: rid.into(),
        case_id: id.into(),
        expected_version: expected,
    };
    hub.commands()
        .accept_case_transfer(from(by, request))
        .await
        .expect_err("a stranger's transfer answer")
}

async fn visit(
    hub: &Hub,
    by: &str,
    rid: &str,
    id: &str,
    expected: Option<u64>,
) -> Result<v1::CommandResult, Status> {
    let request = v1::LogCareVisitRequest {
        request_id: rid.into(),
        care_id: id.into(),
        expected_version: expected,
        visited_at: Some(prost_types::Timestamp {
            seconds: jiff::Timestamp::now().as_second() - 3600,
            nanos: 0,
        }),
        visitor: "CA-017".into(),
        notes: "身体状况稳定".into(),
    };
    hub.care()
        .log_care_visit(from(by, request))
        .await
        .map(|r| r.into_inner().result.expect("result"))
}

async fn approve(
    hub: &Hub,
    by: &str,
    rid: &str,
    id: &str,
    expected: Option<u64>,
) -> Result<v1::CommandResult, Status> {
    let request = v1::ApproveGrantRequest {
        request_id: rid.into(),
        grant_id: id.into(),
        expected_version: expected,
    };
    hub.grants()
        .approve_grant(from(by, request))
        .await
        .map(|r| r.into_inner().result.expect("result"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stranger_gets_one_answer_for_an_existing_and_a_missing_aggregate_of_every_type() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;

    // A case dispatched to urban management, with no transfer pending.
    let case = hub
        .commands()
        .report_case(from("urban-management", incident("w-1")))
        .await
        .expect("report")
        .into_inner();
    let dispatched = cmd::dispatch(
        &hub,
        "dcc-310104",
        "w-2",
        &case.case_id,
        "urban-management",
        None,
    )
    .await
    .expect("dispatch");
    // A care record of civil affairs.
    let care = hub
        .care()
        .register_care(from(
            "civil-affairs",
            v1::RegisterCareRequest {
                request_id: "w-3".into(),
                name: "张三".into(),
                identity_number: "11010519491231002X".into(),
                category: v1::CareCategory::ElderlyInHardship as i32,
                community_code: "310104001001".into(),
                risk_level: v1::RiskLevel::Medium as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    // A grant public security asked of civil affairs.
    let grant = hub
        .grants()
        .request_grant(from(
            "public-security",
            v1::RequestGrantRequest {
                request_id: "w-4".into(),
                dataset: "care_roster".into(),
                fields: vec!["community_code".into()],
                purpose: "joint visits 联合走访".into(),
                expires_at: Some(prost_types::Timestamp {
                    seconds: jiff::Timestamp::now().as_second() + 86_400,
                    nanos: 0,
                }),
            },
        ))
        .await
        .expect("request grant")
        .into_inner()
        .result
        .expect("result");
    let stored = events_in_log(&js).await;

    // Housing has no role on the case: its version, its existence and its state (no transfer
    // pending) make no difference to the answer.
    let mut refusals = Vec::new();
    for (n, (id, expected)) in calls(&case.case_id, dispatched.position) {
        refusals.push(accept_case(&hub, "housing", &format!("h-a-{n}"), id, expected).await);
        refusals.push(accept_transfer(&hub, "housing", &format!("h-t-{n}"), id, expected).await);
    }
    one_answer("case", refusals);

    // Urban management may not touch care records, existing or not.
    let mut refusals = Vec::new();
    for (n, (id, expected)) in calls(&care.id, care.position) {
        let refused = visit(&hub, "urban-management", &format!("u-v-{n}"), id, expected).await;
        refusals.push(refused.expect_err("not civil affairs"));
    }
    one_answer("care record", refusals);

    // Housing is neither the grant's requester nor the dataset's owner.
    let mut refusals = Vec::new();
    for (n, (id, expected)) in calls(&grant.id, grant.position) {
        let refused = approve(&hub, "housing", &format!("h-g-{n}"), id, expected).await;
        refusals.push(refused.expect_err("a stranger to the grant"));
    }
    one_answer("grant", refusals);
    assert_eq!(
        events_in_log(&js).await,
        stored,
        "no refusal stored anything"
    );

    // The departments with the role succeed in the same setup.
    cmd::accept(
        &hub,
        "urban-management",
        "ok-1",
        &case.case_id,
        Some(dispatched.position),
    )
    .await
    .expect("the holder accepts");
    visit(&hub, "civil-affairs", "ok-2", &care.id, Some(care.position))
        .await
        .expect("civil affairs visits");
    approve(
        &hub,
        "civil-affairs",
        "ok-3",
        &grant.id,
        Some(grant.position),
    )
    .await
    .expect("the owner approves");
    assert_eq!(events_in_log(&js).await, stored + 3);
}
