//! The export of one aggregate's history with its proof against the event log's digest (see
//! `hub_audit::history_proof` for the file and its verification).

use async_nats::jetstream::message::StreamMessage;
use hub_api::ApiError;
use hub_api::v1::{
    ExportHistoryRequest, ExportHistoryResponse, HistoryClaim, HistoryExportHeader, LogDigestHead,
    OtherMessage, ProvenEvent, StoredHeader, export_history_response::Item,
};
use hub_audit::history_proof::{HISTORY_FORMAT, digest_before};
use hub_audit::log_digest::{LogDigest, is_nats_header};
use hub_audit::{Audit, AuditError, HistoryExport, MadeCheckpoint};
use hub_domain::Violations;
use hub_log::Appender;
use hub_log::names::{EVENTS_STREAM, event_subject};
use tokio::sync::mpsc;

use super::history::read;

/// Positions of other messages read from the digest's store at a time.
const RANGE_CHUNK: u64 = 1000;

/// What an export is about: the aggregate, its subject, and its events' positions up to the
/// digest's head, which the checkpoint made for it signs.
pub(super) struct Planned {
    pub made: MadeCheckpoint,
    claim: HistoryClaim,
    head: u64,
}

/// Checks the request, reads where the aggregate's events are, and has the audit writer sign
/// a checkpoint for them at the digest's current head.
pub(super) async fn plan(
    log: &Appender,
    digest: &LogDigest,
    audit: &Audit,
    request: &ExportHistoryRequest,
) -> Result<Planned, ApiError> {
    let mut violations = Violations::new();
    let parsed = super::parse_aggregate(&mut violations, "aggregate", &request.aggregate);
    let (kind, id) = violations.finish(|| parsed.unwrap_or_default())?;
    let subject = event_subject(kind, &id);
    let head = digest.head();
    let positions: Vec<u64> = read(log, &subject, 0)
        .await?
        .iter()
        .map(hub_log::Entry::position)
        .filter(|p| *p <= head.position)
        .collect();
    let before = match positions.first() {
        Some(&first) if first > 1 => {
            let entry = digest.entry(first - 1).map_err(unavailable)?;
            // Below its head the digest's store holds every position; a gap is a fault of
            // the store's, not something a proof could step over.
            if entry.is_none() {
                tracing::error!(
                    position = first - 1,
                    "the log digest's store lacks a position below its head"
                );
                return Err(ApiError::Internal);
            }
            entry.map(|e| e.digest)
        }
        _ => None,
    };
    let claim = HistoryClaim {
        aggregate: format!("{kind}/{id}"),
        subject,
        digest_before: digest_before(positions.first().copied().unwrap_or(0), before).to_vec(),
        positions,
    };
    let made = audit
        .checkpoint_history(HistoryExport {
            events: LogDigestHead {
                position: head.position,
                digest: head.digest.to_vec(),
            },
            history: claim.clone(),
        })
        .await
        .map_err(ApiError::from)?;
    Ok(Planned {
        made,
        claim,
        head: head.position,
    })
}

fn unavailable(err: AuditError) -> ApiError {
    ApiError::from(err)
}

/// Sends the planned export: the header, then one item per position from the aggregate's
/// first event to the head. Ends early when the receiver goes away.
pub(super) async fn send(
    log: &Appender,
    digest: &LogDigest,
    planned: Planned,
    tx: &mpsc::Sender<Result<ExportHistoryResponse, ApiError>>,
) {
    let header = ExportHistoryResponse {
        item: Some(Item::Header(HistoryExportHeader {
            format: HISTORY_FORMAT.to_owned(),
            manifest: Some(planned.made.signed.clone()),
        })),
    };
    if tx.send(Ok(header)).await.is_err() {
        return;
    }
    if let Err(err) = send_items(log, digest, &planned, tx).await {
        let _ = tx.send(Err(err)).await;
    }
}

async fn send_items(
    log: &Appender,
    digest: &LogDigest,
    planned: &Planned,
    tx: &mpsc::Sender<Result<ExportHistoryResponse, ApiError>>,
) -> Result<(), ApiError> {
    let Some(&first) = planned.claim.positions.first() else {
        return Ok(());
    };
    let stream = log
        .context()
        .get_stream_no_info(EVENTS_STREAM)
        .await
        .map_err(|e| ApiError::Unavailable(format!("the event log cannot be read: {e}")))?;
    let mut from = first;
    while from <= planned.head {
        let to = (from + RANGE_CHUNK - 1).min(planned.head);
        let store = digest.clone();
        let entries = tokio::task::spawn_blocking(move || store.range(from, to))
            .await
            .map_err(|_| ApiError::Internal)?
            .map_err(unavailable)?;
        for entry in entries {
            let item = if planned
                .claim
                .positions
                .binary_search(&entry.position)
                .is_ok()
            {
                let message = stream.direct_get(entry.position).await.map_err(|e| {
                    ApiError::Unavailable(format!("the event log cannot be read: {e}"))
                })?;
                Item::Event(proven(&message, entry.digest))
            } else {
                Item::Other(OtherMessage {
                    position: entry.position,
                    subject_hash: entry.subject_hash.to_vec(),
                    content_hash: entry.content_hash.to_vec(),
                })
            };
            if tx
                .send(Ok(ExportHistoryResponse { item: Some(item) }))
                .await
                .is_err()
            {
                return Ok(());
            }
        }
        from = to + 1;
    }
    Ok(())
}

/// A stored message in full, NATS's own headers left out, with the log's digest after it.
fn proven(message: &StreamMessage, digest: [u8; 32]) -> ProvenEvent {
    let mut headers = Vec::new();
    for (name, values) in message.headers.iter() {
        let name: &str = name.as_ref();
        if is_nats_header(name) {
            continue;
        }
        for value in values {
            headers.push(StoredHeader {
                name: name.to_owned(),
                value: value.as_str().to_owned(),
            });
        }
    }
    ProvenEvent {
        position: message.sequence,
        subject: message.subject.to_string(),
        stored_at_nanos: i64::try_from(hub_log::stored::stored_nanos(
            Some(&message.headers),
            message.time.unix_timestamp_nanos(),
        ))
        .unwrap_or(i64::MAX),
        headers,
        payload: message.payload.to_vec(),
        digest: digest.to_vec(),
    }
}
