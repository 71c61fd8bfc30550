//! `hubctl simulate reference`: reference data for a simulated city of N districts with M
//! grids each, in the format the hub loads (`reference_data`), keeping the demo's units
//! (departments, command centres, auditors, operator) and working calendar.

use std::fmt::Write as _;

use anyhow::Context;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::people::ROADS;

/// The demo reference data, whose units and calendar a generated city keeps.
const DEMO: &str = include_str!("../../../../deploy/reference/demo.toml");

/// Districts the generated city takes first (the demo's two, then Shanghai's others), with
/// their names; beyond these, made-up districts `3101nn`.
const DISTRICTS: &[(&str, &str, &str)] = &[
    ("310104", "徐汇区", "Xuhui"),
    ("310105", "长宁区", "Changning"),
    ("310101", "黄浦区", "Huangpu"),
    ("310106", "静安区", "Jing'an"),
    ("310107", "普陀区", "Putuo"),
    ("310109", "虹口区", "Hongkou"),
    ("310110", "杨浦区", "Yangpu"),
    ("310112", "闵行区", "Minhang"),
    ("310113", "宝山区", "Baoshan"),
    ("310114", "嘉定区", "Jiading"),
    ("310115", "浦东新区", "Pudong"),
    ("310116", "金山区", "Jinshan"),
    ("310117", "松江区", "Songjiang"),
    ("310118", "青浦区", "Qingpu"),
    ("310120", "奉贤区", "Fengxian"),
    ("310151", "崇明区", "Chongming"),
];

/// Most districts and grids per district a generated city has.
pub const MAX_DISTRICTS: u32 = 80;
pub const MAX_GRIDS: u32 = 999;

/// Grids per community and communities per street in a generated city.
const GRIDS_PER_COMMUNITY: u32 = 3;
const COMMUNITIES_PER_STREET: u32 = 4;

const CHINESE_NUMBERS: [&str; 10] = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十"];

fn ordinal(n: u32) -> String {
    match n {
        1..=10 => CHINESE_NUMBERS[n as usize - 1].to_owned(),
        n => n.to_string(),
    }
}

