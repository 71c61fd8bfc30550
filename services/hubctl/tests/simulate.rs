//! `hubctl simulate` against a real hub: a generated city loaded as the hub's reference
//! data, a small run sent to it by the `hubctl` binary, the datasets reflecting it, and the
//! same run again storing nothing new.

use std::process::Output;

use hub_api::v1;
use hub_tests::fixtures::from;
use hub_tests::{HubBuilder, Nats};
use prost_types::value::Kind;
use serde_json::Value;

async fn hubctl(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hubctl"))
        .args(args)
        .output()
        .await
        .expect("hubctl runs")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "hubctl failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Yesterday in the city (China time), so that both runs simulate the same days.
fn yesterday() -> String {
    let now = jiff::Timestamp::now().as_second() + 8 * 3600;
    let today = jiff::Timestamp::from_second(now)
        .expect("now")
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    today.yesterday().expect("yesterday").to_string()
}

async fn events_in_log(nats: &Nats) -> u64 {
    let js = nats.jetstream().await;
    let mut stream = js.get_stream("GOV_EVENTS").await.expect("GOV_EVENTS");
    stream.info().await.expect("stream info").state.messages
}

/// Every row of `dataset`, read as `by` (or the public) once it has applied `position`.
async fn rows(
    hub: &hub_tests::Hub,
    by: Option<&str>,
    dataset: &str,
    position: u64,
) -> Vec<prost_types::Struct> {
    let mut rows = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = v1::ReadDatasetRequest {
            dataset_id: dataset.into(),
            min_position: position,
            page_size: 1000,
            page_token,
            ..Default::default()
        };
        let request = match by {
            Some(unit) => from(unit, request),
            None => tonic::Request::new(request),
        };
        let page = hub
            .datasets()
            .read_dataset(request)
            .await
            .unwrap_or_else(|s| panic!("read {dataset}: {s:?}"))
            .into_inner();
        rows.extend(page.rows);
        if page.next_page_token.is_empty() {
            return rows;
        }
        page_token = page.next_page_token;
    }
}

fn number(row: &prost_types::Struct, field: &str) -> f64 {
    match row.fields.get(field).and_then(|v| v.kind.as_ref()) {
        Some(Kind::NumberValue(n)) => *n,
        other => panic!("{field} is {other:?}"),
    }
}

fn count(summary: &Value, path: &[&str]) -> u64 {
    let value = path.iter().fold(summary, |v, key| &v[*key]);
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} in {summary}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_city_runs_against_a_real_hub_and_again_stores_nothing_new() {
    let dir = tempfile::tempdir().expect("temp dir");
    let city = dir.path().join("city.toml");
    let city_arg = city.to_str().expect("utf-8 path");
    let written = hubctl(&[
        "simulate",
        "reference",
        "--districts",
        "3",
        "--grids",
        "3",
        "--seed",
        "5",
        "--out",
        city_arg,
    ])
    .await;
    assert!(written.status.success(), "{written:?}");

    let nats = Nats::start().await;
    let mut builder = HubBuilder::on(&nats);
    builder.config_mut().reference_data = Some(city.clone());
    let hub = builder.start().await;
    let address = format!("http://{}", hub.addr());
    let until = yesterday();
    let args = [
        "--json",
        "--hub",
        &address,
        "simulate",
        "run",
        "--reference",
        city_arg,
        "--seed",
        "5",
        "--days",
        "2",
        "--rate",
        "1.5",
        "--until",
        &until,
    ];

    let before = events_in_log(&nats).await;
    let first = stdout_json(&hubctl(&args).await);
    let planned = count(&first, &["planned", "commands"]);
    assert!((60..=400).contains(&planned), "a small run: {first}");
    assert_eq!(count(&first, &["commands", "sent"]), planned, "{first}");
    assert_eq!(count(&first, &["commands", "accepted"]), planned, "{first}");
    assert_eq!(count(&first, &["commands", "invalidInput"]), 0, "{first}");
    assert_eq!(count(&first, &["commands", "refused"]), 0, "{first}");
    let events = count(&first, &["events"]);
    assert!(events >= planned, "{first}");
    let stored = events_in_log(&nats).await - before;
    assert_eq!(stored, events, "every event answered is in the log");
    for rpc in [
        "ReportCase",
        "DispatchCase",
        "AcceptCase",
        "ResolveCase",
        "RegisterCare",
        "RequestGrant",
    ] {
        assert!(
            count(&first, &["byRpc", rpc, "accepted"]) > 0,
            "no {rpc}: {first}"
        );
    }
    eprintln!(
        "first run: {planned} commands in {:.2} s, {:.0} commands/s",
        first["elapsedSeconds"].as_f64().unwrap_or(0.0),
        first["commandsPerSecond"].as_f64().unwrap_or(0.0)
    );

    // The open statistics count every grid incident reported, in the generated city's grids.
    let position = count(&first, &["lastPosition"]);
    let stats = rows(&hub, None, "incident_stats", position).await;
    let reported: f64 = stats.iter().map(|r| number(r, "reported")).sum();
    assert_eq!(
        reported as u64,
        count(&first, &["planned", "gridIncidents"])
    );
    assert!(stats.iter().all(
        |r| match r.fields.get("district_code").and_then(|v| v.kind.as_ref()) {
            Some(Kind::StringValue(d)) => ["310104", "310105", "310101"].contains(&d.as_str()),
            _ => false,
        }
    ));
    // Civil affairs' roster holds everyone it registered.
    let roster = rows(&hub, Some("civil-affairs"), "care_roster", position).await;
    assert_eq!(
        roster.len() as u64,
        count(&first, &["planned", "careRecords"])
    );

    // The same seed again: the same commands, answered with the first answers.
    let second = stdout_json(&hubctl(&args).await);
    assert_eq!(
        count(&second, &["commands", "accepted"]),
        planned,
        "{second}"
    );
    assert_eq!(count(&second, &["commands", "refused"]), 0, "{second}");
    assert_eq!(second["scenario"], first["scenario"]);
    assert_eq!(count(&second, &["lastPosition"]), position, "{second}");
    assert_eq!(count(&second, &["events"]), events);
    assert_eq!(
        events_in_log(&nats).await - before,
        stored,
        "a repeated run stores nothing new"
    );
    hub.stop().await.expect("hub stops");
}

#[tokio::test]
async fn a_dry_run_prints_the_same_plan_for_the_same_seed() {
    let until = yesterday();
    let plan = |seed: &'static str| {
        let until = until.clone();
        async move {
            let output = hubctl(&[
                "simulate",
                "run",
                "--dry-run",
                "--seed",
                seed,
                "--days",
                "1",
                "--until",
                &until,
            ])
            .await;
            assert!(output.status.success(), "{output:?}");
            String::from_utf8(output.stdout).expect("utf-8")
        }
    };
    let (a, again, b) = (plan("3").await, plan("3").await, plan("4").await);
    assert_eq!(a, again);
    assert_ne!(a, b);
    let lines: Vec<Value> = a
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let report = lines
        .iter()
        .find(|l| l["rpc"] == "ReportCase")
        .expect("a report");
    assert!(
        report["unit"]
            .as_str()
            .is_some_and(|u| u.starts_with("dcc-")),
        "{report}"
    );
    assert!(report["after"].is_null());
    let id = report["request"]["requestId"].as_str().expect("request id");
    assert!(id.starts_with("s3-"), "{id}");
    assert!(
        lines.iter().any(|l| l["after"].is_u64()),
        "later steps wait for earlier ones"
    );
}
