//! The event envelope: CloudEvents 1.0 attributes carried as NATS headers in binary mode.
//!
//! Every attribute is a `ce-<name>` header. Values that are not plain printable ASCII are
//! percent-encoded as the CloudEvents HTTP binding does (space, `"`, `%` and every byte
//! outside U+0021..U+007E), so Chinese text survives any NATS client. The body is the
//! protobuf event named by `ce-dataschema`.

use std::borrow::Cow;

use async_nats::{HeaderMap, HeaderName};
use jiff::Timestamp;
use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

use crate::names::headers as h;

pub const SPEC_VERSION: &str = "1.0";
pub const DATA_CONTENT_TYPE: &str = "application/protobuf";

/// Bytes percent-encoded in a header value; non-ASCII is always encoded.
const HEADER_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'"').add(b'%');

/// How sensitive an event's content is (proto `gov.hub.v1.Classification`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classification {
    Public,
    Internal,
    Personal,
    Sensitive,
}

impl Classification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Internal => "internal",
            Self::Personal => "personal",
            Self::Sensitive => "sensitive",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "public" => Self::Public,
            "internal" => Self::Internal,
            "personal" => Self::Personal,
            "sensitive" => Self::Sensitive,
            _ => return None,
        })
    }
}

/// The attributes of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub id: String,
    pub source: String,
    pub event_type: String,
    pub subject: String,
    pub time: Timestamp,
    pub dataschema: String,
    pub department: String,
    pub classification: Classification,
    pub schema_version: u32,
    pub correlation_id: String,
    pub causation_id: String,
    /// W3C trace context; empty when the command carried none.
    pub traceparent: String,
    /// The client's idempotency key of the command that produced the event.
    pub request_id: String,
    /// Hash of the command's content, to tell a retry from a reused request id.
    pub command_hash: String,
    /// The person who acted for the issuing department (a staff or account id); empty for
    /// the hub's own events.
    pub acting_person: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("header {0} is missing")]
    Missing(&'static str),
    #[error("header {0} is not valid")]
    Invalid(&'static str),
    #[error("unsupported specversion")]
    SpecVersion,
}

/// A header's name, made without the copy and the check that naming it by `&str` costs on
/// every insert and lookup (the names are this crate's constants).
pub(crate) fn name(header: &'static str) -> HeaderName {
    HeaderName::from_static(header)
}

fn encode(value: &str) -> Cow<'_, str> {
    utf8_percent_encode(value, HEADER_ESCAPES).into()
}

