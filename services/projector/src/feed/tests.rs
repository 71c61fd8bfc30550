//! The publisher's decisions, read back from its outbox: who gets each event, in which view,
//! with which headers; and the purge a revocation leaves.

use std::sync::Arc;

use hub_api::{
    CARE_REGISTERED, CARE_VISIT_LOGGED, EventType, GRANT_APPROVED, GRANT_REQUESTED, GRANT_REVOKED,
    v1,
};
use hub_domain::clock::ManualClock;
use hub_log::{Classification, Envelope, StoredEvent};
use hub_store::{Batch, MemStore, ReadModelStore};
use jiff::{SignedDuration, Timestamp};
use prost::Message;

use super::outbox::{FeedDisclosure, OUTBOX_PREFIX, Outgoing};
use super::*;

const NAME: &str = "欧阳娜娜";
const IDENTITY: &str = "11010519491231002X";
const PHONE: &str = "13812345678";

fn start() -> Timestamp {
    Timestamp::from_second(1_800_000_000).expect("instant")
}

fn ts(at: Timestamp) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: at.as_second(),
        nanos: 0,
    })
}

fn stored(
    position: u64,
    aggregate: &str,
    id: &str,
    owner: &str,
    event_type: EventType,
    body: Vec<u8>,
) -> StoredEvent {
    StoredEvent {
        position,
        subject: format!("gov.events.{aggregate}.{id}"),
        stored_at: jiff::Timestamp::UNIX_EPOCH,
        envelope: Envelope {
            id: format!("e{position}"),
            source: "/departments/civil-affairs".into(),
            event_type: event_type.name.into(),
            subject: format!("{aggregate}/{id}"),
            time: start(),
            dataschema: event_type.dataschema.into(),
            department: owner.into(),
            classification: Classification::Sensitive,
            schema_version: event_type.schema_version,
            correlation_id: "corr-1".into(),
            causation_id: "req-1".into(),
            traceparent: String::new(),
            request_id: "req-1".into(),
            command_hash: "k1.0123456789abcdef0123456789abcdef".into(),
            acting_person: "ps-0007".into(),
        },
        body: body.into(),
        upcast_from: None,
    }
}

fn registered(position: u64) -> StoredEvent {
    let body = v1::CareRegistered {
        care_id: "care-1".into(),
        name: NAME.into(),
        identity_number: IDENTITY.into(),
        category: v1::CareCategory::SevereMentalDisorder as i32,
        community_code: "310104001001".into(),
        district_code: "310104".into(),
        risk_level: v1::RiskLevel::High as i32,
        registered_by: "civil-affairs".into(),
        registered_at: ts(start()),
        phone: PHONE.into(),
        address: "漕溪北路88号".into(),
    };
    stored(
        position,
        "care",
        "care-1",
        "civil-affairs",
        CARE_REGISTERED,
        body.encode_to_vec(),
    )
}

fn visited(position: u64) -> StoredEvent {
    let body = v1::CareVisitLogged {
        care_id: "care-1".into(),
        visited_at: ts(start()),
        visitor: "staff-9".into(),
        notes: "情绪稳定，家属陪同".into(),
        logged_by: "civil-affairs".into(),
        logged_at: ts(start()),
    };
    stored(
        position,
        "care",
        "care-1",
        "civil-affairs",
        CARE_VISIT_LOGGED,
        body.encode_to_vec(),
    )
}

fn grant_events(first: u64, fields: &[&str]) -> Vec<StoredEvent> {
    grant_events_of("grant-1", first, fields)
}

