//! Reference data: departments, dispatch units, districts and their grids.
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

/// The reference data as written in configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryData {
    pub units: Vec<Unit>,
    pub districts: Vec<District>,
    #[serde(default)]
    pub calendar: CalendarData,
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
}

/// Checked reference data with lookups.
#[derive(Debug, Clone)]
pub struct Registry {
    calendar: CalendarData,
    units: BTreeMap<DepartmentCode, Unit>,
    districts: BTreeMap<DivisionCode, District>,
    grids: BTreeSet<GridCode>,
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
        Ok(Self {
            calendar: data.calendar,
            units,
            districts,
            grids,
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