/// The `n`-th district (0-based): its code, Chinese and English names.
fn district(n: u32) -> (String, String, String) {
    if let Some((code, zh, en)) = DISTRICTS.get(n as usize) {
        return (
            (*code).to_owned(),
            (*zh).to_owned(),
            format!("{en} District"),
        );
    }
    // Made-up districts on the two-digit numbers Shanghai does not use.
    let used: Vec<u32> = DISTRICTS
        .iter()
        .filter_map(|(code, _, _)| code[4..].parse().ok())
        .collect();
    let number = (21..=99)
        .filter(|k| !used.contains(k))
        .nth(n as usize - DISTRICTS.len())
        .unwrap_or(99);
    (
        format!("3101{number:02}"),
        format!("模拟{number}区"),
        format!("simulated district {number}"),
    )
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The reference data of a city of `districts` districts with `grids` grids each; street
/// names are drawn from `seed`.
pub fn generate(districts: u32, grids: u32, seed: u64) -> anyhow::Result<String> {
    anyhow::ensure!(
        (1..=MAX_DISTRICTS).contains(&districts),
        "--districts must be 1 to {MAX_DISTRICTS}"
    );
    anyhow::ensure!(
        (1..=MAX_GRIDS).contains(&grids),
        "--grids must be 1 to {MAX_GRIDS}"
    );
    let demo: toml::Table = toml::from_str(DEMO).context("the demo reference data")?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# A simulated city: {districts} district(s) of {grids} grid(s) each, written by\n\
         # `hubctl simulate reference --districts {districts} --grids {grids} --seed {seed}`.\n\
         # Made-up data for demos and benchmarks. Its units and calendar are the demo's; each\n\
         # district has a command centre dcc-<code>. Load it into a hub with reference_data\n\
         # (or HUB_REFERENCE_DATA) and drive it with `hubctl simulate run --reference <this file>`.\n"
    );
    let mut centres: Vec<String> = Vec::new();
    if let Some(units) = demo.get("units").and_then(|u| u.as_array()) {
        for unit in units {
            let field = |name: &str| unit.get(name).and_then(|v| v.as_str()).unwrap_or_default();
            if field("kind") == "dispatch_unit" {
                centres.push(field("code").to_owned());
            }
            let _ = writeln!(
                out,
                "[[units]]\ncode = {}\nname = {}\nkind = {}\n",
                quoted(field("code")),
                quoted(field("name")),
                quoted(field("kind"))
            );
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut districts_toml = String::new();
    for n in 0..districts {
        let (code, zh, en) = district(n);
        let centre = format!("dcc-{code}");
        if !centres.contains(&centre) {
            let _ = writeln!(
                out,
                "[[units]]\ncode = {}\nname = {}\nkind = \"dispatch_unit\"\n",
                quoted(&centre),
                quoted(&format!("{zh}网格化服务管理中心 {en} command centre")),
            );
            centres.push(centre.clone());
        }
        let mut roads: Vec<&str> = ROADS.to_vec();
        roads.shuffle(&mut rng);
        let _ = writeln!(
            districts_toml,
            "[[districts]]\ncode = {}\nname = {}\ncommand_centre = {}\ngrids = [",
            quoted(&code),
            quoted(&format!("{zh} {en}")),
            quoted(&centre)
        );
        for g in 0..grids {
            let community = g / GRIDS_PER_COMMUNITY;
            let street = community / COMMUNITIES_PER_STREET + 1;
            let in_street = community % COMMUNITIES_PER_STREET + 1;
            let number = g % GRIDS_PER_COMMUNITY + 1;
            let road = roads
                .get(street as usize - 1)
                .map(|r| format!("{r}路街道"))
                .unwrap_or_else(|| format!("第{street}街道"));
            let name = format!("{road} 第{}社区 {number}号网格", ordinal(in_street));
            let _ = writeln!(
                districts_toml,
                "  {{ code = \"{code}{street:03}{in_street:03}{number:03}\", name = {} }},",
                quoted(&name)
            );
        }
        let _ = writeln!(districts_toml, "]\n");
    }
    out.push_str(&districts_toml);
    if let Some(calendar) = demo.get("calendar") {
        let mut table = toml::Table::new();
        table.insert("calendar".to_owned(), calendar.clone());
        out.push_str("# The demo's working calendar.\n");
        out.push_str(&toml::to_string(&table).context("writing the calendar")?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_city_loads_with_the_hubs_own_loader() {
        let dir = tempfile::tempdir().expect("temp dir");
        for (districts, grids) in [(1, 1), (3, 7), (20, 40)] {
            let text = generate(districts, grids, 11).expect("generated");
            let path = dir.path().join(format!("city-{districts}-{grids}.toml"));
            std::fs::write(&path, &text).expect("written");
            let registry = hub::load_registry(Some(&path))
                .unwrap_or_else(|e| panic!("{districts}x{grids} does not load: {e:#}\n{text}"));
            assert_eq!(registry.districts().count(), districts as usize);
            for d in registry.districts() {
                assert_eq!(d.grids.len(), grids as usize);
                assert_eq!(d.command_centre.as_str(), format!("dcc-{}", d.code));
            }
            let demo = hub::load_registry(None).expect("demo");
            for unit in demo.units() {
                let kept = registry
                    .unit(&unit.code)
                    .expect("the demo's units are kept");
                assert_eq!(kept.kind, unit.kind);
            }
            let calendar = registry.calendar(jiff::tz::TimeZone::UTC);
            assert!(!calendar.is_working_day(jiff::civil::date(2026, 10, 1)));
            let city = super::super::city::City::load(Some(&path)).expect("simulated city");
            assert_eq!(city.grids(), (districts * grids) as usize);
        }
    }

    #[test]
    fn the_same_seed_writes_the_same_city_and_another_seed_other_names() {
        let a = generate(2, 9, 1).expect("a");
        assert_eq!(a, generate(2, 9, 1).expect("again"));
        let b = generate(2, 9, 2).expect("b");
        assert_ne!(a, b, "street names come from the seed");
        let codes = |t: &str| -> Vec<String> {
            t.lines()
                .filter_map(|l| l.split("code = \"").nth(1))
                .map(|c| c[..c.find('"').unwrap_or(0)].to_owned())
                .collect()
        };
        assert_eq!(codes(&a), codes(&b), "codes depend on the sizes alone");
        assert!(generate(0, 1, 1).is_err() && generate(1, 1000, 1).is_err());
    }
}
