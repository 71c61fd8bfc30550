//! Reference data: the configured file, or the demo data built in.

use std::path::Path;

use anyhow::Context;
use hub_domain::registry::{Registry, RegistryData};

/// The demo reference data, `deploy/reference/demo.toml`.
pub const DEMO: &str = include_str!("../../../deploy/reference/demo.toml");

pub fn load_registry(path: Option<&Path>) -> anyhow::Result<Registry> {
    let (text, origin) = match path {
        Some(path) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("reading reference data {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (DEMO.to_owned(), "built-in demo data".to_owned()),
    };
    let data: RegistryData =
        toml::from_str(&text).with_context(|| format!("parsing reference data ({origin})"))?;
    Registry::new(data).with_context(|| format!("checking reference data ({origin})"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_demo_data_is_consistent_and_has_the_four_departments() {
        let registry = super::load_registry(None).expect("demo data loads");
        for code in [
            "civil-affairs",
            "urban-management",
            "public-security",
            "housing",
        ] {
            let code = hub_domain::codes::DepartmentCode::parse(code).expect("code");
            assert!(registry.unit(&code).is_some(), "{code} missing");
        }
        assert!(registry.districts().count() >= 2);
        let calendar = registry.calendar(jiff::tz::TimeZone::UTC);
        assert!(
            !calendar.is_working_day(jiff::civil::date(2026, 10, 1)),
            "national day is a holiday"
        );
        assert!(
            calendar.is_working_day(jiff::civil::date(2026, 10, 10)),
            "a saturday worked in its place"
        );
    }
}
