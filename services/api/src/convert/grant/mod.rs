//! Grants on the wire: their versioned event types, protobuf bodies both ways, and the
//! requests of `GrantCommandService` validated into domain commands.

use std::fmt;

use hub_domain::Violations;
use hub_domain::codes::DepartmentCode;
use hub_domain::grant::{
    GrantApproved, GrantCommand, GrantEvent, GrantExpired, GrantId, GrantRejected, GrantRequested,
    GrantRevoked, RequestGrant,
};
use prost::Message;

use super::events::event_types;
use super::{
    DecodeError, EventType, MAX_REASON_CHARS, from_timestamp, request_id, text, timestamp,
};
use crate::v1;

event_types! {
    /// Every grant event type the hub writes.
    GRANT_EVENT_TYPES {
        GRANT_REQUESTED: "gov.hub.grant.requested.v1" => "GrantRequested",
        GRANT_APPROVED: "gov.hub.grant.approved.v1" => "GrantApproved",
        GRANT_REJECTED: "gov.hub.grant.rejected.v1" => "GrantRejected",
        GRANT_REVOKED: "gov.hub.grant.revoked.v1" => "GrantRevoked",
        GRANT_EXPIRED: "gov.hub.grant.expired.v1" => "GrantExpired",
    }
}

/// Longest dataset id (a catalogue slug).
pub const MAX_DATASET_ID_CHARS: usize = 64;
/// Most fields one grant may ask for.
pub const MAX_GRANT_FIELDS: usize = 50;
/// Longest field name accepted in a grant request.
pub const MAX_FIELD_NAME_CHARS: usize = 64;

/// Encodes a domain event as its type and protobuf body, ready for the log.
pub fn encode_grant_event(event: &GrantEvent) -> (EventType, Vec<u8>) {
    let id = event.grant_id().as_str().to_owned();
    let ts = |t: &jiff::Timestamp| Some(timestamp(*t));
    match event {
        GrantEvent::Requested(e) => (
            GRANT_REQUESTED,
            v1::GrantRequested {
                grant_id: id,
                requester: e.requester.to_string(),
                owner: e.owner.to_string(),
                dataset: e.dataset.clone(),
                fields: e.fields.clone(),
                purpose: e.purpose.clone(),
                expires_at: ts(&e.expires_at),
                requested_at: ts(&e.requested_at),
            }
            .encode_to_vec(),
        ),
        GrantEvent::Approved(e) => (
            GRANT_APPROVED,
            v1::GrantApproved {
                grant_id: id,
                approved_by: e.by.to_string(),
                approved_at: ts(&e.at),
            }
            .encode_to_vec(),
        ),
        GrantEvent::Rejected(e) => (
            GRANT_REJECTED,
            v1::GrantRejected {
                grant_id: id,
                rejected_by: e.by.to_string(),
                reason: e.reason.clone(),
                rejected_at: ts(&e.at),
            }
            .encode_to_vec(),
        ),
        GrantEvent::Revoked(e) => (
            GRANT_REVOKED,
            v1::GrantRevoked {
                grant_id: id,
                revoked_by: e.by.to_string(),
                reason: e.reason.clone(),
                revoked_at: ts(&e.at),
            }
            .encode_to_vec(),
        ),
        GrantEvent::Expired(e) => (
            GRANT_EXPIRED,
            v1::GrantExpired {
                grant_id: id,
                expired_at: ts(&e.at),
            }
            .encode_to_vec(),
        ),
    }
}

/// Reads fields of a stored event back into domain values; the first failure names its
/// field and why, never the value.
struct Reader<'a> {
    event_type: &'a str,
}

impl Reader<'_> {
    fn fail(&self, field: &str, reason: impl fmt::Display) -> DecodeError {
        DecodeError {
            event_type: self.event_type.to_owned(),
            reason: format!("{field}: {reason}"),
        }
    }

    fn body<M: Message + Default>(&self, body: &[u8]) -> Result<M, DecodeError> {
        M::decode(body).map_err(|e| DecodeError {
            event_type: self.event_type.to_owned(),
            reason: e.to_string(),
        })
    }

    fn dept(&self, field: &str, value: &str) -> Result<DepartmentCode, DecodeError> {
        DepartmentCode::parse(value).map_err(|e| self.fail(field, e))
    }

    fn time(
        &self,
        field: &str,
        value: &Option<prost_types::Timestamp>,
    ) -> Result<jiff::Timestamp, DecodeError> {
        value
            .as_ref()
            .and_then(from_timestamp)
            .ok_or_else(|| self.fail(field, "missing or invalid"))
    }
}

