//! Reference data: the configured file, or the demo data built in.

use std::path::Path;

use anyhow::Context;
use hub_domain::codes::DepartmentCode;
use hub_domain::registry::{Dataset, DatasetField, Registry, RegistryData};
use hub_projector::datasets::{self, Owner};

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
    let mut data: RegistryData =
        toml::from_str(&text).with_context(|| format!("parsing reference data ({origin})"))?;
    data.datasets.extend(grantable_datasets()?);
    Registry::new(data).with_context(|| format!("checking reference data ({origin})"))
}

/// The datasets a department owns, as the registry knows them for grants: declared by the
/// read models that build them, so the reference data does not list them (a dataset listed
/// there too is refused as listed twice). Datasets the hub keeps across departments have no
/// owner to decide a grant.
fn grantable_datasets() -> anyhow::Result<Vec<Dataset>> {
    datasets::catalogue()
        .into_iter()
        .filter_map(|d| match d.owner {
            Owner::Department(owner) => Some((d, owner)),
            Owner::Hub => None,
        })
        .map(|(d, owner)| {
            Ok(Dataset {
                id: d.id.to_owned(),
                title: format!("{} {}", d.title_zh, d.title_en),
                owner: DepartmentCode::parse(owner)
                    .with_context(|| format!("dataset {} names owner {owner:?}", d.id))?,
                fields: d
                    .fields
                    .iter()
                    .map(|f| DatasetField {
                        name: f.name.to_owned(),
                        sensitivity: f.sensitivity,
                    })
                    .collect(),
            })
        })
        .collect()
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

    #[test]
    fn the_registry_knows_the_datasets_departments_own_from_the_read_models() {
        use hub_domain::registry::Sensitivity;
        let registry = super::load_registry(None).expect("demo data loads");
        let roster = registry.dataset("care_roster").expect("care roster");
        assert_eq!(roster.owner.as_str(), "civil-affairs");
        let identity = roster.field("identity_number").expect("identity number");
        assert_eq!(identity.sensitivity, Sensitivity::Sensitive);
        let stats = registry
            .dataset("property_complaint_stats")
            .expect("complaint statistics");
        assert!(
            stats
                .fields
                .iter()
                .all(|f| f.sensitivity == Sensitivity::Public)
        );
        assert!(
            registry.dataset("transfer_ledger").is_none(),
            "the hub's own datasets have no owner to grant them"
        );
    }
}
