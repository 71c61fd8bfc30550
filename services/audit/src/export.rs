//! Exports of the audit log, and their verification with the hub's public key alone.
//!
//! An export file is a sequence of [`ExportAuditResponse`]s, each prefixed with its length as a
//! protobuf varint: first the header, holding the checkpoint the hub made and signed for the
//! export (the manifest), then every batch of every chain in stream order, each exactly as
//! stored (stream sequence and body). The export ends at the manifest's chain heads.
//!
//! [`verify`] needs nothing but the file and the public keys. It checks that every chain is
//! numbered from 1 without a gap, that each batch names the SHA-256 of the one before, that
//! every checkpoint stored in a chain is signed by a given key and vouches for batches the
//! export holds unchanged, that no run of records between two checkpoints is longer than the
//! signing writer allows (so checkpoints cannot be dropped quietly), that the header holds a
//! checkpoint made for an export, and that each chain ends exactly at the head it signs. A
//! changed, reordered, dropped, inserted or truncated batch fails, naming the item of the
//! file, the chain, the batch number and the stream sequence where it was found (a batch is
//! the unit stored as one message: the record is found to within its batch).
//!
//! An operator able to rewrite the NATS store itself could still replace the tail of a chain
//! written since its last checkpoint and have the next export's checkpoint sign that. Each
//! export's checkpoint therefore anchors what came before: [`verify`] given an earlier export's
//! manifest checks that every head it signed is still in the new export, unchanged.

use std::collections::BTreeMap;

use bytes::Buf;
use hub_api::v1::{
    AuditBatch, AuditExportHeader, ChainHead, Checkpoint, ExportAuditResponse, ExportedBatch,
    LogDigestHead, export_audit_response::Item,
};
use prost::Message;

use crate::AuditError;
use crate::chain::{digest, record_digests};
use crate::signing::{CheckpointVerifier, hex};

/// The header's format string.
pub const EXPORT_FORMAT: &str = "gov.hub.audit-export.v1";

/// Appends `item` to `out` as the file holds it (length-prefixed).
pub fn write_item(item: &ExportAuditResponse, out: &mut Vec<u8>) {
    // Encoding into a Vec cannot run out of room.
    let _ = item.encode_length_delimited(out);
}

/// Where an export was found not to be what the hub stored and signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("item {item} ({place}): {reason}")]
pub struct Tampered {
    /// The item of the file, from 0 (the header).
    pub item: u64,
    /// The chain, batch number and stream sequence, as far as known.
    pub place: String,
    pub reason: String,
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The manifest: made and signed by the hub for this export.
    pub manifest: Checkpoint,
    /// The id of the key that signed the manifest.
    pub signed_by: Vec<u8>,
    pub batches: u64,
    pub records: u64,
    /// Checkpoints stored in the chains, each verified.
    pub checkpoints: u64,
    /// The event log's digest head the manifest signs.
    pub events: LogDigestHead,
}

/// One batch of the file, read.
struct Read {
    sequence: u64,
    batch: AuditBatch,
    digest: Vec<u8>,
}

impl Read {
    fn place(&self) -> String {
        place(&self.batch.instance, self.batch.number, self.sequence)
    }
}

fn place(instance: &str, number: u64, sequence: u64) -> String {
    format!("chain {instance}, batch {number}, stream sequence {sequence}")
}

/// A batch of a chain as read from the file.
struct Seen {
    item: u64,
    sequence: u64,
    digest: Vec<u8>,
    /// The digests of its records as the file holds them.
    records: Vec<Vec<u8>>,
}

/// A chain as read so far: each batch seen, by number; the records since its last
/// checkpoint, and the bound that checkpoint's writer kept (0: none yet).
#[derive(Default)]
struct Chain {
    batches: Vec<Seen>,
    run: u64,
    every_records: u64,
}

/// Which record of a batch differs from what the hub named (`named`: the digests of its
/// records the next batch or a checkpoint names) in the batch as found: the record changed,
/// dropped, inserted, or two records swapped, as ", record N ..." for a place; `None` when
/// nothing is named (a batch without records, or one written before records were named: the
/// two look alike) or none differs.
fn which_record(named: &[Vec<u8>], found: &[Vec<u8>]) -> Option<String> {
    if named.is_empty() || named == found {
        return None;
    }
    let at = named
        .iter()
        .zip(found)
        .position(|(n, f)| n != f)
        .unwrap_or(named.len().min(found.len()));
    let what = if found.len() + 1 == named.len() && found[at..] == named[at + 1..] {
        "dropped"
    } else if found.len() == named.len() + 1 && found[at + 1..] == named[at..] {
        "inserted"
    } else if found.len() == named.len()
        && at + 1 < found.len()
        && found[at] == named[at + 1]
        && found[at + 1] == named[at]
    {
        return Some(format!(", records {at} and {} swapped", at + 1));
    } else if at < found.len().min(named.len()) {
        "changed"
    } else {
        return Some(format!(
            ", {} records where {} were named",
            found.len(),
            named.len()
        ));
    };
    Some(format!(", record {at} {what}"))
}

