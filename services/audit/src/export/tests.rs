use hub_api::v1::{AuditRecord, SignedCheckpoint};

use super::*;
use crate::signing::CheckpointSigner;

fn signer() -> CheckpointSigner {
    CheckpointSigner::from_bytes(&[3; 32])
}

/// Two chains, `a` and `b`, written in turns (a1 b1 a2 b2 ...) at stream sequences 10, 20,
/// ..., each batch of three records but `a`'s third, a stored checkpoint; every batch names
/// the records of the one before, and the header's manifest signs both heads with theirs.
struct Built {
    items: Vec<ExportAuditResponse>,
}

fn build() -> Built {
    let signer = signer();
    // Each chain's last batch: number, digest, stream sequence, its records' digests.
    type Last = (u64, Vec<u8>, u64, Vec<Vec<u8>>);
    let mut previous: BTreeMap<&str, Last> = BTreeMap::new();
    let mut items = Vec::new();
    let mut sequence = 0;
    for round in 1..=4u64 {
        for instance in ["a", "b"] {
            sequence += 10;
            let (number, prev, _, prev_records) =
                previous.get(instance).cloned().unwrap_or_default();
            let checkpoint = (instance == "a" && round == 3).then(|| {
                let chains = previous
                    .iter()
                    .map(|(i, (n, d, s, r))| ChainHead {
                        instance: (*i).into(),
                        number: *n,
                        digest: d.clone(),
                        sequence: *s,
                        last_records: r.clone(),
                    })
                    .collect();
                signer.sign(&Checkpoint {
                    instance: "a".into(),
                    chains,
                    reason: "records".into(),
                    ..Default::default()
                })
            });
            let records = if checkpoint.is_some() {
                Vec::new()
            } else {
                (0..3)
                    .map(|k| AuditRecord {
                        action: format!("{instance}-{round}-{k}"),
                        ..Default::default()
                    })
                    .collect()
            };
            let batch = AuditBatch {
                instance: instance.into(),
                number: number + 1,
                previous: prev,
                records,
                checkpoint,
                previous_records: prev_records,
            };
            let body = batch.encode_to_vec();
            previous.insert(
                instance,
                (number + 1, digest(&body), sequence, record_digests(&batch)),
            );
            items.push(ExportAuditResponse {
                item: Some(Item::Batch(ExportedBatch { sequence, body })),
            });
        }
    }
    let chains = previous
        .iter()
        .map(|(i, (n, d, s, r))| ChainHead {
            instance: (*i).into(),
            number: *n,
            digest: d.clone(),
            sequence: *s,
            last_records: r.clone(),
        })
        .collect();
    let manifest = signer.sign(&Checkpoint {
        instance: "a".into(),
        chains,
        events: Some(LogDigestHead {
            position: 12,
            digest: vec![9; 32],
        }),
        reason: "export".into(),
        ..Default::default()
    });
    items.insert(0, header(manifest));
    Built { items }
}

fn header(manifest: SignedCheckpoint) -> ExportAuditResponse {
    ExportAuditResponse {
        item: Some(Item::Header(AuditExportHeader {
            format: EXPORT_FORMAT.into(),
            manifest: Some(manifest),
        })),
    }
}

impl Built {
    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for item in &self.items {
            write_item(item, &mut out);
        }
        out
    }

    fn verify(&self) -> Result<Verified, Tampered> {
        verify(&self.bytes(), &signer().verifier(), &[])
    }

    fn broken(&self) -> Tampered {
        self.verify().expect_err("tampering must be found")
    }

    fn batch(&mut self, item: usize) -> &mut ExportedBatch {
        match &mut self.items[item].item {
            Some(Item::Batch(b)) => b,
            _ => panic!("item {item} is not a batch"),
        }
    }

    /// Changes item `item`'s first record and re-encodes its body, as a forger would.
    fn change_record(&mut self, item: usize) {
        self.records(item, |records| {
            records[0].department = "public-security".into()
        });
    }

    /// Changes item `item`'s records with `change` and re-encodes its body.
    fn records(&mut self, item: usize, change: impl FnOnce(&mut Vec<AuditRecord>)) {
        let exported = self.batch(item);
        let mut batch = AuditBatch::decode(exported.body.as_slice()).expect("batch");
        change(&mut batch.records);
        exported.body = batch.encode_to_vec();
    }
}

