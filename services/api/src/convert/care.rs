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
    if value.is_empty() {
        violations.push("care_id", "must not be empty");
        None
    } else if value.len() > 64
        || !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        violations.push("care_id", "must be a care id as returned by RegisterCare");
        None
    } else {
        Some(CareId::new(value))
    }
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
        match (
            request_id,
            name,
            identity_number,
            category,
            community,
            risk_level,
        ) {
            (
                Some(request_id),
                Some(name),
                Some(identity_number),
                Some(category),
                Some(community),
                Some(risk_level),
            ) if violations.is_empty() => Ok(ValidRegisterCare {
                request_id,
                name,
                identity_number,
                category,
                community,
                risk_level,
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
        }
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
    let mut violations = Violations::new();
    let request_id = request_id(&mut violations, "request_id", request_id_value);
    let care_id = care_id(&mut violations, care_id_value);
    if expected_version == Some(0) {
        violations.push(
            "expected_version",
            "must be a version the care record has had (a position a command returned), above 0",
        );
    }
    let command = command(&mut violations);
    match (request_id, care_id, command) {
        (Some(request_id), Some(care_id), Some(command)) if violations.is_empty() => {
            Ok(ValidCareCommand {
                request_id,
                care_id,
                expected_version,
                command,
            })
        }
        _ => Err(violations),
    }
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
mod tests {
    use super::*;

    /// A published example number (GB 11643), valid check character `X`.
    const ID: &str = "11010519491231002X";
    const NAME: &str = "张三丰";

    fn fields(violations: &Violations) -> Vec<&str> {
        violations
            .as_slice()
            .iter()
            .map(|v| v.field.as_str())
            .collect()
    }

    fn register() -> v1::RegisterCareRequest {
        v1::RegisterCareRequest {
            request_id: "r-1".into(),
            name: format!(" {NAME} "),
            identity_number: ID.into(),
            category: v1::CareCategory::ElderlyInHardship as i32,
            community_code: "310104001002".into(),
            risk_level: v1::RiskLevel::Medium as i32,
        }
    }

    fn register_err(change: impl FnOnce(&mut v1::RegisterCareRequest)) -> Violations {
        let mut request = register();
        change(&mut request);
        ValidRegisterCare::try_from(&request).expect_err("refused")
    }

    fn visit() -> v1::LogCareVisitRequest {
        v1::LogCareVisitRequest {
            request_id: "r-2".into(),
            care_id: "c-1".into(),
            expected_version: Some(3),
            visited_at: Some(prost_types::Timestamp {
                seconds: 1_790_000_000,
                nanos: 5,
            }),
            visitor: "SW-0042".into(),
            notes: "独居，身体尚可".into(),
        }
    }

    fn visit_err(change: impl FnOnce(&mut v1::LogCareVisitRequest)) -> Violations {
        let mut request = visit();
        change(&mut request);
        ValidCareCommand::try_from(&request).expect_err("refused")
    }

    fn change_risk() -> v1::ChangeCareRiskLevelRequest {
        v1::ChangeCareRiskLevelRequest {
            request_id: "r-3".into(),
            care_id: "c-1".into(),
            expected_version: None,
            risk_level: v1::RiskLevel::High as i32,
            reason: "relapse reported".into(),
        }
    }

    fn close() -> v1::CloseCareRequest {
        v1::CloseCareRequest {
            request_id: "r-4".into(),
            care_id: "c-1".into(),
            expected_version: None,
            reason: "moved away".into(),
        }
    }

    #[test]
    fn a_good_registration_becomes_the_domain_command() {
        let valid = ValidRegisterCare::try_from(&register()).expect("valid");
        assert_eq!(valid.request_id, "r-1");
        assert_eq!(valid.name, NAME, "trimmed");
        let command = valid.into_command(CareId::new("care-1"));
        assert_eq!(
            command,
            RegisterCare {
                care_id: CareId::new("care-1"),
                name: NAME.into(),
                identity_number: IdentityNumber::parse(ID).expect("id"),
                category: CareCategory::ElderlyInHardship,
                community: CommunityCode::parse("310104001002").expect("community"),
                risk_level: RiskLevel::Medium,
            }
        );
        // A lowercase check character is normalised.
        let mut lower = register();
        lower.identity_number = ID.to_lowercase();
        let valid = ValidRegisterCare::try_from(&lower).expect("valid");
        assert_eq!(valid.identity_number.expose(), ID);
    }

    #[test]
    fn every_problem_of_a_registration_is_named() {
        let violations = ValidRegisterCare::try_from(&v1::RegisterCareRequest::default())
            .expect_err("empty request");
        assert_eq!(
            fields(&violations),
            [
                "request_id",
                "name",
                "identity_number",
                "category",
                "community_code",
                "risk_level"
            ]
        );
    }

    #[test]
    fn request_ids_are_printable_ascii_up_to_64() {
        for bad in ["", "has space", "请求", &"r".repeat(65)] {
            let v = register_err(|r| r.request_id = bad.into());
            assert_eq!(fields(&v), ["request_id"], "{bad:?}");
        }
        let mut ok = register();
        ok.request_id = "r".repeat(64);
        assert!(ValidRegisterCare::try_from(&ok).is_ok());
    }

    #[test]
    fn names_are_1_to_50_characters() {
        for bad in [
            String::new(),
            "  ".into(),
            "名".repeat(51),
            "a\u{7}b".into(),
        ] {
            let v = register_err(|r| r.name = bad.clone());
            assert_eq!(fields(&v), ["name"], "{bad:?}");
        }
        let mut ok = register();
        ok.name = "名".repeat(50);
        assert!(ValidRegisterCare::try_from(&ok).is_ok());
    }

    #[test]
    fn identity_numbers_are_checked_and_never_echoed() {
        for bad in [
            "",
            "110105194912310021",
            "11010519490230002X",
            "1101051949",
            "1101051949123100AX",
        ] {
            let v = register_err(|r| r.identity_number = bad.into());
            assert_eq!(fields(&v), ["identity_number"], "{bad:?}");
            let shown = format!("{v} {v:?}");
            assert!(bad.is_empty() || !shown.contains(bad), "{shown}");
            assert!(!shown.contains("110105"), "{shown}");
        }
    }

    #[test]
    fn community_codes_are_12_digits() {
        for bad in ["", "31010400100", "31010400100x", "310104001002003"] {
            let v = register_err(|r| r.community_code = bad.into());
            assert_eq!(fields(&v), ["community_code"], "{bad:?}");
        }
    }

    #[test]
    fn categories_and_risk_levels_must_be_known() {
        for bad in [0, 5, -1, 99] {
            let v = register_err(|r| r.category = bad);
            assert_eq!(fields(&v), ["category"], "{bad}");
        }
        for bad in [0, 4, -1, 99] {
            let v = register_err(|r| r.risk_level = bad);
            assert_eq!(fields(&v), ["risk_level"], "{bad}");
        }
        let mut request = change_risk();
        request.risk_level = 0;
        let v = ValidCareCommand::try_from(&request).expect_err("unspecified");
        assert_eq!(fields(&v), ["risk_level"]);
    }

    #[test]
    fn nothing_shown_of_a_registration_names_the_person() {
        let valid = ValidRegisterCare::try_from(&register()).expect("valid");
        let command = ValidCareCommand {
            request_id: valid.request_id.clone(),
            care_id: CareId::new("care-1"),
            expected_version: None,
            command: CareCommand::Register(valid.clone().into_command(CareId::new("care-1"))),
        };
        for shown in [format!("{valid:?}"), format!("{command:?}")] {
            assert!(!shown.contains(NAME), "{shown}");
            assert!(!shown.contains("19491231"), "{shown}");
            assert!(shown.contains("ElderlyInHardship"), "{shown}");
        }
        let other = ValidCareCommand::try_from(&close()).expect("valid");
        assert!(format!("{other:?}").contains("moved away"));
    }

    #[test]
    fn a_good_visit_becomes_the_domain_command() {
        let valid = ValidCareCommand::try_from(&visit()).expect("valid");
        assert_eq!(valid.request_id, "r-2");
        assert_eq!(valid.care_id, CareId::new("c-1"));
        assert_eq!(valid.expected_version, Some(3));
        assert_eq!(
            valid.command,
            CareCommand::LogVisit {
                visited_at: jiff::Timestamp::new(1_790_000_000, 5).expect("time"),
                visitor: "SW-0042".into(),
                notes: "独居，身体尚可".into(),
            }
        );
    }

    #[test]
    fn every_problem_of_a_visit_is_named() {
        let request = v1::LogCareVisitRequest {
            expected_version: Some(0),
            notes: "x".repeat(MAX_DESCRIPTION_CHARS + 1),
            ..Default::default()
        };
        let v = ValidCareCommand::try_from(&request).expect_err("refused");
        assert_eq!(
            fields(&v),
            [
                "request_id",
                "care_id",
                "expected_version",
                "visited_at",
                "visitor",
                "notes"
            ]
        );
    }

    #[test]
    fn care_ids_are_hub_ids() {
        for bad in ["", "a/b", "c 1", &"c".repeat(65)] {
            let v = visit_err(|r| r.care_id = bad.into());
            assert_eq!(fields(&v), ["care_id"], "{bad:?}");
        }
        let mut ok = visit();
        ok.care_id = "8c1f6a2e-4b7d-5f0a-9e35-2d6b1c0f7a41".into();
        assert!(ValidCareCommand::try_from(&ok).is_ok());
    }

    #[test]
    fn expected_version_zero_is_refused() {
        let v = visit_err(|r| r.expected_version = Some(0));
        assert_eq!(fields(&v), ["expected_version"]);
        let mut none = visit();
        none.expected_version = None;
        assert_eq!(
            ValidCareCommand::try_from(&none)
                .expect("valid")
                .expected_version,
            None
        );
    }

    #[test]
    fn visits_need_a_valid_time() {
        let v = visit_err(|r| r.visited_at = None);
        assert_eq!(fields(&v), ["visited_at"]);
        assert_eq!(v.as_slice()[0].reason, "must be given");
        for (seconds, nanos) in [(0, 1_000_000_000), (0, -1_000_000_000), (i64::MAX, 0)] {
            let v = visit_err(|r| r.visited_at = Some(prost_types::Timestamp { seconds, nanos }));
            assert_eq!(fields(&v), ["visited_at"], "{seconds} {nanos}");
            assert_eq!(v.as_slice()[0].reason, "must be a valid timestamp");
        }
    }

    #[test]
    fn visitors_are_1_to_32_characters() {
        for bad in [String::new(), " ".into(), "v".repeat(33)] {
            let v = visit_err(|r| r.visitor = bad.clone());
            assert_eq!(fields(&v), ["visitor"], "{bad:?}");
        }
        let mut ok = visit();
        ok.visitor = "v".repeat(32);
        assert!(ValidCareCommand::try_from(&ok).is_ok());
    }

    #[test]
    fn notes_may_be_empty_up_to_2000_characters() {
        for (notes, kept) in [("", ""), ("  ", ""), (" fine ", "fine")] {
            let mut request = visit();
            request.notes = notes.into();
            let valid = ValidCareCommand::try_from(&request).expect("valid");
            assert!(
                matches!(&valid.command, CareCommand::LogVisit { notes, .. } if notes == kept),
                "{notes:?}"
            );
        }
        let mut ok = visit();
        ok.notes = "记".repeat(MAX_DESCRIPTION_CHARS);
        assert!(ValidCareCommand::try_from(&ok).is_ok());
        for bad in ["记".repeat(MAX_DESCRIPTION_CHARS + 1), "a\u{0}b".into()] {
            let v = visit_err(|r| r.notes = bad.clone());
            assert_eq!(fields(&v), ["notes"]);
        }
    }

    #[test]
    fn a_good_risk_level_change_becomes_the_domain_command() {
        let valid = ValidCareCommand::try_from(&change_risk()).expect("valid");
        assert_eq!(
            valid.command,
            CareCommand::ChangeRiskLevel {
                to: RiskLevel::High,
                reason: "relapse reported".into(),
            }
        );
    }

    #[test]
    fn a_good_closing_becomes_the_domain_command() {
        let valid = ValidCareCommand::try_from(&close()).expect("valid");
        assert_eq!(
            valid.command,
            CareCommand::Close {
                reason: "moved away".into()
            }
        );
    }

    #[test]
    fn reasons_are_1_to_500_characters() {
        for bad in [String::new(), " ".into(), "r".repeat(MAX_REASON_CHARS + 1)] {
            let mut change = change_risk();
            change.reason = bad.clone();
            let v = ValidCareCommand::try_from(&change).expect_err("refused");
            assert_eq!(fields(&v), ["reason"], "{bad:?}");
            let mut request = close();
            request.reason = bad.clone();
            let v = ValidCareCommand::try_from(&request).expect_err("refused");
            assert_eq!(fields(&v), ["reason"], "{bad:?}");
        }
        let mut ok = close();
        ok.reason = "r".repeat(MAX_REASON_CHARS);
        assert!(ValidCareCommand::try_from(&ok).is_ok());
    }

    #[test]
    fn enums_map_both_ways() {
        for category in [
            CareCategory::DrugRehabilitation,
            CareCategory::SevereMentalDisorder,
            CareCategory::ElderlyInHardship,
            CareCategory::LeftBehindChild,
        ] {
            let wire = care_category_to_proto(category) as i32;
            assert_eq!(care_category_from_proto(wire), Some(category));
        }
        for level in [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High] {
            let wire = risk_level_to_proto(level) as i32;
            assert_eq!(risk_level_from_proto(wire), Some(level));
        }
        assert_eq!(care_category_from_proto(0), None);
        assert_eq!(risk_level_from_proto(0), None);
    }
}