impl Chain {
    /// Whether the run of records since the last checkpoint is within what a writer keeping
    /// `every_records` (or the chain's earlier bound, if larger) stores.
    fn run_within(&self, every_records: u64) -> Result<(), String> {
        let bound = crate::most_records_between_checkpoints(every_records.max(self.every_records));
        if self.run > bound {
            Err(format!(
                "{} records follow the chain's previous checkpoint, more than its writer stores                  without one ({bound}): a checkpoint was dropped",
                self.run
            ))
        } else {
            Ok(())
        }
    }
}

impl Chain {
    fn last_number(&self) -> u64 {
        self.batches.len() as u64
    }
}

/// The items of an export file.
pub fn read_items(mut bytes: &[u8]) -> Result<Vec<ExportAuditResponse>, Tampered> {
    let mut items = Vec::new();
    while bytes.has_remaining() {
        let item =
            ExportAuditResponse::decode_length_delimited(&mut bytes).map_err(|e| Tampered {
                item: items.len() as u64,
                place: "the file".to_owned(),
                reason: format!("it cannot be read ({e}): the file was cut or changed"),
            })?;
        items.push(item);
    }
    Ok(items)
}

/// Verifies an export file's bytes with the hub's public keys; `earlier`: the manifests of
/// earlier exports (verified), every head of which must be found unchanged in this one.
pub fn verify(
    bytes: &[u8],
    key: &CheckpointVerifier,
    earlier: &[Checkpoint],
) -> Result<Verified, Tampered> {
    let items = read_items(bytes)?;
    let header = match items.first().and_then(|i| i.item.as_ref()) {
        Some(Item::Header(header)) => header.clone(),
        _ => {
            return Err(Tampered {
                item: 0,
                place: "the header".to_owned(),
                reason: "the file does not begin with an export header".to_owned(),
            });
        }
    };
    let manifest = manifest(&header, key)?;
    let signed_by = header
        .manifest
        .as_ref()
        .map(|m| m.key_id.clone())
        .unwrap_or_default();
    let mut chains: BTreeMap<String, Chain> = BTreeMap::new();
    let mut last_sequence = 0;
    let (mut batches, mut records, mut checkpoints) = (0, 0, 0);
    for (at, item) in items.iter().enumerate().skip(1) {
        let item_no = at as u64;
        let Some(Item::Batch(exported)) = &item.item else {
            return Err(Tampered {
                item: item_no,
                place: "after the header".to_owned(),
                reason: "a second header".to_owned(),
            });
        };
        let read = read_batch(item_no, exported)?;
        let fail = |reason: String| Tampered {
            item: item_no,
            place: read.place(),
            reason,
        };
        if read.sequence <= last_sequence {
            return Err(fail(format!(
                "it is out of stream order: it follows stream sequence {last_sequence} \
                 (reordered or inserted)"
            )));
        }
        last_sequence = read.sequence;
        let chain = chains.entry(read.batch.instance.clone()).or_default();
        let expected = chain.last_number() + 1;
        if read.batch.number > expected {
            return Err(fail(format!(
                "batch {expected} of the chain should come first: {} missing (dropped)",
                batches_from(expected, read.batch.number - 1)
            )));
        }
        if read.batch.number < expected {
            return Err(fail(format!(
                "the chain already has batch {} (inserted or repeated)",
                read.batch.number
            )));
        }
        let previous = chain
            .batches
            .last()
            .map(|seen| seen.digest.clone())
            .unwrap_or_default();
        if read.batch.previous != previous {
            // The batch before no longer has the digest this one names: it was changed (or
            // this one was forged in its place).
            return Err(match chain.batches.last() {
                Some(seen) => Tampered {
                    item: seen.item,
                    place: place(&read.batch.instance, read.batch.number - 1, seen.sequence)
                        + &which_record(&read.batch.previous_records, &seen.records)
                            .unwrap_or_default(),
                    reason: format!(
                        "its content does not match the digest the next batch (item \
                         {item_no}) names: it was changed"
                    ),
                },
                None => fail("the chain's first batch names a batch before it".to_owned()),
            });
        }
        chain.batches.push(Seen {
            item: item_no,
            sequence: read.sequence,
            digest: read.digest.clone(),
            records: record_digests(&read.batch),
        });
        chain.run += read.batch.records.len() as u64;
        batches += 1;
        records += read.batch.records.len() as u64;
        if let Some(signed) = &read.batch.checkpoint {
            let checkpoint = key
                .verify(signed)
                .map_err(|e| fail(format!("the checkpoint it holds: {e}")))?;
            chain.run_within(checkpoint.every_records).map_err(fail)?;
            chain.run = 0;
            chain.every_records = checkpoint.every_records;
            vouched(&checkpoint, &chains, "the checkpoint of item", item_no)?;
            checkpoints += 1;
        }
    }
    ends_at_manifest(&manifest, &chains, items.len() as u64)?;
    for checkpoint in earlier {
        vouched(
            checkpoint,
            &chains,
            "the earlier export's checkpoint, item",
            0,
        )?;
    }
    Ok(Verified {
        events: manifest.events.clone().unwrap_or_default(),
        manifest,
        signed_by,
        batches,
        records,
        checkpoints,
    })
}

