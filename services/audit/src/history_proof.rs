//! Exports of one aggregate's history with the proof that the event log holds it as it is,
//! and their verification with the hub's public key alone.
//!
//! A history export file is a sequence of [`ExportHistoryResponse`]s, each prefixed with its
//! length as a protobuf varint. First the header: a checkpoint made for the export, which
//! signs the event log digest's head and a [`HistoryClaim`] (the aggregate's subject, the
//! positions of its events up to that head, and the digest just before the first). Then one
//! item per position from the first of those to the head: the aggregate's events in full,
//! every other message by its subject and content hashes only.
//!
//! [`verify`] folds the items from the claimed digest with the log digest's own definitions
//! (`log_digest`) and requires the head the checkpoint signed. A changed event is named at
//! its item (its digest no longer follows); a dropped, inserted or reordered item, an event
//! of the aggregate passed off as another message, and a proof cut short are named too.

use std::collections::BTreeSet;

use bytes::Buf;
use hub_api::v1::{
    Checkpoint, ExportHistoryResponse, HistoryClaim, HistoryExportHeader, LogDigestHead,
    export_history_response::Item,
};
use prost::Message;

use crate::export::{Tampered, signed_for_export};
use crate::log_digest::{EMPTY, content_hash_of, leaf, next, subject_hash};
use crate::signing::CheckpointVerifier;

/// The header's format string.
pub const HISTORY_FORMAT: &str = "gov.hub.history-export.v1";

/// Appends `item` to `out` as the file holds it (length-prefixed).
pub fn write_item(item: &ExportHistoryResponse, out: &mut Vec<u8>) {
    // Encoding into a Vec cannot run out of room.
    let _ = item.encode_length_delimited(out);
}

/// What a verified history export holds.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedHistory {
    pub manifest: Checkpoint,
    pub claim: HistoryClaim,
    /// The log digest's head the proof folds to.
    pub head: LogDigestHead,
    /// Messages of other aggregates the proof steps over.
    pub others: u64,
}

fn tampered(item: u64, place: String, reason: impl Into<String>) -> Tampered {
    Tampered {
        item,
        place,
        reason: reason.into(),
    }
}

fn digest32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