/// Decodes a stored grant event; `Ok(None)` for a type this version does not know.
pub fn decode_grant_event(
    event_type: &str,
    body: &[u8],
) -> Result<Option<GrantEvent>, DecodeError> {
    let r = Reader { event_type };
    let event = match event_type {
        t if t == GRANT_REQUESTED.name => {
            let e: v1::GrantRequested = r.body(body)?;
            GrantEvent::Requested(GrantRequested {
                grant_id: GrantId::new(e.grant_id),
                requester: r.dept("requester", &e.requester)?,
                owner: r.dept("owner", &e.owner)?,
                dataset: e.dataset,
                fields: e.fields,
                purpose: e.purpose,
                expires_at: r.time("expires_at", &e.expires_at)?,
                requested_at: r.time("requested_at", &e.requested_at)?,
            })
        }
        t if t == GRANT_APPROVED.name => {
            let e: v1::GrantApproved = r.body(body)?;
            GrantEvent::Approved(GrantApproved {
                grant_id: GrantId::new(e.grant_id),
                by: r.dept("approved_by", &e.approved_by)?,
                at: r.time("approved_at", &e.approved_at)?,
            })
        }
        t if t == GRANT_REJECTED.name => {
            let e: v1::GrantRejected = r.body(body)?;
            GrantEvent::Rejected(GrantRejected {
                grant_id: GrantId::new(e.grant_id),
                by: r.dept("rejected_by", &e.rejected_by)?,
                reason: e.reason,
                at: r.time("rejected_at", &e.rejected_at)?,
            })
        }
        t if t == GRANT_REVOKED.name => {
            let e: v1::GrantRevoked = r.body(body)?;
            GrantEvent::Revoked(GrantRevoked {
                grant_id: GrantId::new(e.grant_id),
                by: r.dept("revoked_by", &e.revoked_by)?,
                reason: e.reason,
                at: r.time("revoked_at", &e.revoked_at)?,
            })
        }
        t if t == GRANT_EXPIRED.name => {
            let e: v1::GrantExpired = r.body(body)?;
            GrantEvent::Expired(GrantExpired {
                grant_id: GrantId::new(e.grant_id),
                at: r.time("expired_at", &e.expired_at)?,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// Validates a grant id as the hub issues them: 1 to 64 ASCII letters, digits or dashes.
pub fn grant_id(violations: &mut Violations, value: &str) -> Option<GrantId> {
    super::hub_id(violations, "grant_id", value, "RequestGrant").map(GrantId::new)
}

/// A dataset id of the catalogue: 1 to 64 lowercase letters, digits, `_` or `-`.
fn dataset(violations: &mut Violations, value: &str) -> Option<String> {
    if value.is_empty() {
        violations.push("dataset", "must not be empty");
        None
    } else if value.len() > MAX_DATASET_ID_CHARS
        || !value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        violations.push(
            "dataset",
            "must be a dataset id: 1 to 64 lowercase letters, digits, underscores or dashes",
        );
        None
    } else {
        Some(value.to_owned())
    }
}

/// 1 to 50 field names, each 1 to 64 characters; a bad one is named by its index.
fn fields(violations: &mut Violations, values: &[String]) -> Option<Vec<String>> {
    if values.is_empty() {
        violations.push("fields", "must name at least one field");
        return None;
    }
    if values.len() > MAX_GRANT_FIELDS {
        violations.push(
            "fields",
            format!("must name at most {MAX_GRANT_FIELDS} fields"),
        );
        return None;
    }
    let checked: Vec<Option<String>> = values
        .iter()
        .enumerate()
        .map(|(i, value)| {
            text(
                violations,
                &format!("fields[{i}]"),
                value,
                MAX_FIELD_NAME_CHARS,
            )
        })
        .collect();
    checked.into_iter().collect()
}

fn time(
    violations: &mut Violations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<jiff::Timestamp> {
    let Some(value) = value else {
        violations.push(field, "must be given");
        return None;
    };
    let time = from_timestamp(value);
    if time.is_none() {
        violations.push(field, "must be a valid timestamp");
    }
    time
}

/// A validated `RequestGrantRequest`. The grant id is the hub's to derive (from the calling
/// department and the request id), and the requester is the calling department, so both
/// come in [`ValidRequestGrant::into_command`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidRequestGrant {
    pub request_id: String,
    pub dataset: String,
    pub fields: Vec<String>,
    pub purpose: String,
    pub expires_at: jiff::Timestamp,
}

impl TryFrom<&v1::RequestGrantRequest> for ValidRequestGrant {
    type Error = Violations;

    fn try_from(r: &v1::RequestGrantRequest) -> Result<Self, Violations> {
        let mut violations = Violations::new();
        let request_id = request_id(&mut violations, "request_id", &r.request_id);
        let dataset = dataset(&mut violations, &r.dataset);
        let fields = fields(&mut violations, &r.fields);
        let purpose = text(&mut violations, "purpose", &r.purpose, MAX_REASON_CHARS);
        let expires_at = time(&mut violations, "expires_at", r.expires_at.as_ref());
        match (request_id, dataset, fields, purpose, expires_at) {
            (Some(request_id), Some(dataset), Some(fields), Some(purpose), Some(expires_at))
                if violations.is_empty() =>
            {
                Ok(ValidRequestGrant {
                    request_id,
                    dataset,
                    fields,
                    purpose,
                    expires_at,
                })
            }
            _ => Err(violations),
        }
    }
}

impl ValidRequestGrant {
    pub fn into_command(self, grant_id: GrantId, requester: DepartmentCode) -> RequestGrant {
        RequestGrant {
            grant_id,
            requester,
            dataset: self.dataset,
            fields: self.fields,
            purpose: self.purpose,
            expires_at: self.expires_at,
        }
    }
}

/// A validated command on a grant. For a request the caller builds it from
/// [`ValidRequestGrant`] and the grant id it derived, with no expected version.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidGrantCommand {
    pub request_id: String,
    pub grant_id: GrantId,
    pub expected_version: Option<u64>,
    pub command: GrantCommand,
}

/// The fields every command on an existing grant has, then the command's own, validated
/// together so every problem is reported at once.
fn validate(
    request_id_value: &str,
    grant_id_value: &str,
    expected_version: Option<u64>,
    command: impl FnOnce(&mut Violations) -> Option<GrantCommand>,
) -> Result<ValidGrantCommand, Violations> {
    let id = |v: &mut Violations| super::hub_id(v, "grant_id", grant_id_value, "RequestGrant");
    let (request_id, id, expected_version, command) = super::command_parts(
        request_id_value,
        id,
        expected_version,
        "the grant has had (a position a command returned)",
        command,
    )?;
    Ok(ValidGrantCommand {
        request_id,
        grant_id: GrantId::new(id),
        expected_version,
        command,
    })
}

impl TryFrom<&v1::ApproveGrantRequest> for ValidGrantCommand {
    type Error = Violations;
    fn try_from(r: &v1::ApproveGrantRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.grant_id, r.expected_version, |_| {
            Some(GrantCommand::Approve)
        })
    }
}

impl TryFrom<&v1::RejectGrantRequest> for ValidGrantCommand {
    type Error = Violations;
    fn try_from(r: &v1::RejectGrantRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.grant_id, r.expected_version, |v| {
            text(v, "reason", &r.reason, MAX_REASON_CHARS)
                .map(|reason| GrantCommand::Reject { reason })
        })
    }
}

impl TryFrom<&v1::RevokeGrantRequest> for ValidGrantCommand {
    type Error = Violations;
    fn try_from(r: &v1::RevokeGrantRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.grant_id, r.expected_version, |v| {
            text(v, "reason", &r.reason, MAX_REASON_CHARS)
                .map(|reason| GrantCommand::Revoke { reason })
        })
    }
}

#[cfg(test)]
mod tests;