fn manifest(header: &AuditExportHeader, key: &CheckpointVerifier) -> Result<Checkpoint, Tampered> {
    signed_for_export(
        (&header.format, EXPORT_FORMAT),
        header.manifest.as_ref(),
        key,
    )
}

/// The checkpoint of an export's header, checked: the header's `format` is the `expected`
/// one, and the checkpoint is signed by one of the keys and was made for an export.
pub(crate) fn signed_for_export(
    (format, expected): (&str, &str),
    signed: Option<&hub_api::v1::SignedCheckpoint>,
    key: &CheckpointVerifier,
) -> Result<Checkpoint, Tampered> {
    let bad = |reason: String| Tampered {
        item: 0,
        place: "the header".to_owned(),
        reason,
    };
    if format != expected {
        return Err(bad(format!("the format is {format:?}, not {expected}")));
    }
    let signed = signed.ok_or_else(|| bad("it holds no signed checkpoint".to_owned()))?;
    let manifest = key
        .verify(signed)
        .map_err(|e| bad(format!("the export's checkpoint: {e}")))?;
    // Any checkpoint stored in a chain is validly signed too: one put in the header would
    // pass off a chain cut back to it as a whole export.
    if manifest.reason != EXPORT_REASON {
        return Err(bad(format!(
            "its checkpoint was made for {:?}, not for an export: the header was replaced",
            manifest.reason
        )));
    }
    Ok(manifest)
}

/// The reason of a checkpoint made for an export.
pub const EXPORT_REASON: &str = "export";

fn read_batch(item: u64, exported: &ExportedBatch) -> Result<Read, Tampered> {
    let batch = AuditBatch::decode(exported.body.as_slice()).map_err(|e| Tampered {
        item,
        place: format!("stream sequence {}", exported.sequence),
        reason: format!("its body is not an audit batch ({e}): it was changed"),
    })?;
    Ok(Read {
        sequence: exported.sequence,
        digest: digest(&exported.body),
        batch,
    })
}

