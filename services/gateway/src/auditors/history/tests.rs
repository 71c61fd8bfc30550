//! The parts of history and as-of reads that need no log: tokens, type URLs, masking of bodies
//! that cannot be masked, and folds that meet an event they cannot apply. The reads themselves
//! are tested end to end (tests/e2e/audit_history.rs).

use hub_api::aggregate::Case;
use hub_api::v1::get_state_as_of_request::AsOf;
use hub_log::{Classification, Envelope};

use super::as_of::{self, Cutoff, fold};
use super::*;

fn at(second: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_790_000_000 + second).expect("timestamp")
}

fn event(position: u64, event_type: &str, body: &[u8]) -> StoredEvent {
    StoredEvent {
        position,
        subject: "gov.events.care.c-1".into(),
        stored_at: at(position as i64),
        envelope: Envelope {
            id: format!("e{position}"),
            source: "/departments/civil-affairs".into(),
            event_type: event_type.into(),
            subject: "care/c-1".into(),
            time: at(0),
            dataschema: "type.googleapis.com/gov.hub.v1.CareRegistered".into(),
            department: "civil-affairs".into(),
            classification: Classification::Sensitive,
            schema_version: 1,
            correlation_id: "r-1".into(),
            causation_id: "r-1".into(),
            traceparent: String::new(),
            request_id: "r-1".into(),
            command_hash: String::new(),
            acting_person: "staff-1".into(),
        },
        body: body.to_vec().into(),
        upcast_from: None,
    }
}

fn unreadable(position: u64) -> Unreadable {
    Unreadable {
        position,
        subject: "gov.events.case.c-1".into(),
        stored_at: at(position as i64),
        event_type: "gov.hub.case.reported.v1".into(),
        reason: "header ce-id is missing".into(),
    }
}

fn token(value: &str) -> (Option<u64>, bool) {
    let mut violations = Violations::new();
    let position = page_token(&mut violations, value);
    (position, violations.is_empty())
}

#[test]
fn a_page_token_is_a_position_in_canonical_decimal() {
    assert_eq!(token(""), (None, true));
    assert_eq!(token("17"), (Some(17), true));
    for bad in [
        "0",
        "017",
        "+17",
        "-1",
        "1.5",
        "abc",
        "99999999999999999999999",
    ] {
        assert_eq!(token(bad), (None, false), "{bad}");
    }
}

#[test]
fn a_type_url_names_a_gov_hub_v1_message() {
    let full = "type.googleapis.com/gov.hub.v1.CaseReported";
    assert_eq!(type_url(full), full);
    assert_eq!(type_url("gov.hub.v1.CaseReported"), full);
    assert_eq!(type_url("CaseReported"), full);
}

#[test]
fn a_care_body_that_cannot_be_masked_is_left_out_with_every_field_it_could_carry() {
    let garbage = [0xff, 0xff, 0xff];
    let registered = stored_event("care", &event(1, CARE_REGISTERED.name, &garbage));
    assert_eq!(registered.body, None);
    assert!(registered.masked.is_empty());
    for field in ["body", "name", "identity_number", "phone", "address"] {
        assert!(
            registered.withheld.iter().any(|w| w == field),
            "{field}: {:?}",
            registered.withheld
        );
    }
    let unknown = stored_event("care", &event(2, "gov.hub.care.merged.v9", b"\x0a\x02hi"));
    assert_eq!(unknown.body, None);
    assert_eq!(unknown.withheld.len(), 1 + care_fields("").len());
}

#[test]
fn a_case_body_goes_as_stored_under_its_dataschema() {
    let mut stored = event(3, "gov.hub.case.reported.v1", b"\x0a\x03c-1");
    stored.envelope.dataschema = "type.googleapis.com/gov.hub.v1.CaseReported".into();
    let history = stored_event("case", &stored);
    let body = history.body.expect("a case body");
    assert_eq!(body.type_url, "type.googleapis.com/gov.hub.v1.CaseReported");
    assert_eq!(body.value, b"\x0a\x03c-1");
    assert_eq!(
        (history.position, history.acting_person.as_str()),
        (3, "staff-1")
    );
    assert_eq!(history.stored_at, Some(hub_api::timestamp(at(3))));
}

