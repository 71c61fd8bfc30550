//! The city the simulation runs in, as the hub's reference data describes it: districts with
//! their command centres, grids and communities, and the departments that handle cases.

use std::path::Path;

use anyhow::{Context, bail};
use hub_domain::registry::{Registry, UnitKind};

/// The departments the simulation routes cases to and acts as (the demo's four).
pub const URBAN_MANAGEMENT: &str = "urban-management";
pub const PUBLIC_SECURITY: &str = "public-security";
pub const HOUSING: &str = "housing";
pub const CIVIL_AFFAIRS: &str = "civil-affairs";
pub const DEPARTMENTS: [&str; 4] = [URBAN_MANAGEMENT, PUBLIC_SECURITY, HOUSING, CIVIL_AFFAIRS];

#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// 15 digits: district (6), street (3), community (3), grid (3).
    pub code: String,
}

impl Grid {
    /// The community the grid lies in (12 digits).
    pub fn community(&self) -> &str {
        &self.code[..12]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct District {
    /// The division code (GB/T 2260, 6 digits).
    pub code: String,
    /// The district command centre (a dispatch unit).
    pub command_centre: String,
    pub grids: Vec<Grid>,
    /// The communities of its grids, in the order the grids name them.
    pub communities: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct City {
    /// Districts with at least one grid, in code order.
    pub districts: Vec<District>,
}

impl City {
    /// The city of the reference data at `path`, read with the hub's own loader (the demo
    /// data when `None`).
    pub fn load(path: Option<&Path>) -> anyhow::Result<City> {
        let registry = hub::load_registry(path)?;
        City::from_registry(&registry).with_context(|| match path {
            Some(path) => format!("simulating the city of {}", path.display()),
            None => "simulating the demo city".to_owned(),
        })
    }

    pub fn from_registry(registry: &Registry) -> anyhow::Result<City> {
        for code in DEPARTMENTS {
            let is_department = registry
                .units()
                .any(|u| u.code.as_str() == code && u.kind == UnitKind::Department);
            if !is_department {
                bail!(
                    "the reference data has no department {code}: the simulation routes cases to \
                     the demo's departments ({}); `hubctl simulate reference` writes reference \
                     data that has them",
                    DEPARTMENTS.join(", ")
                );
            }
        }
        let districts: Vec<District> = registry
            .districts()
            .filter(|d| !d.grids.is_empty())
            .map(|d| {
                let grids: Vec<Grid> = d
                    .grids
                    .iter()
                    .map(|g| Grid {
                        code: g.code.as_str().to_owned(),
                    })
                    .collect();
                let mut communities: Vec<String> = Vec::new();
                for grid in &grids {
                    if !communities.iter().any(|c| c == grid.community()) {
                        communities.push(grid.community().to_owned());
                    }
                }
                District {
                    code: d.code.as_str().to_owned(),
                    command_centre: d.command_centre.as_str().to_owned(),
                    grids,
                    communities,
                }
            })
            .collect();
        if districts.is_empty() {
            bail!("the reference data has no district with a grid to simulate");
        }
        Ok(City { districts })
    }

    pub fn grids(&self) -> usize {
        self.districts.iter().map(|d| d.grids.len()).sum()
    }

    pub fn communities(&self) -> usize {
        self.districts.iter().map(|d| d.communities.len()).sum()
    }

    /// What identifies the city for the scenario's id: every district, centre and grid.
    pub fn fingerprint(&self) -> String {
        let mut out = String::new();
        for d in &self.districts {
            out.push_str(&d.code);
            out.push('>');
            out.push_str(&d.command_centre);
            for g in &d.grids {
                out.push(',');
                out.push_str(&g.code);
            }
            out.push(';');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_city_has_its_two_districts_grids_and_communities() {
        let city = City::load(None).expect("demo city");
        let codes: Vec<&str> = city.districts.iter().map(|d| d.code.as_str()).collect();
        assert_eq!(codes, ["310104", "310105"]);
        assert_eq!(city.districts[0].command_centre, "dcc-310104");
        assert_eq!(city.grids(), 7);
        assert_eq!(
            city.districts[0].communities,
            ["310104001001", "310104001002", "310104002001"]
        );
    }
}
