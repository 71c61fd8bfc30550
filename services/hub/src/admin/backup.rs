//! ExportLog and ImportLog: a backup of the event log, and its restore into an empty hub at
//! the same positions with the same chained digest (see [`crate::backup`]).
//!
//! An import is first received whole into a scratch file under `<data_dir>/scratch` and
//! checked there (every message, the trailer's checks, and for a resumed import the log's
//! messages against the export's first ones): a damaged or foreign export is refused with
//! nothing stored. It then appends each message with `Nats-Expected-Last-Sequence` = its position - 1, so
//! it lands at its own position or not at all, and with `hub-stored-at` = the stored time it
//! had, which every reader takes as its stored time (the log's digest included). Up to
//! [`IN_FLIGHT`] appends are in flight. The log cannot be cut back (it denies deletes), so an
//! import that stopped halfway is resumed by running it again: the messages the log holds
//! already are checked against the export by the chained digest at its last position and
//! skipped.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishAckFuture;
use hub_api::ApiError;
use hub_api::v1::log_export_item::Item;
use hub_api::v1::{
    ExportLogResponse, ImportLogRequest, ImportLogResponse, LogExportHeader, LogExportItem,
    LogExportTrailer, LogMessage,
};
use hub_audit::log_digest::LogDigest;
use hub_gateway::log_failed as unavailable;
use hub_log::Appender;
use hub_log::names::EVENTS_SUBJECTS;
use hub_log::names::headers::{CE_ID, HUB_STORED_AT, MSG_ID};
use hub_log::stored::stored_nanos;
use prost::Message as _;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;
use tonic::Streaming;
use tracing::{info, warn};

use crate::backup::{BadExport, LOG_EXPORT_FORMAT, LogChecks, ReadItem, kept_headers, read_item};

/// Appends of an import in flight at once.
const IN_FLIGHT: usize = 256;
/// How long the end of an import waits for the log's digest to fold what it stored.
const DIGEST_WAIT: Duration = Duration::from_secs(120);

fn timestamp(nanos: i128) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: i64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(i64::MAX),
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    }
}

/// The export's header: the whole log as it stands now.
pub(super) async fn plan_export(
    log: &Appender,
    instance: &str,
) -> Result<LogExportHeader, ApiError> {
    let last = log.last_position().await.map_err(unavailable)?;
    Ok(LogExportHeader {
        format: LOG_EXPORT_FORMAT.to_owned(),
        instance: instance.to_owned(),
        made: Some(hub_api::timestamp(jiff::Timestamp::now())),
        first_position: u64::from(last > 0),
        last_position: last,
    })
}

/// Sends the export `header` plans: the header, every message, the trailer.
pub(super) async fn send_export(
    log: &Appender,
    header: LogExportHeader,
    tx: &mpsc::Sender<Result<ExportLogResponse, ApiError>>,
) {
    let item = |item| ExportLogResponse {
        item: Some(LogExportItem { item: Some(item) }),
    };
    let Ok(mut checks) = LogChecks::new(&header) else {
        return;
    };
    let last = header.last_position;
    if tx.send(Ok(item(Item::Header(header)))).await.is_err() {
        return;
    }
    let mut after = 0;
    while after < last {
        let batch = match log.read_raw_batch(EVENTS_SUBJECTS, after).await {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => break,
            Err(err) => {
                let _ = tx.send(Err(unavailable(err))).await;
                return;
            }
        };
        for stored in batch.iter().filter(|m| m.sequence <= last) {
            let headers = stored.headers.iter().flat_map(|(name, values)| {
                let name: &str = name.as_ref();
                values.iter().map(move |value| (name, value.as_str()))
            });
            let message = LogMessage {
                position: stored.sequence,
                subject: stored.subject.to_string(),
                stored_at: Some(timestamp(stored_nanos(
                    Some(&stored.headers),
                    stored.time.unix_timestamp_nanos(),
                ))),
                headers: kept_headers(headers),
                body: stored.payload.to_vec(),
            };
            if let Err(err) = checks.add(&message) {
                // The log itself has a gap: it denies deletes, so this is damage.
                warn!(error = %err, "backup: the event log is not contiguous");
                let _ = tx
                    .send(Err(ApiError::FailedPrecondition(format!(
                        "the event log cannot be exported whole: {err}"
                    ))))
                    .await;
                return;
            }
            if tx.send(Ok(item(Item::Message(message)))).await.is_err() {
                return;
            }
        }
        after = batch.last().map_or(last, |m| m.sequence);
    }
    let _ = tx.send(Ok(item(Item::Trailer(checks.trailer())))).await;
}

