//! The catalogue's DCAT-AP export against the official DCAT-AP 3.0.1 shapes
//! (`deploy/dcat-ap-3.0.1`), validated by the pinned pyshacl (`bash deploy/setup.sh pyshacl`).
//!
//! Both `shapes.ttl` and `range.ttl` are given to pyshacl as shapes, concatenated into one
//! file: its `-e` option would only mix `range.ttl` into the data graph and check no range.
//! Broken exports must fail in the same run, so the check cannot pass by accepting anything.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{fs, thread};

use hub_gateway::catalog::dcat::{self, Page};
use hub_gateway::catalog::{Entry, Publisher, Status};
use hub_projector::datasets::{
    Dataset, FieldType, Filters, OpenType, Owner, Publication, Sensitivity, ShareType, UpdateCycle,
    field,
};
use serde_json::Value;

const NO_FILTERS: Filters = Filters {
    department: None,
    district: None,
    grid: None,
    time: None,
};

/// Open statistics of a department, monthly.
static STATS: Dataset = Dataset {
    id: "grid_incident_monthly",
    version: 1,
    title_zh: "网格事件月度统计",
    title_en: "Monthly grid incident statistics",
    description_zh: "各区、各类网格事件的月度数量与平均处置时长，按本市时区的自然月统计。",
    description_en: "Grid incidents per district, category and month, with the mean hours to \
                     close them; months in the city's time zone.",
    owner: Owner::Department("urban-management"),
    share: ShareType::Unconditional,
    open: OpenType::Open,
    cycle: UpdateCycle::Monthly,
    keywords: &["网格", "事件", "统计", "grid", "incidents", "statistics"],
    fields: &[
        field(
            "month",
            FieldType::Month,
            Sensitivity::Public,
            "月份",
            "Month",
        ),
        field(
            "district",
            FieldType::Text,
            Sensitivity::Public,
            "区",
            "District",
        ),
        field(
            "category",
            FieldType::Text,
            Sensitivity::Public,
            "事件类别",
            "Category",
        ),
        field(
            "incidents",
            FieldType::Integer,
            Sensitivity::Public,
            "事件数",
            "Incidents",
        ),
        field(
            "mean_hours_to_close",
            FieldType::Decimal,
            Sensitivity::Public,
            "平均处置时长（小时）",
            "Mean hours to close",
        ),
    ],
    filters: Filters {
        district: Some("district"),
        time: Some("month"),
        ..NO_FILTERS
    },
    parties: &[],
    publication: Publication::Rows,
};

/// A roster of people with personal and sensitive fields, shared under a grant, never opened.
static ROSTER: Dataset = Dataset {
    id: "care_roster",
    version: 3,
    title_zh: "困难群众关爱名册",
    title_en: "Care roster of residents in need",
    description_zh: "民政部门登记的需要关爱的居民（独居老人、残疾人、困境儿童）及最近一次\"上门走访\"情况。",
    description_en: "Residents in need of care registered by civil affairs (elderly people \
                     living alone, people with disabilities, children in difficulty) and their \
                     latest \"home visit\".",
    owner: Owner::Department("civil-affairs"),
    share: ShareType::Conditional,
    open: OpenType::NotOpen,
    cycle: UpdateCycle::Continuous,
    keywords: &["关爱", "民政", "care", "civil affairs"],
    fields: &[
        field(
            "resident_id",
            FieldType::Text,
            Sensitivity::Personal,
            "居民编号",
            "Resident id",
        ),
        field(
            "name",
            FieldType::Text,
            Sensitivity::Personal,
            "姓名",
            "Name",
        ),
        field(
            "birth_date",
            FieldType::Date,
            Sensitivity::Personal,
            "出生日期",
            "Date of birth",
        ),
        field(
            "care_category",
            FieldType::Text,
            Sensitivity::Sensitive,
            "关爱类别",
            "Care category",
        ),
        field(
            "health_note",
            FieldType::Text,
            Sensitivity::Sensitive,
            "健康状况",
            "Health",
        ),
        field(
            "grid",
            FieldType::Text,
            Sensitivity::Internal,
            "网格",
            "Grid",
        ),
        field(
            "last_visit_at",
            FieldType::Timestamp,
            Sensitivity::Internal,
            "最近走访时间",
            "Last visit",
        ),
    ],
    filters: Filters {
        grid: Some("grid"),
        time: Some("last_visit_at"),
        ..NO_FILTERS
    },
    parties: &[],
    publication: Publication::Rows,
};

