//! The audit log. Every query, feed subscription and refused request is recorded (who, what,
//! why, when, the outcome) and appended to the stream `GOV_AUDIT` before its answer leaves
//! the hub: an answer whose record cannot be stored is not given (UNAVAILABLE).
//!
//! Each hub instance writes its own hash chain on subject `gov.audit.<instance>`: records are
//! gathered into batches (one append carries every record waiting, so auditing costs one
//! append per batch, not per read), each batch names the SHA-256 of the previous batch's body,
//! and each append expects the chain's last subject sequence, so two writers on one chain
//! cannot fork it: the second one's appends are refused.
//!
//! - [`log_digest`]: a running SHA-256 chain over the event log (`GOV_EVENTS`), computed
//!   after the fact by a task of its own (no serialised writer on appends).
//! - [`signing`]: checkpoints signed with the hub's Ed25519 audit key. Every K records,
//!   every T seconds when anything moved, at shutdown and for each export, the writer appends
//!   to its chain a checkpoint naming the heads of every chain and of the event log's chained
//!   digest, so a chain cut short or rewritten no longer matches what was signed.
//! - [`export`]: an export of GOV_AUDIT ending at a checkpoint made for it, and its
//!   verification with the public key alone, naming the first item found tampered with.
//! - [`ledger`]: the disclosure ledger, a read model over GOV_AUDIT: which department received
//!   which care record, under which grants, with which fields in clear, when.

mod chain;
pub mod export;
pub mod history_proof;
pub mod ledger;
pub mod log_digest;
pub mod signing;
mod writer;

pub use chain::{ChainBreak, StoredBatch, check_chain, digest, read_chain, record_digests};
pub use hub_api::v1::{AuditBatch, AuditRecord, Checkpoint, SignedCheckpoint};
pub use writer::{
    Audit, AuditError, Checkpoints, HistoryExport, LogHeadSource, MAX_BATCH, MadeCheckpoint,
    most_records_between_checkpoints,
};

use hub_api::ApiError;
use hub_api::identity::{Identity, Proof};

/// The outcome field of an answered request.
pub const OK: &str = "ok";

/// A record of `action` by `who` (`None`: the caller's proof failed, so nobody is known),
/// with `outcome` filled in from `result`: "ok", or the refusal's code and text.
pub fn record<T>(
    who: Option<&Identity>,
    action: &str,
    result: &Result<T, ApiError>,
) -> AuditRecord {
    let refusal = result
        .as_ref()
        .err()
        .map(|err| tonic::Status::from(err.clone()));
    record_status(who, action, refusal.as_ref())
}

/// [`record`] for an answer already turned into a gRPC status: `refusal` is `None` when the
/// request was answered.
pub fn record_status(
    who: Option<&Identity>,
    action: &str,
    refusal: Option<&tonic::Status>,
) -> AuditRecord {
    let mut record = AuditRecord {
        time: Some(now()),
        action: action.to_owned(),
        outcome: OK.to_owned(),
        ..Default::default()
    };
    if let Some(Identity::Department(d)) = who {
        record.department = d.code.to_string();
        record.proof = match d.proof {
            Proof::Certificate => "certificate",
            Proof::Token => "token",
            Proof::Header => "header",
        }
        .to_owned();
        record.acting_person = d.person.clone();
        record.purpose = d.purpose.clone();
    }
    if let Some(status) = refusal {
        record.outcome = code_name(status.code()).to_owned();
        record.reason = status.message().to_owned();
    }
    record
}

/// sled 0.34 reports a held file lock as an `Other` I/O error with this text.
fn is_lock_error(err: &sled::Error) -> bool {
    matches!(err, sled::Error::Io(e)
        if e.kind() == std::io::ErrorKind::WouldBlock
            || e.to_string().starts_with("could not acquire lock"))
}

/// The page cache of each audit database (the disclosure ledger, the log digest). sled's
/// default is 1 GiB; their work is appends and point reads of recent entries.
pub const CACHE_BYTES: u64 = 16 << 20;

/// Opens (or creates) the sled database in `dir`. A folder held by this process's previous
/// handle (its threads still letting go) is waited for a little; one held by another process
/// is refused.
pub(crate) fn open_sled(dir: &std::path::Path) -> Result<sled::Db, sled::Error> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .open()
        {
            Err(err)
                if is_lock_error(&err) && started.elapsed() < std::time::Duration::from_secs(5) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// The messages of `stream` after position `after`, through an ordered consumer (ephemeral,
/// recreated by the client on a gap); `Err` with its text.
pub(crate) async fn follow(
    stream: &async_nats::jetstream::stream::Stream,
    description: &str,
    after: u64,
) -> Result<async_nats::jetstream::consumer::pull::Ordered, String> {
    use async_nats::jetstream::consumer;
    let deliver_policy = match after {
        0 => consumer::DeliverPolicy::All,
        after => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: after + 1,
        },
    };
    stream
        .create_consumer(consumer::pull::OrderedConfig {
            description: Some(description.to_owned()),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| format!("create consumer: {e}"))?
        .messages()
        .await
        .map_err(|e| format!("consume: {e}"))
}

/// The next run of messages a consumer delivers: the first waited for (`Ok(None)` at
/// shutdown), then every one already waiting, up to `most`, with the failure that ended the
/// run early if any (the run's messages are to be applied before it is acted on).
pub(crate) async fn next_run<E: std::fmt::Display>(
    messages: &mut (impl futures::Stream<Item = Result<async_nats::jetstream::Message, E>> + Unpin),
    most: usize,
    shutdown: &tokio_util::sync::CancellationToken,
) -> Result<Option<(Vec<async_nats::jetstream::Message>, Option<String>)>, String> {
    use futures::{FutureExt as _, StreamExt as _};
    let first = tokio::select! {
        _ = shutdown.cancelled() => return Ok(None),
        next = messages.next() => match next {
            None => return Err("consumer stream ended".to_owned()),
            Some(Err(err)) => return Err(format!("consumer: {err}")),
            Some(Ok(message)) => message,
        },
    };
    let mut run = vec![first];
    while run.len() < most {
        match messages.next().now_or_never() {
            Some(Some(Ok(message))) => run.push(message),
            Some(Some(Err(err))) => return Ok(Some((run, Some(format!("consumer: {err}"))))),
            Some(None) => return Ok(Some((run, Some("consumer stream ended".to_owned())))),
            None => break,
        }
    }
    Ok(Some((run, None)))
}

pub(crate) fn now() -> prost_types::Timestamp {
    let now = jiff::Timestamp::now();
    prost_types::Timestamp {
        seconds: now.as_second(),
        nanos: now.subsec_nanosecond(),
    }
}

/// A gRPC code in lower snake case, as the audit record's outcome.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "ok",
        C::Cancelled => "cancelled",
        C::Unknown => "unknown",
        C::InvalidArgument => "invalid_argument",
        C::DeadlineExceeded => "deadline_exceeded",
        C::NotFound => "not_found",
        C::AlreadyExists => "already_exists",
        C::PermissionDenied => "permission_denied",
        C::ResourceExhausted => "resource_exhausted",
        C::FailedPrecondition => "failed_precondition",
        C::Aborted => "aborted",
        C::OutOfRange => "out_of_range",
        C::Unimplemented => "unimplemented",
        C::Internal => "internal",
        C::Unavailable => "unavailable",
        C::DataLoss => "data_loss",
        C::Unauthenticated => "unauthenticated",
    }
}
