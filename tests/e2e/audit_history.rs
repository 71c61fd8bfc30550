//! Auditors read an aggregate's history and its state as of a position or a time: only
//! auditors, every event in order with its envelope, care records masked, and the as-of state
//! always the state the read model showed at that position.

use std::collections::BTreeMap;

use hub_api::v1::{
    self, CaseStatus, GetHistoryRequest, GetHistoryResponse, GetStateAsOfRequest,
    GetStateAsOfResponse, HistoryEvent, get_state_as_of_request::AsOf,
};
use hub_tests::{Hub, HubBuilder, Nats, fixtures};
use prost::Message;
use tonic::Code;

use crate::cmd::*;
use crate::{from, incident, read_case, violated_field};

const AUDITOR: &str = "discipline-inspection";
const NOBODY: &str = "case/00000000-0000-0000-0000-000000000000";

fn history(aggregate: &str, page_size: u32, page_token: &str) -> GetHistoryRequest {
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
async fn all_events(hub: &Hub, aggregate: &str) -> Vec<HistoryEvent> {
    let answer = page(hub, aggregate, 500, "").await;
    assert_eq!(answer.next_page_token, "", "one page holds them all");
    answer.events
}

async fn state(hub: &Hub, aggregate: &str, at: AsOf) -> GetStateAsOfResponse {
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

/// A small deterministic generator (xorshift64*), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// What the test knows of a case, to choose a command that is valid next.
#[derive(Debug, Clone)]
struct Model {
    id: String,
    status: CaseStatus,
    holder: &'static str,
    pending: Option<&'static str>,
}

const HOLDERS: [&str; 2] = ["urban-management", "housing"];

fn other_than(department: &str) -> &'static str {
    if department == HOLDERS[0] {
        HOLDERS[1]
    } else {
        HOLDERS[0]
    }
}

/// One valid next command for `case`, chosen by `rng`; runs it and returns its result and
/// how many events it appended. `None` when the case takes no more commands.
async fn step(hub: &Hub, rng: &mut Rng, case: &mut Model, rid: &str) -> Option<(u64, u64)> {
    let id = case.id.clone();
    let id = id.as_str();
    let accepted = |outcome: Outcome| outcome.unwrap_or_else(|s| panic!("{rid}: {s:?}"));
    let (result, events) = match (case.status, case.pending) {
        (CaseStatus::Reported, _) => {
            let to = HOLDERS[rng.below(2)];
            let r = dispatch(hub, "dcc-310104", rid, id, to, None).await;
            (case.status, case.holder) = (CaseStatus::Dispatched, to);
            (accepted(r), 1)
        }
        (CaseStatus::Dispatched | CaseStatus::Accepted, Some(to)) => {
            if rng.below(2) == 0 {
                let r = accept_transfer(hub, to, rid, id).await;
                (case.status, case.holder) = (CaseStatus::Accepted, to);
                case.pending = None;
                (accepted(r), 1)
            } else {
                let r = reject_transfer(hub, to, rid, id).await;
                case.pending = None;
                (accepted(r), 1)
            }
        }
        (CaseStatus::Dispatched, None) => {
            if rng.below(3) == 0 {
                let to = other_than(case.holder);
                let r = transfer(hub, case.holder, rid, id, to).await;
                case.pending = Some(to);
                (accepted(r), 1)
            } else {
                let r = accept(hub, case.holder, rid, id, None).await;
                case.status = CaseStatus::Accepted;
                (accepted(r), 1)
            }
        }
        (CaseStatus::Accepted, None) => {
            if rng.below(3) == 0 {
                let to = other_than(case.holder);
                let r = transfer(hub, case.holder, rid, id, to).await;
                case.pending = Some(to);
                (accepted(r), 1)
            } else {
                let r = resolve(hub, case.holder, rid, id).await;
                case.status = CaseStatus::Resolved;
                (accepted(r), 1)
            }
        }
        (CaseStatus::Resolved, _) => {
            let rating = 1 + rng.below(5) as u32;
            let r = rate(hub, "urban-management", rid, id, rating).await;
            if rating <= 2 {
                case.status = CaseStatus::Accepted;
                (accepted(r), 2)
            } else {
                case.status = CaseStatus::Rated;
                (accepted(r), 1)
            }
        }
        (CaseStatus::Rated, _) => {
            let r = close(hub, "dcc-310104", rid, id).await;
            case.status = CaseStatus::Closed;
            (accepted(r), 1)
        }
        _ => return None,
    };
    Some((result.position, events))
}

/// The domain's status name in a state's JSON, as the proto enum.
fn status_of(json: &serde_json::Value) -> i32 {
    let status = match json["status"].as_str().expect("a status") {
        "Reported" => CaseStatus::Reported,
        "Dispatched" => CaseStatus::Dispatched,
        "Accepted" => CaseStatus::Accepted,
        "Resolved" => CaseStatus::Resolved,
        "Rated" => CaseStatus::Rated,
        "Closed" => CaseStatus::Closed,
        other => panic!("unknown status {other}"),
    };
    status as i32
}

/// What the read model showed of a case at one position, and how many of its events it had.
struct Seen {
    case_id: String,
    position: u64,
    events: u64,
    view: v1::CaseView,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_as_of_any_position_or_its_stored_time_is_what_the_read_model_showed_then() {
    let hub = HubBuilder::dev().start().await;
    for seed in [0x5eed_0001_u64, 0x5eed_0002] {
        let mut rng = Rng(seed);
        let mut cases = Vec::new();
        let mut seen = Vec::new();
        for n in 0..3 {
            let rid = format!("prop-{seed:x}-{n}");
            let reported = hub
                .commands()
                .report_case(from("urban-management", incident(&rid)))
                .await
                .expect("report")
                .into_inner();
            let view = read_case(&hub, &reported.case_id, reported.position).await;
            seen.push(Seen {
                case_id: reported.case_id.clone(),
                position: reported.position,
                events: 1,
                view,
            });
            cases.push(Model {
                id: reported.case_id,
                status: CaseStatus::Reported,
                holder: "dcc-310104",
                pending: None,
            });
        }
        let mut counts: BTreeMap<String, u64> = cases.iter().map(|c| (c.id.clone(), 1)).collect();
        let commands = 12 + rng.below(9);
        let mut ran = 0;
        for n in 0..commands {
            let open: Vec<usize> = (0..cases.len())
                .filter(|i| cases[*i].status != CaseStatus::Closed)
                .collect();
            let Some(&pick) = open.get(rng.below(open.len().max(1))) else {
                break;
            };
            let case = &mut cases[pick];
            let rid = format!("prop-{seed:x}-c{n}");
            let Some((position, events)) = step(&hub, &mut rng, case, &rid).await else {
                continue;
            };
            ran += 1;
            let count = counts.get_mut(&case.id).expect("a known case");
            *count += events;
            let view = read_case(&hub, &case.id, position).await;
            assert_eq!(
                view.last_position, position,
                "{rid}: nothing happened since"
            );
            seen.push(Seen {
                case_id: case.id.clone(),
                position,
                events: *count,
                view,
            });
        }
        assert!(
            ran == commands || cases.iter().all(|c| c.status == CaseStatus::Closed),
            "{seed:x}: {ran} of {commands} commands ran"
        );
        assert_eq!(seen.len(), 3 + ran);

        // The stored time of every event of each case, from its history.
        let mut stored_at = BTreeMap::new();
        for case in &cases {
            for event in all_events(&hub, &format!("case/{}", case.id)).await {
                stored_at.insert(event.position, event.stored_at.expect("stored_at"));
            }
        }
        for s in &seen {
            let aggregate = format!("case/{}", s.case_id);
            let then = state(&hub, &aggregate, AsOf::Position(s.position)).await;
            assert!(then.exists);
            assert_eq!(
                (then.position, then.events),
                (s.view.last_position, s.events),
                "{aggregate} at {}",
                s.position
            );
            let json: serde_json::Value = serde_json::from_str(&then.state_json).expect("json");
            // Status, holder, pending transfer, rating, reopenings and escalation tier: what both
            // the view and the state expose; the version is the position compared above.
            assert_eq!(
                status_of(&json),
                s.view.status,
                "{aggregate} at {}",
                s.position
            );
            assert_eq!(json["holder"], s.view.holder.as_str());
            assert_eq!(
                json["pending_transfer"].as_str().unwrap_or_default(),
                s.view.pending_transfer_to
            );
            assert_eq!(
                json["rating"].as_u64().unwrap_or_default(),
                u64::from(s.view.rating)
            );
            assert_eq!(json["reopened"].as_u64(), Some(u64::from(s.view.reopened)));
            assert_eq!(
                json["escalation_tier"].as_u64(),
                Some(u64::from(s.view.escalation_tier))
            );
            assert_eq!(json["events"].as_u64(), Some(s.events));

            // As of the time the log stored the event at p: the same state.
            let time = stored_at[&s.position];
            let by_time = state(&hub, &aggregate, AsOf::Time(time)).await;
            assert_eq!(
                by_time, then,
                "{aggregate} by the stored time of {}",
                s.position
            );
        }

        // Before a case's first event, by position and by time, it did not exist.
        for case in &cases {
            let aggregate = format!("case/{}", case.id);
            let first = seen
                .iter()
                .find(|s| s.case_id == case.id)
                .expect("its report");
            let before = state(&hub, &aggregate, AsOf::Position(first.position - 1)).await;
            assert_eq!(before, GetStateAsOfResponse::default(), "{aggregate}");
            let reported_at = stored_at[&first.position];
            let earlier = jiff::Timestamp::new(reported_at.seconds, reported_at.nanos)
                .expect("a timestamp")
                - jiff::SignedDuration::from_nanos(1);
            let before = state(&hub, &aggregate, AsOf::Time(hub_api::timestamp(earlier))).await;
            assert_eq!(before, GetStateAsOfResponse::default(), "{aggregate}");
        }
    }
    hub.stop().await.expect("clean stop");
}