#[test]
fn a_case_event_stored_in_an_older_version_is_shown_upcast_naming_what_is_stored() {
    use prost::Message;
    let body = hub_api::v1::CaseReported {
        case_id: "c-1".into(),
        reporter: Some(hub_api::v1::Reporter {
            kind: hub_api::v1::ReporterKind::Resident as i32,
            grid_worker_id: String::new(),
        }),
        ..Default::default()
    }
    .encode_to_vec();
    let mut stored = event(3, hub_api::CASE_REPORTED_V1.name, &body);
    stored.subject = "gov.events.case.c-1".into();
    stored.envelope.dataschema = hub_api::CASE_REPORTED_V1.dataschema.into();
    let history = stored_event("case", &stored.into_current());
    assert_eq!(
        (history.event_type.as_str(), history.schema_version),
        ("gov.hub.case.reported.v2", 2)
    );
    assert_eq!(
        (
            history.stored_event_type.as_str(),
            history.stored_schema_version
        ),
        ("gov.hub.case.reported.v1", 1)
    );
    let any = history.body.expect("a case body");
    assert_eq!(any.type_url, "type.googleapis.com/gov.hub.v1.CaseReported");
    let shown = hub_api::v1::CaseReported::decode(any.value.as_slice()).expect("a v2 body");
    assert_eq!(shown.channel, hub_api::v1::ReportChannel::Unrecorded as i32);
    // An event read as stored names no other version.
    let current = stored_event("case", &event(4, hub_api::CASE_REPORTED.name, &body));
    assert_eq!(
        (
            current.stored_event_type.as_str(),
            current.stored_schema_version
        ),
        ("", 0)
    );
}

#[test]
fn an_unreadable_message_shows_where_it_is_and_no_body() {
    let history = history_event("case", &Entry::Unreadable(unreadable(4)));
    assert_eq!(history.position, 4);
    assert_eq!(history.event_type, "gov.hub.case.reported.v1");
    assert_eq!(history.body, None);
    assert_eq!(history.withheld, ["body"]);
}

#[test]
fn a_fold_meeting_an_event_it_cannot_apply_names_its_position_not_its_body() {
    let entries = [Entry::Unreadable(unreadable(5))];
    match fold::<Case>(entries.iter()) {
        Err(ApiError::FailedPrecondition(text)) => {
            assert!(text.contains("position 5"), "{text}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let entries = [Entry::Event(event(
        6,
        "gov.hub.case.reported.v1",
        b"\xff\xff",
    ))];
    assert!(matches!(
        fold::<Case>(entries.iter()),
        Err(ApiError::FailedPrecondition(_))
    ));
    // Before any event: nothing folded, no state.
    let none = fold::<Case>(entries.iter().take(0)).expect("an empty fold");
    assert_eq!(
        (
            none.exists,
            none.state_json.as_str(),
            none.position,
            none.events
        ),
        (false, "", 0, 0)
    );
}

#[test]
fn a_cutoff_by_time_stops_at_the_first_event_stored_later() {
    let mut late = unreadable(2);
    late.stored_at = at(10);
    let entries = [
        Entry::Unreadable(unreadable(1)),
        Entry::Unreadable(late),
        Entry::Unreadable(unreadable(3)),
    ];
    let cutoff = Cutoff::Time(at(5));
    let kept: Vec<u64> = entries
        .iter()
        .take_while(|e| cutoff.includes(e))
        .map(Entry::position)
        .collect();
    assert_eq!(kept, [1]);
}

#[test]
fn as_of_must_be_set_and_a_time_valid() {
    let mut violations = Violations::new();
    assert_eq!(as_of::cutoff(&mut violations, None), None);
    let bad = AsOf::Time(prost_types::Timestamp {
        seconds: 0,
        nanos: -1,
    });
    assert_eq!(as_of::cutoff(&mut violations, Some(&bad)), None);
    let fields: Vec<String> = violations.into_vec().into_iter().map(|v| v.field).collect();
    assert_eq!(fields, ["as_of", "time"]);
    let mut violations = Violations::new();
    assert_eq!(
        as_of::cutoff(&mut violations, Some(&AsOf::Position(7))),
        Some(Cutoff::Position(7))
    );
    assert!(violations.is_empty());
}
