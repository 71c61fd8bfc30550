//! `hubctl replay`.

use hub_api::v1;
use hub_tests::HubBuilder;
use hub_tests::fixtures;
use hub_tests::fixtures::{CARE_ADDRESS, CARE_IDENTITY, CARE_NAME, CARE_PHONE};

use crate::*;

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
    let result = care.result.expect("a result");
    let (last, care_id) = (result.position, result.id);

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
    let named = hub
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
        named
            .entries
            .iter()
            .filter_map(|e| e.record.as_ref())
            .any(|r| r.action == "gov.hub.v1.AdminService/Replay" && r.outcome == "ok"),
        "{:?}",
        named.entries
    );
    // Each replay that carried the care record (all events, the ones since it was stored,
    // every care record) recorded naming the person, with the events it carried; the
    // case-only replays named nobody.
    let replayed_care: Vec<(u64, Vec<String>)> = access(&hub, "big-data-centre")
        .await
        .into_iter()
        .filter(|r| r.action == "gov.hub.v1.AdminService/Replay" && !r.persons.is_empty())
        .map(|r| (r.count, r.persons))
        .collect();
    assert_eq!(
        replayed_care,
        [
            (last, vec![care_id.clone()]),
            (1, vec![care_id.clone()]),
            (1, vec![care_id.clone()])
        ],
        "{replayed_care:?}"
    );
    hub.stop().await.expect("stop");
}