fn grant_events_of(id: &str, first: u64, fields: &[&str]) -> Vec<StoredEvent> {
    let requested = v1::GrantRequested {
        grant_id: id.into(),
        requester: "public-security".into(),
        owner: "civil-affairs".into(),
        dataset: "care_roster".into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        purpose: "排查".into(),
        expires_at: ts(start() + SignedDuration::from_hours(24)),
        requested_at: ts(start()),
    };
    let approved = v1::GrantApproved {
        grant_id: id.into(),
        approved_by: "civil-affairs".into(),
        approved_at: ts(start()),
    };
    vec![
        stored(
            first,
            "grant",
            id,
            "civil-affairs",
            GRANT_REQUESTED,
            requested.encode_to_vec(),
        ),
        stored(
            first + 1,
            "grant",
            id,
            "civil-affairs",
            GRANT_APPROVED,
            approved.encode_to_vec(),
        ),
    ]
}

fn revoked(position: u64) -> StoredEvent {
    revoked_of("grant-1", position)
}

fn revoked_of(id: &str, position: u64) -> StoredEvent {
    let body = v1::GrantRevoked {
        grant_id: id.into(),
        revoked_by: "civil-affairs".into(),
        reason: "done".into(),
        revoked_at: ts(start()),
    };
    stored(
        position,
        "grant",
        id,
        "civil-affairs",
        GRANT_REVOKED,
        body.encode_to_vec(),
    )
}

/// Applies `events` one batch each and returns the outbox, in order.
fn publish(events: &[StoredEvent], clock: Arc<ManualClock>) -> Vec<(String, Outgoing)> {
    let units = ["civil-affairs", "public-security", "housing"].map(String::from);
    let publisher = FeedPublisher::new(units, clock);
    let store = MemStore::new();
    for event in events {
        let mut batch = Batch::new(&store);
        publisher.apply(event, &mut batch).expect("apply");
        store
            .commit(batch.into_writes(), event.position)
            .expect("commit");
    }
    store
        .scan(OUTBOX_PREFIX, None, 1000)
        .expect("scan")
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8(k).expect("key"),
                Outgoing::decode(&v).expect("entry"),
            )
        })
        .collect()
}

