//! The operators' web console: the page opened in headless Chromium shows what a person
//! would see (the status with its streams, read models and durability; an aggregate's events
//! with headers and decoded bodies, a care record's masked), and its JSON routes refuse
//! everyone but operators (status) and operators and auditors (events), each call audited.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hub_api::v1::{self, GetStatusRequest, ListAccessRequest};
use hub_tests::fixtures::{self, CARE_IDENTITY, CARE_NAME, CARE_PHONE};
use hub_tests::{Hub, HubBuilder};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{from, incident};

const OPERATOR: &str = "big-data-centre";
const AUDITOR: &str = "audit-bureau";
const DEPARTMENT: &str = "urban-management";
const USER: &str = "ops-0001";

/// The Chromium to run: `HUB_CHROMIUM`, else `chromium` on PATH; the test fails (never
/// passes silently) without one.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("HUB_CHROMIUM").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "HUB_CHROMIUM names {}, which is not a file; run `bash deploy/setup.sh chromium`",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("chromium"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the console test opens the page in headless Chromium, and none was found \
                 (`chromium` on PATH, or HUB_CHROMIUM): run `bash deploy/setup.sh chromium`"
            )
        })
}

/// The page at `url` as headless Chromium leaves it once its script has run: the DOM.
async fn dump_dom(browser: &Path, url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile dir");
    let run = tokio::process::Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .env("HOME", profile.path())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium finishes within 2 minutes")
        .expect("chromium runs");
    let dom = String::from_utf8(output.stdout).expect("the DOM as UTF-8");
    assert!(
        output.status.success() && dom.contains("</html>"),
        "chromium failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    dom
}

/// Text without its tags and with the entities the DOM serialiser writes.
fn text_of(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
}

/// The element `<tag id="id" ...>...</tag>`, nested elements of the same tag included.
fn element(dom: &str, tag: &str, id: &str) -> Option<String> {
    let start = dom.find(&format!("<{tag} id=\"{id}\""))?;
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut depth = 0usize;
    let mut at = start;
    while let Some(next) = dom[at..].find('<') {
        at += next;
        let rest = &dom[at..];
        let after = rest[open.len().min(rest.len())..].chars().next();
        if rest.starts_with(&open) && matches!(after, Some(' ' | '>')) {
            depth += 1;
        } else if rest.starts_with(&close) {
            depth -= 1;
            if depth == 0 {
                return Some(dom[start..at + close.len()].to_owned());
            }
        }
        at += 1;
    }
    None
}

/// The cells of the table row with `id`, as text (a cell's nested tables included); panics
/// naming it if the page has none.
fn cells(dom: &str, id: &str) -> Vec<String> {
    let row = element(dom, "tr", id).unwrap_or_else(|| panic!("no row {id} on the page"));
    let mut cells = Vec::new();
    let (mut tables, mut cell_start) = (0usize, None);
    let mut at = 0;
    while let Some(next) = row[at..].find('<') {
        at += next;
        let rest = &row[at..];
        if rest.starts_with("<table") {
            tables += 1;
        } else if rest.starts_with("</table") {
            tables -= 1;
        } else if tables == 0 && (rest.starts_with("<td ") || rest.starts_with("<td>")) {
            cell_start = rest.find('>').map(|end| at + end + 1);
        } else if tables == 0
            && rest.starts_with("</td>")
            && let Some(start) = cell_start.take()
        {
            cells.push(text_of(&row[start..at]).trim().to_owned());
        }
        at += 1;
    }
    cells
}

fn console_url(hub: &Hub, unit: &str, aggregate: &str) -> String {
    format!(
        "{}/console?department={unit}&user={USER}&purpose=console-test&aggregate={aggregate}",
        hub.http_url()
    )
}

/// The console's JSON route `path` as `unit` (`None`: no identity at all).
async fn api(hub: &Hub, unit: Option<&str>, path: &str) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", hub.http_url()));
    if let Some(unit) = unit {
        request = request
            .header("x-hub-department", unit)
            .header("x-hub-user", USER)
            .header("x-hub-purpose", "console-test");
    }
    let response = request.send().await.expect("http");
    let status = response.status();
    let body = response.json().await.expect("a JSON answer");
    (status, body)
}

