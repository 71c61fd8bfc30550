//! `hubctl` against a real hub: its own nats-server child, sled files in a temp dir, gRPC over
//! loopback, and the `hubctl` binary run as an operator would run it.

use std::process::Output;

use hub_api::v1;
use hub_tests::fixtures::{self, CARE_ADDRESS, CARE_IDENTITY, CARE_NAME, CARE_PHONE};
use hub_tests::{Hold, Hub, HubBuilder};
use serde_json::Value;

/// Runs `hubctl` against `hub` as the demo operator unit (unless `args` name another).
async fn hubctl(hub: &Hub, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_hubctl"))
        .arg("--hub")
        .arg(format!("http://{}", hub.addr()))
        .args(args)
        .env_remove("HUBCTL_DEPARTMENT")
        .env_remove("HUBCTL_TOKEN_FILE")
        .output()
        .await
        .expect("hubctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `output` succeeded; its stdout as JSON.
fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "hubctl failed: {}\n{}",
        stderr(output),
        stdout(output)
    );
    serde_json::from_str(&stdout(output)).expect("one JSON object")
}

/// `output`'s stdout as JSON lines.
fn lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "hubctl failed: {}", stderr(output));
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Reports an incident with `request_id`; returns its case id and position.
async fn report(hub: &Hub, request_id: &str) -> (String, u64) {
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

/// incident_stats' rows once it has applied `min_position`.
async fn incident_rows(hub: &Hub, min_position: u64) -> usize {
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

fn read_model<'v>(status: &'v Value, name: &str) -> &'v Value {
    status["readModels"]
        .as_array()
        .expect("read models")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no read model {name} in {status}"))
}

