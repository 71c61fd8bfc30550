#![allow(clippy::unwrap_used)]

use async_nats::HeaderMap;

use super::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const TIME: i64 = 1_767_225_600_123_456_789;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, *value);
    }
    map
}

/// The fixed two-message input of the known answer.
fn two_messages() -> LogHead {
    let first = headers(&[("ce-type", "gov.case.reported.v1"), ("ce-id", "e-1")]);
    let second = headers(&[
        ("ce-type", "gov.case.dispatched.v1"),
        ("ce-id", "e-2"),
        ("Nats-Msg-Id", "r-2"),
    ]);
    let mut fold = Fold {
        head: LogHead::default(),
    };
    for (position, subject, headers, payload) in [
        (1, "gov.events.case.c-1", &first, &b"first"[..]),
        (2, "gov.events.case.c-1", &second, &b""[..]),
    ] {
        let stored = Stored {
            position,
            subject,
            time_nanos: TIME + position as i64,
            headers: Some(headers),
            payload,
        };
        assert!(matches!(
            fold.fold(&stored),
            Folded::Entry { expected: true, .. }
        ));
    }
    fold.head
}

#[test]
fn the_format_is_pinned_by_a_known_answer() {
    let head = two_messages();
    assert_eq!(head.position, 2);
    // Checked once against an independent implementation of the module doc (Python hashlib).
    assert_eq!(
        hex(&head.digest),
        "cbdb22beaadec779bc94af95d2b6a4dba16b15058dd8f99fb26cf05ef2850379"
    );
    // The pieces, spelled out as the module doc defines them.
    let content = {
        let mut bytes = b"gov-event-content-v1".to_vec();
        bytes.extend(TIME.to_be_bytes());
        bytes.extend(0u32.to_be_bytes());
        bytes.extend(3u64.to_be_bytes());
        bytes.extend(b"abc");
        bytes
    };
    assert_eq!(
        content_hash_of(TIME, &[], b"abc"),
        <[u8; 32]>::from(Sha256::digest(&content))
    );
    let content_hash = content_hash_of(TIME, &[("b", "2"), ("a", "1")], b"");
    let expected = {
        let mut bytes = b"gov-event-content-v1".to_vec();
        bytes.extend(TIME.to_be_bytes());
        bytes.extend(2u32.to_be_bytes());
        for (name, value) in [("a", "1"), ("b", "2")] {
            bytes.extend(1u32.to_be_bytes());
            bytes.extend(name.as_bytes());
            bytes.extend(1u32.to_be_bytes());
            bytes.extend(value.as_bytes());
        }
        bytes.extend(0u64.to_be_bytes());
        <[u8; 32]>::from(Sha256::digest(&bytes))
    };
    assert_eq!(content_hash, expected);
    let subject = subject_hash("gov.events.case.c-1");
    assert_eq!(
        subject,
        <[u8; 32]>::from(Sha256::digest(b"gov.events.case.c-1"))
    );
    let leaf_bytes = [
        &b"gov-event-leaf-v1"[..],
        &7u64.to_be_bytes(),
        &subject,
        &content_hash,
    ]
    .concat();
    let leaf7 = leaf(7, &subject, &content_hash);
    assert_eq!(leaf7, <[u8; 32]>::from(Sha256::digest(&leaf_bytes)));
    assert_eq!(
        next(&EMPTY, &leaf7),
        <[u8; 32]>::from(Sha256::digest([EMPTY, leaf7].concat()))
    );
}

#[test]
fn header_order_does_not_matter_but_the_order_of_one_names_values_does() {
    let payload = b"{}";
    let one = headers(&[
        ("ce-type", "t"),
        ("ce-id", "1"),
        ("x-list", "a"),
        ("x-list", "b"),
    ]);
    let other = headers(&[
        ("x-list", "a"),
        ("ce-id", "1"),
        ("x-list", "b"),
        ("ce-type", "t"),
    ]);
    assert_eq!(
        content_hash(TIME, &one, payload),
        content_hash(TIME, &other, payload)
    );
    let pairs = [
        ("x-list", "a"),
        ("ce-type", "t"),
        ("x-list", "b"),
        ("ce-id", "1"),
    ];
    assert_eq!(
        content_hash_of(TIME, &pairs, payload),
        content_hash(TIME, &one, payload)
    );
    let swapped = headers(&[
        ("ce-type", "t"),
        ("ce-id", "1"),
        ("x-list", "b"),
        ("x-list", "a"),
    ]);
    assert_ne!(
        content_hash(TIME, &one, payload),
        content_hash(TIME, &swapped, payload)
    );
}

