//! Auditors read an aggregate's history and its state as of a position or a time: only
//! auditors, every event in order with its envelope, care records masked, and the as-of state
//! always the state the read model showed at that position.

use hub_api::v1::{
    self, GetHistoryRequest, GetHistoryResponse, GetStateAsOfRequest, GetStateAsOfResponse,
    HistoryEvent, get_state_as_of_request::AsOf,
};
use hub_tests::{Hub, HubBuilder, Nats, fixtures};
use prost::Message;
use tonic::Code;

use crate::cmd::*;
use crate::{from, incident, violated_field};

const AUDITOR: &str = "discipline-inspection";
const NOBODY: &str = "case/00000000-0000-0000-0000-000000000000";

pub(crate) fn history(aggregate: &str, page_size: u32, page_token: &str) -> GetHistoryRequest {
    GetHistoryRequest {
        aggregate: aggregate.into(),
        page_size,
        page_token: page_token.into(),
    }
}

fn as_of(aggregate: &str, at: AsOf) -> GetStateAsOfRequest {
    GetStateAsOfRequest {
        aggregate: aggregate.into(),
        as_of: Some(at),
    }
}

/// One page of history, as the auditor reads it.
async fn page(hub: &Hub, aggregate: &str, page_size: u32, token: &str) -> GetHistoryResponse {
    hub.auditors()
        .get_history(from(AUDITOR, history(aggregate, page_size, token)))
        .await
        .unwrap_or_else(|s| panic!("history of {aggregate} from {token:?}: {s:?}"))
        .into_inner()
}

/// Every event of the aggregate, in one page.
pub(crate) async fn all_events(hub: &Hub, aggregate: &str) -> Vec<HistoryEvent> {
    let answer = page(hub, aggregate, 500, "").await;
    assert_eq!(answer.next_page_token, "", "one page holds them all");
    answer.events
}

pub(crate) async fn state(hub: &Hub, aggregate: &str, at: AsOf) -> GetStateAsOfResponse {
    let asked = format!("{at:?}");
    hub.auditors()
        .get_state_as_of(from(AUDITOR, as_of(aggregate, at)))
        .await
        .unwrap_or_else(|s| panic!("state of {aggregate} as of {asked}: {s:?}"))
        .into_inner()
}

