//! `command_state` against the in-memory store (the sled store passes the same store suite).

use std::sync::Arc;

use hub_api::aggregate::{Care, Case};
use hub_api::{encode_care_event, encode_case_event};
use hub_domain::calendar::Calendar;
use hub_domain::care::{CareId, CareVisitLogged};
use hub_domain::case::*;
use hub_domain::codes::{DepartmentCode, DivisionCode, GridCode};
use hub_domain::policy::Policy;
use hub_log::{Classification, Envelope, StoredEvent, Unreadable};
use hub_store::{Batch, MemStore, ReadModelStore};
use jiff::Timestamp;

use super::due::{Due, due_page, reschedule};
use super::*;
use crate::alarm::Alarms;
use crate::projection::Projection;

/// Monday 2026-03-02 09:00 in Shanghai.
const MONDAY_9: &str = "2026-03-02T01:00:00Z";

fn at(text: &str) -> Timestamp {
    text.parse().expect("fixture instant")
}

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department code")
}

fn policy(holidays: &[&str]) -> Arc<Policy> {
    let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(8));
    let holidays = holidays.iter().map(|d| d.parse().expect("date")).collect();
    Arc::new(Policy::with_defaults(Calendar::new(
        tz,
        holidays,
        Default::default(),
    )))
}

fn stored(position: u64, subject: &str, event_type: &str, body: Vec<u8>, rid: &str) -> StoredEvent {
    StoredEvent {
        position,
        subject: subject.into(),
        stored_at: jiff::Timestamp::UNIX_EPOCH,
        envelope: Envelope {
            id: format!("e{position}"),
            source: "/departments/urban-management".into(),
            event_type: event_type.into(),
            subject: String::new(),
            time: Timestamp::UNIX_EPOCH,
            dataschema: String::new(),
            department: "urban-management".into(),
            classification: Classification::Internal,
            schema_version: 1,
            correlation_id: String::new(),
            causation_id: String::new(),
            traceparent: String::new(),
            request_id: rid.into(),
            // Not in the keyed form: a plain digest an older version wrote.
            command_hash: format!("h-{rid}"),
            acting_person: String::new(),
        },
        body: body.into(),
        upcast_from: None,
    }
}

fn case_event(position: u64, id: &str, event: &CaseEvent) -> StoredEvent {
    let (event_type, body) = encode_case_event(event);
    stored(
        position,
        &format!("gov.events.case.{id}"),
        event_type.name,
        body,
        &format!("r{position}"),
    )
}

fn reported(id: &str) -> CaseEvent {
    CaseEvent::Reported(CaseReported {
        case_id: CaseId::new(id),
        kind: CaseKind::GridIncident(GridIncident {
            grid: GridCode::parse("310104001001001").expect("grid"),
            category: IncidentCategory::Sanitation,
            location: None,
        }),
        description: "overflowing bins".into(),
        reporter: Reporter::Resident,
        channel: hub_domain::case::ReportChannel::Hotline,
        district: DivisionCode::parse("310104").expect("district"),
        dispatch_unit: dept("dcc-310104"),
        urgency: Urgency::General,
        reported_at: at(MONDAY_9),
        reported_by: dept("urban-management"),
    })
}

fn dispatched(id: &str, accept_by: &str) -> CaseEvent {
    CaseEvent::Dispatched(CaseDispatched {
        case_id: CaseId::new(id),
        department: dept("urban-management"),
        dispatched_by: dept("dcc-310104"),
        dispatched_at: at(MONDAY_9),
        accept_by: at(accept_by),
        resolve_by: at("2026-03-20T01:00:00Z"),
    })
}

fn escalated(id: &str, due: &str) -> CaseEvent {
    CaseEvent::Escalated(CaseEscalated {
        case_id: CaseId::new(id),
        tier: 1,
        deadline: DeadlineKind::Accept,
        due: at(due),
        holder: dept("urban-management"),
        escalated_at: at(due),
    })
}

/// Applies `events` in one batch, committed at the last one's position.
fn project(model: &CommandState, store: &MemStore, events: &[StoredEvent]) {
    let mut batch = Batch::new(store);
    for event in events {
        model.apply(event, &mut batch).expect("apply");
    }
    let last = events.last().map_or(0, |e| e.position);
    store.commit(batch.into_writes(), last).expect("commit");
}

