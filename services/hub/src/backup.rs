//! A backup of the event log (an export, as `hubctl export` writes it): a header, every
//! message as stored, and a trailer with two checks, which the hub computes as it exports and
//! as it imports and `hubctl` computes over a file before it sends it.
//!
//! - `sha256`: over the messages' encodings, each length-delimited, in order;
//! - `log_digest`: the event log's chained digest after the last message, as the hub's log
//!   digest folds it (position, subject, stored time, headers other than NATS's own, body):
//!   the digest an import must reproduce, and the one audit checkpoints sign.

use std::io::Read;

use hub_api::v1::{LogExportHeader, LogExportItem, LogExportTrailer, LogHeader, LogMessage};
use hub_audit::log_digest::{EMPTY, fold_parts, is_nats_header};
use hub_log::names::headers::HUB_STORED_AT;
use hub_log::names::parse_event_subject;
use prost::Message as _;
use sha2::{Digest as _, Sha256};

/// The header's `format`.
pub const LOG_EXPORT_FORMAT: &str = "gov.hub.log-export.v1";

/// The longest item a file may hold: a message of the log is at most NATS's largest payload
/// (64 MiB) with its headers.
pub const MAX_ITEM: u64 = 65 << 20;

/// Why the next item of an export file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadItem {
    #[error("it ends inside an item")]
    Truncated,
    #[error(
        "it holds an item of {0} bytes, longer than any message of the log: it is not a log export, or damaged"
    )]
    TooLong(u64),
    #[error("it is not a log export: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error(transparent)]
    Io(std::io::Error),
}

/// The next item of an export file (a varint length, then the item); `None` at its end.
pub fn read_item(reader: &mut impl Read) -> Result<Option<LogExportItem>, ReadItem> {
    let mut length: u64 = 0;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        match reader.read(&mut byte) {
            Ok(0) if shift == 0 => return Ok(None),
            Ok(0) => return Err(ReadItem::Truncated),
            Ok(_) => {}
            Err(e) => return Err(ReadItem::Io(e)),
        }
        length |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    if length > MAX_ITEM {
        return Err(ReadItem::TooLong(length));
    }
    let mut buffer = vec![0u8; usize::try_from(length).map_err(|_| ReadItem::TooLong(length))?];
    reader.read_exact(&mut buffer).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ReadItem::Truncated,
        _ => ReadItem::Io(e),
    })?;
    Ok(Some(LogExportItem::decode(buffer.as_slice())?))
}

/// What was wrong with an export, naming the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadExport {
    #[error("the export does not start with a header of format {LOG_EXPORT_FORMAT}")]
    NoHeader,
    #[error(
        "message {index} is at position {found}, where {expected} was due: the export has a gap or is out of order"
    )]
    Position {
        index: u64,
        expected: u64,
        found: u64,
    },
    #[error("message at position {position} has no valid stored time")]
    Time { position: u64 },
    #[error(
        "message at position {position} is not on an event subject (gov.events.<case|care|grant>.<id>)"
    )]
    Subject { position: u64 },
    #[error("the export ends without its trailer")]
    NoTrailer,
    #[error("the export holds {found} messages where its header names positions {first} to {last}")]
    Count { first: u64, last: u64, found: u64 },
    #[error("the trailer names {expected} messages, the export holds {found}")]
    TrailerCount { expected: u64, found: u64 },
    #[error(
        "the messages' SHA-256 does not match the trailer's: the export was changed or damaged"
    )]
    Sha256,
    #[error(
        "the chained digest of the messages does not match the trailer's: the export was changed or damaged"
    )]
    LogDigest,
    #[error("an item follows the trailer")]
    AfterTrailer,
}

/// Unix nanoseconds of a protobuf time, if it is a valid one.
fn nanos(t: &Option<prost_types::Timestamp>) -> Option<i64> {
    let t = t.as_ref()?;
    (0..1_000_000_000)
        .contains(&t.nanos)
        .then(|| {
            t.seconds
                .checked_mul(1_000_000_000)?
                .checked_add(i64::from(t.nanos))
        })
        .flatten()
}

/// A message's headers as a backup keeps them: NATS's own and an earlier import's stored
/// time left out (the stored time is a field of its own).
pub fn kept_headers<'h>(headers: impl Iterator<Item = (&'h str, &'h str)>) -> Vec<LogHeader> {
    headers
        .filter(|(name, _)| !is_nats_header(name) && !name.eq_ignore_ascii_case(HUB_STORED_AT))
        .map(|(name, value)| LogHeader {
            name: name.to_owned(),
            value: value.to_owned(),
        })
        .collect()
}

/// The checks of an export, computed message by message.
#[derive(Debug, Clone)]
pub struct LogChecks {
    first: u64,
    next: u64,
    count: u64,
    sha256: Sha256,
    digest: [u8; 32],
}

impl LogChecks {
    /// Checks that begin with `header`: its messages must run from its first position on.
    pub fn new(header: &LogExportHeader) -> Result<Self, BadExport> {
        if header.format != LOG_EXPORT_FORMAT {
            return Err(BadExport::NoHeader);
        }
        let first = header.first_position.max(1);
        Ok(Self {
            first,
            next: first,
            count: 0,
            sha256: Sha256::new(),
            digest: EMPTY,
        })
    }

