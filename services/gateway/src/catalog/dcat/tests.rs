use hub_projector::datasets::{Field, Filters, Publication};
use serde_json::Value;

use super::*;

static ROSTER: Dataset = Dataset {
    id: "care_roster",
    version: 1,
    title_zh: "关爱名册",
    title_en: "Care roster",
    description_zh: "需要关爱的居民名册，标注\"重点\"人群。",
    description_en: r#"Residents under care, the "priority" ones marked; path C:\care"#,
    owner: Owner::Department("civil-affairs"),
    share: ShareType::Conditional,
    open: OpenType::NotOpen,
    cycle: UpdateCycle::Continuous,
    keywords: &["关爱", "care", "GDP 统计"],
    fields: &[Field {
        name: "resident_id",
        kind: FieldType::Text,
        sensitivity: Sensitivity::Personal,
        title_zh: "居民编号",
        title_en: "Resident id",
        mask: hub_projector::datasets::Mask::Drop,
    }],
    filters: Filters {
        department: None,
        district: None,
        grid: None,
        time: None,
    },
    parties: &[],
    publication: Publication::Rows,
};

fn entry(dataset: &'static Dataset, halted: Option<&str>) -> Entry {
    Entry {
        dataset,
        status: Status {
            position: Some(41),
            log_position: Some(42),
            lag_seconds: Some(0.25),
            rows: Some(3),
            halted: halted.map(str::to_owned),
        },
    }
}

fn publisher() -> Publisher {
    Publisher {
        name: "上海市大数据中心 Shanghai big data centre".into(),
        departments: vec![("civil-affairs".into(), "民政局 Civil affairs".into())],
    }
}

fn page<'a>(entries: &'a [Entry], publisher: &'a Publisher, page: u64, total: u64) -> Page<'a> {
    Page {
        entries,
        base_url: "http://127.0.0.1:50051/",
        page,
        page_size: 2,
        total,
        publisher,
        modified: None,
    }
}

/// The collection node of a JSON-LD page.
fn collection(document: &str) -> Value {
    let document: Value = serde_json::from_str(document).expect("valid JSON");
    document["@graph"]
        .as_array()
        .expect("a @graph")
        .iter()
        .find(|node| node["@type"] == "hydra:PagedCollection")
        .cloned()
        .expect("a hydra:PagedCollection node")
}

fn link(collection: &Value, predicate: &str) -> Option<String> {
    collection[predicate]["@id"].as_str().map(str::to_owned)
}

#[test]
fn hydra_links_first_last_next_and_previous_where_they_exist() {
    let publisher = publisher();
    let url = |n: u64| format!("http://127.0.0.1:50051/catalog.jsonld?page={n}");
    // Five datasets, two a page: pages 1 to 3.
    for (n, next, previous) in [
        (1, Some(2), None),
        (2, Some(3), Some(1)),
        (3, None, Some(2)),
    ] {
        let page = page(&[], &publisher, n, 5);
        assert_eq!((page.next_page(), page.previous_page()), (next, previous));
        let node = collection(&jsonld(&page));
        assert_eq!(node["@id"], url(n));
        assert_eq!(link(&node, "hydra:firstPage"), Some(url(1)));
        assert_eq!(link(&node, "hydra:lastPage"), Some(url(3)));
        assert_eq!(link(&node, "hydra:nextPage"), next.map(url));
        assert_eq!(link(&node, "hydra:next"), next.map(url));
        assert_eq!(link(&node, "hydra:previousPage"), previous.map(url));
        assert_eq!(link(&node, "hydra:previous"), previous.map(url));
        assert_eq!(node["hydra:totalItems"]["@value"], "5");
        assert_eq!(node["hydra:itemsPerPage"]["@value"], "2");
    }
    let turtle = turtle(&page(&[], &publisher, 2, 5));
    assert!(
        turtle.contains("<http://127.0.0.1:50051/catalog.ttl?page=2>\n    a hydra:PagedCollection")
    );
    assert!(turtle.contains("hydra:nextPage <http://127.0.0.1:50051/catalog.ttl?page=3>"));
    assert!(turtle.contains("hydra:previousPage <http://127.0.0.1:50051/catalog.ttl?page=1>"));
    assert!(!turtle.contains(".jsonld"), "{turtle}");
}