fn row(store: &MemStore, id: &str) -> AggregateRow<CaseState> {
    get_aggregate::<Case>(store, id)
        .expect("read")
        .expect("row exists")
}

fn due_entries(store: &MemStore) -> Vec<Due> {
    due_page(store, Timestamp::MAX, None, 1000).expect("due").0
}

#[test]
fn an_event_this_version_cannot_read_blocks_its_aggregate_alone_and_moves_its_version() {
    let store = MemStore::new();
    let alarms = Alarms::default();
    let model = CommandState::new(policy(&[]), alarms.clone());
    let mut unknown = case_event(3, "a", &dispatched("a", "2026-03-03T01:00:00Z"));
    unknown.envelope.event_type = "gov.hub.case.frobnicated.v9".into();
    project(
        &model,
        &store,
        &[
            case_event(1, "a", &reported("a")),
            case_event(2, "b", &reported("b")),
            unknown,
            case_event(4, "b", &dispatched("b", "2026-03-03T01:00:00Z")),
            case_event(5, "a", &dispatched("a", "2026-03-03T01:00:00Z")),
        ],
    );
    let a = row(&store, "a");
    assert_eq!(
        a.version, 5,
        "the version is the subject's last event, whatever it is"
    );
    assert_eq!(
        a.state.as_ref().map(|s| s.status),
        Some(CaseStatus::Reported),
        "the state stops at the block"
    );
    let block = a.blocked.expect("blocked");
    assert_eq!(
        (block.event_type.as_str(), block.position),
        ("gov.hub.case.frobnicated.v9", 3)
    );
    assert_eq!(a.due, None, "a blocked aggregate is not supervised");
    let b = row(&store, "b");
    assert_eq!(b.blocked, None);
    assert_eq!(b.state.map(|s| s.status), Some(CaseStatus::Dispatched));
    assert_eq!(
        blocked(&store).expect("blocked list"),
        vec![("case".to_owned(), "a".to_owned(), block.clone())]
    );
    assert_eq!(alarms.list().len(), 1);
    assert!(
        alarms.list()[0].1.contains("at position 3"),
        "{:?}",
        alarms.list()
    );
    // Records come from envelopes: even the unreadable event's command is remembered.
    let record = get_request(&store, "/departments/urban-management", "r3")
        .expect("read")
        .expect("record of the unknown event's command");
    assert_eq!((record.aggregate.as_str(), record.position), ("case/a", 3));
    // A hash that is not keyed (written before hashes were) is not copied.
    assert_eq!(record.hash, "unkeyed");
}

#[test]
fn an_unreadable_envelope_or_an_event_that_does_not_fit_blocks_too() {
    let store = MemStore::new();
    let model = CommandState::new(policy(&[]), Alarms::default());
    let mut batch = Batch::new(&store);
    model
        .apply_unreadable(
            &Unreadable {
                position: 1,
                subject: "gov.events.case.x".into(),
                stored_at: jiff::Timestamp::UNIX_EPOCH,
                event_type: String::new(),
                reason: "header ce-id is missing".into(),
            },
            &mut batch,
        )
        .expect("an unreadable message blocks, never halts");
    let visit = CareEvent::VisitLogged(CareVisitLogged {
        care_id: CareId::new("p"),
        visited_at: at(MONDAY_9),
        visitor: "CA-1".into(),
        notes: String::new(),
        logged_by: dept("civil-affairs"),
        logged_at: at(MONDAY_9),
    });
    let (event_type, body) = encode_care_event(&visit);
    model
        .apply(
            &stored(2, "gov.events.care.p", event_type.name, body, "v"),
            &mut batch,
        )
        .expect("a visit to a record never registered blocks, never halts");
    store.commit(batch.into_writes(), 2).expect("commit");

    let x = row(&store, "x");
    assert_eq!((x.version, x.state.is_none()), (1, true));
    assert!(
        x.blocked
            .expect("blocked")
            .describe("case")
            .contains("envelope")
    );
    let p = get_aggregate::<Care>(&store, "p")
        .expect("read")
        .expect("row");
    assert!(
        p.blocked.expect("blocked").why.contains("does not fit"),
        "a care visit before any registration"
    );
}

use hub_domain::care::CareEvent;