#[test]
fn an_untouched_export_verifies_with_the_public_key_alone() {
    let built = build();
    let verified = built.verify().expect("untouched");
    assert_eq!(verified.batches, 8);
    assert_eq!(verified.records, 21);
    assert_eq!(verified.checkpoints, 1);
    assert_eq!(verified.events.position, 12);
    assert_eq!(verified.manifest.chains.len(), 2);
    // The same file under another key does not.
    let other = CheckpointSigner::from_bytes(&[4; 32]).verifier();
    let refused = verify(&built.bytes(), &other, &[]).expect_err("another key");
    assert_eq!(refused.item, 0);
    assert!(refused.reason.contains("another key"), "{refused}");
}

#[test]
fn a_changed_dropped_inserted_or_swapped_record_is_named_in_its_batch() {
    // Item 3 is a2 (items: header, a1, b1, a2, b2, a3 (checkpoint), b3, a4, b4).
    let mut built = build();
    built.records(3, |records| {
        records[1].department = "public-security".into()
    });
    let broken = built.broken();
    assert_eq!(broken.item, 3, "{broken}");
    assert_eq!(
        broken.place,
        "chain a, batch 2, stream sequence 30, record 1 changed"
    );
    assert!(broken.reason.contains("changed"), "{broken}");
    let mut built = build();
    built.records(3, |records| drop(records.remove(2)));
    assert!(built.broken().place.ends_with(", record 2 dropped"));
    let mut built = build();
    built.records(3, |records| records.insert(0, AuditRecord::default()));
    assert!(built.broken().place.ends_with(", record 0 inserted"));
    let mut built = build();
    built.records(3, |records| records.swap(0, 1));
    assert!(built.broken().place.ends_with(", records 0 and 1 swapped"));

    // The last batch of a chain has no successor: the manifest names it, and its records.
    let mut built = build();
    built.change_record(8);
    let broken = built.broken();
    assert_eq!(broken.item, 8, "{broken}");
    assert_eq!(
        broken.place,
        "chain b, batch 4, stream sequence 80, record 0 changed"
    );
    // A batch before a stored checkpoint is named by the checkpoint too: b2 (item 4) changed
    // and b3 re-linked to it, so only a3's checkpoint still names b2 as it was.
    let mut built = build();
    built.records(4, |records| records[2].purpose = "forged".into());
    let relinked = digest(&built.batch(4).body);
    let exported = built.batch(6);
    let mut batch = AuditBatch::decode(exported.body.as_slice()).expect("batch");
    batch.previous = relinked;
    exported.body = batch.encode_to_vec();
    let broken = built.broken();
    assert_eq!(broken.item, 4, "{broken}");
    assert!(broken.place.ends_with(", record 2 changed"), "{broken}");

    // A body that no longer decodes.
    let mut built = build();
    built.batch(4).body.truncate(3);
    assert_eq!(built.broken().item, 4);
}

#[test]
fn a_forger_who_relinks_the_chain_is_caught_by_the_stored_checkpoint() {
    // b1 changed and every later b batch re-linked: the chain is whole again, but the
    // checkpoint stored in a's chain (item 5) signed b2 (item 4) as it was, before its link
    // to b1 was rewritten.
    let mut built = build();
    built.change_record(2);
    let mut previous = Vec::new();
    for item in [2, 4, 6, 8] {
        let exported = built.batch(item);
        let mut batch = AuditBatch::decode(exported.body.as_slice()).expect("batch");
        if !previous.is_empty() {
            batch.previous = previous.clone();
        }
        exported.body = batch.encode_to_vec();
        previous = digest(&exported.body);
    }
    let broken = built.broken();
    assert_eq!(broken.item, 4, "{broken}");
    assert!(broken.place.contains("chain b, batch 2"), "{broken}");
    assert!(broken.reason.contains("signed"), "{broken}");

    // A changed stored checkpoint fails its signature.
    let mut built = build();
    let exported = built.batch(5);
    let mut batch = AuditBatch::decode(exported.body.as_slice()).expect("batch");
    if let Some(c) = batch.checkpoint.as_mut() {
        c.checkpoint[3] ^= 1;
    }
    exported.body = batch.encode_to_vec();
    let broken = built.broken();
    assert_eq!(broken.item, 5, "{broken}");
    assert!(broken.reason.contains("signature"), "{broken}");
}

