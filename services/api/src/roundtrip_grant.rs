//! Every grant event survives encode then decode unchanged.

use hub_domain::codes::DepartmentCode;
use hub_domain::grant::*;

use crate::{GRANT_EVENT_TYPES, decode_grant_event, encode_grant_event, v1};

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department")
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().expect("timestamp")
}

fn every_event() -> Vec<GrantEvent> {
    let id = || GrantId::new("grant-1");
    let now = t("2026-11-23T02:00:00.123456789Z");
    vec![
        GrantEvent::Requested(GrantRequested {
            grant_id: id(),
            requester: dept("public-security"),
            owner: dept("civil-affairs"),
            dataset: "care_roster".into(),
            fields: vec!["community_code".into(), "risk_level".into()],
            purpose: "排查独居老人 fire safety visits".into(),
            expires_at: t("2027-05-23T00:00:00Z"),
            requested_at: now,
        }),
        GrantEvent::Approved(GrantApproved {
            grant_id: id(),
            by: dept("civil-affairs"),
            at: now,
        }),
        GrantEvent::Rejected(GrantRejected {
            grant_id: id(),
            by: dept("civil-affairs"),
            reason: "不是最小必要 not the minimum necessary".into(),
            at: now,
        }),
        GrantEvent::Revoked(GrantRevoked {
            grant_id: id(),
            by: dept("civil-affairs"),
            reason: "purpose fulfilled".into(),
            at: now,
        }),
        GrantEvent::Expired(GrantExpired {
            grant_id: id(),
            at: now,
        }),
    ]
}

#[test]
fn every_grant_event_round_trips_and_every_type_is_covered() {
    let mut seen = std::collections::BTreeSet::new();
    for event in every_event() {
        let (event_type, body) = encode_grant_event(&event);
        seen.insert(event_type.name);
        assert!(
            event_type.name.starts_with("gov.hub.grant."),
            "{event_type:?}"
        );
        assert!(
            event_type
                .dataschema
                .starts_with("type.googleapis.com/gov.hub.v1.Grant"),
            "{event_type:?}"
        );
        let decoded = decode_grant_event(event_type.name, &body)
            .expect("decodes")
            .expect("known type");
        assert_eq!(decoded, event);
    }
    assert_eq!(
        seen.len(),
        GRANT_EVENT_TYPES.len(),
        "a grant event type without a round-trip test"
    );
}

#[test]
fn unknown_types_are_skipped_and_broken_bodies_refused() {
    assert_eq!(
        decode_grant_event("gov.hub.grant.future.v9", b"\x01"),
        Ok(None)
    );
    assert_eq!(decode_grant_event("gov.hub.care.closed.v1", b""), Ok(None));
    let err =
        decode_grant_event("gov.hub.grant.approved.v1", b"\xff\xff").expect_err("broken body");
    assert_eq!(err.event_type, "gov.hub.grant.approved.v1");

    let (event_type, body) = encode_grant_event(&every_event()[0]);
    let mut requested: v1::GrantRequested = prost::Message::decode(body.as_slice()).expect("body");
    requested.owner = "Not A Code".into();
    let err = decode_grant_event(event_type.name, &prost::Message::encode_to_vec(&requested))
        .expect_err("bad code");
    assert!(err.reason.starts_with("owner"), "{err}");

    let (event_type, body) = encode_grant_event(&every_event()[4]);
    let mut expired: v1::GrantExpired = prost::Message::decode(body.as_slice()).expect("body");
    expired.expired_at = None;
    let err = decode_grant_event(event_type.name, &prost::Message::encode_to_vec(&expired))
        .expect_err("no time");
    assert!(err.reason.starts_with("expired_at"), "{err}");
}