/// The outbox keys of `department`'s messages and purges, in order.
fn keys_for<'a>(outbox: &'a [(String, Outgoing)], department: &str) -> Vec<&'a str> {
    outbox
        .iter()
        .filter(|(k, _)| k.contains(department))
        .map(|(k, _)| k.as_str())
        .collect()
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_owner_gets_care_events_whole_and_a_grantee_masked_after_approval_only() {
    let clock = Arc::new(ManualClock::new(start()));
    let mut log = vec![registered(1)];
    log.extend(grant_events(2, &["name"]));
    log.push(registered(4));
    log.push(visited(5));
    let outbox = publish(&log, clock);
    let to = |department: &str| -> Vec<&Outgoing> {
        outbox
            .iter()
            .filter(|(k, _)| k.ends_with(&format!("/{department}")))
            .map(|(_, o)| o)
            .collect()
    };
    // Civil affairs: every event, whole (its care records, and its grant's events).
    assert_eq!(to("civil-affairs").len(), 5);
    // Public security: its grant's two events, then the care events after the approval only.
    let received = to("public-security");
    assert_eq!(received.len(), 4, "{received:#?}");
    let Outgoing::Publish {
        stream,
        subject,
        headers,
        body,
        disclosure,
    } = received[2]
    else {
        panic!("a publish");
    };
    // What it discloses is recorded when it is sent: the granted name alone in clear.
    let as_disclosed = |care: &str, clear: &[&str], grants: &[&str]| FeedDisclosure {
        care_id: care.to_owned(),
        dataset: "care_roster".to_owned(),
        clear_fields: clear.iter().map(|f| (*f).to_owned()).collect(),
        grants: grants.iter().map(|g| (*g).to_owned()).collect(),
    };
    assert_eq!(
        disclosure.as_ref(),
        Some(&as_disclosed("care-1", &["name"], &["grant-1"]))
    );
    assert_eq!(stream, "FEED_PUBLIC_SECURITY");
    assert_eq!(subject, "gov.feed.public-security.care.care-1");
    assert_eq!(header(headers, "hub-position"), Some("4"));
    assert_eq!(header(headers, "Nats-Msg-Id"), Some("e4"));
    assert_eq!(header(headers, "ce-id"), Some("e4"));
    assert_eq!(header(headers, "ce-department"), Some("civil-affairs"));
    assert_eq!(header(headers, "hub-grants"), Some("grant-1"));
    assert_eq!(header(headers, "hub-district"), Some("310104"));
    assert_eq!(
        header(headers, "hub-masked"),
        Some("identity_number,phone,address")
    );
    assert_eq!(header(headers, "hub-withheld"), Some("category,risk_level"));
    for internal in [
        "ce-requestid",
        "ce-commandhash",
        "ce-correlationid",
        "ce-causationid",
        "ce-actingperson",
    ] {
        assert_eq!(header(headers, internal), None, "{internal}");
    }
    let event = v1::CareRegistered::decode(body.as_slice()).expect("body");
    assert_eq!(event.name, NAME, "granted");
    assert_eq!(event.identity_number, "110105********002X");
    assert_eq!(event.phone, "138****5678");
    assert_eq!(event.address, "310104001001");
    assert_eq!(event.category, 0);
    assert_eq!(event.risk_level, 0);
    // The visit goes out without its free text, and carries no personal field in clear.
    let Outgoing::Publish {
        body, disclosure, ..
    } = received[3]
    else {
        panic!("a publish");
    };
    assert_eq!(
        disclosure.as_ref(),
        Some(&as_disclosed("care-1", &[], &["grant-1"]))
    );
    let visit = v1::CareVisitLogged::decode(body.as_slice()).expect("body");
    assert!(visit.notes.is_empty() && visit.visitor.is_empty());
    // The owner's own record goes out whole, every personal field it holds in clear; a
    // grant's events disclose no person.
    let owner: Vec<Option<&FeedDisclosure>> = to("civil-affairs")
        .into_iter()
        .map(|o| match o {
            Outgoing::Publish { disclosure, .. } => disclosure.as_ref(),
            Outgoing::Purge { .. } => None,
        })
        .collect();
    let whole = as_disclosed(
        "care-1",
        &[
            "name",
            "identity_number",
            "phone",
            "address",
            "category",
            "risk_level",
        ],
        &[],
    );
    assert_eq!(owner[0], Some(&whole));
    assert_eq!(owner[1..3], [None, None], "the grant's events");
    // Its visit goes out with its free text, which counts as given in clear.
    assert_eq!(
        owner[4],
        Some(&as_disclosed("care-1", &["notes", "visitor"], &[]))
    );
    // Housing, with no grant, gets nothing; no message anywhere holds the cleartext number.
    assert!(to("housing").is_empty());
    for (key, entry) in &outbox {
        if key.ends_with("/civil-affairs") {
            continue;
        }
        let bytes = entry.encode();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("19491231"), "{key}");
        let Outgoing::Publish { body, .. } = entry else {
            continue;
        };
        assert!(
            !body
                .windows(IDENTITY.len())
                .any(|w| w == IDENTITY.as_bytes())
        );
        assert!(!body.windows(PHONE.len()).any(|w| w == PHONE.as_bytes()));
    }
}

#[test]
fn a_revocation_purges_the_grantees_care_events_and_stops_new_ones() {
    let clock = Arc::new(ManualClock::new(start()));
    let mut log = grant_events(1, &["name"]);
    log.push(registered(3));
    log.push(revoked(4));
    log.push(visited(5));
    let outbox = publish(&log, clock.clone());
    let keys = keys_for(&outbox, "public-security");
    assert_eq!(
        keys,
        [
            "o/00000000000000000001/public-security",
            "o/00000000000000000002/public-security",
            "o/00000000000000000003/public-security",
            "o/00000000000000000004/public-security",
            "o/00000000000000000004/~purge/public-security",
        ],
        "nothing after the revocation"
    );
    let purge = &outbox
        .iter()
        .find(|(k, _)| k.contains("~purge"))
        .expect("purge")
        .1;
    assert_eq!(
        *purge,
        Outgoing::Purge {
            stream: "FEED_PUBLIC_SECURITY".into(),
            subject: "gov.feed.public-security.care.>".into(),
        }
    );

    // Expiry acts by the clock, before any expiry event: nothing goes out past it.
    let clock = Arc::new(ManualClock::new(start()));
    let mut log = grant_events(1, &["name"]);
    log.push(registered(3));
    let before = publish(&log, clock.clone());
    clock.advance(SignedDuration::from_hours(25));
    let after = publish(&log, clock);
    let count = |outbox: &[(String, Outgoing)]| {
        outbox
            .iter()
            .filter(|(k, _)| k.ends_with("/public-security"))
            .count()
    };
    assert_eq!(count(&before), 3);
    assert_eq!(
        count(&after),
        2,
        "only the grant's own events once it expired"
    );
}