/// The body of a history event, decoded as `M` after checking that its type URL names `M`.
fn body<M: Message + Default>(event: &HistoryEvent, message: &str) -> M {
    let any = event
        .body
        .as_ref()
        .unwrap_or_else(|| panic!("event at {} has a body", event.position));
    assert_eq!(
        any.type_url,
        format!("type.googleapis.com/gov.hub.v1.{message}")
    );
    M::decode(any.value.as_slice()).expect("the body decodes as its type URL says")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_auditors_read_histories_and_states_and_a_malformed_aggregate_is_refused() {
    let hub = HubBuilder::dev().start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("only-1")))
        .await
        .expect("report")
        .into_inner();
    let aggregate = format!("case/{}", reported.case_id);
    let mut auditors = hub.auditors();

    let public = auditors
        .get_history(fixtures::acting(
            fixtures::PURPOSE,
            history(&aggregate, 0, ""),
        ))
        .await
        .expect_err("the public reads no history");
    assert_eq!(public.code(), Code::Unauthenticated, "{public:?}");
    let department = auditors
        .get_history(from("civil-affairs", history(&aggregate, 0, "")))
        .await
        .expect_err("a department reads no history");
    assert_eq!(department.code(), Code::PermissionDenied, "{department:?}");
    let answer = auditors
        .get_history(from(AUDITOR, history(&aggregate, 0, "")))
        .await
        .expect("an auditor reads the history")
        .into_inner();
    assert_eq!(answer.events.len(), 1);
    assert_eq!(answer.events[0].position, reported.position);

    let at = || as_of(&aggregate, AsOf::Position(reported.position));
    let public = auditors
        .get_state_as_of(fixtures::acting(fixtures::PURPOSE, at()))
        .await
        .expect_err("the public reads no state");
    assert_eq!(public.code(), Code::Unauthenticated, "{public:?}");
    let department = auditors
        .get_state_as_of(from("urban-management", at()))
        .await
        .expect_err("a department reads no state, not even of its own case");
    assert_eq!(department.code(), Code::PermissionDenied, "{department:?}");
    let answer = auditors
        .get_state_as_of(from("audit-bureau", at()))
        .await
        .expect("another auditor reads the state")
        .into_inner();
    assert!(answer.exists);
    assert_eq!((answer.position, answer.events), (reported.position, 1));

    // Malformed requests name the field and never repeat its text.
    for bad in ["person/11010519491231002X", "case/", "case", "case/a b", ""] {
        let status = auditors
            .get_history(from(AUDITOR, history(bad, 0, "")))
            .await
            .expect_err("a malformed aggregate");
        assert_eq!(violated_field(&status), "aggregate", "{bad:?}");
        assert!(
            !format!("{status:?}").contains("11010519491231002X"),
            "not echoed: {status:?}"
        );
        let status = auditors
            .get_state_as_of(from(AUDITOR, as_of(bad, AsOf::Position(1))))
            .await
            .expect_err("a malformed aggregate");
        assert_eq!(violated_field(&status), "aggregate", "{bad:?}");
    }
    let status = auditors
        .get_state_as_of(from(
            AUDITOR,
            GetStateAsOfRequest {
                aggregate: aggregate.clone(),
                as_of: None,
            },
        ))
        .await
        .expect_err("no as_of");
    assert_eq!(violated_field(&status), "as_of");
    let status = auditors
        .get_state_as_of(from(
            AUDITOR,
            as_of(
                &aggregate,
                AsOf::Time(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 2_000_000_000,
                }),
            ),
        ))
        .await
        .expect_err("not a timestamp");
    assert_eq!(violated_field(&status), "time");
    for token in ["abc", "0", "-1", "017"] {
        let status = auditors
            .get_history(from(AUDITOR, history(&aggregate, 0, token)))
            .await
            .expect_err("not a token");
        assert_eq!(violated_field(&status), "page_token", "{token}");
    }
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cases_history_shows_every_event_in_order_and_pages_stably() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let h = &hub;
    let reported = h
        .commands()
        .report_case(from("urban-management", incident("hist-1")))
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
    // Another case's event between this one's: a history holds only its aggregate's.
    let other = h
        .commands()
        .report_case(from("urban-management", incident("hist-2")))
        .await
        .expect("another report")
        .into_inner();
    let t = transfer(h, "urban-management", "t-1", id, "housing")
        .await
        .expect("transfer");
    let m = accept_transfer(h, "housing", "t-1-yes", id)
        .await
        .expect("transfer accepted");
    let r = resolve(h, "housing", "r-1", id).await.expect("resolve");

    let aggregate = format!("case/{id}");
    let events = all_events(h, &aggregate).await;
    // (position, event ids, type, request id, issuing department, owner after the event)
    let expected = [
        (
            reported.position,
            &reported.event_ids,
            "reported",
            "hist-1",
            "urban-management",
            "dcc-310104",
        ),
        (
            d.position,
            &d.event_ids,
            "dispatched",
            "d-1",
            "dcc-310104",
            "urban-management",
        ),
        (
            a.position,
            &a.event_ids,
            "accepted",
            "a-1",
            "urban-management",
            "urban-management",
        ),
        (
            t.position,
            &t.event_ids,
            "transfer_requested",
            "t-1",
            "urban-management",
            "urban-management",
        ),
        (
            m.position,
            &m.event_ids,
            "transfer_accepted",
            "t-1-yes",
            "housing",
            "housing",
        ),
        (
            r.position,
            &r.event_ids,
            "resolved",
            "r-1",
            "housing",
            "housing",
        ),
    ];
    assert_eq!(events.len(), expected.len(), "{events:#?}");
    for (event, (position, ids, kind, rid, by, owner)) in events.iter().zip(expected) {
        assert_eq!(event.position, position);
        assert_eq!(std::slice::from_ref(&event.event_id), ids.as_slice());
        let version = if kind == "reported" { 2 } else { 1 };
        assert_eq!(event.event_type, format!("gov.hub.case.{kind}.v{version}"));
        assert_eq!(event.request_id, rid);
        assert_eq!(event.source, format!("/departments/{by}"));
        assert_eq!(event.department, owner, "owner after {kind}");
        assert_eq!(event.acting_person, fixtures::ACTING_PERSON);
        assert_eq!(event.schema_version, version);
        assert_eq!(
            (
                event.stored_event_type.as_str(),
                event.stored_schema_version
            ),
            ("", 0),
            "stored as read"
        );
        assert!(event.masked.is_empty() && event.withheld.is_empty());
        let stored = event.stored_at.expect("stored_at");
        let time = event.time.expect("time");
        assert!(
            (stored.seconds, stored.nanos) >= (time.seconds, time.nanos),
            "stored no earlier than decided: {event:?}"
        );
    }
    assert!(
        events.windows(2).all(|w| {
            let (a, b) = (
                w[0].stored_at.expect("stored"),
                w[1].stored_at.expect("stored"),
            );
            (a.seconds, a.nanos) < (b.seconds, b.nanos)
        }),
        "stored in order"
    );
    assert!(!events.iter().any(|e| e.position == other.position));

    let report: v1::CaseReported = body(&events[0], "CaseReported");
    assert_eq!(report.case_id, id);
    assert_eq!(report.description, incident("x").description);
    assert_eq!(report.dispatch_unit, "dcc-310104");
    let dispatched: v1::CaseDispatched = body(&events[1], "CaseDispatched");
    assert_eq!(
        (
            dispatched.department.as_str(),
            dispatched.dispatched_by.as_str()
        ),
        ("urban-management", "dcc-310104")
    );
    let accepted: v1::CaseAccepted = body(&events[2], "CaseAccepted");
    assert_eq!(accepted.department, "urban-management");
    let asked: v1::CaseTransferRequested = body(&events[3], "CaseTransferRequested");
    assert_eq!(
        (asked.from_department.as_str(), asked.to_department.as_str()),
        ("urban-management", "housing")
    );
    let moved: v1::CaseTransferAccepted = body(&events[4], "CaseTransferAccepted");
    assert_eq!(
        (moved.from_department.as_str(), moved.to_department.as_str()),
        ("urban-management", "housing")
    );
    let resolved: v1::CaseResolved = body(&events[5], "CaseResolved");
    assert_eq!(
        (resolved.case_id.as_str(), resolved.department.as_str()),
        (id, "housing")
    );
    assert_eq!(resolved.outcome, "通道已清理 cleared");

    // Pages of two walk the same events; the same tokens give the same pages again.
    let mut walked = Vec::new();
    let mut tokens = vec![String::new()];
    let mut pages = Vec::new();
    loop {
        let token = tokens.last().expect("a token").clone();
        let answer = page(h, &aggregate, 2, &token).await;
        assert!(answer.events.len() <= 2);
        walked.extend(answer.events.clone());
        let next = answer.next_page_token.clone();
        pages.push(answer);
        if next.is_empty() {
            break;
        }
        tokens.push(next);
    }
    assert_eq!(walked, events, "the pages hold every event once, in order");
    assert_eq!(pages.len(), 3);
    assert_eq!(tokens[1], d.position.to_string());
    for (token, first) in tokens.iter().zip(&pages) {
        assert_eq!(&page(h, &aggregate, 2, token).await, first, "{token:?}");
    }
    // A position that is not one of this case's events is no token for it.
    let status = h
        .auditors()
        .get_history(from(
            AUDITOR,
            history(&aggregate, 2, &other.position.to_string()),
        ))
        .await
        .expect_err("another case's position");
    assert_eq!(violated_field(&status), "page_token");

    // An aggregate without events: an empty page, not NOT_FOUND.
    let empty = page(h, NOBODY, 0, "").await;
    assert_eq!(empty, GetHistoryResponse::default());
    let never = state(h, NOBODY, AsOf::Position(r.position)).await;
    assert_eq!(never, GetStateAsOfResponse::default());
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_care_records_history_never_shows_personal_fields_in_clear() {
    const NAME: &str = "张三丰";
    const IDENTITY: &str = "11010519491231002X";
    const PHONE: &str = "13812345678";
    const ADDRESS: &str = "漕溪北路88弄3号";
    let hub = HubBuilder::dev().start().await;
    let registered = hub
        .care()
        .register_care(from(
            "civil-affairs",
            v1::RegisterCareRequest {
                request_id: "care-1".into(),
                name: NAME.into(),
                identity_number: IDENTITY.into(),
                category: v1::CareCategory::ElderlyInHardship as i32,
                community_code: "310104001001".into(),
                risk_level: v1::RiskLevel::Medium as i32,
                phone: PHONE.into(),
                address: ADDRESS.into(),
            },
        ))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    let visited = hub
        .care()
        .log_care_visit(from(
            "civil-affairs",
            v1::LogCareVisitRequest {
                request_id: "visit-1".into(),
                care_id: registered.id.clone(),
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

    let aggregate = format!("care/{}", registered.id);
    let events = all_events(&hub, &aggregate).await;
    assert_eq!(
        events.iter().map(|e| e.position).collect::<Vec<_>>(),
        [registered.position, visited.position]
    );
    let secrets = [NAME, IDENTITY, PHONE, ADDRESS, "身体状况稳定"];
    for event in &events {
        let raw = &event.body.as_ref().expect("a masked body").value;
        for secret in secrets {
            assert!(
                !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in clear in the body at {}",
                event.position
            );
            assert!(
                !format!("{event:?}").contains(secret),
                "{secret} in {event:?}"
            );
        }
    }
    let person: v1::CareRegistered = body(&events[0], "CareRegistered");
    assert_eq!(person.care_id, registered.id);
    for (field, value, secret) in [
        ("name", &person.name, NAME),
        ("identity_number", &person.identity_number, IDENTITY),
        ("phone", &person.phone, PHONE),
        ("address", &person.address, ADDRESS),
    ] {
        assert!(!value.is_empty(), "{field} is shown masked, not dropped");
        assert!(!value.contains(secret), "{field}: {value}");
        assert!(
            events[0].masked.iter().any(|m| m == field),
            "{field} listed as masked: {:?}",
            events[0].masked
        );
    }
    assert_eq!(person.community_code, "310104001001");
    let visit: v1::CareVisitLogged = body(&events[1], "CareVisitLogged");
    assert_eq!(visit.notes, "");
    assert!(events[1].withheld.iter().any(|w| w == "notes"));

    // The state holds no personal field either.
    let now = state(&hub, &aggregate, AsOf::Position(visited.position)).await;
    assert!(now.exists);
    assert_eq!((now.position, now.events), (visited.position, 2));
    for secret in secrets {
        assert!(!now.state_json.contains(secret), "{}", now.state_json);
    }
    let json: serde_json::Value = serde_json::from_str(&now.state_json).expect("json");
    assert_eq!(json["visits"], 1);
    // Its category and risk level are sensitive: left out, and said so.
    assert!(
        json.get("category").is_none() && json.get("risk_level").is_none(),
        "{json}"
    );
    assert_eq!(now.withheld, ["category", "risk_level"]);
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_hub_cannot_read_is_shown_without_a_body_and_stops_the_as_of_fold() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("raw-1")))
        .await
        .expect("report")
        .into_inner();
    // Another writer's message on the case's subject, without the envelope the hub writes.
    let js = nats.jetstream().await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("ce-type", "gov.hub.case.merged.v2");
    let raw = js
        .publish_with_headers(
            format!("gov.events.case.{}", reported.case_id),
            headers,
            bytes::Bytes::from_static(b"\x0a\x05secret"),
        )
        .await
        .expect("publish")
        .await
        .expect("stored")
        .sequence;

    let aggregate = format!("case/{}", reported.case_id);
    let events = all_events(&hub, &aggregate).await;
    assert_eq!(events.len(), 2);
    let unreadable = &events[1];
    assert_eq!(
        (
            unreadable.position,
            unreadable.event_type.as_str(),
            unreadable.body.as_ref(),
            unreadable.withheld.as_slice()
        ),
        (
            raw,
            "gov.hub.case.merged.v2",
            None,
            ["body".to_owned()].as_slice()
        )
    );
    assert!(unreadable.stored_at.is_some());

    // Up to the report the state is told; from the unreadable message on it is not, and the
    // refusal says where.
    let before = state(&hub, &aggregate, AsOf::Position(raw - 1)).await;
    assert_eq!((before.exists, before.position), (true, reported.position));
    let status = hub
        .auditors()
        .get_state_as_of(from(AUDITOR, as_of(&aggregate, AsOf::Position(raw))))
        .await
        .expect_err("a state past an unreadable event");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().contains(&format!("position {raw}")),
        "{status:?}"
    );
    assert!(!status.message().contains("secret"), "{status:?}");
    hub.stop().await.expect("clean stop");
}
