//! `hubctl status`, and every admin command refused to a department.

use hub_api::v1;
use hub_tests::HubBuilder;
use hub_tests::fixtures;

use crate::*;

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
    let commands: [&[&str]; 8] = [
        &["status"],
        &["replay"],
        &["replay", "--into-feed", "urban-management"],
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
        "RedeliverFeed",
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