#[test]
fn ending_one_of_two_grants_purges_the_feed_and_an_unreadable_grant_event_fails_closed() {
    let clock = Arc::new(ManualClock::new(start()));
    let mut log = grant_events_of("grant-1", 1, &["name"]);
    log.extend(grant_events_of("grant-2", 3, &["phone"]));
    log.push(registered(5));
    log.push(revoked_of("grant-1", 6));
    // What was sent under both grants showed more than grant-2 allows: purged all the same.
    let outbox = publish(&log, clock.clone());
    assert!(
        outbox
            .iter()
            .any(|(k, _)| k == "o/00000000000000000006/~purge/public-security"),
        "{:?}",
        outbox.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );

    // An event of grant-1 this version cannot read: the grant no longer counts.
    let mut log = grant_events_of("grant-1", 1, &["name"]);
    let mut unreadable = revoked_of("grant-1", 3);
    unreadable.envelope.event_type = "gov.hub.grant.amended.v9".into();
    log.push(unreadable);
    log.push(registered(4));
    let outbox = publish(&log, clock);
    let keys = keys_for(&outbox, "public-security");
    assert_eq!(
        keys,
        [
            "o/00000000000000000001/public-security",
            "o/00000000000000000002/public-security",
            "o/00000000000000000003/public-security",
            "o/00000000000000000003/~purge/public-security",
        ],
        "purged, and the registration after it not sent"
    );
}

#[test]
fn outbox_entries_are_postcard_and_entries_written_as_json_before_still_read() {
    let entry = Outgoing::Publish {
        stream: "FEED_HOUSING".into(),
        subject: "gov.feed.housing.care.care-1".into(),
        headers: vec![("ce-type".into(), "gov.care.registered.v1".into())],
        body: (0u8..=255).collect(),
        disclosure: Some(FeedDisclosure {
            care_id: "care-1".into(),
            dataset: "care_roster".into(),
            clear_fields: vec!["district".into()],
            grants: vec!["g-1".into()],
        }),
    };
    let purge = Outgoing::Purge {
        stream: "FEED_HOUSING".into(),
        subject: "gov.feed.housing.care.>".into(),
    };
    for outgoing in [&entry, &purge] {
        let stored = outgoing.encode();
        assert_eq!(stored.first(), Some(&1), "tagged as postcard");
        assert_eq!(Outgoing::decode(&stored).as_ref(), Some(outgoing));
        // An entry an older hub left in the outbox (JSON) is still sent after an upgrade.
        let json = serde_json::to_vec(outgoing).expect("json");
        assert_eq!(Outgoing::decode(&json).as_ref(), Some(outgoing));
    }
    // The body's bytes as bytes, not as a list of numbers.
    let (postcard, json) = (
        entry.encode().len(),
        serde_json::to_vec(&entry).expect("json").len(),
    );
    assert!(
        postcard * 2 < json,
        "postcard {postcard} bytes, JSON {json}"
    );
    assert_eq!(
        Outgoing::decode(b"\x01\xff"),
        None,
        "a torn entry is unreadable"
    );
    assert_eq!(Outgoing::decode(b""), None);
}