#[test]
fn a_row_replaces_the_due_key_it_wrote_even_after_the_policy_changed() {
    let store = MemStore::new();
    let before = CommandState::new(policy(&[]), Alarms::default());
    project(
        &before,
        &store,
        &[
            case_event(1, "a", &reported("a")),
            case_event(2, "a", &dispatched("a", "2026-03-03T01:00:00Z")),
            case_event(3, "a", &escalated("a", "2026-03-03T01:00:00Z")),
        ],
    );
    // Tier 2 is one working day after the missed deadline: Wednesday.
    let wednesday = at("2026-03-04T01:00:00Z");
    assert_eq!(row(&store, "a").due, Some(wednesday));

    // Wednesday becomes a holiday; the next event is applied under the new calendar and
    // removes exactly the key the row wrote under the old one.
    let after = CommandState::new(policy(&["2026-03-04"]), Alarms::default());
    let accepted = CaseEvent::Accepted(CaseAccepted {
        case_id: CaseId::new("a"),
        department: dept("urban-management"),
        accepted_at: at("2026-03-03T02:00:00Z"),
    });
    project(&after, &store, &[case_event(4, "a", &accepted)]);
    let entries = due_entries(&store);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        entries[0].at,
        at("2026-03-20T01:00:00Z"),
        "the resolve deadline"
    );
}

#[test]
fn a_new_policy_reschedules_every_due_entry_and_an_unchanged_one_touches_nothing() {
    let store = MemStore::new();
    let old = policy(&[]);
    let model = CommandState::new(old.clone(), Alarms::default());
    let mut events = Vec::new();
    for i in 0..5 {
        let id = format!("c{i}");
        let base = i * 3;
        events.push(case_event(base + 1, &id, &reported(&id)));
        events.push(case_event(
            base + 2,
            &id,
            &dispatched(&id, "2026-03-03T01:00:00Z"),
        ));
        events.push(case_event(
            base + 3,
            &id,
            &escalated(&id, "2026-03-03T01:00:00Z"),
        ));
    }
    project(&model, &store, &events);
    assert_eq!(
        reschedule(&store, &old).expect("first record of the policy"),
        5
    );
    assert_eq!(reschedule(&store, &old).expect("unchanged"), 0);
    // An entry nothing points at (as an older version could leave behind) goes too.
    store
        .commit(
            vec![hub_store::Write::Put {
                key: due::due_key(at("2026-03-01T00:00:00Z"), "case", "orphan"),
                value: Vec::new(),
            }],
            15,
        )
        .expect("commit");

    let new = policy(&["2026-03-04"]);
    assert_eq!(reschedule(&store, &new).expect("rescheduled"), 5);
    let entries = due_entries(&store);
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert!(
        entries.iter().all(|e| e.at == at("2026-03-05T01:00:00Z")),
        "tier 2 moves to Thursday: {entries:?}"
    );
    assert!(
        (0..5).all(|i| row(&store, &format!("c{i}")).due == Some(at("2026-03-05T01:00:00Z"))),
        "each row remembers its new key"
    );
    assert_eq!(
        store.checkpoint().expect("checkpoint"),
        15,
        "the checkpoint stays"
    );
}

#[test]
fn due_entries_page_in_time_order_up_to_now() {
    let store = MemStore::new();
    let model = CommandState::new(policy(&[]), Alarms::default());
    let mut events = Vec::new();
    for i in 0..7u64 {
        let id = format!("c{i}");
        events.push(case_event(i * 2 + 1, &id, &reported(&id)));
        let deadline =
            Timestamp::from_second(at("2026-03-03T01:00:00Z").as_second() + i as i64 * 60)
                .expect("instant");
        events.push(case_event(
            i * 2 + 2,
            &id,
            &dispatched(&id, &deadline.to_string()),
        ));
    }
    project(&model, &store, &events);
    // Now is after the fifth deadline: five are due, in three pages of two.
    let now = Timestamp::from_second(at("2026-03-03T01:00:00Z").as_second() + 4 * 60 + 30)
        .expect("instant");
    let mut seen = Vec::new();
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let (page, next) = due_page(&store, now, cursor.as_deref(), 2).expect("page");
        seen.extend(page.into_iter().map(|d| d.id));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ["c0", "c1", "c2", "c3", "c4"]);
}