#[test]
fn reordered_dropped_inserted_and_truncated_batches_are_named() {
    // Reordered: a2 and b2 swapped.
    let mut built = build();
    built.items.swap(3, 4);
    let broken = built.broken();
    assert_eq!(broken.item, 4, "{broken}");
    assert!(broken.reason.contains("out of stream order"), "{broken}");

    // Dropped: b2 (item 4) removed; the checkpoint in a3 (now item 4) vouched for it.
    let mut built = build();
    built.items.remove(4);
    let broken = built.broken();
    assert_eq!(broken.item, 4, "{broken}");
    assert!(broken.place.contains("chain b, batch 2"), "{broken}");
    assert!(broken.reason.contains("dropped"), "{broken}");
    // Dropped: b3 (item 6) removed; b4 (now item 7) is found with b3 missing.
    let mut built = build();
    built.items.remove(6);
    let broken = built.broken();
    assert_eq!(broken.item, 7, "{broken}");
    assert!(broken.reason.contains("batch 3 is missing"), "{broken}");

    // Inserted: a copy of a2 with a new sequence after b2.
    let mut built = build();
    let mut copy = built.batch(3).clone();
    copy.sequence = built.batch(4).sequence + 1;
    built.items.insert(
        5,
        ExportAuditResponse {
            item: Some(Item::Batch(copy)),
        },
    );
    let broken = built.broken();
    assert_eq!(broken.item, 5, "{broken}");
    assert!(broken.reason.contains("inserted"), "{broken}");

    // Truncated: the last two batches cut; the manifest names a4 and b4.
    let mut built = build();
    built.items.truncate(7);
    let broken = built.broken();
    assert_eq!(broken.item, 5, "{broken}");
    assert!(broken.reason.contains("truncated"), "{broken}");

    // Cut in the middle of an item.
    let built = build();
    let mut bytes = built.bytes();
    bytes.truncate(bytes.len() - 5);
    let broken = verify(&bytes, &signer().verifier(), &[]).expect_err("cut");
    assert_eq!(broken.item, 8, "{broken}");

    // A chain the manifest does not name.
    let mut built = build();
    let foreign = AuditBatch {
        instance: "c".into(),
        number: 1,
        ..Default::default()
    };
    built.items.push(ExportAuditResponse {
        item: Some(Item::Batch(ExportedBatch {
            sequence: 100,
            body: foreign.encode_to_vec(),
        })),
    });
    let broken = built.broken();
    assert_eq!(broken.item, 9, "{broken}");
    assert!(broken.reason.contains("names no such chain"), "{broken}");
}

#[test]
fn a_replaced_manifest_is_refused() {
    let mut built = build();
    let forged = CheckpointSigner::from_bytes(&[5; 32]).sign(&Checkpoint::default());
    built.items[0] = header(forged);
    assert_eq!(built.broken().item, 0);

    // The checkpoint stored in a3, validly signed, put in the header with every chain cut
    // back to the heads it names (a2, b2): refused, it was not made for an export.
    let mut built = build();
    let stored = AuditBatch::decode(built.batch(5).body.as_slice())
        .expect("batch")
        .checkpoint
        .expect("a3 holds a checkpoint");
    built.items.truncate(5);
    built.items[0] = header(stored.clone());
    let broken = built.broken();
    assert_eq!(broken.item, 0, "{broken}");
    assert!(broken.reason.contains("not for an export"), "{broken}");
    // The same cut with an honest export manifest over those heads verifies (the control).
    let mut checkpoint = signer().verifier().verify(&stored).expect("signed");
    checkpoint.reason = EXPORT_REASON.into();
    built.items[0] = header(signer().sign(&checkpoint));
    built.verify().expect("an export of the first four batches");
}

