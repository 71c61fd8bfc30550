//! An audit chain as stored, and the check that it is whole: numbered from 1 without a gap,
//! each batch naming the digest of the one before.

use async_nats::jetstream::{self, consumer::pull::OrderedConfig};
use bytes::Bytes;
use hub_api::v1::AuditBatch;
use hub_log::names::{AUDIT_STREAM, audit_subject};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::AuditError;

/// SHA-256 of a batch's message body.
pub fn digest(body: &[u8]) -> Vec<u8> {
    Sha256::digest(body).to_vec()
}

/// SHA-256 of each record of `batch` (its protobuf encoding), in order: what the next batch
/// and a checkpoint's chain head name as `previous_records` and `last_records`.
pub fn record_digests(batch: &AuditBatch) -> Vec<Vec<u8>> {
    batch
        .records
        .iter()
        .map(|record| digest(&prost::Message::encode_to_vec(record)))
        .collect()
}

/// One batch as stored: its stream sequence, its body, and the body decoded.
#[derive(Debug, Clone)]
pub struct StoredBatch {
    pub sequence: u64,
    pub body: Bytes,
    pub batch: AuditBatch,
}

/// Where a chain is not whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at batch {index} (stream sequence {sequence}): {reason}")]
pub struct ChainBreak {
    /// The batch's place in the chain as read, from 1.
    pub index: u64,
    pub sequence: u64,
    pub reason: String,
}

/// Every batch of `instance`'s chain, in order.
pub async fn read_chain(
    js: &jetstream::Context,
    instance: &str,
) -> Result<Vec<StoredBatch>, AuditError> {
    use futures::StreamExt as _;
    let unavailable = |e: &dyn std::fmt::Display| AuditError::Unavailable(e.to_string());
    let stream = js
        .get_stream(AUDIT_STREAM)
        .await
        .map_err(|e| unavailable(&e))?;
    let mut consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: audit_subject(instance),
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    let pending = consumer
        .info()
        .await
        .map_err(|e| unavailable(&e))?
        .num_pending;
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    let mut batches = Vec::new();
    while (batches.len() as u64) < pending {
        let message = messages
            .next()
            .await
            .ok_or_else(|| AuditError::Unavailable("the chain's messages ended early".into()))?
            .map_err(|e| unavailable(&e))?;
        let sequence = message.info().map_err(|e| unavailable(&e))?.stream_sequence;
        let body = message.payload.clone();
        let batch = AuditBatch::decode(body.as_ref()).map_err(|e| {
            AuditError::Unavailable(format!("batch at sequence {sequence} unreadable: {e}"))
        })?;
        batches.push(StoredBatch {
            sequence,
            body,
            batch,
        });
    }
    Ok(batches)
}

/// Checks that `batches` are one whole chain of `instance`: numbered 1, 2, … and each naming
/// the digest of the one before (the first naming none).
pub fn check_chain(instance: &str, batches: &[StoredBatch]) -> Result<(), ChainBreak> {
    let mut previous: Vec<u8> = Vec::new();
    for (at, stored) in batches.iter().enumerate() {
        let index = at as u64 + 1;
        let broken = |reason: String| ChainBreak {
            index,
            sequence: stored.sequence,
            reason,
        };
        let batch = &stored.batch;
        if batch.instance != instance {
            return Err(broken(format!("it names instance {:?}", batch.instance)));
        }
        if batch.number != index {
            return Err(broken(format!("it is numbered {}", batch.number)));
        }
        if batch.previous != previous {
            return Err(broken(
                "it does not name the digest of the batch before it".to_owned(),
            ));
        }
        previous = digest(&stored.body);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use hub_api::v1::AuditRecord;
    use prost::Message;

    use super::*;

    /// A whole chain of `n` batches of one record each.
    fn chain(n: u64) -> Vec<StoredBatch> {
        let mut previous = Vec::new();
        (1..=n)
            .map(|number| {
                let batch = AuditBatch {
                    instance: "a".into(),
                    number,
                    previous: previous.clone(),
                    records: vec![AuditRecord {
                        action: format!("read-{number}"),
                        ..Default::default()
                    }],
                    ..Default::default()
                };
                let body: Bytes = batch.encode_to_vec().into();
                previous = digest(&body);
                StoredBatch {
                    sequence: number * 10,
                    body,
                    batch,
                }
            })
            .collect()
    }

    fn broken_at(batches: &[StoredBatch]) -> u64 {
        check_chain("a", batches).expect_err("broken").index
    }

    /// `stored` with its record changed and its body re-encoded, as a forger would.
    fn forged(stored: &StoredBatch) -> StoredBatch {
        let mut batch = stored.batch.clone();
        batch.records[0].department = "public-security".into();
        StoredBatch {
            sequence: stored.sequence,
            body: batch.encode_to_vec().into(),
            batch,
        }
    }

    #[test]
    fn a_whole_chain_passes_and_each_kind_of_tampering_breaks_it_at_the_right_batch() {
        let whole = chain(5);
        check_chain("a", &whole).expect("whole");
        check_chain("a", &[]).expect("an empty chain is whole");

        // Changed: the batch after it no longer names its digest.
        let mut changed = whole.clone();
        changed[2] = forged(&whole[2]);
        assert_eq!(broken_at(&changed), 4);
        // Dropped: the next one is numbered wrong.
        let mut dropped = whole.clone();
        dropped.remove(1);
        assert_eq!(broken_at(&dropped), 2);
        // Reordered.
        let mut reordered = whole.clone();
        reordered.swap(1, 2);
        assert_eq!(broken_at(&reordered), 2);
        // Inserted: a batch numbered and linked as the third, before the real third.
        let mut inserted = whole.clone();
        inserted.insert(2, forged(&whole[2]));
        assert_eq!(broken_at(&inserted), 4);
        // Another instance's batch.
        let mut foreign = whole.clone();
        foreign[0].batch.instance = "b".into();
        assert_eq!(broken_at(&foreign), 1);
    }
}