/// What the hub itself owns: transfers between departments, opened under an agreement.
static TRANSFERS: Dataset = Dataset {
    id: "case_transfers_daily",
    version: 1,
    title_zh: "案件移交日汇总",
    title_en: "Daily case transfers between departments",
    description_zh: "每日各部门之间移交的案件数，由枢纽根据案件事件汇总。",
    description_en: "Cases transferred from one department to another per day, summed by the \
                     hub from the case events.",
    owner: Owner::Hub,
    share: ShareType::Conditional,
    open: OpenType::Conditional,
    cycle: UpdateCycle::Daily,
    keywords: &["移交", "案件", "transfers", "cases"],
    fields: &[
        field("date", FieldType::Date, Sensitivity::Public, "日期", "Date"),
        field(
            "from_department",
            FieldType::Text,
            Sensitivity::Internal,
            "移出部门",
            "From",
        ),
        field(
            "to_department",
            FieldType::Text,
            Sensitivity::Internal,
            "接收部门",
            "To",
        ),
        field(
            "transfers",
            FieldType::Integer,
            Sensitivity::Public,
            "移交数",
            "Transfers",
        ),
        field(
            "first_at",
            FieldType::Timestamp,
            Sensitivity::Internal,
            "首次移交时间",
            "First transfer",
        ),
    ],
    filters: Filters {
        department: Some("from_department"),
        time: Some("date"),
        ..NO_FILTERS
    },
    parties: &["from_department", "to_department"],
    publication: Publication::Rows,
};

fn entry(
    dataset: &'static Dataset,
    position: u64,
    lag: Option<f64>,
    halted: Option<&str>,
) -> Entry {
    Entry {
        dataset,
        status: Status {
            position: Some(position),
            log_position: Some(1045),
            lag_seconds: lag,
            rows: Some(48),
            halted: halted.map(str::to_owned),
        },
    }
}

/// Page `n` of the three datasets, two a page.
fn page<'a>(entries: &'a [Entry], n: u64, publisher: &'a Publisher) -> Page<'a> {
    Page {
        entries,
        base_url: "http://127.0.0.1:50051",
        page: n,
        page_size: 2,
        total: 3,
        publisher,
        modified: Some("2025-06-01T08:30:00Z".parse().expect("a timestamp")),
    }
}

/// The repository: two levels above this crate (`services/gateway`).
fn repo() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .expect("the repository")
        .to_path_buf()
}

/// pyshacl's verdict on one document.
struct Verdict {
    /// 0: conforms, 1: does not, anything else: pyshacl failed.
    code: Option<i32>,
    output: String,
}

impl Verdict {
    fn conforms(&self) -> bool {
        self.code == Some(0) && self.output.contains("Conforms: True")
    }

    fn violates(&self) -> bool {
        self.code == Some(1) && self.output.contains("Conforms: False")
    }
}

