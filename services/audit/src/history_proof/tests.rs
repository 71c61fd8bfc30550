use hub_api::v1::{OtherMessage, ProvenEvent, StoredHeader};

use super::*;
use crate::export::EXPORT_REASON;
use crate::signing::CheckpointSigner;

const AGGREGATE: &str = "gov.events.case.c-1";
const OTHER: &str = "gov.events.case.c-2";

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_bytes(&[6; 32])
}

/// A message of the log: position, subject, stored time, headers, body.
struct Stored {
    position: u64,
    subject: &'static str,
    time: i64,
    headers: Vec<(&'static str, String)>,
    payload: Vec<u8>,
}

/// A log of six messages, the aggregate's at 2, 4 and 5; the export of its history.
fn export() -> Vec<ExportHistoryResponse> {
    let log: Vec<Stored> = (1..=6u64)
        .map(|position| Stored {
            position,
            subject: if [2, 4, 5].contains(&position) {
                AGGREGATE
            } else {
                OTHER
            },
            time: 1_700_000_000_000_000_000 + position as i64,
            headers: vec![("ce-type", format!("type-{position}"))],
            payload: format!("body-{position}").into_bytes(),
        })
        .collect();
    let mut running = EMPTY;
    let mut digests = Vec::new();
    for m in &log {
        let headers: Vec<(&str, &str)> = m.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let content = content_hash_of(m.time, &headers, &m.payload);
        running = next(
            &running,
            &leaf(m.position, &subject_hash(m.subject), &content),
        );
        digests.push((running, content));
    }
    let claim = HistoryClaim {
        aggregate: "case/c-1".into(),
        subject: AGGREGATE.into(),
        positions: vec![2, 4, 5],
        digest_before: digests[0].0.to_vec(),
    };
    let manifest = signer().sign(&Checkpoint {
        instance: "a".into(),
        events: Some(LogDigestHead {
            position: 6,
            digest: running.to_vec(),
        }),
        reason: EXPORT_REASON.into(),
        history: Some(claim),
        ..Default::default()
    });
    let mut items = vec![ExportHistoryResponse {
        item: Some(Item::Header(HistoryExportHeader {
            format: HISTORY_FORMAT.into(),
            manifest: Some(manifest),
        })),
    }];
    for m in &log[1..] {
        let (digest, content) = digests[m.position as usize - 1];
        let item = if m.subject == AGGREGATE {
            Item::Event(ProvenEvent {
                position: m.position,
                subject: m.subject.into(),
                stored_at_nanos: m.time,
                headers: m
                    .headers
                    .iter()
                    .map(|(n, v)| StoredHeader {
                        name: (*n).into(),
                        value: v.clone(),
                    })
                    .collect(),
                payload: m.payload.clone(),
                digest: digest.to_vec(),
            })
        } else {
            Item::Other(OtherMessage {
                position: m.position,
                subject_hash: subject_hash(m.subject).to_vec(),
                content_hash: content.to_vec(),
            })
        };
        items.push(ExportHistoryResponse { item: Some(item) });
    }
    items
}

fn bytes(items: &[ExportHistoryResponse]) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        write_item(item, &mut out);
    }
    out
}

fn broken(items: &[ExportHistoryResponse]) -> Tampered {
    verify(&bytes(items), &signer().verifier()).expect_err("tampering must be found")
}

fn event(items: &mut [ExportHistoryResponse], at: usize) -> &mut ProvenEvent {
    match &mut items[at].item {
        Some(Item::Event(e)) => e,
        _ => panic!("item {at} is not an event"),
    }
}

#[test]
fn an_untouched_history_verifies_against_the_signed_digest_head() {
    let verified = verify(&bytes(&export()), &signer().verifier()).expect("untouched");
    assert_eq!(verified.claim.positions, [2, 4, 5]);
    assert_eq!(verified.head.position, 6);
    assert_eq!(verified.others, 2);
    let other = CheckpointSigner::from_bytes(&[7; 32]).verifier();
    assert_eq!(
        verify(&bytes(&export()), &other)
            .expect_err("other key")
            .item,
        0
    );
}

#[test]
fn each_kind_of_tampering_is_named_at_its_item() {
    // Items: header, 2 (event), 3, 4 (event), 5 (event), 6.
    let mut changed = export();
    event(&mut changed, 3).payload = b"body-X".to_vec();
    let found = broken(&changed);
    assert_eq!(
        (found.item, found.place.as_str()),
        (3, "position 4"),
        "{found}"
    );
    assert!(found.reason.contains("changed"), "{found}");

    // A changed header, its listed digest recomputed by the forger: the signed head no longer
    // follows.
    let mut forged = export();
    event(&mut forged, 4).headers[0].value = "type-X".into();
    let e = event(&mut forged, 4).clone();
    let headers: Vec<(&str, &str)> = e
        .headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    let before = event(&mut forged, 3).digest.clone();
    let before: [u8; 32] = before.as_slice().try_into().expect("32");
    event(&mut forged, 4).digest = next(
        &before,
        &leaf(
            5,
            &subject_hash(AGGREGATE),
            &content_hash_of(e.stored_at_nanos, &headers, &e.payload),
        ),
    )
    .to_vec();
    let found = broken(&forged);
    assert!(found.reason.contains("do not fold"), "{found}");

    let mut dropped = export();
    dropped.remove(2);
    let found = broken(&dropped);
    assert_eq!(found.item, 2, "{found}");
    assert!(found.reason.contains("dropped"), "{found}");

    let mut reordered = export();
    reordered.swap(2, 3);
    assert_eq!(broken(&reordered).item, 2);

    // The event at 5 passed off as another message by its digests.
    let mut hidden = export();
    hidden[4].item = Some(Item::Other(OtherMessage {
        position: 5,
        subject_hash: subject_hash(OTHER).to_vec(),
        content_hash: vec![0; 32],
    }));
    let found = broken(&hidden);
    assert_eq!(found.item, 4, "{found}");
    assert!(found.reason.contains("hidden"), "{found}");

    // Another aggregate's message given as this one's event.
    let mut foreign = export();
    event(&mut foreign, 1).subject = OTHER.into();
    assert!(broken(&foreign).reason.contains("another aggregate"));

    let mut cut = export();
    cut.pop();
    let found = broken(&cut);
    assert!(found.reason.contains("cut short"), "{found}");
}