#[test]
fn nats_headers_are_left_out_in_any_case() {
    let payload = b"body";
    let plain = headers(&[("ce-id", "1")]);
    let with_nats = headers(&[
        ("ce-id", "1"),
        ("Nats-Msg-Id", "r-1"),
        ("Nats-Expected-Last-Subject-Sequence", "4"),
        ("nats-stream", "GOV_EVENTS"),
        ("NATS-SEQUENCE", "9"),
        ("Nats-Time-Stamp", "2026-01-01T00:00:00Z"),
        ("Nats-Subject", "gov.events.case.c-1"),
    ]);
    assert_eq!(
        content_hash(TIME, &plain, payload),
        content_hash(TIME, &with_nats, payload)
    );
    // Only the prefix counts: a name merely containing "nats" is covered.
    let natsy = headers(&[("ce-id", "1"), ("x-nats-msg-id", "r-1")]);
    assert_ne!(
        content_hash(TIME, &plain, payload),
        content_hash(TIME, &natsy, payload)
    );
    let short = headers(&[("ce-id", "1"), ("nats", "1")]);
    assert_ne!(
        content_hash(TIME, &plain, payload),
        content_hash(TIME, &short, payload)
    );
    // No headers at all and no headers kept are the same content.
    assert_eq!(
        content_hash(TIME, &headers(&[("Nats-Msg-Id", "x")]), payload),
        content_hash_of(TIME, &[], payload)
    );
}

#[test]
fn any_change_of_position_subject_time_header_or_payload_changes_the_leaf() {
    let base_headers = [("ce-id", "1"), ("ce-type", "t")];
    let leaf_of =
        |position: u64, subject: &str, time: i64, headers: &[(&str, &str)], payload: &[u8]| {
            leaf(
                position,
                &subject_hash(subject),
                &content_hash_of(time, headers, payload),
            )
        };
    let base = leaf_of(5, "gov.events.case.c-1", TIME, &base_headers, b"payload");
    let changed = [
        leaf_of(6, "gov.events.case.c-1", TIME, &base_headers, b"payload"),
        leaf_of(5, "gov.events.case.c-2", TIME, &base_headers, b"payload"),
        leaf_of(
            5,
            "gov.events.case.c-1",
            TIME + 1,
            &base_headers,
            b"payload",
        ),
        leaf_of(
            5,
            "gov.events.case.c-1",
            TIME,
            &[("ce-id", "2"), ("ce-type", "t")],
            b"payload",
        ),
        leaf_of(
            5,
            "gov.events.case.c-1",
            TIME,
            &[("ce-ID", "1"), ("ce-type", "t")],
            b"payload",
        ),
        leaf_of(
            5,
            "gov.events.case.c-1",
            TIME,
            &[("ce-id", "1")],
            b"payload",
        ),
        leaf_of(
            5,
            "gov.events.case.c-1",
            TIME,
            &[("ce-id", "1"), ("ce-type", "t"), ("ce-extra", "")],
            b"payload",
        ),
        leaf_of(5, "gov.events.case.c-1", TIME, &base_headers, b"payloae"),
        leaf_of(5, "gov.events.case.c-1", TIME, &base_headers, b""),
        // The length prefixes keep a name's end from moving into its value.
        leaf_of(
            5,
            "gov.events.case.c-1",
            TIME,
            &[("ce-i", "d1"), ("ce-type", "t")],
            b"payload",
        ),
    ];
    for (n, other) in changed.iter().enumerate() {
        assert_ne!(&base, other, "change {n} left the leaf as it was");
    }
    // And a changed leaf changes every digest after it.
    assert_ne!(next(&EMPTY, &base), next(&EMPTY, &changed[0]));
}

#[test]
fn folding_leaves_out_repeats_and_folds_on_over_gaps() {
    let stored = |position| Stored {
        position,
        subject: "gov.events.case.c-1",
        time_nanos: TIME,
        headers: None,
        payload: b"x",
    };
    let mut fold = Fold {
        head: LogHead::default(),
    };
    assert!(matches!(
        fold.fold(&stored(1)),
        Folded::Entry { expected: true, .. }
    ));
    let after_one = fold.head;
    assert!(matches!(fold.fold(&stored(1)), Folded::Repeated));
    assert_eq!(fold.head, after_one);
    let Folded::Entry { entry, expected } = fold.fold(&stored(3)) else {
        panic!("position 3 folds");
    };
    assert!(!expected);
    assert_eq!(entry.position, 3);
    assert_eq!(entry.digest, next(&after_one.digest, &entry.leaf()));
    assert_eq!(fold.head.position, 3);
}
