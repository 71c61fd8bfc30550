//! Reference data: departments, dispatch units, districts and their grids, and the
//! catalogue of datasets departments may share.
//!
//! Loaded from configuration by the hub; checked here once, so every lookup afterwards can
//! trust it (every district has a command centre that exists, every grid lies in its district).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::codes::{DepartmentCode, DivisionCode, GridCode};

/// What a registry entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// A department that accepts and handles cases (civil affairs, urban management, ...).
    Department,
    /// A district command centre (区网格化服务管理中心) that dispatches cases.
    DispatchUnit,
    /// An auditor (discipline inspection 纪检监察, the audit bureau): reads the audit log,
    /// the history of any record and who accessed what.
    Auditor,
    /// The hub's operators (the city's big data centre, 大数据中心): watch its status,
    /// replay the log, rebuild read models, back up and restore (AdminService, hubctl).
    Operator,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub code: DepartmentCode,
    pub name: String,
    pub kind: UnitKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    pub code: GridCode,
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct District {
    pub code: DivisionCode,
    pub name: String,
    /// The dispatch unit whose queue receives the district's reports.
    pub command_centre: DepartmentCode,
    #[serde(default)]
    pub grids: Vec<Grid>,
}

/// The city's working calendar: public holidays, and weekend days worked in their place.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarData {
    #[serde(default)]
    pub holidays: Vec<jiff::civil::Date>,
    #[serde(default)]
    pub extra_working_days: Vec<jiff::civil::Date>,
}

/// How sensitive a dataset's field is, least to most (ordered).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    /// May be opened to the public.
    Public,
    /// For government use.
    Internal,
    /// Personal information.
    Personal,
    /// Sensitive personal information (health, rehabilitation, criminal matters, minors).
    Sensitive,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetField {
    pub name: String,
    pub sensitivity: Sensitivity,
}

/// A dataset of the catalogue (政务信息资源目录), provided by its owning department.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// A slug: lowercase letters, digits, `_` or `-`, e.g. `care_roster`.
    pub id: String,
    pub title: String,
    pub owner: DepartmentCode,
    pub fields: Vec<DatasetField>,
}

impl Dataset {
    pub fn field(&self, name: &str) -> Option<&DatasetField> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// The reference data as written in configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryData {
    pub units: Vec<Unit>,
    pub districts: Vec<District>,
    #[serde(default)]
    pub calendar: CalendarData,
    #[serde(default)]
    pub datasets: Vec<Dataset>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("unit {0} is listed twice")]
    DuplicateUnit(DepartmentCode),
    #[error("district {0} is listed twice")]
    DuplicateDistrict(DivisionCode),
    #[error("grid {0} is listed twice")]
    DuplicateGrid(GridCode),
    #[error(
        "district {district} names command centre {unit}, which is not a dispatch unit in the registry"
    )]
    CommandCentre {
        district: DivisionCode,
        unit: DepartmentCode,
    },
    #[error("grid {grid} does not lie in district {district} (its first six digits differ)")]
    GridOutsideDistrict {
        grid: GridCode,
        district: DivisionCode,
    },
    #[error("dataset id {0:?} must be 1 to 64 lowercase letters, digits, underscores or dashes")]
    DatasetId(String),
    #[error("dataset {0} is listed twice")]
    DuplicateDataset(String),
    #[error("dataset {dataset} names owner {owner}, which is not a department in the registry")]
    DatasetOwner {
        dataset: String,
        owner: DepartmentCode,
    },
    #[error("dataset {dataset} lists field {field:?} twice, or a field without a name")]
    DatasetField { dataset: String, field: String },
}

/// Checked reference data with lookups.
#[derive(Debug, Clone)]
pub struct Registry {
    calendar: CalendarData,
    units: BTreeMap<DepartmentCode, Unit>,
    districts: BTreeMap<DivisionCode, District>,
    grids: BTreeSet<GridCode>,
    datasets: BTreeMap<String, Dataset>,
}

impl Registry {
    pub fn new(data: RegistryData) -> Result<Self, RegistryError> {
        let mut units = BTreeMap::new();
        for unit in data.units {
            if let Some(old) = units.insert(unit.code.clone(), unit) {
                return Err(RegistryError::DuplicateUnit(old.code));
            }
        }
        let mut districts = BTreeMap::new();
        let mut grids = BTreeSet::new();
        for district in data.districts {
            let centre_ok = units
                .get(&district.command_centre)
                .is_some_and(|u: &Unit| u.kind == UnitKind::DispatchUnit);
            if !centre_ok {
                return Err(RegistryError::CommandCentre {
                    district: district.code,
                    unit: district.command_centre,
                });
            }
            for grid in &district.grids {
                if grid.code.division() != district.code {
                    return Err(RegistryError::GridOutsideDistrict {
                        grid: grid.code.clone(),
                        district: district.code,
                    });
                }
                if !grids.insert(grid.code.clone()) {
                    return Err(RegistryError::DuplicateGrid(grid.code.clone()));
                }
            }
            if let Some(old) = districts.insert(district.code.clone(), district) {
                return Err(RegistryError::DuplicateDistrict(old.code));
            }
        }
        let mut datasets = BTreeMap::new();
        for dataset in data.datasets {
            check_dataset(&dataset, &units)?;
            if let Some(old) = datasets.insert(dataset.id.clone(), dataset) {
                return Err(RegistryError::DuplicateDataset(old.id));
            }
        }
        Ok(Self {
            calendar: data.calendar,
            units,
            districts,
            grids,
            datasets,
        })
    }

    /// The city's calendar in `tz`.
    pub fn calendar(&self, tz: jiff::tz::TimeZone) -> crate::calendar::Calendar {
        crate::calendar::Calendar::new(
            tz,
            self.calendar.holidays.iter().copied().collect(),
            self.calendar.extra_working_days.iter().copied().collect(),
        )
    }

