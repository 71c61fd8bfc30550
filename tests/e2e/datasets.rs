//! The datasets of the catalogue: built from the log, read over gRPC and HTTP, open ones by
//! anyone, the rest by their owner; paged with cursors that survive new rows.

use hub_api::v1;
use hub_tests::{Hub, HubBuilder, Nats};
use prost_types::value::Kind;
use tonic::Code;

use crate::{cmd, complaint, from, incident, violated_field};

pub fn read(dataset: &str, min_position: u64) -> v1::ReadDatasetRequest {
    v1::ReadDatasetRequest {
        dataset_id: dataset.into(),
        min_position,
        ..Default::default()
    }
}

/// A field of a row: text, a number, or null as None.
pub fn text(row: &prost_types::Struct, field: &str) -> Option<String> {
    match row.fields.get(field)?.kind.as_ref()? {
        Kind::StringValue(s) => Some(s.clone()),
        Kind::NumberValue(n) => Some(n.to_string()),
        Kind::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

pub async fn rows_as(
    hub: &Hub,
    by: Option<&str>,
    request: v1::ReadDatasetRequest,
) -> Result<v1::ReadDatasetResponse, tonic::Status> {
    let request = match by {
        Some(department) => from(department, request),
        None => tonic::Request::new(request),
    };
    hub.datasets()
        .read_dataset(request)
        .await
        .map(|r| r.into_inner())
}

/// Reports an incident and takes it through dispatch, acceptance, resolution and a rating;
/// returns the case id and the last position.
async fn handled_incident(hub: &Hub, n: u32) -> (String, u64) {
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident(&format!("inc-{n}"))))
        .await
        .expect("report")
        .into_inner();
    let id = reported.case_id;
    cmd::dispatch(
        hub,
        "dcc-310104",
        &format!("d-{n}"),
        &id,
        "urban-management",
        None,
    )
    .await
    .expect("dispatch");
    cmd::accept(hub, "urban-management", &format!("a-{n}"), &id, None)
        .await
        .expect("accept");
    cmd::resolve(hub, "urban-management", &format!("r-{n}"), &id)
        .await
        .expect("resolve");
    let rated = cmd::rate(hub, "urban-management", &format!("rt-{n}"), &id, 5)
        .await
        .expect("rate");
    (id, rated.position)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_statistics_are_read_by_anyone_and_count_each_event_once() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let (_, _) = handled_incident(&hub, 1).await;
    let (_, last) = handled_incident(&hub, 2).await;

    // Anonymous: no x-hub-department header at all.
    let stats = rows_as(&hub, None, read("incident_stats", last))
        .await
        .expect("open dataset, anonymous reader");
    assert_eq!(
        stats.rows.len(),
        1,
        "one grid, one day, one category: {stats:?}"
    );
    let row = &stats.rows[0];
    assert_eq!(text(row, "grid_code").as_deref(), Some("310104001001001"));
    assert_eq!(text(row, "category").as_deref(), Some("fire_hazard"));
    assert_eq!(text(row, "reported").as_deref(), Some("2"));
    assert_eq!(text(row, "resolved").as_deref(), Some("2"));
    assert_eq!(text(row, "closed").as_deref(), Some("0"));
    assert!(stats.position >= last);

    let efficiency = rows_as(&hub, None, read("response_efficiency", last))
        .await
        .expect("open dataset");
    assert_eq!(efficiency.rows.len(), 1, "{efficiency:?}");
    let row = &efficiency.rows[0];
    assert_eq!(text(row, "department").as_deref(), Some("urban-management"));
    for (field, value) in [
        ("dispatched", "2"),
        ("accepted", "2"),
        ("resolved", "2"),
        ("rated", "2"),
        ("satisfied", "2"),
        ("mean_rating", "5"),
        ("overdue_accept", "0"),
    ] {
        assert_eq!(text(row, field).as_deref(), Some(value), "{field}");
    }

    // The same over HTTP, as a researcher's script would read it.
    let url = format!(
        "{}/datasets/incident_stats?min_position={last}",
        hub.http_url()
    );
    let body: serde_json::Value = reqwest::get(&url)
        .await
        .expect("http get")
        .error_for_status()
        .expect("200")
        .json()
        .await
        .expect("json");
    assert_eq!(body["rows"][0]["reported"], 2, "{body}");
    assert_eq!(body["rows"][0]["grid_code"], "310104001001001");

    // A filter on a dimension the dataset lacks is refused by field, not ignored; the same
    // read with a filter it has succeeds.
    let mut wrong = read("incident_stats", last);
    wrong.department = "urban-management".into();
    let status = rows_as(&hub, None, wrong)
        .await
        .expect_err("no such dimension");
    assert_eq!(violated_field(&status), "department");
    let mut right = read("incident_stats", last);
    right.grid_code = "310104001001001".into();
    right.time_from = "2000-01-01".into();
    assert_eq!(
        rows_as(&hub, None, right)
            .await
            .expect("grid filter")
            .rows
            .len(),
        1
    );
    // Other bad input, each refused by field (or as no such dataset); nothing else read.
    let mut early = read("incident_stats", last);
    early.time_from = "yesterday".into();
    let status = rows_as(&hub, None, early).await.expect_err("not a date");
    assert_eq!(violated_field(&status), "time_from");
    let status = rows_as(&hub, None, read("no_such_dataset", last))
        .await
        .expect_err("no such dataset");
    assert_eq!(status.code(), Code::NotFound);
    let status = rows_as(
        &hub,
        Some("no-such-department"),
        read("incident_stats", last),
    )
    .await
    .expect_err("an unknown department");
    assert_eq!(violated_field(&status), "x-hub-department");
    let misspelt = format!("{}/datasets/incident_stats?district=310104", hub.http_url());
    let refused = reqwest::get(&misspelt).await.expect("http");
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    assert!(refused.text().await.expect("body").contains("district"));
    let mut elsewhere = read("incident_stats", last);
    elsewhere.grid_code = "310105001001001".into();
    assert!(
        rows_as(&hub, None, elsewhere)
            .await
            .expect("grid filter")
            .rows
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_datasets_rows_beyond_the_open_ones_are_its_owners_alone() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let registered = hub
        .care()
        .register_care(from(
            "civil-affairs",
            v1::RegisterCareRequest {
                request_id: "care-1".into(),
                name: "张三".into(),
                identity_number: "11010519491231002X".into(),
                category: v1::CareCategory::ElderlyInHardship as i32,
                community_code: "310104001001".into(),
                risk_level: v1::RiskLevel::Medium as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("register")
        .into_inner();
    let at = registered.result.expect("result").position;

    let anonymous = rows_as(&hub, None, read("care_roster", at))
        .await
        .expect_err("not open");
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    let other = rows_as(&hub, Some("public-security"), read("care_roster", at))
        .await
        .expect_err("not the owner, no grant");
    assert_eq!(other.code(), Code::PermissionDenied);
    assert!(!other.message().contains("张三"), "{other:?}");
    let owner = rows_as(&hub, Some("civil-affairs"), read("care_roster", at))
        .await
        .expect("the owner reads its roster");
    assert_eq!(owner.rows.len(), 1);
    assert_eq!(text(&owner.rows[0], "name").as_deref(), Some("张三"));

    // Over HTTP: anonymous is refused with 401, the owner reads.
    let url = format!("{}/datasets/care_roster?min_position={at}", hub.http_url());
    let client = reqwest::Client::new();
    let refused = client.get(&url).send().await.expect("http");
    assert_eq!(refused.status(), reqwest::StatusCode::UNAUTHORIZED);
    let served = client
        .get(&url)
        .header("x-hub-department", "civil-affairs")
        .header("x-hub-user", "staff-0001")
        .header("x-hub-purpose", "case:test")
        .send()
        .await
        .expect("http");
    assert_eq!(served.status(), reqwest::StatusCode::OK);

    // The hub's cross-department transfer ledger: the departments party to a transfer read
    // it, another department sees none of it.
    let reported = hub
        .commands()
        .report_case(from("housing", complaint("cmp-1")))
        .await
        .expect("report")
        .into_inner();
    let id = reported.case_id;
    cmd::dispatch(&hub, "dcc-310105", "d-1", &id, "urban-management", None)
        .await
        .expect("dispatch");
    cmd::accept(&hub, "urban-management", "a-1", &id, None)
        .await
        .expect("accept");
    cmd::transfer(&hub, "urban-management", "t-1", &id, "housing")
        .await
        .expect("transfer");
    let accepted = cmd::accept_transfer(&hub, "housing", "ta-1", &id)
        .await
        .expect("accept transfer");
    for party in ["urban-management", "housing"] {
        let ledger = rows_as(
            &hub,
            Some(party),
            read("transfer_ledger", accepted.position),
        )
        .await
        .expect("a party reads the ledger");
        assert_eq!(ledger.rows.len(), 1, "{party}: {ledger:?}");
        let row = &ledger.rows[0];
        assert_eq!(
            text(row, "from_department").as_deref(),
            Some("urban-management")
        );
        assert_eq!(text(row, "to_department").as_deref(), Some("housing"));
        assert_eq!(text(row, "outcome").as_deref(), Some("accepted"));
    }
    let stranger = rows_as(
        &hub,
        Some("public-security"),
        read("transfer_ledger", accepted.position),
    )
    .await
    .expect("another department reads no rows of it");
    assert!(stranger.rows.is_empty(), "{stranger:?}");
    assert!(
        stranger.next_page_token.is_empty(),
        "a stranger's cursor names no row of others: {stranger:?}"
    );

    // The complaint counts for its company, openly.
    let complaints = rows_as(
        &hub,
        None,
        read("property_complaint_stats", accepted.position),
    )
    .await
    .expect("open");
    assert_eq!(complaints.rows.len(), 1);
    assert_eq!(
        text(&complaints.rows[0], "company_credit_code").as_deref(),
        Some("91350100M000100Y43")
    );
    assert_eq!(
        text(&complaints.rows[0], "complaints").as_deref(),
        Some("1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_stays_valid_while_new_rows_arrive_and_big_pages_are_lowered() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let (case_id, last) = handled_incident(&hub, 1).await;

    // Page through the case's timeline two events at a time; between pages, the case moves on.
    let page = |token: String, min_position: u64| v1::ReadDatasetRequest {
        page_size: 2,
        page_token: token,
        ..read("case_timeline", min_position)
    };
    let first = rows_as(&hub, Some("urban-management"), page(String::new(), last))
        .await
        .expect("first page");
    assert_eq!(first.rows.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let closed = cmd::close(&hub, "dcc-310104", "c-1", &case_id)
        .await
        .expect("close");
    let mut seen: Vec<String> = first
        .rows
        .iter()
        .filter_map(|r| text(r, "position"))
        .collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let next = rows_as(&hub, Some("urban-management"), page(token, closed.position))
            .await
            .expect("next page");
        seen.extend(next.rows.iter().filter_map(|r| text(r, "position")));
        token = next.next_page_token;
    }
    let types: usize = 6; // reported, dispatched, accepted, resolved, rated, closed
    assert_eq!(
        seen.len(),
        types,
        "every event once, the new one included: {seen:?}"
    );
    let mut sorted = seen.clone();
    sorted.sort_by_key(|p| p.parse::<f64>().map(|f| f as u64).unwrap_or_default());
    sorted.dedup();
    assert_eq!(sorted.len(), types, "no event twice");

    // A page size above the maximum is lowered, not refused (AIP-158).
    let big = v1::ReadDatasetRequest {
        page_size: 1_000_000,
        ..read("case_timeline", closed.position)
    };
    let all = rows_as(&hub, Some("urban-management"), big)
        .await
        .expect("lowered");
    assert_eq!(all.rows.len(), types);
    let bad_token = v1::ReadDatasetRequest {
        page_token: "not-a-token".into(),
        ..read("case_timeline", closed.position)
    };
    let status = rows_as(&hub, Some("urban-management"), bad_token)
        .await
        .expect_err("garbage token");
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_lists_every_dataset_with_its_live_state() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let (_, last) = handled_incident(&hub, 1).await;
    hub.read_model("incident_stats")
        .wait_for(last, std::time::Duration::from_secs(10))
        .await
        .expect("applied");

    let listed = hub
        .catalog()
        .list_datasets(v1::ListDatasetsRequest {})
        .await
        .expect("anyone lists the catalogue")
        .into_inner()
        .datasets;
    let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
    for id in [
        "incident_stats",
        "response_efficiency",
        "property_complaint_stats",
        "care_counts",
        "case_timeline",
        "transfer_ledger",
        "care_roster",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    let stats = listed
        .iter()
        .find(|d| d.id == "incident_stats")
        .expect("listed");
    let status = stats.status.as_ref().expect("status");
    assert_eq!(status.rows, Some(1));
    assert!(
        status.position >= Some(last) && status.log_position >= Some(last),
        "{status:?}"
    );
    assert_eq!(stats.open_type, v1::OpenType::Open as i32);
    assert_eq!(
        stats.access_url,
        format!("{}/datasets/incident_stats", hub.http_url())
    );
    let roster = listed
        .iter()
        .find(|d| d.id == "care_roster")
        .expect("listed");
    assert_eq!(roster.share_type, v1::ShareType::Conditional as i32);
    let hidden = roster.status.as_ref().expect("status");
    assert_eq!(
        (hidden.rows, hidden.position),
        (None, None),
        "the public catalogue shows no count or position of a dataset that is not open"
    );
    let identity = roster
        .fields
        .iter()
        .find(|f| f.name == "identity_number")
        .expect("field");
    assert_eq!(identity.sensitivity, v1::Sensitivity::Sensitive as i32);

    // Each department's case queue is a dataset too: the holder reads its own queue.
    assert!(ids.contains(&"case_queue"), "{ids:?}");
    let queue = rows_as(&hub, Some("urban-management"), read("case_queue", last))
        .await
        .expect("the holder reads its queue");
    assert_eq!(queue.rows.len(), 1, "{queue:?}");
    assert_eq!(
        text(&queue.rows[0], "status").as_deref(),
        Some("CASE_STATUS_RATED")
    );
    assert_eq!(
        text(&queue.rows[0], "grid_code").as_deref(),
        Some("310104001001001")
    );
    let other = rows_as(&hub, Some("housing"), read("case_queue", last))
        .await
        .expect("another department reads its own, empty, queue");
    assert!(
        other.rows.is_empty() && other.next_page_token.is_empty(),
        "{other:?}"
    );
    let anonymous = rows_as(&hub, None, read("case_queue", last))
        .await
        .expect_err("not open");
    assert_eq!(anonymous.code(), Code::Unauthenticated);

    let missing = hub
        .catalog()
        .get_dataset(v1::GetDatasetRequest {
            dataset_id: "no_such".into(),
        })
        .await
        .expect_err("unknown dataset");
    assert_eq!(missing.code(), Code::NotFound);

    // Over HTTP, by content negotiation and by name.
    let client = reqwest::Client::new();
    let catalog = format!("{}/catalog", hub.http_url());
    let turtle = client
        .get(&catalog)
        .header("accept", "text/turtle")
        .send()
        .await
        .expect("http");
    assert_eq!(turtle.status(), reqwest::StatusCode::OK);
    assert!(
        turtle.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .starts_with("text/turtle")
    );
    let text = turtle.text().await.expect("body");
    assert!(
        text.contains("dcat:Catalog") && text.contains("incident_stats"),
        "{text}"
    );
    let jsonld = client
        .get(&catalog)
        .header("accept", "application/ld+json")
        .send()
        .await
        .expect("http");
    assert_eq!(
        jsonld.headers()["content-type"].to_str().expect("ascii"),
        "application/ld+json"
    );
    let refused = client
        .get(&catalog)
        .header("accept", "image/png")
        .send()
        .await
        .expect("http");
    assert_eq!(refused.status(), reqwest::StatusCode::NOT_ACCEPTABLE);
    for path in ["catalog.ttl", "catalog.jsonld"] {
        let response = client
            .get(format!("{}/{path}", hub.http_url()))
            .send()
            .await
            .expect("http");
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_catalogue_conforms_to_dcat_ap_and_a_broken_one_does_not() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    handled_incident(&hub, 1).await;
    let client = reqwest::Client::new();
    for (path, format) in [("catalog.ttl", "turtle"), ("catalog.jsonld", "json-ld")] {
        let text = client
            .get(format!("{}/{path}", hub.http_url()))
            .send()
            .await
            .expect("http")
            .text()
            .await
            .expect("body");
        let (conforms, report) = hub_tests::dcat_ap_conforms(&text, format);
        assert!(conforms, "{path}: {report}");
        if format == "turtle" {
            // The same export without the distributions' access URLs must not conform.
            let broken = text.replace("dcat:accessURL", "dct:source");
            assert_ne!(broken, text);
            let (conforms, report) = hub_tests::dcat_ap_conforms(&broken, format);
            assert!(
                !conforms,
                "a distribution without an access URL passed: {report}"
            );
        }
    }
}

/// A valid resident identity number (GB 11643): 17 digits and the ISO 7064 MOD 11-2 check.
fn identity(n: u32) -> String {
    let body = format!("11010519491231{n:03}");
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = b"10X98765432"[(sum % 11) as usize] as char;
    format!("{body}{check}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn care_counts_withhold_small_counts_so_that_no_subtraction_recovers_them() {
    use hub_projector::datasets::suppression::{Cell, Published, recoverable};

    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    // community, category, how many
    let truth: [(&str, v1::CareCategory, u32); 5] = [
        ("310104001001", v1::CareCategory::ElderlyInHardship, 6),
        ("310104001001", v1::CareCategory::LeftBehindChild, 2),
        ("310104001002", v1::CareCategory::ElderlyInHardship, 5),
        ("310104001002", v1::CareCategory::DrugRehabilitation, 1),
        ("310104002001", v1::CareCategory::ElderlyInHardship, 7),
    ];
    let mut n = 0;
    let mut last = 0;
    for (community, category, count) in truth {
        for _ in 0..count {
            n += 1;
            let registered = hub
                .care()
                .register_care(from(
                    "civil-affairs",
                    v1::RegisterCareRequest {
                        request_id: format!("care-{n}"),
                        name: "李四".into(),
                        identity_number: identity(n),
                        category: category as i32,
                        community_code: community.into(),
                        risk_level: v1::RiskLevel::Low as i32,
                        ..Default::default()
                    },
                ))
                .await
                .expect("register")
                .into_inner();
            last = registered.result.expect("result").position;
        }
    }

    let published = rows_as(&hub, None, read("care_counts", last))
        .await
        .expect("open to anyone");
    // Rebuild the published table: communities by categories, '*' for totals.
    let value = |r: &prost_types::Struct| -> Cell {
        match text(r, "count") {
            Some(n) => Cell::Shown(n.parse::<f64>().expect("a number") as u64),
            None => Cell::Suppressed,
        }
    };
    let mut communities: Vec<String> = Vec::new();
    let mut categories: Vec<String> = Vec::new();
    for r in &published.rows {
        let (c, k) = (
            text(r, "community_code").expect("c"),
            text(r, "category").expect("k"),
        );
        if c != "*" && !communities.contains(&c) {
            communities.push(c.clone());
        }
        if k != "*" && !categories.contains(&k) {
            categories.push(k);
        }
    }
    let find = |c: &str, k: &str| -> Cell {
        published
            .rows
            .iter()
            .find(|r| {
                text(r, "community_code").as_deref() == Some(c)
                    && text(r, "category").as_deref() == Some(k)
            })
            .map(value)
            .unwrap_or_else(|| panic!("no published row {c}/{k}"))
    };
    let table = Published {
        cells: communities
            .iter()
            .map(|c| categories.iter().map(|k| find(c, k)).collect())
            .collect(),
        row_totals: communities.iter().map(|c| find(c, "*")).collect(),
        column_totals: categories.iter().map(|k| find("*", k)).collect(),
        total: find("*", "*"),
    };
    assert_eq!(
        table.total,
        Cell::Shown(21),
        "the district total is large enough to show"
    );

    // Every count below 5 is withheld, and every shown count is the true one.
    let true_count = |c: &str, k: &str| -> u64 {
        truth
            .iter()
            .filter(|(tc, tk, _)| *tc == c && label(*tk) == k)
            .map(|(_, _, n)| u64::from(*n))
            .sum()
    };
    for (i, c) in communities.iter().enumerate() {
        for (j, k) in categories.iter().enumerate() {
            let truth = true_count(c, k);
            match table.cells[i][j] {
                Cell::Shown(shown) => {
                    assert_eq!(shown, truth, "{c}/{k}");
                    assert!(shown == 0 || shown >= 5, "{c}/{k} = {shown} shown");
                }
                Cell::Suppressed => {
                    assert!(truth > 0, "{c}/{k}: only non-zero counts are withheld")
                }
            }
        }
    }
    assert!(
        table.cells.iter().flatten().any(|c| *c == Cell::Suppressed),
        "the table has small counts to withhold"
    );

    // The attack: in any line (a community, a category, or the totals) with its total shown
    // and exactly one entry withheld, subtraction recovers that entry. There is none.
    let margin_row = {
        let mut line = table.column_totals.clone();
        line.push(table.total);
        line
    };
    let margin_column = {
        let mut line = table.row_totals.clone();
        line.push(table.total);
        line
    };
    let lines = (0..communities.len())
        .map(|i| {
            let mut line: Vec<Cell> = table.cells[i].clone();
            line.push(table.row_totals[i]);
            line
        })
        .chain((0..categories.len()).map(|j| {
            let mut line: Vec<Cell> = table.cells.iter().map(|row| row[j]).collect();
            line.push(table.column_totals[j]);
            line
        }))
        .chain([margin_row, margin_column]);
    for line in lines {
        let withheld = line.iter().filter(|c| **c == Cell::Suppressed).count();
        assert_ne!(
            withheld, 1,
            "one withheld entry in a line is recovered by subtraction: {line:?}"
        );
    }
    // And no combination of the additivity equations recovers any withheld entry.
    assert!(recoverable(&table).is_empty(), "{:?}", recoverable(&table));
}

fn label(category: v1::CareCategory) -> &'static str {
    match category {
        v1::CareCategory::DrugRehabilitation => "drug_rehabilitation",
        v1::CareCategory::SevereMentalDisorder => "severe_mental_disorder",
        v1::CareCategory::ElderlyInHardship => "elderly_in_hardship",
        v1::CareCategory::LeftBehindChild => "left_behind_child",
        v1::CareCategory::Unspecified => "unspecified",
    }
}