fn bad(err: BadExport) -> ApiError {
    let mut violations = hub_domain::Violations::new();
    violations.push("item", err.to_string());
    violations.into()
}

/// The first item of an import: its header.
pub(super) async fn import_header(
    items: &mut Streaming<ImportLogRequest>,
) -> Result<LogExportHeader, ApiError> {
    match next_item(items).await? {
        Some(Item::Header(header)) if header.format == LOG_EXPORT_FORMAT => Ok(header),
        _ => Err(bad(BadExport::NoHeader)),
    }
}

async fn next_item(items: &mut Streaming<ImportLogRequest>) -> Result<Option<Item>, ApiError> {
    match items.message().await {
        Ok(Some(request)) => Ok(request.item.and_then(|i| i.item)),
        Ok(None) => Ok(None),
        Err(status) => Err(ApiError::Unavailable(format!(
            "the import's stream broke off: {}",
            status.message()
        ))),
    }
}

/// Waits until the log's digest has folded `position`; its digest there.
async fn digest_at(digest: &LogDigest, position: u64) -> Result<[u8; 32], ApiError> {
    if position == 0 {
        return Ok(hub_audit::log_digest::EMPTY);
    }
    let mut head = digest.subscribe();
    // The guard `wait_for` answers with is dropped at once, not held over the reads below.
    let reached = matches!(
        tokio::time::timeout(DIGEST_WAIT, head.wait_for(|h| h.position >= position)).await,
        Ok(Ok(_))
    );
    if !reached {
        return Err(ApiError::Unavailable(format!(
            "the event log's digest did not reach position {position} in time; retry later"
        )));
    }
    match digest.entry(position) {
        Ok(Some(entry)) => Ok(entry.digest),
        other => {
            warn!(position, outcome = ?other.map(|e| e.is_some()), "backup: no digest entry");
            Err(ApiError::Internal)
        }
    }
}

/// The headers a message is appended with.
fn headers_of(message: &LogMessage, nanos: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for header in &message.headers {
        if header.name.eq_ignore_ascii_case(HUB_STORED_AT)
            || hub_audit::log_digest::is_nats_header(&header.name)
        {
            continue;
        }
        headers.append(header.name.as_str(), header.value.as_str());
        if header.name == CE_ID {
            headers.insert(MSG_ID, header.value.as_str());
        }
    }
    headers.insert(HUB_STORED_AT, nanos.to_string());
    headers.insert(
        "Nats-Expected-Last-Sequence",
        (message.position - 1).to_string(),
    );
    headers
}

/// Waits for the oldest append in flight and checks it landed at its position.
async fn landed(in_flight: &mut VecDeque<(u64, PublishAckFuture)>) -> Result<(), ApiError> {
    let Some((position, ack)) = in_flight.pop_front() else {
        return Ok(());
    };
    let stopped = |reason: String| {
        warn!(position, reason = %reason, "backup: an import stopped");
        ApiError::FailedPrecondition(format!(
            "the import stopped at position {position}: {reason}; the log keeps what it \
             stored before it, and running the import again resumes it"
        ))
    };
    match ack.await {
        Ok(ack) if ack.sequence == position => Ok(()),
        Ok(ack) => Err(stopped(format!(
            "it was stored at {} instead",
            ack.sequence
        ))),
        Err(err) => Err(stopped(err.to_string())),
    }
}

/// An export received whole and checked, in a scratch file: one `LogMessage` after another,
/// length-delimited.
struct Staged {
    file: tempfile::NamedTempFile,
    checks: LogChecks,
    trailer: LogExportTrailer,
}