/// A u64 of proto3 JSON (a string), 0 when left out as the default.
fn number(value: &Value) -> u64 {
    match value {
        Value::Null => 0,
        Value::String(s) => s.parse().expect("a number"),
        Value::Number(n) => n.as_u64().expect("a u64"),
        other => panic!("not a number: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_streams_read_models_feeds_health_and_durability_to_operators_only() {
    let hub = HubBuilder::dev().start().await;
    let (_, at) = report(&hub, "status-1").await;
    assert_eq!(incident_rows(&hub, at).await, 1);

    let status = json(&hubctl(&hub, &["status", "--json"]).await);
    let streams = status["streams"].as_array().expect("streams");
    let events = streams
        .iter()
        .find(|s| s["name"] == "GOV_EVENTS")
        .expect("GOV_EVENTS");
    assert_eq!(number(&events["lastSequence"]), at);
    assert_eq!(number(&events["messages"]), at);
    assert!(number(&events["bytes"]) > 0);
    assert!(events["lastTime"].is_string(), "{events}");
    assert!(streams.iter().any(|s| s["name"] == "GOV_AUDIT"));
    assert!(streams.iter().any(|s| s["name"] == "FEED_URBAN_MANAGEMENT"));

    let stats = read_model(&status, "incident_stats");
    assert!(number(&stats["position"]) >= at, "{stats}");
    assert_eq!(number(&stats["lag"]), 0, "{stats}");
    assert_eq!(stats["state"], "live");
    assert_eq!(stats["dataset"], "incident_stats");
    assert_eq!(number(&stats["rows"]), 1, "{stats}");
    assert!(number(&stats["diskBytes"]) > 0, "{stats}");
    assert!(stats.get("rebuild").is_none(), "no rebuild runs: {stats}");
    let queue = read_model(&status, "case_queue");
    assert!(queue.get("rows").is_none(), "not a dataset: {queue}");
    for name in ["command_state", "feeds", "care_roster", "grant_register"] {
        read_model(&status, name);
    }

    let feeds = status["feeds"].as_array().expect("feeds");
    let owner = feeds
        .iter()
        .find(|f| f["department"] == "urban-management")
        .expect("the reporting department's feed");
    assert_eq!(owner["stream"], "FEED_URBAN_MANAGEMENT");
    assert!(feeds.iter().any(|f| f["department"] == "big-data-centre"));

    let durability = &status["durability"];
    assert_eq!(durability["safe"], true, "{durability}");
    assert!(
        durability["finding"]
            .as_str()
            .is_some_and(|f| f.contains("sync_interval always")),
        "{durability}"
    );
    assert!(
        durability["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("2."))
    );
    let health = status["health"].as_array().expect("health");
    assert!(
        health
            .iter()
            .any(|h| h["service"] == "gov.hub.v1.CaseCommandService" && h["status"] == "SERVING"),
        "{health:?}"
    );
    assert!(
        health
            .iter()
            .any(|h| h["service"] == "hub.alarms" && h["status"] == "SERVING"),
        "{health:?}"
    );
    assert!(status.get("alarms").is_none(), "no alarms: {status}");

    // The same as a table, and --check finds nothing to look at.
    let text = hubctl(&hub, &["status", "--check"]).await;
    assert!(text.status.success(), "{}", stderr(&text));
    let table = stdout(&text);
    for expected in [
        "GOV_EVENTS",
        "incident_stats",
        "urban-management",
        "durability: safe",
        "no alarms",
    ] {
        assert!(
            table.contains(expected),
            "{expected} missing from:\n{table}"
        );
    }

    // Every command, asked by a department, is refused before anything is looked up or
    // written (the operator's own calls above and below succeed); exit status 1 with the code.
    let dir = tempfile::tempdir().expect("temp dir");
    let backup = dir.path().join("backup.hublog");
    let backup = backup.to_str().expect("utf-8");
    let made = hubctl(&hub, &["export", "--out", backup]).await;
    assert!(made.status.success(), "{}", stderr(&made));
    let refused_file = dir.path().join("refused.hublog");
    let refused_file = refused_file.to_str().expect("utf-8");
    let commands: [&[&str]; 7] = [
        &["status"],
        &["replay"],
        &["rebuild", "incident_stats"],
        &["swap", "incident_stats"],
        &["verify", "incident_stats"],
        &["export", "--out", refused_file],
        &["import", "--file", backup],
    ];
    for command in commands {
        let args: Vec<&str> = ["--department", "urban-management"]
            .into_iter()
            .chain(command.iter().copied())
            .collect();
        let refused = hubctl(&hub, &args).await;
        assert_eq!(refused.status.code(), Some(1), "{command:?}");
        assert!(
            stderr(&refused).contains("PermissionDenied"),
            "{command:?}: {}",
            stderr(&refused)
        );
        assert!(stdout(&refused).is_empty(), "{command:?}");
    }
    assert!(
        !std::path::Path::new(refused_file).exists(),
        "a refused export writes nothing"
    );
    // The operator's own replay still works after all that, and nothing was rebuilt.
    assert!(hubctl(&hub, &["replay"]).await.status.success());
    let status = json(&hubctl(&hub, &["status", "--json"]).await);
    assert_eq!(read_model(&status, "incident_stats")["state"], "live");

    // Every call was audited, the operator's and the refusals.
    let actions = |department: &'static str| {
        let hub = &hub;
        async move {
            let access = hub
                .auditors()
                .list_access(fixtures::from(
                    "audit-bureau",
                    v1::ListAccessRequest {
                        department: department.into(),
                        ..Default::default()
                    },
                ))
                .await
                .expect("access log")
                .into_inner();
            access
                .entries
                .into_iter()
                .filter_map(|e| e.record)
                .map(|r| (r.action, r.outcome))
                .collect::<Vec<_>>()
        }
    };
    let operator = actions("big-data-centre").await;
    assert!(
        operator.contains(&("gov.hub.v1.AdminService/GetStatus".into(), "ok".into())),
        "{operator:?}"
    );
    let refusals = actions("urban-management").await;
    for action in [
        "GetStatus",
        "Replay",
        "RebuildReadModel",
        "SwapReadModel",
        "VerifyReadModel",
        "ExportLog",
        "ImportLog",
    ] {
        let action = format!("gov.hub.v1.AdminService/{action}");
        assert!(
            refusals.contains(&(action.clone(), "permission_denied".into())),
            "{action}: {refusals:?}"
        );
    }
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_writes_the_selected_events_as_json_lines_with_care_records_masked() {
    let hub = HubBuilder::dev().start().await;
    let (case, first) = report(&hub, "replay-1").await;
    hub.commands()
        .dispatch_case(fixtures::from(
            "dcc-310104",
            v1::DispatchCaseRequest {
                request_id: "replay-d".into(),
                case_id: case.clone(),
                department: "urban-management".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("dispatched");
    let (_, other) = report(&hub, "replay-2").await;
    let care = hub
        .care()
        .register_care(fixtures::from("civil-affairs", fixtures::care("replay-c")))
        .await
        .expect("registered")
        .into_inner();
    let last = care.result.expect("a result").position;

    // Everything, oldest first, decoded.
    let all = lines(&hubctl(&hub, &["replay"]).await);
    let positions: Vec<u64> = all.iter().map(|e| number(&e["position"])).collect();
    assert_eq!(positions, (1..=last).collect::<Vec<_>>());
    assert_eq!(all[0]["eventType"], "gov.hub.case.reported.v2");
    assert_eq!(
        all[0]["body"]["@type"],
        "type.googleapis.com/gov.hub.v1.CaseReported"
    );
    assert_eq!(all[0]["body"]["caseId"], case.as_str());
    assert_eq!(all[0]["department"], "dcc-310104");
    assert!(all[0]["storedAt"].is_string());

    // One case: its two events only.
    let aggregate = format!("case/{case}");
    let one = lines(&hubctl(&hub, &["replay", "--aggregate", &aggregate]).await);
    let types: Vec<&str> = one.iter().filter_map(|e| e["eventType"].as_str()).collect();
    assert_eq!(
        types,
        ["gov.hub.case.reported.v2", "gov.hub.case.dispatched.v1"]
    );

    // By position range and event type.
    let reports = lines(
        &hubctl(
            &hub,
            &[
                "replay",
                "--from",
                &first.to_string(),
                "--to",
                &other.to_string(),
                "--event-type",
                "gov.hub.case.reported.v1",
            ],
        )
        .await,
    );
    let positions: Vec<u64> = reports.iter().map(|e| number(&e["position"])).collect();
    assert_eq!(positions, [first, other]);

    // By stored time: from the care registration's on, nothing before it.
    let stored = all[(last - 1) as usize]["storedAt"]
        .as_str()
        .expect("stored at")
        .to_owned();
    let since = lines(&hubctl(&hub, &["replay", "--since", &stored]).await);
    assert_eq!(since.len(), 1, "{since:?}");
    assert_eq!(number(&since[0]["position"]), last);

    // A care record's events come masked: no cleartext personal field anywhere.
    let cares = hubctl(&hub, &["replay", "--type", "care"]).await;
    let text = stdout(&cares);
    for secret in [CARE_NAME, CARE_IDENTITY, CARE_PHONE, CARE_ADDRESS] {
        assert!(!text.contains(secret), "{secret} in clear: {text}");
    }
    let cares = lines(&cares);
    assert_eq!(cares.len(), 1);
    assert_eq!(cares[0]["body"]["name"], "王*");
    assert!(cares[0]["masked"].as_array().is_some_and(|m| !m.is_empty()));

    // To a file, with a summary on stdout.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("replay.jsonl");
    let written = hubctl(
        &hub,
        &[
            "replay",
            "--type",
            "case",
            "--out",
            file.to_str().expect("utf-8"),
            "--json",
        ],
    )
    .await;
    let summary = json(&written);
    assert_eq!(summary["events"], 3);
    let in_file = std::fs::read_to_string(&file).expect("the file");
    assert_eq!(in_file.lines().count(), 3);

    // Bad input: the field named, nothing written, exit 1; the same range the right way round
    // works (above).
    let bad = hubctl(&hub, &["replay", "--from", "3", "--to", "2"]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("InvalidArgument"), "{}", stderr(&bad));
    assert!(stdout(&bad).is_empty());
    let bad = hubctl(&hub, &["replay", "--type", "person"]).await;
    assert_eq!(bad.status.code(), Some(1));

    // The replay was audited, with the case it named.
    let access = hub
        .auditors()
        .list_access(fixtures::from(
            "audit-bureau",
            v1::ListAccessRequest {
                department: "big-data-centre".into(),
                aggregate: aggregate.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("access log")
        .into_inner();
    assert!(
        access
            .entries
            .iter()
            .filter_map(|e| e.record.as_ref())
            .any(|r| r.action == "gov.hub.v1.AdminService/Replay" && r.outcome == "ok"),
        "{:?}",
        access.entries
    );
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_model_is_rebuilt_beside_the_live_one_swapped_in_and_verified() {
    let hub = HubBuilder::dev().start().await;
    let (_, at) = report(&hub, "rebuild-1").await;
    report(&hub, "rebuild-2").await;
    assert_eq!(incident_rows(&hub, at).await, 1);

    // While the rebuild is held it is shown as such, and a swap is refused.
    let hold = Hold::new(&format!("{}-rebuild", hub.consumer("incident_stats")));
    let mut progress = hub
        .admin()
        .rebuild_read_model(fixtures::from(
            "big-data-centre",
            v1::RebuildReadModelRequest {
                read_model: "incident_stats".into(),
            },
        ))
        .await
        .expect("rebuild started")
        .into_inner();
    let first = progress
        .message()
        .await
        .expect("progress")
        .and_then(|p| p.progress)
        .expect("a progress report");
    assert!(!first.caught_up, "{first:?}");
    drop(progress);
    let refused = hub
        .admin()
        .swap_read_model(fixtures::from(
            "big-data-centre",
            v1::SwapReadModelRequest {
                read_model: "incident_stats".into(),
            },
        ))
        .await
        .expect_err("not caught up");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    let status = json(&hubctl(&hub, &["status", "--json"]).await);
    let stats = read_model(&status, "incident_stats");
    assert_eq!(stats["state"], "rebuilding", "{stats}");
    assert!(stats["rebuild"].is_object(), "{stats}");
    // The live one serves meanwhile, and moves on.
    let (_, later) = report(&hub, "rebuild-3").await;
    assert_eq!(incident_rows(&hub, later).await, 1);

    // Let go: hubctl follows it to the end, and swaps it in.
    hold.release();
    let rebuilt = hubctl(&hub, &["rebuild", "incident_stats", "--swap", "--json"]).await;
    let reports = lines(&rebuilt);
    let last = reports.last().expect("a line");
    assert_eq!(last["readModel"], "incident_stats");
    assert!(number(&last["position"]) >= later, "{last}");
    let caught_up = reports
        .iter()
        .find(|r| r["caughtUp"] == true)
        .expect("caught up");
    assert!(number(&caught_up["position"]) >= later, "{caught_up}");
    let pointer =
        std::fs::read_to_string(hub.data_dir().join("read-models/incident_stats.current"))
            .expect("the live folder is named");
    assert!(pointer.starts_with("incident_stats.r"), "{pointer}");
    assert_eq!(incident_rows(&hub, later).await, 1);
    let (_, after_swap) = report(&hub, "rebuild-4").await;
    assert_eq!(
        incident_rows(&hub, after_swap).await,
        1,
        "the swapped-in model moves on"
    );
    let swap_again = hubctl(&hub, &["swap", "incident_stats"]).await;
    assert_eq!(swap_again.status.code(), Some(1), "nothing left to swap");
    assert!(stderr(&swap_again).contains("FailedPrecondition"));

    // Every read model the log alone gives matches a fresh build.
    let status = json(&hubctl(&hub, &["status", "--json"]).await);
    let names: Vec<String> = status["readModels"]
        .as_array()
        .expect("read models")
        .iter()
        .filter_map(|m| m["name"].as_str())
        .filter(|name| *name != "feeds")
        .map(str::to_owned)
        .collect();
    assert_eq!(names.len(), 10, "{names:?}");
    for name in &names {
        // Each stands at the last report first (a filtered model learns it by asking).
        hub.read_model(name)
            .wait_for(after_swap, std::time::Duration::from_secs(30))
            .await
            .expect("caught up");
        let verified = json(&hubctl(&hub, &["verify", name, "--json"]).await);
        assert_eq!(verified["matches"], true, "{name}: {verified}");
        assert!(
            number(&verified["position"]) >= after_swap,
            "{name}: {verified}"
        );
    }
    let feeds = hubctl(&hub, &["verify", "feeds"]).await;
    assert_eq!(
        feeds.status.code(),
        Some(1),
        "the feed publisher is not verified"
    );

    // A row the log does not give is found: exit 3, both digests shown.
    let live = hub.read_model("incident_stats").store();
    let checkpoint = live.checkpoint().expect("checkpoint");
    live.write(
        vec![hub_store::Write::Put {
            key: b"not-from-the-log".to_vec(),
            value: b"{}".to_vec(),
        }],
        checkpoint,
    )
    .expect("a stray row");
    let differs = hubctl(&hub, &["verify", "incident_stats"]).await;
    assert_eq!(differs.status.code(), Some(3), "{}", stderr(&differs));
    assert!(
        stdout(&differs).contains("DIFFERENT"),
        "{}",
        stdout(&differs)
    );
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_completions_and_usage_errors() {
    let run = |args: &'static [&'static str]| async move {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_hubctl"))
            .args(args)
            .output()
            .await
            .expect("hubctl runs")
    };
    let help = run(&["--help"]).await;
    assert!(help.status.success());
    assert!(stdout(&help).contains("Examples:"));
    let completions = run(&["completions", "bash"]).await;
    assert!(completions.status.success());
    assert!(stdout(&completions).contains("hubctl"));
    for subcommand in ["status", "replay", "rebuild", "swap", "verify"] {
        assert!(stdout(&completions).contains(subcommand), "{subcommand}");
    }
    let usage = run(&["rebuild"]).await;
    assert_eq!(
        usage.status.code(),
        Some(2),
        "a missing argument is a usage error"
    );
    // Nothing listens there: exit 1, saying so.
    let unreachable = run(&["--hub", "http://127.0.0.1:9", "status"]).await;
    assert_eq!(unreachable.status.code(), Some(1));
    assert!(
        stderr(&unreachable).contains("connecting to the hub"),
        "{}",
        stderr(&unreachable)
    );
}

/// The log digest's head of `hub` once it has folded `position`.
async fn digest_at(hub: &Hub, position: u64) -> [u8; 32] {
    let mut head = hub.log_digest();
    let head = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        head.wait_for(|h| h.position >= position),
    )
    .await
    .expect("the digest folds the log")
    .expect("digest");
    assert_eq!(head.position, position);
    head.digest
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_into_an_empty_hub_at_the_same_positions_and_digests() {
    let source = HubBuilder::dev().start().await;
    let (case, _) = report(&source, "backup-1").await;
    source
        .care()
        .register_care(fixtures::from("civil-affairs", fixtures::care("backup-c")))
        .await
        .expect("registered");
    let (_, early) = report(&source, "backup-2").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let first = dir.path().join("first.hublog");
    let exported = json(
        &hubctl(
            &source,
            &["export", "--out", first.to_str().expect("utf-8"), "--json"],
        )
        .await,
    );
    assert_eq!(number(&exported["lastPosition"]), early);
    assert_eq!(exported["messages"], early);
    assert_eq!(exported["logDigest"], hex(&digest_at(&source, early).await));
    let (_, last) = report(&source, "backup-3").await;
    let whole = dir.path().join("whole.hublog");
    json(
        &hubctl(
            &source,
            &["export", "--out", whole.to_str().expect("utf-8"), "--json"],
        )
        .await,
    );

    // Only a hub in restore mode takes a backup (here the source, with commands on: refused).
    let not_restoring = hubctl(
        &source,
        &["import", "--file", whole.to_str().expect("utf-8")],
    )
    .await;
    assert_eq!(not_restoring.status.code(), Some(1));
    assert!(
        stderr(&not_restoring).contains("restore mode"),
        "{}",
        stderr(&not_restoring)
    );
    let target_dir = tempfile::tempdir().expect("target data dir");
    let mut restoring = HubBuilder::dev().data_dir(target_dir.path());
    restoring.config_mut().restore = true;
    let target = restoring.start().await;
    // Meanwhile nothing else writes to its log: commands are refused, saying why.
    let refused = target
        .commands()
        .report_case(fixtures::from(
            "urban-management",
            fixtures::incident("backup-x"),
        ))
        .await
        .expect_err("restore mode");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("restore mode"), "{refused:?}");
    // A changed byte is found before anything is sent: the target stays empty.
    let mut bytes = std::fs::read(&whole).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    let damaged = dir.path().join("damaged.hublog");
    std::fs::write(&damaged, &bytes).expect("write");
    let refused = hubctl(
        &target,
        &["import", "--file", damaged.to_str().expect("utf-8")],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let status = json(&hubctl(&target, &["status", "--json"]).await);
    let events = status["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["name"] == "GOV_EVENTS")
        .expect("GOV_EVENTS")
        .clone();
    assert_eq!(
        number(&events["lastSequence"]),
        0,
        "nothing stored: {events}"
    );

    // The first part, then the whole, which resumes where the first ended.
    let imported = json(
        &hubctl(
            &target,
            &["import", "--file", first.to_str().expect("utf-8"), "--json"],
        )
        .await,
    );
    assert_eq!(imported["matches"], true, "{imported}");
    let imported = json(
        &hubctl(
            &target,
            &["import", "--file", whole.to_str().expect("utf-8"), "--json"],
        )
        .await,
    );
    assert_eq!(imported["matches"], true, "{imported}");
    assert_eq!(number(&imported["lastPosition"]), last);
    assert_eq!(
        digest_at(&target, last).await,
        digest_at(&source, last).await
    );
    // The earlier part again: the log holds more than it, refused.
    let again = hubctl(
        &target,
        &["import", "--file", first.to_str().expect("utf-8")],
    )
    .await;
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("FailedPrecondition"),
        "{}",
        stderr(&again)
    );

    // The same events, stored times included, and the same rows.
    let from_source = stdout(&hubctl(&source, &["replay"]).await);
    let from_target = stdout(&hubctl(&target, &["replay"]).await);
    assert_eq!(from_source.lines().count() as u64, last);
    assert_eq!(from_source, from_target);
    // A restored message keeps its first stored time, and a replay by time selects by it.
    let line: Value =
        serde_json::from_str(from_source.lines().nth(early as usize - 1).expect("line"))
            .expect("json");
    let since = line["storedAt"].as_str().expect("stored at");
    let replayed = lines(&hubctl(&target, &["replay", "--since", since]).await);
    let positions: Vec<u64> = replayed.iter().map(|e| number(&e["position"])).collect();
    assert_eq!(positions, (early..=last).collect::<Vec<_>>());
    assert_eq!(
        incident_rows(&target, last).await,
        incident_rows(&source, last).await
    );
    let state = |hub: &Hub| {
        let mut queries = hub.queries();
        let case = case.clone();
        async move {
            queries
                .get_case(fixtures::from(
                    "urban-management",
                    v1::GetCaseRequest {
                        case_id: case,
                        min_position: last,
                    },
                ))
                .await
                .expect("the case")
                .into_inner()
        }
    };
    assert_eq!(state(&target).await, state(&source).await);
    // Restarted without restore mode, the target takes new commands at the next position.
    target.stop().await.expect("stop");
    let target = HubBuilder::dev().data_dir(target_dir.path()).start().await;
    let (_, next) = report(&target, "backup-4").await;
    assert_eq!(next, last + 1);
    source.stop().await.expect("stop");
    target.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_halted_read_model_is_mended_by_a_rebuild_and_a_swap() {
    let hub = HubBuilder::dev().start().await;
    let (case, at) = report(&hub, "mend-1").await;
    hub.read_model("case_queue")
        .wait_for(at, std::time::Duration::from_secs(30))
        .await
        .expect("applied");
    assert!(hubctl(&hub, &["status", "--check"]).await.status.success());

    // A row of the case damaged on disk: the next event of the case halts the model.
    let live = hub.read_model("case_queue").store();
    let rows = live.scan(b"", None, 1000).expect("rows");
    let damaged: Vec<_> = rows
        .into_iter()
        .filter(|(key, _)| String::from_utf8_lossy(key).contains(&case))
        .map(|(key, _)| hub_store::Write::Put {
            key,
            value: b"not a row".to_vec(),
        })
        .collect();
    assert!(!damaged.is_empty(), "the case has rows");
    live.write(damaged, live.checkpoint().expect("checkpoint"))
        .expect("damage");
    let dispatched = hub
        .commands()
        .dispatch_case(fixtures::from(
            "dcc-310104",
            v1::DispatchCaseRequest {
                request_id: "mend-d".into(),
                case_id: case.clone(),
                department: "urban-management".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("dispatched")
        .into_inner()
        .result
        .expect("a result");
    let halted = hub
        .read_model("case_queue")
        .wait_for(dispatched.position, std::time::Duration::from_secs(30))
        .await;
    assert!(
        matches!(halted, Err(hub_projector::WaitError::Halted(_))),
        "{halted:?}"
    );
    let check = hubctl(&hub, &["status", "--check"]).await;
    assert_eq!(check.status.code(), Some(3), "{}", stderr(&check));
    assert!(
        stderr(&check).contains("read model case_queue halted"),
        "{}",
        stderr(&check)
    );

    // Rebuilt from the log and swapped in: live again, the alarm gone, the case readable.
    let rebuilt = hubctl(&hub, &["rebuild", "case_queue", "--swap"]).await;
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert!(
        stdout(&rebuilt).contains("swapped in"),
        "{}",
        stdout(&rebuilt)
    );
    let check = hubctl(&hub, &["status", "--check"]).await;
    assert!(check.status.success(), "{}", stderr(&check));
    let case_view = hub
        .queries()
        .get_case(fixtures::from(
            "urban-management",
            v1::GetCaseRequest {
                case_id: case.clone(),
                min_position: dispatched.position,
            },
        ))
        .await
        .expect("the case reads again")
        .into_inner();
    assert!(case_view.case.is_some());
    hub.stop().await.expect("stop");
}
