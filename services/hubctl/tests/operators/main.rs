//! `hubctl` against a real hub: its own nats-server child, sled files in a temp dir, gRPC over
//! loopback, and the `hubctl` binary run as an operator would run it.

mod backup;
mod cli;
mod rebuild;
mod redeliver;
mod replay;
mod status;

use std::process::Output;

use hub_api::v1;
use hub_tests::Hub;
use hub_tests::fixtures;
use serde_json::Value;

/// Runs `hubctl` against `hub` as the demo operator unit (unless `args` name another).
pub(crate) async fn hubctl(hub: &Hub, args: &[&str]) -> Output {
    hubctl_command(hub, args)
        .output()
        .await
        .expect("hubctl runs")
}

/// The `hubctl` command [`hubctl`] runs, for a test that runs it in the background.
pub(crate) fn hubctl_command(hub: &Hub, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hubctl"));
    command
        .arg("--hub")
        .arg(format!("http://{}", hub.addr()))
        .args(args)
        .env_remove("HUBCTL_DEPARTMENT")
        .env_remove("HUBCTL_TOKEN_FILE");
    command
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `output` succeeded; its stdout as JSON.
pub(crate) fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "hubctl failed: {}\n{}",
        stderr(output),
        stdout(output)
    );
    serde_json::from_str(&stdout(output)).expect("one JSON object")
}

/// `output`'s stdout as JSON lines.
pub(crate) fn lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "hubctl failed: {}", stderr(output));
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Reports an incident with `request_id`; returns its case id and position.
pub(crate) async fn report(hub: &Hub, request_id: &str) -> (String, u64) {
    let reported = hub
        .commands()
        .report_case(fixtures::from(
            "urban-management",
            fixtures::incident(request_id),
        ))
        .await
        .expect("reported")
        .into_inner();
    (reported.case_id, reported.position)
}

/// Every audit record of `department`'s calls, oldest first, as the auditors read them.
pub(crate) async fn access(hub: &Hub, department: &str) -> Vec<v1::AuditRecord> {
    hub.auditors()
        .list_access(fixtures::from(
            "audit-bureau",
            v1::ListAccessRequest {
                department: department.into(),
                ..Default::default()
            },
        ))
        .await
        .expect("access log")
        .into_inner()
        .entries
        .into_iter()
        .filter_map(|e| e.record)
        .collect()
}

/// incident_stats' rows once it has applied `min_position`.
pub(crate) async fn incident_rows(hub: &Hub, min_position: u64) -> usize {
    hub.datasets()
        .read_dataset(v1::ReadDatasetRequest {
            dataset_id: "incident_stats".into(),
            min_position,
            ..Default::default()
        })
        .await
        .expect("read")
        .into_inner()
        .rows
        .len()
}

pub(crate) fn read_model<'v>(status: &'v Value, name: &str) -> &'v Value {
    status["readModels"]
        .as_array()
        .expect("read models")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no read model {name} in {status}"))
}

/// A u64 of proto3 JSON (a string), 0 when left out as the default.
pub(crate) fn number(value: &Value) -> u64 {
    match value {
        Value::Null => 0,
        Value::String(s) => s.parse().expect("a number"),
        Value::Number(n) => n.as_u64().expect("a u64"),
        other => panic!("not a number: {other}"),
    }
}
