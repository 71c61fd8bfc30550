//! Care records on the wire: their versioned event types, protobuf bodies both ways, and the
//! requests of `CareCommandService` validated into domain commands.
//!
//! Sensitive personal information (PIPL): no violation, decode error or `Debug` output made
//! here carries a person's name or identity number.

use std::fmt;

use hub_domain::Violations;
use hub_domain::care::{
    CareCategory, CareClosed, CareCommand, CareEvent, CareId, CareRegistered, CareRiskLevelChanged,
    CareVisitLogged, RegisterCare, RiskLevel,
};
use hub_domain::codes::{CommunityCode, DepartmentCode, DivisionCode, IdentityNumber};
use prost::Message;

use super::events::event_types;
use super::{
    DecodeError, EventType, MAX_DESCRIPTION_CHARS, MAX_REASON_CHARS, from_timestamp, request_id,
    text, timestamp,
};
use crate::v1;

event_types! {
    /// Every care event type the hub writes.
    CARE_EVENT_TYPES {
        CARE_REGISTERED: "gov.hub.care.registered.v1" => "CareRegistered",
        CARE_VISIT_LOGGED: "gov.hub.care.visit_logged.v1" => "CareVisitLogged",
        CARE_RISK_LEVEL_CHANGED: "gov.hub.care.risk_level_changed.v1" => "CareRiskLevelChanged",
        CARE_CLOSED: "gov.hub.care.closed.v1" => "CareClosed",
    }
}

/// Longest name accepted for a person in care.
pub const MAX_CARE_NAME_CHARS: usize = 50;
/// Longest home address, in characters.
pub const MAX_ADDRESS_CHARS: usize = 100;
/// Longest staff id accepted for a visitor.
pub const MAX_VISITOR_CHARS: usize = 32;

pub fn care_category_to_proto(category: CareCategory) -> v1::CareCategory {
    match category {
        CareCategory::DrugRehabilitation => v1::CareCategory::DrugRehabilitation,
        CareCategory::SevereMentalDisorder => v1::CareCategory::SevereMentalDisorder,
        CareCategory::ElderlyInHardship => v1::CareCategory::ElderlyInHardship,
        CareCategory::LeftBehindChild => v1::CareCategory::LeftBehindChild,
    }
}

/// The domain category of a protobuf value; `None` when unspecified or unknown.
pub fn care_category_from_proto(value: i32) -> Option<CareCategory> {
    match v1::CareCategory::try_from(value).ok()? {
        v1::CareCategory::DrugRehabilitation => Some(CareCategory::DrugRehabilitation),
        v1::CareCategory::SevereMentalDisorder => Some(CareCategory::SevereMentalDisorder),
        v1::CareCategory::ElderlyInHardship => Some(CareCategory::ElderlyInHardship),
        v1::CareCategory::LeftBehindChild => Some(CareCategory::LeftBehindChild),
        v1::CareCategory::Unspecified => None,
    }
}

pub fn risk_level_to_proto(level: RiskLevel) -> v1::RiskLevel {
    match level {
        RiskLevel::Low => v1::RiskLevel::Low,
        RiskLevel::Medium => v1::RiskLevel::Medium,
        RiskLevel::High => v1::RiskLevel::High,
    }
}

/// The domain risk level of a protobuf value; `None` when unspecified or unknown.
pub fn risk_level_from_proto(value: i32) -> Option<RiskLevel> {
    match v1::RiskLevel::try_from(value).ok()? {
        v1::RiskLevel::Low => Some(RiskLevel::Low),
        v1::RiskLevel::Medium => Some(RiskLevel::Medium),
        v1::RiskLevel::High => Some(RiskLevel::High),
        v1::RiskLevel::Unspecified => None,
    }
}