impl Envelope {
    /// The headers of the event's message, `Nats-Msg-Id` included.
    pub fn to_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name(h::MSG_ID), encode(&self.id).as_ref());
        for (header, value) in self.attributes() {
            if !value.is_empty() {
                headers.insert(name(header), value.as_ref());
            }
        }
        headers
    }

    /// The headers of the event as a department's feed carries it: `Nats-Msg-Id` and the
    /// CloudEvents attributes, without the hub's internal ones (request id, command hash,
    /// correlation and causation ids, acting person), which say nothing a receiver needs and
    /// identify another department's requests and staff.
    pub fn to_feed_headers(&self) -> Vec<(String, String)> {
        const INTERNAL: [&str; 5] = [
            h::CE_REQUESTID,
            h::CE_COMMANDHASH,
            h::CE_CORRELATIONID,
            h::CE_CAUSATIONID,
            h::CE_ACTINGPERSON,
        ];
        std::iter::once((h::MSG_ID, encode(&self.id)))
            .chain(self.attributes())
            .filter(|(name, value)| !value.is_empty() && !INTERNAL.contains(name))
            .map(|(name, value)| (name.to_owned(), value.into_owned()))
            .collect()
    }

    fn attributes(&self) -> [(&'static str, Cow<'_, str>); 17] {
        [
            (h::CE_SPECVERSION, SPEC_VERSION.into()),
            (h::CE_ID, encode(&self.id)),
            (h::CE_SOURCE, encode(&self.source)),
            (h::CE_TYPE, encode(&self.event_type)),
            (h::CE_SUBJECT, encode(&self.subject)),
            (h::CE_TIME, self.time.to_string().into()),
            (h::CE_DATACONTENTTYPE, DATA_CONTENT_TYPE.into()),
            (h::CE_DATASCHEMA, encode(&self.dataschema)),
            (h::CE_DEPARTMENT, encode(&self.department)),
            (h::CE_CLASSIFICATION, self.classification.as_str().into()),
            (h::CE_SCHEMAVERSION, self.schema_version.to_string().into()),
            (h::CE_CORRELATIONID, encode(&self.correlation_id)),
            (h::CE_CAUSATIONID, encode(&self.causation_id)),
            (h::CE_TRACEPARENT, encode(&self.traceparent)),
            (h::CE_REQUESTID, encode(&self.request_id)),
            (h::CE_COMMANDHASH, encode(&self.command_hash)),
            (h::CE_ACTINGPERSON, encode(&self.acting_person)),
        ]
    }

    /// Reads the attributes back from a stored message's headers.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, EnvelopeError> {
        let raw = |header: &'static str| headers.get(name(header)).map(|v| v.as_str());
        let text = |header: &'static str| -> Result<String, EnvelopeError> {
            let value = raw(header).unwrap_or_default();
            percent_decode_str(value)
                .decode_utf8()
                .map(Cow::into_owned)
                .map_err(|_| EnvelopeError::Invalid(header))
        };
        let required = |header: &'static str| -> Result<String, EnvelopeError> {
            let value = text(header)?;
            if value.is_empty() {
                Err(EnvelopeError::Missing(header))
            } else {
                Ok(value)
            }
        };
        if required(h::CE_SPECVERSION)? != SPEC_VERSION {
            return Err(EnvelopeError::SpecVersion);
        }
        let time = required(h::CE_TIME)?
            .parse::<Timestamp>()
            .map_err(|_| EnvelopeError::Invalid(h::CE_TIME))?;
        let classification = Classification::parse(&required(h::CE_CLASSIFICATION)?)
            .ok_or(EnvelopeError::Invalid(h::CE_CLASSIFICATION))?;
        let schema_version = required(h::CE_SCHEMAVERSION)?
            .parse()
            .map_err(|_| EnvelopeError::Invalid(h::CE_SCHEMAVERSION))?;
        Ok(Self {
            id: required(h::CE_ID)?,
            source: required(h::CE_SOURCE)?,
            event_type: required(h::CE_TYPE)?,
            subject: required(h::CE_SUBJECT)?,
            time,
            dataschema: required(h::CE_DATASCHEMA)?,
            department: required(h::CE_DEPARTMENT)?,
            classification,
            schema_version,
            correlation_id: text(h::CE_CORRELATIONID)?,
            causation_id: text(h::CE_CAUSATIONID)?,
            traceparent: text(h::CE_TRACEPARENT)?,
            request_id: text(h::CE_REQUESTID)?,
            command_hash: text(h::CE_COMMANDHASH)?,
            acting_person: text(h::CE_ACTINGPERSON)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            id: "0b6c5e0e-6f1b-5a44-9a5e-3d1f2c0b9a11".into(),
            source: "/departments/urban-management".into(),
            event_type: "gov.hub.case.reported.v1".into(),
            subject: "case/城管 案件 \"1\" 100%".into(),
            time: "2026-11-23T08:00:00.5Z".parse().expect("timestamp"),
            dataschema: "type.googleapis.com/gov.hub.v1.CaseReported".into(),
            department: "urban-management".into(),
            classification: Classification::Internal,
            schema_version: 1,
            correlation_id: "r-1".into(),
            causation_id: String::new(),
            traceparent: String::new(),
            request_id: "r-1".into(),
            command_hash: "9f2c".into(),
            acting_person: "ua-0042".into(),
        }
    }

    #[test]
    fn round_trips_through_headers_and_escapes_non_ascii() {
        let env = envelope();
        let headers = env.to_headers();
        let subject = headers.get(h::CE_SUBJECT).expect("subject header").as_str();
        assert!(
            subject.is_ascii(),
            "header value must be plain ascii: {subject}"
        );
        assert!(
            subject.contains("%E5%9F%8E"),
            "城 percent-encoded as utf-8: {subject}"
        );
        assert!(subject.contains("%20") && subject.contains("%22") && subject.contains("%25"));
        assert_eq!(headers.get(h::MSG_ID).expect("msg id").as_str(), env.id);
        assert_eq!(
            headers
                .get(h::CE_DATACONTENTTYPE)
                .expect("content type")
                .as_str(),
            DATA_CONTENT_TYPE
        );
        assert!(
            headers.get(h::CE_CAUSATIONID).is_none(),
            "empty attributes are left out"
        );
        assert_eq!(Envelope::from_headers(&headers), Ok(env));
    }

    #[test]
    fn a_missing_attribute_is_named() {
        let mut headers = envelope().to_headers();
        headers.insert(h::CE_TYPE, "");
        assert_eq!(
            Envelope::from_headers(&headers),
            Err(EnvelopeError::Missing(h::CE_TYPE))
        );
    }
}