    pub fn unit(&self, code: &DepartmentCode) -> Option<&Unit> {
        self.units.get(code)
    }

    pub fn district(&self, code: &DivisionCode) -> Option<&District> {
        self.districts.get(code)
    }

    pub fn has_grid(&self, code: &GridCode) -> bool {
        self.grids.contains(code)
    }

    pub fn units(&self) -> impl Iterator<Item = &Unit> {
        self.units.values()
    }

    pub fn districts(&self) -> impl Iterator<Item = &District> {
        self.districts.values()
    }

    pub fn dataset(&self, id: &str) -> Option<&Dataset> {
        self.datasets.get(id)
    }

    /// The catalogue, by id.
    pub fn datasets(&self) -> impl Iterator<Item = &Dataset> {
        self.datasets.values()
    }
}

fn check_dataset(
    dataset: &Dataset,
    units: &BTreeMap<DepartmentCode, Unit>,
) -> Result<(), RegistryError> {
    let slug = (1..=64).contains(&dataset.id.len())
        && dataset
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if !slug {
        return Err(RegistryError::DatasetId(dataset.id.clone()));
    }
    if !units
        .get(&dataset.owner)
        .is_some_and(|u| u.kind == UnitKind::Department)
    {
        return Err(RegistryError::DatasetOwner {
            dataset: dataset.id.clone(),
            owner: dataset.owner.clone(),
        });
    }
    let mut names = BTreeSet::new();
    for field in &dataset.fields {
        if field.name.trim().is_empty() || !names.insert(field.name.as_str()) {
            return Err(RegistryError::DatasetField {
                dataset: dataset.id.clone(),
                field: field.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Registry, RegistryError> {
        Registry::new(toml::from_str(text).expect("registry toml parses"))
    }

    const UNITS: &str = r#"
        [[units]]
        code = "dcc-310104"
        name = "district command centre"
        kind = "dispatch_unit"
        [[units]]
        code = "urban-management"
        name = "urban management"
        kind = "department"
    "#;

    #[test]
    fn a_consistent_registry_loads_and_answers_lookups() {
        let registry = load(&format!(
            r#"{UNITS}
            [[districts]]
            code = "310104"
            name = "xuhui"
            command_centre = "dcc-310104"
            grids = [{{ code = "310104001001001", name = "g1" }}]
            "#
        ))
        .expect("registry is consistent");
        let grid = GridCode::parse("310104001001001").expect("grid code");
        assert!(registry.has_grid(&grid));
        let district = registry.district(&grid.division()).expect("district");
        assert_eq!(district.command_centre.as_str(), "dcc-310104");
    }

    const DATASET: &str = r#"
        [[datasets]]
        id = "streets"
        title = "street lighting"
        owner = "urban-management"
        fields = [
            { name = "lamp", sensitivity = "public" },
            { name = "operator", sensitivity = "internal" },
        ]
    "#;

    /// The units, no districts, and `datasets`.
    fn load_catalogue(datasets: &str) -> Result<Registry, RegistryError> {
        load(&format!("districts = []\n{UNITS}{datasets}"))
    }

    #[test]
    fn datasets_load_with_their_fields() {
        let registry = load_catalogue(DATASET).expect("registry is consistent");
        let dataset = registry.dataset("streets").expect("dataset");
        assert_eq!(dataset.owner.as_str(), "urban-management");
        let field = dataset.field("operator").expect("field");
        assert_eq!(field.sensitivity, Sensitivity::Internal);
        assert!(Sensitivity::Public < Sensitivity::Sensitive);
        assert_eq!(registry.datasets().count(), 1);
        assert!(registry.dataset("nothing").is_none());
        let empty = load_catalogue("").expect("datasets are optional");
        assert_eq!(empty.datasets().count(), 0);
    }

    #[test]
    fn a_dataset_is_owned_by_a_department_and_listed_once() {
        let err = load_catalogue(&DATASET.repeat(2)).expect_err("listed twice");
        assert_eq!(err, RegistryError::DuplicateDataset("streets".into()));
        for owner in ["dcc-310104", "housing"] {
            let text = DATASET.replace("urban-management", owner);
            let err = load_catalogue(&text).expect_err("owner is no department");
            assert!(matches!(err, RegistryError::DatasetOwner { .. }), "{err}");
        }
        let text = DATASET.replace("operator", "lamp");
        let err = load_catalogue(&text).expect_err("field listed twice");
        assert!(matches!(err, RegistryError::DatasetField { .. }), "{err}");
        let text = DATASET.replace("streets", "Street Lights");
        let err = load_catalogue(&text).expect_err("id is no slug");
        assert!(matches!(err, RegistryError::DatasetId(_)), "{err}");
    }

    #[test]
    fn a_command_centre_must_be_a_dispatch_unit() {
        let err = load(&format!(
            r#"{UNITS}
            [[districts]]
            code = "310104"
            name = "xuhui"
            command_centre = "urban-management"
            "#
        ))
        .expect_err("a department is not a command centre");
        assert!(matches!(err, RegistryError::CommandCentre { .. }), "{err}");
    }

    #[test]
    fn a_grid_must_lie_in_its_district() {
        let err = load(&format!(
            r#"{UNITS}
            [[districts]]
            code = "310104"
            name = "xuhui"
            command_centre = "dcc-310104"
            grids = [{{ code = "310105001001001", name = "elsewhere" }}]
            "#
        ))
        .expect_err("grid outside its district");
        assert!(
            matches!(err, RegistryError::GridOutsideDistrict { .. }),
            "{err}"
        );
    }
}