/// Encodes a domain event as its type and protobuf body, ready for the log.
pub fn encode_care_event(event: &CareEvent) -> (EventType, Vec<u8>) {
    let id = event.care_id().as_str().to_owned();
    let ts = |t: &jiff::Timestamp| Some(timestamp(*t));
    match event {
        CareEvent::Registered(e) => (
            CARE_REGISTERED,
            v1::CareRegistered {
                care_id: id,
                name: e.name.clone(),
                identity_number: e.identity_number.expose().to_owned(),
                category: care_category_to_proto(e.category) as i32,
                community_code: e.community.to_string(),
                district_code: e.district.to_string(),
                risk_level: risk_level_to_proto(e.risk_level) as i32,
                registered_by: e.registered_by.to_string(),
                registered_at: ts(&e.registered_at),
                phone: e.phone.clone(),
                address: e.address.clone(),
            }
            .encode_to_vec(),
        ),
        CareEvent::VisitLogged(e) => (
            CARE_VISIT_LOGGED,
            v1::CareVisitLogged {
                care_id: id,
                visited_at: ts(&e.visited_at),
                visitor: e.visitor.clone(),
                notes: e.notes.clone(),
                logged_by: e.logged_by.to_string(),
                logged_at: ts(&e.logged_at),
            }
            .encode_to_vec(),
        ),
        CareEvent::RiskLevelChanged(e) => (
            CARE_RISK_LEVEL_CHANGED,
            v1::CareRiskLevelChanged {
                care_id: id,
                from_risk_level: risk_level_to_proto(e.from) as i32,
                to_risk_level: risk_level_to_proto(e.to) as i32,
                reason: e.reason.clone(),
                changed_by: e.changed_by.to_string(),
                changed_at: ts(&e.changed_at),
            }
            .encode_to_vec(),
        ),
        CareEvent::Closed(e) => (
            CARE_CLOSED,
            v1::CareClosed {
                care_id: id,
                reason: e.reason.clone(),
                closed_by: e.closed_by.to_string(),
                closed_at: ts(&e.closed_at),
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

    /// A parsed code; the parser's errors never repeat the value.
    fn code<T, E: fmt::Display>(
        &self,
        field: &str,
        parsed: Result<T, E>,
    ) -> Result<T, DecodeError> {
        parsed.map_err(|e| self.fail(field, e))
    }

    fn dept(&self, field: &str, value: &str) -> Result<DepartmentCode, DecodeError> {
        self.code(field, DepartmentCode::parse(value))
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

    fn some<T>(&self, field: &str, value: Option<T>) -> Result<T, DecodeError> {
        value.ok_or_else(|| self.fail(field, "missing or invalid"))
    }
}

/// Decodes a stored care event; `Ok(None)` for a type this version does not know.
pub fn decode_care_event(event_type: &str, body: &[u8]) -> Result<Option<CareEvent>, DecodeError> {
    let r = Reader { event_type };
    let event = match event_type {
        t if t == CARE_REGISTERED.name => {
            let e: v1::CareRegistered = r.body(body)?;
            CareEvent::Registered(CareRegistered {
                care_id: CareId::new(e.care_id),
                name: e.name,
                identity_number: r
                    .code("identity_number", IdentityNumber::parse(&e.identity_number))?,
                category: r.some("category", care_category_from_proto(e.category))?,
                community: r.code("community_code", CommunityCode::parse(&e.community_code))?,
                district: r.code("district_code", DivisionCode::parse(&e.district_code))?,
                risk_level: r.some("risk_level", risk_level_from_proto(e.risk_level))?,
                registered_by: r.dept("registered_by", &e.registered_by)?,
                registered_at: r.time("registered_at", &e.registered_at)?,
                phone: e.phone,
                address: e.address,
            })
        }
        t if t == CARE_VISIT_LOGGED.name => {
            let e: v1::CareVisitLogged = r.body(body)?;
            CareEvent::VisitLogged(CareVisitLogged {
                care_id: CareId::new(e.care_id),
                visited_at: r.time("visited_at", &e.visited_at)?,
                visitor: e.visitor,
                notes: e.notes,
                logged_by: r.dept("logged_by", &e.logged_by)?,
                logged_at: r.time("logged_at", &e.logged_at)?,
            })
        }
        t if t == CARE_RISK_LEVEL_CHANGED.name => {
            let e: v1::CareRiskLevelChanged = r.body(body)?;
            CareEvent::RiskLevelChanged(CareRiskLevelChanged {
                care_id: CareId::new(e.care_id),
                from: r.some("from_risk_level", risk_level_from_proto(e.from_risk_level))?,
                to: r.some("to_risk_level", risk_level_from_proto(e.to_risk_level))?,
                reason: e.reason,
                changed_by: r.dept("changed_by", &e.changed_by)?,
                changed_at: r.time("changed_at", &e.changed_at)?,
            })
        }
        t if t == CARE_CLOSED.name => {
            let e: v1::CareClosed = r.body(body)?;
            CareEvent::Closed(CareClosed {
                care_id: CareId::new(e.care_id),
                reason: e.reason,
                closed_by: r.dept("closed_by", &e.closed_by)?,
                closed_at: r.time("closed_at", &e.closed_at)?,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(event))
}

/// Validates a care id as the hub issues them: 1 to 64 ASCII letters, digits or dashes.
pub fn care_id(violations: &mut Violations, value: &str) -> Option<CareId> {
    super::hub_id(violations, "care_id", value, "RegisterCare").map(CareId::new)
}

fn category(violations: &mut Violations, value: i32) -> Option<CareCategory> {
    let category = care_category_from_proto(value);
    if category.is_none() {
        violations.push("category", "must name a known care category");
    }
    category
}

fn risk_level(violations: &mut Violations, value: i32) -> Option<RiskLevel> {
    let level = risk_level_from_proto(value);
    if level.is_none() {
        violations.push("risk_level", "must name a known risk level");
    }
    level
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

/// Optional free text: empty (or blank) is kept as empty, else as [`text`].
fn optional_text(
    violations: &mut Violations,
    field: &str,
    value: &str,
    max: usize,
) -> Option<String> {
    if value.trim().is_empty() {
        Some(String::new())
    } else {
        text(violations, field, value, max)
    }
}

/// A validated `RegisterCareRequest`. The care id is the hub's to derive (from the calling
/// department and the request id), so it comes in [`ValidRegisterCare::into_command`].
///
/// Its `Debug` hides the name (the identity number hides itself).
#[derive(Clone, PartialEq)]
pub struct ValidRegisterCare {
    pub request_id: String,
    pub name: String,
    pub identity_number: IdentityNumber,
    pub category: CareCategory,
    pub community: CommunityCode,
    pub risk_level: RiskLevel,
    /// Empty when none was given.
    pub phone: String,
    /// Empty when none was given.
    pub address: String,
}

impl fmt::Debug for ValidRegisterCare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValidRegisterCare")
            .field("request_id", &self.request_id)
            .field("name", &"****")
            .field("identity_number", &self.identity_number)
            .field("category", &self.category)
            .field("community", &self.community)
            .field("risk_level", &self.risk_level)
            .field("phone", &"****")
            .field("address", &"****")
            .finish()
    }
}

impl TryFrom<&v1::RegisterCareRequest> for ValidRegisterCare {
    type Error = Violations;

    fn try_from(r: &v1::RegisterCareRequest) -> Result<Self, Violations> {
        let mut violations = Violations::new();
        let request_id = request_id(&mut violations, "request_id", &r.request_id);
        let name = text(&mut violations, "name", &r.name, MAX_CARE_NAME_CHARS);
        let identity_number =
            violations.check("identity_number", IdentityNumber::parse(&r.identity_number));
        let category = category(&mut violations, r.category);
        let community = violations.check("community_code", CommunityCode::parse(&r.community_code));
        let risk_level = risk_level(&mut violations, r.risk_level);
        let phone = phone(&mut violations, &r.phone);
        let address = if r.address.trim().is_empty() {
            Some(String::new())
        } else {
            text(&mut violations, "address", &r.address, MAX_ADDRESS_CHARS)
        };
        match (
            request_id,
            name,
            identity_number,
            category,
            community,
            risk_level,
            phone,
            address,
        ) {
            (
                Some(request_id),
                Some(name),
                Some(identity_number),
                Some(category),
                Some(community),
                Some(risk_level),
                Some(phone),
                Some(address),
            ) if violations.is_empty() => Ok(ValidRegisterCare {
                request_id,
                name,
                identity_number,
                category,
                community,
                risk_level,
                phone,
                address,
            }),
            _ => Err(violations),
        }
    }
}

impl ValidRegisterCare {
    pub fn into_command(self, care_id: CareId) -> RegisterCare {
        RegisterCare {
            care_id,
            name: self.name,
            identity_number: self.identity_number,
            category: self.category,
            community: self.community,
            risk_level: self.risk_level,
            phone: self.phone,
            address: self.address,
        }
    }
}

/// A phone number, empty or well-formed: a mainland mobile number (`1` and 10 digits) or a
/// fixed line (`0`, 2 or 3 more digits of area code, `-`, 7 or 8 digits). The value is never
/// echoed in the violation.
fn phone(violations: &mut Violations, value: &str) -> Option<String> {
    let value = value.trim();
    let digits = |s: &str, lengths: std::ops::RangeInclusive<usize>| {
        lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    let mobile = value.len() == 11 && value.starts_with('1') && digits(value, 11..=11);
    let fixed = value.split_once('-').is_some_and(|(area, number)| {
        area.starts_with('0') && digits(area, 3..=4) && digits(number, 7..=8)
    });
    if value.is_empty() || mobile || fixed {
        Some(value.to_owned())
    } else {
        violations.push(
            "phone",
            "must be a mobile number (11 digits starting with 1) or an area code and number \
             (e.g. 021-12345678)",
        );
        None
    }
}

/// A validated command on a care record. For a registration the caller builds it from
/// [`ValidRegisterCare`] and the care id it derived, with no expected version.
///
/// Its `Debug` hides a registration's name (the identity number hides itself).
#[derive(Clone, PartialEq)]
pub struct ValidCareCommand {
    pub request_id: String,
    pub care_id: CareId,
    pub expected_version: Option<u64>,
    pub command: CareCommand,
}

impl fmt::Debug for ValidCareCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// A registration, shown without the person's name.
        struct Register<'a>(&'a RegisterCare);

        impl fmt::Debug for Register<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let r = self.0;
                f.debug_struct("Register")
                    .field("care_id", &r.care_id)
                    .field("name", &"****")
                    .field("identity_number", &r.identity_number)
                    .field("category", &r.category)
                    .field("community", &r.community)
                    .field("risk_level", &r.risk_level)
                    .field("phone", &"****")
                    .field("address", &"****")
                    .finish()
            }
        }

        let mut d = f.debug_struct("ValidCareCommand");
        d.field("request_id", &self.request_id)
            .field("care_id", &self.care_id)
            .field("expected_version", &self.expected_version);
        match &self.command {
            CareCommand::Register(register) => d.field("command", &Register(register)),
            command => d.field("command", command),
        };
        d.finish()
    }
}

/// The fields every command on an existing record has, then the command's own, validated
/// together so every problem is reported at once.
fn validate(
    request_id_value: &str,
    care_id_value: &str,
    expected_version: Option<u64>,
    command: impl FnOnce(&mut Violations) -> Option<CareCommand>,
) -> Result<ValidCareCommand, Violations> {
    let id = |v: &mut Violations| super::hub_id(v, "care_id", care_id_value, "RegisterCare");
    let (request_id, id, expected_version, command) = super::command_parts(
        request_id_value,
        id,
        expected_version,
        "the care record has had (a position a command returned)",
        command,
    )?;
    Ok(ValidCareCommand {
        request_id,
        care_id: CareId::new(id),
        expected_version,
        command,
    })
}

impl TryFrom<&v1::LogCareVisitRequest> for ValidCareCommand {
    type Error = Violations;
    fn try_from(r: &v1::LogCareVisitRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.care_id, r.expected_version, |v| {
            let visited_at = time(v, "visited_at", r.visited_at.as_ref());
            let visitor = text(v, "visitor", &r.visitor, MAX_VISITOR_CHARS);
            let notes = optional_text(v, "notes", &r.notes, MAX_DESCRIPTION_CHARS);
            Some(CareCommand::LogVisit {
                visited_at: visited_at?,
                visitor: visitor?,
                notes: notes?,
            })
        })
    }
}

impl TryFrom<&v1::ChangeCareRiskLevelRequest> for ValidCareCommand {
    type Error = Violations;
    fn try_from(r: &v1::ChangeCareRiskLevelRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.care_id, r.expected_version, |v| {
            let to = risk_level(v, r.risk_level);
            let reason = text(v, "reason", &r.reason, MAX_REASON_CHARS);
            Some(CareCommand::ChangeRiskLevel {
                to: to?,
                reason: reason?,
            })
        })
    }
}

impl TryFrom<&v1::CloseCareRequest> for ValidCareCommand {
    type Error = Violations;
    fn try_from(r: &v1::CloseCareRequest) -> Result<Self, Violations> {
        validate(&r.request_id, &r.care_id, r.expected_version, |v| {
            text(v, "reason", &r.reason, MAX_REASON_CHARS)
                .map(|reason| CareCommand::Close { reason })
        })
    }
}

#[cfg(test)]
mod tests;