/// Runs pyshacl on `file` in `format` against `shapes`.
fn validate(pyshacl: &Path, shapes: &Path, file: &Path, format: &str) -> Verdict {
    let output = Command::new(pyshacl)
        .arg("-s")
        .arg(shapes)
        .args(["-df", format])
        .arg(file)
        .output()
        .expect("pyshacl runs");
    Verdict {
        code: output.status.code(),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// The JSON-LD `document` with `edit` applied to its `@graph`.
fn edit_graph(document: &str, edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut document: Value = serde_json::from_str(document).expect("valid JSON");
    let before = document.clone();
    edit(document["@graph"].as_array_mut().expect("a @graph"));
    assert!(document != before, "the edit changed nothing");
    serde_json::to_string_pretty(&document).expect("JSON")
}

/// A document pyshacl checks, and what it must find in it.
struct Case {
    name: &'static str,
    text: String,
    format: &'static str,
    /// `None`: conforms; `Some(text)`: violates, `text` in the report.
    violation: Option<&'static str>,
}

#[test]
fn the_export_conforms_to_dcat_ap_3_0_1_and_broken_exports_do_not() {
    let repo = repo();
    let pyshacl = repo.join("deploy/.tools/bin/pyshacl");
    assert!(
        pyshacl.is_file(),
        "pyshacl is not installed at {}: run `bash deploy/setup.sh pyshacl`",
        pyshacl.display()
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let shapes = dir.path().join("dcat-ap-3.0.1-shapes-and-range.ttl");
    let official = repo.join("deploy/dcat-ap-3.0.1");
    let read = |name: &str| fs::read_to_string(official.join(name)).expect("the official shapes");
    fs::write(
        &shapes,
        format!("{}\n{}", read("shapes.ttl"), read("range.ttl")),
    )
    .expect("write");

    let publisher = Publisher {
        name: "上海市大数据中心 Shanghai big data centre".into(),
        departments: vec![
            (
                "urban-management".into(),
                "城市管理行政执法局 Urban management and law enforcement".into(),
            ),
            ("civil-affairs".into(), "民政局 Civil affairs".into()),
        ],
    };
    let first = [
        entry(&STATS, 1045, Some(0.8), None),
        entry(
            &ROSTER,
            977,
            None,
            Some("事件 978 的字段 \"grid\" 不在登记册中 (grid not in the registry)"),
        ),
    ];
    let second = [entry(&TRANSFERS, 1045, Some(0.0), None)];
    let (page1, page2) = (page(&first, 1, &publisher), page(&second, 2, &publisher));
    let (ttl1, ttl2) = (dcat::turtle(&page1), dcat::turtle(&page2));
    let (jsonld1, jsonld2) = (dcat::jsonld(&page1), dcat::jsonld(&page2));

    let no_access_url: String = ttl1
        .lines()
        .filter(|line| !line.contains("dcat:accessURL"))
        .map(|line| format!("{line}\n"))
        .collect();
    // Both datasets of page 1 lose it.
    assert_eq!(ttl1.lines().count() - no_access_url.lines().count(), 2);
    let no_description = edit_graph(&jsonld1, |nodes| {
        for node in nodes.iter_mut().filter(|n| n["@type"] == "dcat:Dataset") {
            node.as_object_mut()
                .expect("a node")
                .remove("dct:description");
        }
    });
    let untyped_frequency = edit_graph(&jsonld2, |nodes| {
        nodes.retain(|n| n["@type"] != "dct:Frequency");
    });

    let cases = [
        Case {
            name: "page-1.ttl",
            text: ttl1.clone(),
            format: "turtle",
            violation: None,
        },
        Case {
            name: "page-2.ttl",
            text: ttl2.clone(),
            format: "turtle",
            violation: None,
        },
        Case {
            name: "page-1.jsonld",
            text: jsonld1.clone(),
            format: "json-ld",
            violation: None,
        },
        Case {
            name: "page-2.jsonld",
            text: jsonld2.clone(),
            format: "json-ld",
            violation: None,
        },
        Case {
            name: "no-access-url.ttl",
            text: no_access_url,
            format: "turtle",
            violation: Some("Result Path: dcat:accessURL"),
        },
        Case {
            name: "no-description.jsonld",
            text: no_description,
            format: "json-ld",
            violation: Some("Result Path: dct:description"),
        },
        Case {
            name: "untyped-frequency.jsonld",
            text: untyped_frequency,
            format: "json-ld",
            violation: Some("Value does not have class dct:Frequency"),
        },
    ];
    let verdicts: Vec<Verdict> = thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .map(|case| {
                let file = dir.path().join(case.name);
                fs::write(&file, &case.text).expect("write");
                let (pyshacl, shapes) = (&pyshacl, &shapes);
                scope.spawn(move || validate(pyshacl, shapes, &file, case.format))
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().expect("a pyshacl run"))
            .collect()
    });
    for (case, verdict) in cases.iter().zip(&verdicts) {
        match case.violation {
            None => assert!(
                verdict.conforms(),
                "{} does not conform (exit {:?}):\n{}\n--- document ---\n{}",
                case.name,
                verdict.code,
                verdict.output,
                case.text
            ),
            Some(expected) => assert!(
                verdict.violates() && verdict.output.contains(expected),
                "{} should violate with {expected:?} (exit {:?}):\n{}",
                case.name,
                verdict.code,
                verdict.output
            ),
        }
    }

    // Both forms of a page are one graph: rdflib (installed with pyshacl) reads each and
    // compares them, the JSON-LD page links renamed to the Turtle ones they stand for.
    let mut files = Vec::new();
    for (n, ttl, jsonld) in [(1, &ttl1, &jsonld1), (2, &ttl2, &jsonld2)] {
        let ttl_file = dir.path().join(format!("same-{n}.ttl"));
        let jsonld_file = dir.path().join(format!("same-{n}.jsonld"));
        fs::write(&ttl_file, ttl).expect("write");
        fs::write(
            &jsonld_file,
            jsonld.replace("/catalog.jsonld?page=", "/catalog.ttl?page="),
        )
        .expect("write");
        files.extend([ttl_file, jsonld_file]);
    }
    let output = Command::new("python3")
        .env("PYTHONPATH", repo.join("deploy/.tools/pip/pyshacl"))
        .env("PYTHONNOUSERSITE", "1")
        .args(["-c", COMPARE])
        .args(&files)
        .output()
        .expect("python3 runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "comparing the forms failed:\n{report}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 2, "{report}");
    for line in lines {
        let [turtle, jsonld, same] = line.split(' ').collect::<Vec<_>>()[..] else {
            panic!("unexpected line {line:?}");
        };
        let triples: usize = turtle.parse().expect("a count");
        assert!(triples > 50, "{report}");
        assert_eq!(
            (turtle, same),
            (jsonld, "True"),
            "Turtle and JSON-LD differ: {report}"
        );
    }
}

/// For each Turtle/JSON-LD pair of files: both triple counts and whether the graphs are
/// isomorphic (blank nodes matched by structure).
const COMPARE: &str = r#"
import sys
from rdflib import Graph
from rdflib.compare import isomorphic
for ttl, jsonld in zip(sys.argv[1::2], sys.argv[2::2]):
    a = Graph().parse(ttl, format="turtle")
    b = Graph().parse(jsonld, format="json-ld")
    print(len(a), len(b), isomorphic(a, b))
"#;