    /// Folds the next message in; `Err` when it is not where it is due or has no time.
    pub fn add(&mut self, message: &LogMessage) -> Result<(), BadExport> {
        if message.position != self.next {
            return Err(BadExport::Position {
                index: self.count,
                expected: self.next,
                found: message.position,
            });
        }
        let time = nanos(&message.stored_at).ok_or(BadExport::Time {
            position: message.position,
        })?;
        // Only the event log's own subjects: an import never writes anywhere else.
        let event_subject = parse_event_subject(&message.subject).is_some_and(|(kind, id)| {
            ["case", "care", "grant"].contains(&kind)
                && id.len() <= 64
                && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !event_subject {
            return Err(BadExport::Subject {
                position: message.position,
            });
        }
        let headers: Vec<(&str, &str)> = message
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        self.digest = fold_parts(
            &self.digest,
            (message.position, &message.subject),
            time,
            &headers,
            &message.body,
        );
        self.sha256
            .update(prost::Message::encode_length_delimited_to_vec(message));
        self.count += 1;
        self.next += 1;
        Ok(())
    }

    /// The messages folded in so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The last position folded in (0 for none).
    pub fn last(&self) -> u64 {
        self.next - 1
    }

    /// The chained digest after the last message folded in.
    pub fn log_digest(&self) -> [u8; 32] {
        self.digest
    }

    /// The trailer these messages call for.
    pub fn trailer(&self) -> LogExportTrailer {
        LogExportTrailer {
            messages: self.count,
            sha256: self.sha256.clone().finalize().to_vec(),
            log_digest: self.digest.to_vec(),
        }
    }

    /// Checks `trailer` (and the header's range) against the messages folded in.
    pub fn finish(
        &self,
        header: &LogExportHeader,
        trailer: &LogExportTrailer,
    ) -> Result<(), BadExport> {
        let expected_count = match header.last_position {
            0 => 0,
            last => last + 1 - self.first,
        };
        if self.count != expected_count {
            return Err(BadExport::Count {
                first: header.first_position,
                last: header.last_position,
                found: self.count,
            });
        }
        let made = self.trailer();
        if trailer.messages != made.messages {
            return Err(BadExport::TrailerCount {
                expected: trailer.messages,
                found: made.messages,
            });
        }
        if trailer.sha256 != made.sha256 {
            return Err(BadExport::Sha256);
        }
        if trailer.log_digest != made.log_digest {
            return Err(BadExport::LogDigest);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(last: u64) -> LogExportHeader {
        LogExportHeader {
            format: LOG_EXPORT_FORMAT.into(),
            first_position: u64::from(last > 0),
            last_position: last,
            ..Default::default()
        }
    }

    fn message(position: u64, body: &[u8]) -> LogMessage {
        LogMessage {
            position,
            subject: format!("gov.events.case.c-{position}"),
            stored_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000 + position as i64,
                nanos: 5,
            }),
            headers: vec![LogHeader {
                name: "ce-id".into(),
                value: format!("e-{position}"),
            }],
            body: body.to_vec(),
        }
    }

    fn checked(messages: &[LogMessage]) -> LogChecks {
        let mut checks = LogChecks::new(&header(messages.len() as u64)).expect("header");
        for m in messages {
            checks.add(m).expect("in order");
        }
        checks
    }

    #[test]
    fn an_export_checks_out_and_any_change_is_found() {
        let messages = [message(1, b"a"), message(2, b"b"), message(3, b"c")];
        let checks = checked(&messages);
        let trailer = checks.trailer();
        assert_eq!(checks.finish(&header(3), &trailer), Ok(()));

        // A body changed: the SHA-256 differs.
        let mut changed = messages.clone();
        changed[1].body = b"B".to_vec();
        assert_eq!(
            checked(&changed).finish(&header(3), &trailer),
            Err(BadExport::Sha256)
        );

        // The SHA-256 recomputed by whoever changed it: the chained digest still differs.
        let mut forged = trailer.clone();
        forged.sha256 = checked(&changed).trailer().sha256;
        assert_eq!(
            checked(&changed).finish(&header(3), &forged),
            Err(BadExport::LogDigest)
        );

        // A message on another subject than an event's is refused.
        let mut elsewhere = message(1, b"a");
        elsewhere.subject = "gov.audit.x".into();
        let mut checks = LogChecks::new(&header(1)).expect("header");
        assert_eq!(
            checks.add(&elsewhere),
            Err(BadExport::Subject { position: 1 })
        );
        elsewhere.subject = "gov.events.case.>".into();
        assert_eq!(
            checks.add(&elsewhere),
            Err(BadExport::Subject { position: 1 })
        );

        // A message dropped or swapped is named by its place.
        let mut checks = LogChecks::new(&header(3)).expect("header");
        checks.add(&messages[0]).expect("first");
        assert_eq!(
            checks.add(&messages[2]),
            Err(BadExport::Position {
                index: 1,
                expected: 2,
                found: 3
            })
        );

        // Cut short: fewer messages than the header names.
        let short = checked(&messages[..2]);
        assert!(matches!(
            short.finish(&header(3), &short.trailer()),
            Err(BadExport::Count { found: 2, .. })
        ));
    }

    #[test]
    fn the_chained_digest_is_the_log_digests_own_and_ignores_nats_and_import_headers() {
        let plain = message(1, b"x");
        let mut with_extra = plain.clone();
        with_extra.headers = kept_headers(
            [
                ("ce-id", "e-1"),
                ("Nats-Msg-Id", "e-1"),
                ("hub-stored-at", "123"),
            ]
            .into_iter(),
        );
        assert_eq!(with_extra.headers.len(), 1, "{:?}", with_extra.headers);
        assert_eq!(
            checked(std::slice::from_ref(&plain)).log_digest(),
            checked(&[with_extra]).log_digest()
        );
        // The same fold the log digest makes of a stored message.
        let time = 1_700_000_001 * 1_000_000_000 + 5;
        let expected = fold_parts(
            &EMPTY,
            (1, "gov.events.case.c-1"),
            time,
            &[("ce-id", "e-1")],
            b"x",
        );
        assert_eq!(checked(&[plain]).log_digest(), expected);
    }
}
