//! `hubctl export` and `import`: a backup restored into a hub in restore mode.

use hub_api::v1;
use hub_tests::HubBuilder;
use hub_tests::fixtures;
use serde_json::Value;

use crate::*;

/// The log digest's head of `hub` once it has folded `position`.
pub(crate) async fn digest_at(hub: &Hub, position: u64) -> [u8; 32] {
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

pub(crate) fn hex(bytes: &[u8]) -> String {
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
    // The same change sent by a client that checks nothing: the hub receives the export
    // whole and checks it before it appends anything.
    let mut items = Vec::new();
    let mut reader = std::io::BufReader::new(std::fs::File::open(&whole).expect("open"));
    while let Some(item) = hub::backup::read_item(&mut reader).expect("an item") {
        items.push(item);
    }
    let Some(v1::log_export_item::Item::Message(message)) = &mut items[last as usize].item else {
        panic!("the last message");
    };
    message.body[0] ^= 0x01;
    let requests = items
        .into_iter()
        .map(|item| v1::ImportLogRequest { item: Some(item) });
    let refused = target
        .admin()
        .import_log(fixtures::from(
            "big-data-centre",
            tokio_stream::iter(requests),
        ))
        .await
        .expect_err("a changed message");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains("SHA-256"), "{refused:?}");
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
    // Each import's outcome is audited beside its request: where it ended, digest matching.
    let outcomes: Vec<(u64, String)> = access(&target, "big-data-centre")
        .await
        .into_iter()
        .filter(|r| r.action == "gov.hub.v1.AdminService/ImportLog")
        .map(|r| (r.position, r.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (last, "ok".to_owned()),
            (0, "invalid_argument".to_owned()),
            (early, "ok".to_owned()),
            (early, "ok".to_owned()),
            (last, "ok".to_owned()),
            (last, "ok".to_owned())
        ],
        "asked and refused (the changed export), then asked and done, twice"
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