/// Receives the rest of an import whose header was `header` into a file under `scratch`,
/// checking every message, the trailer and (for a resumed import) that the log's first
/// `held` messages are the export's: nothing is appended before all of it holds.
async fn stage(
    digest: &LogDigest,
    (header, held): (&LogExportHeader, u64),
    items: &mut Streaming<ImportLogRequest>,
    scratch: &Path,
) -> Result<Staged, ApiError> {
    let mut checks = LogChecks::new(header).map_err(bad)?;
    let file = {
        let scratch = scratch.to_owned();
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&scratch)?;
            tempfile::Builder::new()
                .prefix("import-")
                .tempfile_in(&scratch)
        })
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|err| {
            warn!(error = %err, "import: no scratch file");
            ApiError::Internal
        })?
    };
    let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(
        file.reopen().map_err(|_| ApiError::Internal)?,
    ));
    let trailer = loop {
        match next_item(items).await? {
            Some(Item::Message(message)) => {
                checks.add(&message).map_err(bad)?;
                // Stored by an earlier run: the digest at the log's end checks them all.
                if message.position == held
                    && checks.log_digest() != digest_at(digest, held).await?
                {
                    return Err(ApiError::FailedPrecondition(format!(
                        "the event log holds {held} messages that are not this export's first \
                         {held}: it is not a restore of it to resume"
                    )));
                }
                let item = LogExportItem {
                    item: Some(Item::Message(message)),
                };
                out.write_all(&item.encode_length_delimited_to_vec())
                    .await
                    .map_err(|err| {
                        warn!(error = %err, "import: the scratch file cannot be written");
                        ApiError::Internal
                    })?;
            }
            Some(Item::Trailer(trailer)) => break trailer,
            Some(Item::Header(_)) => return Err(bad(BadExport::NoHeader)),
            None => return Err(bad(BadExport::NoTrailer)),
        }
    };
    if next_item(items).await?.is_some() {
        return Err(bad(BadExport::AfterTrailer));
    }
    checks.finish(header, &trailer).map_err(bad)?;
    out.flush().await.map_err(|_| ApiError::Internal)?;
    Ok(Staged {
        file,
        checks,
        trailer,
    })
}

/// Sends the messages of a staged export after position `held` down `tx`, in order.
fn read_back(
    file: std::fs::File,
    held: u64,
    tx: &mpsc::Sender<LogMessage>,
) -> Result<(), ReadItem> {
    let mut reader = std::io::BufReader::new(file);
    while let Some(item) = read_item(&mut reader)? {
        if let Some(Item::Message(message)) = item.item
            && message.position > held
            && tx.blocking_send(message).is_err()
        {
            return Ok(()); // the appends stopped
        }
    }
    Ok(())
}

/// Imports the rest of an export whose header was `header` (the log held `held` messages
/// when it began): received whole into a file under `scratch` and checked first (the
/// messages, the trailer, and the log's first `held` being the export's), then appended.
pub(super) async fn import(
    log: &Appender,
    digest: &LogDigest,
    (header, held): (LogExportHeader, u64),
    items: &mut Streaming<ImportLogRequest>,
    scratch: &Path,
) -> Result<ImportLogResponse, ApiError> {
    let staged = stage(digest, (&header, held), items, scratch).await?;
    let (tx, mut rx) = mpsc::channel(IN_FLIGHT);
    let file = staged.file.reopen().map_err(|_| ApiError::Internal)?;
    let reading = tokio::task::spawn_blocking(move || read_back(file, held, &tx));
    let js = log.context();
    let mut in_flight: VecDeque<(u64, PublishAckFuture)> = VecDeque::new();
    while let Some(message) = rx.recv().await {
        let nanos = message
            .stored_at
            .as_ref()
            .map(|t| {
                t.seconds
                    .saturating_mul(1_000_000_000)
                    .saturating_add(i64::from(t.nanos))
            })
            .unwrap_or_default();
        let ack = js
            .publish_with_headers(
                message.subject.clone(),
                headers_of(&message, nanos),
                message.body.into(),
            )
            .await
            .map_err(|err| {
                ApiError::Unavailable(format!("the event log cannot be written now: {err}"))
            })?;
        in_flight.push_back((message.position, ack));
        if in_flight.len() >= IN_FLIGHT {
            landed(&mut in_flight).await?;
        }
    }
    while !in_flight.is_empty() {
        landed(&mut in_flight).await?;
    }
    // The file was written and checked by this hub a moment ago: a failure to read it back
    // is the disk's.
    reading
        .await
        .map_err(|_| ApiError::Internal)?
        .map_err(|err| {
            warn!(error = %err, "import: the staged export cannot be read back");
            ApiError::Internal
        })?;
    let Staged {
        file,
        checks,
        trailer,
    } = staged;
    let _ = tokio::task::spawn_blocking(move || drop(file)).await;
    let last = checks.last();
    let stored = digest_at(digest, last).await?;
    info!(
        messages = checks.count(),
        last,
        matches = stored.to_vec() == trailer.log_digest,
        "imported the event log"
    );
    Ok(ImportLogResponse {
        messages: checks.count(),
        first_position: header.first_position,
        last_position: last,
        expected_log_digest: trailer.log_digest,
        log_digest: stored.to_vec(),
    })
}
