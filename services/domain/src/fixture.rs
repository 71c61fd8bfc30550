//! Test fixture shared by the care and grant tests: a small city with a catalogue.

use jiff::{SignedDuration, Timestamp};

use crate::actor::Actor;
use crate::calendar::Calendar;
use crate::codes::DepartmentCode;
use crate::policy::Policy;
use crate::registry::{Registry, RegistryData};

pub(crate) fn registry() -> Registry {
    let data: RegistryData = toml::from_str(
        r#"
        [[units]]
        code = "dcc-310104"
        name = "xuhui command centre"
        kind = "dispatch_unit"
        [[units]]
        code = "civil-affairs"
        name = "civil affairs"
        kind = "department"
        [[units]]
        code = "public-security"
        name = "public security"
        kind = "department"
        [[units]]
        code = "housing"
        name = "housing"
        kind = "department"
        [[districts]]
        code = "310104"
        name = "xuhui"
        command_centre = "dcc-310104"
        [[datasets]]
        id = "care_roster"
        title = "key-population care roster"
        owner = "civil-affairs"
        fields = [
            { name = "name", sensitivity = "personal" },
            { name = "identity_number", sensitivity = "sensitive" },
            { name = "category", sensitivity = "sensitive" },
            { name = "community_code", sensitivity = "internal" },
        ]
        [[datasets]]
        id = "property_complaint_stats"
        title = "property complaints per company"
        owner = "housing"
        fields = [{ name = "complaints", sensitivity = "public" }]
        "#,
    )
    .expect("fixture parses");
    Registry::new(data).expect("fixture is consistent")
}

/// Every unit of the fixture registry: a dispatch unit, then three departments.
pub(crate) const UNITS: [&str; 4] = ["dcc-310104", "civil-affairs", "public-security", "housing"];

/// A well-formed department code that is not in the registry.
pub(crate) const STRANGER: &str = "water-board";

pub(crate) fn policy() -> Policy {
    Policy::with_defaults(Calendar::weekdays(jiff::tz::TimeZone::fixed(
        jiff::tz::offset(8),
    )))
}

pub(crate) fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department code")
}

/// `"system"` is the hub itself, anything else a department.
pub(crate) fn actor(code: &str) -> Actor {
    if code == "system" {
        Actor::System
    } else {
        Actor::Department(dept(code))
    }
}

/// Monday 2026-11-23 10:00 in Shanghai, plus `minutes`.
pub(crate) fn later(minutes: i64) -> Timestamp {
    let monday: Timestamp = "2026-11-23T02:00:00Z".parse().expect("timestamp");
    monday + SignedDuration::from_mins(minutes)
}

pub(crate) fn days(days: i64) -> i64 {
    days * 24 * 60
}
