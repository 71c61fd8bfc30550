//! `hubctl rebuild`, `swap` and `verify`, and a halted read model mended.

use hub_api::v1;
use hub_tests::fixtures;
use hub_tests::{Hold, HubBuilder};

use crate::*;

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