#[test]
fn a_catalogue_of_one_page_still_carries_the_collection() {
    let publisher = publisher();
    for total in [0, 1, 2] {
        let page = page(&[], &publisher, 1, total);
        assert_eq!(
            (page.last_page(), page.next_page(), page.previous_page()),
            (1, None, None)
        );
        let node = collection(&jsonld(&page));
        assert_eq!(
            link(&node, "hydra:lastPage"),
            link(&node, "hydra:firstPage")
        );
        assert!(node.get("hydra:nextPage").is_none() && node.get("hydra:previousPage").is_none());
    }
    // Page 0 is page 1; past the end, previous leads back to the last page; no page size is
    // one page.
    assert_eq!(page(&[], &publisher, 0, 5).next_page(), Some(2));
    assert_eq!(page(&[], &publisher, 9, 5).previous_page(), Some(3));
    let all = Page {
        page_size: 0,
        ..page(&[], &publisher, 1, 5)
    };
    assert_eq!(
        (all.last_page(), all.next_page(), all.items_per_page()),
        (1, None, 5)
    );
}

#[test]
fn chinese_text_and_quotes_survive_both_forms() {
    let publisher = publisher();
    let entries = [entry(&ROSTER, Some("事件 17 无法解析: \"bad\""))];
    let page = page(&entries, &publisher, 1, 1);

    let turtle = turtle(&page);
    assert!(
        turtle.contains(r#"dct:title "关爱名册"@zh, "Care roster"@en"#),
        "{turtle}"
    );
    assert!(turtle.contains(r#""需要关爱的居民名册，标注\"重点\"人群。"@zh"#));
    assert!(
        turtle
            .contains(r#""Residents under care, the \"priority\" ones marked; path C:\\care"@en"#)
    );
    assert!(turtle.contains(r#"hub:haltReason "事件 17 无法解析: \"bad\"""#));

    let document: Value = serde_json::from_str(&jsonld(&page)).expect("valid JSON");
    let dataset = document["@graph"]
        .as_array()
        .expect("a @graph")
        .iter()
        .find(|node| node["@type"] == "dcat:Dataset")
        .expect("the dataset");
    assert_eq!(
        dataset["dct:description"][0]["@value"],
        ROSTER.description_zh
    );
    assert_eq!(
        dataset["dct:description"][1]["@value"],
        ROSTER.description_en
    );
    assert_eq!(
        dataset["hub:status"]["hub:haltReason"],
        "事件 17 无法解析: \"bad\""
    );
    assert_eq!(dataset["hub:status"]["hub:halted"]["@value"], "true");
}

#[test]
fn dataset_terms_and_links() {
    let publisher = publisher();
    let entries = [entry(&ROSTER, None)];
    let turtle = turtle(&page(&entries, &publisher, 1, 1));
    for expected in [
        "<http://127.0.0.1:50051/catalog>\n    a dcat:Catalog",
        "dcat:dataset <http://127.0.0.1:50051/datasets/care_roster>",
        "dct:publisher <http://127.0.0.1:50051/departments/civil-affairs>",
        "<http://127.0.0.1:50051/departments/civil-affairs>\n    a foaf:Agent ;\n    foaf:name \"民政局 Civil affairs\"",
        r#"dcat:keyword "关爱"@zh, "care"@en, "GDP 统计"@zh"#,
        "dct:accrualPeriodicity <http://publications.europa.eu/resource/authority/frequency/CONT>",
        "dct:accessRights <http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC>",
        "<http://publications.europa.eu/resource/authority/access-right/NON_PUBLIC>\n    a dct:RightsStatement .",
        "dcat:accessURL <http://127.0.0.1:50051/datasets/care_roster>",
        "hub:shareType hub:ConditionalShare",
        "hub:ConditionalShare\n    a skos:Concept ;\n    skos:prefLabel \"有条件共享\"@zh",
        "hub:fieldType xsd:string",
        "hub:sensitivity hub:Personal",
        "hub:lagSeconds \"0.25\"^^xsd:decimal",
        "hub:halted \"false\"^^xsd:boolean",
        "@prefix hub: <http://127.0.0.1:50051/ns#> .",
    ] {
        assert!(
            turtle.contains(expected),
            "missing {expected:?} in\n{turtle}"
        );
    }
    assert!(!turtle.contains("haltReason"));
}

#[test]
fn iris_stay_well_formed_whatever_the_base_and_id() {
    assert_eq!(
        base("http://hub.example/城市 数据/"),
        "http://hub.example/%E5%9F%8E%E5%B8%82%20%E6%95%B0%E6%8D%AE"
    );
    assert_eq!(
        base("http://h/<a>{b}|c^`\\\""),
        "http://h/%3Ca%3E%7Bb%7D%7Cc%5E%60%5C%22"
    );
    assert_eq!(segment("a b/c_d-e.f~g"), "a%20b%2Fc_d-e.f~g");
}

#[test]
fn the_catalogue_is_modified_when_told() {
    let publisher = publisher();
    let modified: Timestamp = "2025-06-01T08:30:00Z".parse().expect("a timestamp");
    let page = Page {
        modified: Some(modified),
        ..page(&[], &publisher, 1, 0)
    };
    assert!(turtle(&page).contains(r#"dct:modified "2025-06-01T08:30:00Z"^^xsd:dateTime"#));
}