/// Waits until every read model has applied the log up to `position`; the status then.
async fn settled(hub: &Hub, position: u64) -> v1::GetStatusResponse {
    hub_tests::wait_until(
        "every read model to apply the log",
        Duration::from_secs(30),
        || async {
            let status = hub
                .admin()
                .get_status(from(OPERATOR, GetStatusRequest {}))
                .await
                .expect("status")
                .into_inner();
            status
                .read_models
                .iter()
                .all(|m| m.position >= position && m.lag == 0)
                .then_some(status)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_shows_status_and_events_in_a_browser_masked_per_caller() {
    let browser = chromium();
    let hub = HubBuilder::dev().start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("console-1")))
        .await
        .expect("report")
        .into_inner();
    let case = format!("case/{}", reported.case_id);
    let registered = hub
        .care()
        .register_care(from("civil-affairs", fixtures::care("console-care-1")))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    let care = format!("care/{}", registered.id);
    let status = settled(&hub, registered.position).await;
    assert_eq!(registered.position, 2);

    // The operator's page: the status and the case's events.
    let started = std::time::Instant::now();
    let dom = dump_dom(&browser, &console_url(&hub, OPERATOR, &case)).await;
    let first_run = started.elapsed();
    let events = cells(&dom, "stream-GOV_EVENTS");
    assert_eq!(events[0], "GOV_EVENTS");
    assert_eq!(events[4], "2", "GOV_EVENTS's last position: {events:?}");
    assert!(
        text_of(&element(&dom, "span", "log-last").expect("log summary"))
            .contains("GOV_EVENTS last position 2")
    );
    assert!(cells(&dom, "stream-GOV_AUDIT")[0] == "GOV_AUDIT");
    for model in &status.read_models {
        let row = cells(&dom, &format!("model-{}", model.name));
        assert_eq!(row[0], model.name);
        assert_eq!(row[2], "2", "{} position: {row:?}", model.name);
        assert_eq!(row[3], "0", "{} lag: {row:?}", model.name);
        assert!(row[5].starts_with("live"), "{} state: {row:?}", model.name);
    }
    assert!(status.read_models.iter().any(|m| m.name == "case_queue"));
    let durability = text_of(&element(&dom, "p", "durability").expect("durability"));
    assert!(durability.starts_with("safe"), "durability: {durability}");
    assert!(durability.contains("sync_interval always"), "{durability}");
    let civil = cells(&dom, "feed-civil-affairs");
    assert_eq!(civil[1], "FEED_CIVIL_AFFAIRS", "{civil:?}");
    let reported_row = cells(&dom, &format!("event-{}", reported.position));
    assert_eq!(
        reported_row[2], "gov.hub.case.reported.v2",
        "{reported_row:?}"
    );
    assert_eq!(reported_row[4], fixtures::ACTING_PERSON);
    let body = &reported_row[5];
    assert!(
        body.contains("消防通道被电动车堵塞 fire lane blocked"),
        "{body}"
    );
    // The envelope's headers, expandable under the body.
    assert!(body.contains(&reported.event_ids[0]), "event id: {body}");
    assert!(body.contains("console-1"), "request id: {body}");
    assert!(
        body.contains("type.googleapis.com/gov.hub.v1.CaseReported"),
        "{body}"
    );
    assert!(
        !dom.contains(&format!("event-{}\"", registered.position)),
        "only the case's own events"
    );

    // A care record: masked as for a department without a grant, nothing in clear.
    let dom = dump_dom(&browser, &console_url(&hub, OPERATOR, &care)).await;
    let row = cells(&dom, &format!("event-{}", registered.position));
    assert_eq!(row[2], "gov.hub.care.registered.v1", "{row:?}");
    assert!(row[5].contains("王*"), "the masked name: {}", row[5]);
    assert!(
        row[5].contains("masked: ") && row[5].contains("identity_number"),
        "{}",
        row[5]
    );
    for secret in [CARE_NAME, CARE_IDENTITY, CARE_PHONE] {
        assert!(!dom.contains(secret), "{secret} in clear on the page");
    }

    // An auditor browses the log but gets no status.
    let dom = dump_dom(&browser, &console_url(&hub, AUDITOR, &case)).await;
    let note = text_of(&element(&dom, "p", "status-note").expect("note"));
    assert!(note.contains("The status is for operators"), "{note}");
    assert!(
        !dom.contains("id=\"stream-GOV_EVENTS\""),
        "no status for auditors"
    );
    let row = cells(&dom, &format!("event-{}", reported.position));
    assert!(row[5].contains("fire lane blocked"), "{row:?}");

    // Without identity the page asks who you are.
    let dom = dump_dom(&browser, &format!("{}/console", hub.http_url())).await;
    assert!(dom.contains("Who are you?"));
    assert!(
        dom.contains("id=\"console\" hidden"),
        "nothing shown before identity"
    );
    eprintln!("console: first page rendered in {first_run:?}");
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_api_refuses_all_but_operators_and_auditors_and_audits_each_call() {
    let hub = HubBuilder::dev().start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("console-api-1")))
        .await
        .expect("report")
        .into_inner();
    let case = format!("case/{}", reported.case_id);
    let registered = hub
        .care()
        .register_care(from("civil-affairs", fixtures::care("console-api-care")))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    let dispatched = crate::cmd::dispatch(
        &hub,
        "dcc-310104",
        "console-api-2",
        &reported.case_id,
        DEPARTMENT,
        None,
    )
    .await
    .expect("dispatch");
    assert_eq!(dispatched.position, 3);
    let events = format!("/console/api/events?aggregate={case}");

    // Status: operators only; the refusals come as JSON with their reason.
    let (code, body) = api(&hub, None, "/console/api/status").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().expect("error").contains("operators"));
    assert!(body["field"].is_null());
    let (code, _) = api(&hub, Some(DEPARTMENT), "/console/api/status").await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = api(&hub, Some(AUDITOR), "/console/api/status").await;
    assert_eq!(code, StatusCode::FORBIDDEN, "auditors get no status");
    let (code, status) = api(&hub, Some(OPERATOR), "/console/api/status").await;
    assert_eq!(code, StatusCode::OK, "{status}");
    assert_eq!(status["streams"][0]["name"], "GOV_EVENTS");
    assert_eq!(status["streams"][0]["lastSequence"], "3", "proto3 JSON");
    assert_eq!(status["durability"]["safe"], true);
    assert!(status["readModels"].as_array().expect("models").len() > 3);

    // Events: operators and auditors; everyone else refused before anything is looked up
    // (a malformed request gets the same refusal as a good one).
    let (code, _) = api(&hub, None, &events).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = api(&hub, Some(DEPARTMENT), &events).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = api(&hub, Some(DEPARTMENT), "/console/api/events?nonsense=1").await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    for unit in [OPERATOR, AUDITOR] {
        let (code, body) = api(&hub, Some(unit), &events).await;
        assert_eq!(code, StatusCode::OK, "{unit}: {body}");
        assert_eq!(body["aggregate"], case.as_str());
        let event = &body["events"][0];
        assert_eq!(event["eventType"], "gov.hub.case.reported.v2");
        assert_eq!(event["eventId"], reported.event_ids[0].as_str());
        assert_eq!(event["requestId"], "console-api-1");
        assert_eq!(event["actingPerson"], fixtures::ACTING_PERSON);
        assert_eq!(event["schemaVersion"], 2);
        assert_eq!(
            event["body"]["description"],
            "消防通道被电动车堵塞 fire lane blocked"
        );
        assert_eq!(body["events"][1]["eventType"], "gov.hub.case.dispatched.v1");
        assert!(body.get("nextPageToken").is_none(), "one page: {body}");
    }
    let (code, body) = api(
        &hub,
        Some(OPERATOR),
        &format!("/console/api/events?aggregate=care/{}", registered.id),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["events"][0]["body"]["name"], "王*");
    let text = body.to_string();
    for secret in [CARE_NAME, CARE_IDENTITY, CARE_PHONE] {
        assert!(!text.contains(secret), "{secret} in clear: {text}");
    }

    // Bad requests name their field, never repeat its text.
    for (path, field) in [
        ("/console/api/events", "aggregate"),
        (
            "/console/api/events?aggregate=person/13812345678",
            "aggregate",
        ),
        (&format!("{events}&after=x1"), "after"),
        (&format!("{events}&page_size=0"), "page_size"),
        (&format!("{events}&pagesize=5"), "query"),
    ] {
        let (code, body) = api(&hub, Some(OPERATOR), path).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["field"], field, "{path}: {body}");
        assert!(!body.to_string().contains("13812345678"));
    }
    // Paging: a page at a time, each after the position the one before ended at.
    let (_, first) = api(&hub, Some(OPERATOR), &format!("{events}&page_size=1")).await;
    assert_eq!(first["events"].as_array().expect("events").len(), 1);
    assert_eq!(first["events"][0]["position"], "1");
    assert_eq!(first["nextPageToken"], "1", "{first}");
    let (_, second) = api(
        &hub,
        Some(OPERATOR),
        &format!("{events}&page_size=1&after=1"),
    )
    .await;
    assert_eq!(
        second["events"][0]["position"], "3",
        "the case's next event"
    );
    assert!(
        second.get("nextPageToken").is_none(),
        "the last page: {second}"
    );
    let (code, none) = api(&hub, Some(OPERATOR), &format!("{events}&after=3")).await;
    assert_eq!(code, StatusCode::OK);
    assert!(none.get("events").is_none(), "none after the last: {none}");

    // Every call is in the access log, refusals included, named by its aggregate.
    let access = hub
        .auditors()
        .list_access(from(
            AUDITOR,
            ListAccessRequest {
                aggregate: case.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("access log")
        .into_inner();
    let records: Vec<_> = access
        .entries
        .iter()
        .filter_map(|e| e.record.as_ref())
        .filter(|r| r.action == "GET /console/api/events")
        .map(|r| (r.department.as_str(), r.outcome.as_str(), r.count))
        .collect();
    assert!(records.contains(&(OPERATOR, "ok", 2)), "{records:?}");
    assert!(records.contains(&(AUDITOR, "ok", 2)), "{records:?}");
    assert!(
        records.contains(&(DEPARTMENT, "permission_denied", 0)),
        "{records:?}"
    );
    let care_reads = hub
        .auditors()
        .list_access(from(
            AUDITOR,
            ListAccessRequest {
                care_id: registered.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("access log")
        .into_inner();
    assert!(
        care_reads
            .entries
            .iter()
            .any(|e| e
                .record
                .as_ref()
                .is_some_and(|r| r.action == "GET /console/api/events"
                    && r.persons == [registered.id.clone()])),
        "the operator's read of the care record names its person"
    );
    let statuses = hub
        .auditors()
        .list_access(from(
            AUDITOR,
            ListAccessRequest {
                department: OPERATOR.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("access log")
        .into_inner();
    assert!(statuses.entries.iter().any(|e| {
        e.record
            .as_ref()
            .is_some_and(|r| r.action == "GET /console/api/status" && r.outcome == "ok")
    }));
    hub.stop().await.expect("clean stop");
}