/// Checks that every chain head `checkpoint` signs is a batch read so far, unchanged.
fn vouched(
    checkpoint: &Checkpoint,
    chains: &BTreeMap<String, Chain>,
    whose: &str,
    item: u64,
) -> Result<(), Tampered> {
    for head in &checkpoint.chains {
        let stored = chains.get(&head.instance).and_then(|chain| {
            usize::try_from(head.number)
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|i| chain.batches.get(i))
        });
        match stored {
            None => {
                return Err(Tampered {
                    item,
                    place: place(&head.instance, head.number, head.sequence),
                    reason: format!(
                        "{whose} {item} vouches for this batch, which the export lacks \
                         (dropped)"
                    ),
                });
            }
            Some(seen) if seen.digest != head.digest || seen.sequence != head.sequence => {
                return Err(Tampered {
                    item: seen.item,
                    place: place(&head.instance, head.number, seen.sequence)
                        + &which_record(&head.last_records, &seen.records).unwrap_or_default(),
                    reason: format!(
                        "it differs from the batch {whose} {item} signed (digest {}): it was \
                         changed",
                        hex(&head.digest)
                    ),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Checks that each chain of the file ends exactly at the head the manifest signs.
fn ends_at_manifest(
    manifest: &Checkpoint,
    chains: &BTreeMap<String, Chain>,
    items: u64,
) -> Result<(), Tampered> {
    let heads: BTreeMap<&str, &ChainHead> = manifest
        .chains
        .iter()
        .map(|h| (h.instance.as_str(), h))
        .collect();
    for (instance, chain) in chains {
        let Some(head) = heads.get(instance.as_str()) else {
            let (item, sequence) = item_and_sequence(chain.batches.first());
            return Err(Tampered {
                item,
                place: place(instance, 1, sequence),
                reason: "the export's signed checkpoint names no such chain (inserted)".to_owned(),
            });
        };
        let last = chain.last_number();
        if let Err(reason) = chain.run_within(manifest.every_records) {
            let (item, sequence) = item_and_sequence(chain.batches.last());
            return Err(Tampered {
                item,
                place: place(instance, last, sequence),
                reason,
            });
        }
        if last < head.number {
            let (item, sequence) = item_and_sequence(chain.batches.last());
            return Err(Tampered {
                item,
                place: place(instance, last, sequence),
                reason: format!(
                    "the chain ends here, but the export's signed checkpoint names batch {}: \
                     {} missing (truncated)",
                    head.number,
                    batches_from(last + 1, head.number)
                ),
            });
        }
        if last > head.number {
            let index = usize::try_from(head.number).unwrap_or(usize::MAX);
            let (item, sequence) = item_and_sequence(chain.batches.get(index));
            return Err(Tampered {
                item,
                place: place(instance, head.number + 1, sequence),
                reason: format!(
                    "the export's signed checkpoint ends the chain at batch {} (inserted)",
                    head.number
                ),
            });
        }
    }
    for head in heads.values() {
        if !chains.contains_key(&head.instance) {
            return Err(Tampered {
                item: items,
                place: place(&head.instance, head.number, head.sequence),
                reason: "the export's signed checkpoint names this chain, but the file holds \
                         none of it (dropped)"
                    .to_owned(),
            });
        }
    }
    vouched(manifest, chains, "the export's checkpoint, item", 0)
}

/// "batch 3 is" or "batches 3 to 5 are".
fn batches_from(first: u64, last: u64) -> String {
    if first == last {
        format!("batch {first} is")
    } else {
        format!("batches {first} to {last} are")
    }
}

/// The item and stream sequence of a batch read, if any.
fn item_and_sequence(batch: Option<&Seen>) -> (u64, u64) {
    batch
        .map(|seen| (seen.item, seen.sequence))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

/// Sends the export of GOV_AUDIT that `made` (a checkpoint made for it) is the manifest of:
/// the header, then every batch of every chain the manifest names, in stream order, up to
/// its head. Ends early when the receiver goes away; an error ends the export.
pub async fn send(
    js: &async_nats::jetstream::Context,
    made: &crate::MadeCheckpoint,
    tx: &tokio::sync::mpsc::Sender<Result<ExportAuditResponse, AuditError>>,
) {
    let header = ExportAuditResponse {
        item: Some(Item::Header(AuditExportHeader {
            format: EXPORT_FORMAT.to_owned(),
            manifest: Some(made.signed.clone()),
        })),
    };
    if tx.send(Ok(header)).await.is_err() {
        return;
    }
    if let Err(err) = send_batches(js, &made.checkpoint.chains, tx).await {
        let _ = tx.send(Err(err)).await;
    }
}

async fn send_batches(
    js: &async_nats::jetstream::Context,
    heads: &[ChainHead],
    tx: &tokio::sync::mpsc::Sender<Result<ExportAuditResponse, AuditError>>,
) -> Result<(), AuditError> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    use futures::StreamExt as _;
    let unavailable = |e: &dyn std::fmt::Display| AuditError::Unavailable(e.to_string());
    let ends: BTreeMap<&str, u64> = heads
        .iter()
        .map(|h| (h.instance.as_str(), h.number))
        .collect();
    let Some(last) = heads.iter().map(|h| h.sequence).max() else {
        return Ok(());
    };
    let stream = js
        .get_stream(hub_log::names::AUDIT_STREAM)
        .await
        .map_err(|e| unavailable(&e))?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: hub_log::names::AUDIT_SUBJECTS.to_owned(),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    loop {
        let message = messages
            .next()
            .await
            .ok_or_else(|| AuditError::Unavailable("the audit log's messages ended early".into()))?
            .map_err(|e| unavailable(&e))?;
        let sequence = message.info().map_err(|e| unavailable(&e))?.stream_sequence;
        if sequence > last {
            return Ok(());
        }
        let batch = AuditBatch::decode(message.payload.as_ref()).map_err(|e| {
            AuditError::Unavailable(format!("batch at sequence {sequence} unreadable: {e}"))
        })?;
        if ends
            .get(batch.instance.as_str())
            .is_some_and(|end| batch.number <= *end)
        {
            let item = ExportAuditResponse {
                item: Some(Item::Batch(ExportedBatch {
                    sequence,
                    body: message.payload.to_vec(),
                })),
            };
            if tx.send(Ok(item)).await.is_err() {
                return Ok(());
            }
        }
        if sequence == last {
            return Ok(());
        }
    }
}