#[test]
fn an_export_that_lost_what_an_earlier_export_signed_fails_against_it() {
    let earlier = build();
    let earlier_manifest = earlier.verify().expect("earlier").manifest;
    // The same log: the earlier export's heads are all found.
    verify(
        &earlier.bytes(),
        &signer().verifier(),
        std::slice::from_ref(&earlier_manifest),
    )
    .expect("consistent with itself");

    // A later export of a store rewritten from b2 on and signed afresh (as a hub signing a
    // forged store would): whole on its own, but b2 differs from what the earlier export
    // signed.
    let mut rewritten = build();
    rewritten.change_record(4);
    let mut heads = BTreeMap::new();
    let mut previous: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for at in 1..rewritten.items.len() {
        let exported = rewritten.batch(at);
        let mut batch = AuditBatch::decode(exported.body.as_slice()).expect("batch");
        if batch.number > 1 {
            batch.previous = previous[&batch.instance].clone();
        }
        // a3's stored checkpoint vouches for the old b2 and cannot be signed again without
        // the key: the forger empties it of its checkpoint and re-links both chains.
        batch.checkpoint = None;
        exported.body = batch.encode_to_vec();
        previous.insert(batch.instance.clone(), digest(&exported.body));
        heads.insert(
            batch.instance.clone(),
            ChainHead {
                instance: batch.instance.clone(),
                number: batch.number,
                digest: digest(&exported.body),
                sequence: exported.sequence,
                last_records: record_digests(&batch),
            },
        );
    }
    rewritten.items[0] = header(signer().sign(&Checkpoint {
        instance: "a".into(),
        chains: heads.into_values().collect(),
        reason: EXPORT_REASON.into(),
        ..Default::default()
    }));
    rewritten.verify().expect("whole on its own");
    let broken = verify(
        &rewritten.bytes(),
        &signer().verifier(),
        &[earlier_manifest],
    )
    .expect_err("the earlier export's heads are not all there");
    assert!(broken.reason.contains("earlier export"), "{broken}");
    // a4, the head of chain a the earlier export signed, is found changed first.
    assert!(broken.place.contains("chain a, batch"), "{broken}");
}

#[test]
fn a_run_of_records_longer_than_the_writer_allows_means_a_checkpoint_was_dropped() {
    // Chain a: batch 1 of 600 records, a checkpoint (K = 2), then two batches of 600 records
    // with the checkpoint between them dropped: 1,200 records after one checkpoint, more than
    // K + 1024.
    let signer = signer();
    let mut items = Vec::new();
    let mut previous = Vec::new();
    let mut head = ChainHead::default();
    let records = |n| vec![AuditRecord::default(); n];
    let plan: [(usize, bool); 4] = [(600, false), (0, true), (600, false), (600, false)];
    for (at, (count, checkpoint)) in plan.into_iter().enumerate() {
        let number = at as u64 + 1;
        let batch = AuditBatch {
            instance: "a".into(),
            number,
            previous: previous.clone(),
            records: records(count),
            checkpoint: checkpoint.then(|| {
                signer.sign(&Checkpoint {
                    instance: "a".into(),
                    chains: vec![head.clone()],
                    every_records: 2,
                    reason: "records".into(),
                    ..Default::default()
                })
            }),
            ..Default::default()
        };
        let body = batch.encode_to_vec();
        previous = digest(&body);
        head = ChainHead {
            instance: "a".into(),
            number,
            digest: previous.clone(),
            sequence: number,
            ..Default::default()
        };
        items.push(ExportAuditResponse {
            item: Some(Item::Batch(ExportedBatch {
                sequence: number,
                body,
            })),
        });
    }
    let manifest = |every_records| {
        header(signer.sign(&Checkpoint {
            instance: "a".into(),
            chains: vec![head.clone()],
            every_records,
            reason: EXPORT_REASON.into(),
            ..Default::default()
        }))
    };
    let mut built = Built {
        items: items.clone(),
    };
    built.items.insert(0, manifest(2));
    let broken = built.broken();
    assert_eq!(broken.item, 4, "{broken}");
    assert!(
        broken.reason.contains("a checkpoint was dropped"),
        "{broken}"
    );
    // Under a writer keeping K = 1,000 the same run is allowed.
    let mut built = Built { items };
    built.items.insert(0, manifest(1000));
    built.verify().expect("within K + 1024");
}