/// Verifies a history export file's bytes with the hub's public keys.
pub fn verify(bytes: &[u8], key: &CheckpointVerifier) -> Result<VerifiedHistory, Tampered> {
    let mut rest = bytes;
    let mut items = Vec::new();
    while rest.has_remaining() {
        let item = ExportHistoryResponse::decode_length_delimited(&mut rest).map_err(|e| {
            tampered(
                items.len() as u64,
                "the file".to_owned(),
                format!("it cannot be read ({e}): the file was cut or changed"),
            )
        })?;
        items.push(item);
    }
    let header_place = || "the header".to_owned();
    let Some(Some(Item::Header(header))) = items.first().map(|i| i.item.clone()) else {
        return Err(tampered(
            0,
            header_place(),
            "the file does not begin with a history export header",
        ));
    };
    let (manifest, claim, head) = manifest(&header, key)?;
    let claimed: BTreeSet<u64> = claim.positions.iter().copied().collect();
    let aggregate_subject = subject_hash(&claim.subject);
    let mut running = digest32(&claim.digest_before)
        .ok_or_else(|| tampered(0, header_place(), "its digest before is not 32 bytes"))?;
    let Some(&first) = claimed.first() else {
        if items.len() > 1 {
            return Err(tampered(
                1,
                "after the header".to_owned(),
                "the checkpoint names no event of the aggregate, yet the file goes on",
            ));
        }
        return Ok(VerifiedHistory {
            manifest,
            claim,
            head,
            others: 0,
        });
    };
    let mut expected = first;
    let mut others = 0;
    for (at, item) in items.iter().enumerate().skip(1) {
        let item_no = at as u64;
        let place = |position: u64| format!("position {position}");
        let in_order = |position: u64| {
            if position == expected {
                Ok(())
            } else {
                Err(tampered(
                    item_no,
                    place(position),
                    format!(
                        "position {expected} should come here: a message was dropped, \
                         inserted or reordered"
                    ),
                ))
            }
        };
        match &item.item {
            Some(Item::Event(event)) => {
                let position = event.position;
                in_order(position)?;
                if event.subject != claim.subject {
                    return Err(tampered(
                        item_no,
                        place(position),
                        "it is another aggregate's message given as this one's event",
                    ));
                }
                if !claimed.contains(&position) {
                    return Err(tampered(
                        item_no,
                        place(position),
                        "the checkpoint does not name this position as one of the aggregate's \
                         events (inserted)",
                    ));
                }
                let headers: Vec<(&str, &str)> = event
                    .headers
                    .iter()
                    .map(|h| (h.name.as_str(), h.value.as_str()))
                    .collect();
                let content = content_hash_of(event.stored_at_nanos, &headers, &event.payload);
                running = next(&running, &leaf(position, &aggregate_subject, &content));
                if event.digest != running {
                    return Err(tampered(
                        item_no,
                        place(position),
                        "the event differs from what the log stored there (the log's digest \
                         does not follow): it was changed",
                    ));
                }
            }
            Some(Item::Other(other)) => {
                let position = other.position;
                in_order(position)?;
                let (Some(subject), Some(content)) =
                    (digest32(&other.subject_hash), digest32(&other.content_hash))
                else {
                    return Err(tampered(
                        item_no,
                        place(position),
                        "its digests are not 32 bytes",
                    ));
                };
                if subject == aggregate_subject || claimed.contains(&position) {
                    return Err(tampered(
                        item_no,
                        place(position),
                        "an event of the aggregate is given by its digests only (hidden)",
                    ));
                }
                running = next(&running, &leaf(position, &subject, &content));
                others += 1;
            }
            _ => {
                return Err(tampered(
                    item_no,
                    "after the header".to_owned(),
                    "a second header",
                ));
            }
        }
        expected += 1;
    }
    let last_item = items.len() as u64 - 1;
    if expected - 1 != head.position {
        return Err(tampered(
            last_item,
            place_of(expected - 1),
            format!(
                "the proof ends at position {}, but the checkpoint signs the log up to {}: the \
                 file was cut short",
                expected - 1,
                head.position
            ),
        ));
    }
    if running.as_slice() != head.digest.as_slice() {
        return Err(tampered(
            last_item,
            place_of(head.position),
            "the messages do not fold to the digest the checkpoint signed: one was changed",
        ));
    }
    Ok(VerifiedHistory {
        manifest,
        claim,
        head,
        others,
    })
}

fn place_of(position: u64) -> String {
    format!("position {position}")
}

fn manifest(
    header: &HistoryExportHeader,
    key: &CheckpointVerifier,
) -> Result<(Checkpoint, HistoryClaim, LogDigestHead), Tampered> {
    let bad = |reason: String| tampered(0, "the header".to_owned(), reason);
    let manifest = signed_for_export(
        (&header.format, HISTORY_FORMAT),
        header.manifest.as_ref(),
        key,
    )?;
    let claim = manifest
        .history
        .clone()
        .ok_or_else(|| bad("its checkpoint vouches for no aggregate's history".to_owned()))?;
    let head = manifest.events.clone().unwrap_or_default();
    if claim.positions.iter().any(|p| *p > head.position) {
        return Err(bad(
            "its checkpoint names positions beyond the head it signs".to_owned(),
        ));
    }
    Ok((manifest, claim, head))
}

/// The digest before `position`, as the proof starts from it: [`EMPTY`] before the first.
pub fn digest_before(position: u64, previous: Option<[u8; 32]>) -> [u8; 32] {
    if position <= 1 {
        EMPTY
    } else {
        previous.unwrap_or(EMPTY)
    }
}

#[cfg(test)]
mod tests;
