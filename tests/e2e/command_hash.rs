//! The command hash is keyed: what the log's headers carry cannot be computed without the
//! hub's secret (an unkeyed digest of a care registration would confirm a guessed person),
//! every instance on one NATS must be given the same key, and a rotation keeps retries
//! recognised while the previous key is configured.

use hub_api::v1;
use hub_ingest::{CommandHasher, HashKey};
use hub_tests::{HubBuilder, Nats};
use prost::Message;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::from;

fn registration(rid: &str) -> v1::RegisterCareRequest {
    v1::RegisterCareRequest {
        request_id: rid.into(),
        name: "李四".into(),
        identity_number: "11010519491231002X".into(),
        category: v1::CareCategory::SevereMentalDisorder as i32,
        community_code: "310104001001".into(),
        risk_level: v1::RiskLevel::High as i32,
        ..Default::default()
    }
}

/// Civil affairs registers the person of `registration` under request id `rid`.
async fn register(hub: &hub_tests::Hub, rid: &str) -> Result<v1::CommandResult, tonic::Status> {
    hub.care()
        .register_care(from("civil-affairs", registration(rid)))
        .await
        .map(|r| {
            r.into_inner()
                .result
                .expect("an accepted command has a result")
        })
}

fn key_of(path: &std::path::Path) -> HashKey {
    let text = std::fs::read(path).expect("key file");
    HashKey::new(text.trim_ascii()).expect("a usable key")
}

const CIVIL_AFFAIRS: &str = "/departments/civil-affairs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_hash_is_keyed_and_a_rotation_keeps_retries_recognised() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let data = tempfile::tempdir().expect("data dir");

    // On an external NATS, a hub without a configured key refuses to start, saying why.
    let mut keyless = HubBuilder::on(&nats).data_dir(data.path());
    keyless.config_mut().commands.hash_key_file = None;
    let refused = keyless.try_start().await.err().expect("refused");
    assert!(
        format!("{refused:#}").contains("commands.hash_key_file"),
        "{refused:#}"
    );

    let hub = HubBuilder::on(&nats).data_dir(data.path()).start().await;
    let first = register(&hub, "k-1").await.expect("registered");
    hub.stop().await.expect("stop");

    // What the header carries: neither the unkeyed digest anyone could compute from a guess,
    // nor anything a hasher without the key makes; exactly what the configured key makes.
    let stored = js
        .get_stream("GOV_EVENTS")
        .await
        .expect("stream")
        .get_raw_message(first.position)
        .await
        .expect("event");
    let header = stored
        .headers
        .get("ce-commandhash")
        .expect("ce-commandhash")
        .as_str()
        .to_owned();
    let mut guess = registration("");
    guess.request_id.clear();
    let unkeyed: String =
        Sha256::digest([b"RegisterCare".as_slice(), &[0], &guess.encode_to_vec()].concat())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
    assert!(!header.contains(&unkeyed[..32]), "{header}");
    let old_key = nats.hash_key_file();
    let hasher = CommandHasher::new(key_of(&old_key), None);
    let hash = |h: &CommandHasher| h.hash("RegisterCare", CIVIL_AFFAIRS, &registration("k-1"));
    assert!(hash(&hasher).matches(&header));
    let stranger = CommandHasher::new(HashKey::new(&[9; 32]).expect("key"), None);
    assert!(!hash(&stranger).matches(&header));

    // Rotation: a new key, the old one still named: the retry gets its first result.
    let new_key = data.path().join("new.key");
    std::fs::write(
        &new_key,
        "8d3b0f6c2a9e4d7184c5b2a6f1e0d9c8b7a6f5e4d3c2b1a09f8e7d6c5b4a3921",
    )
    .expect("new key");
    let mut rotating = HubBuilder::on(&nats).data_dir(data.path());
    rotating.config_mut().commands.hash_key_file = Some(new_key.clone());
    rotating.config_mut().commands.previous_hash_key_file = Some(old_key);
    let hub = rotating.start().await;
    let again = register(&hub, "k-1").await.expect("registered");
    assert_eq!(again, first);
    hub.stop().await.expect("stop");

    // Once the old key is dropped, a retry of a command hashed under it can no longer be told
    // from a reuse; new commands go on.
    let mut rotated = HubBuilder::on(&nats).data_dir(data.path());
    rotated.config_mut().commands.hash_key_file = Some(new_key);
    let hub = rotated.start().await;
    let status = register(&hub, "k-1")
        .await
        .expect_err("the old key is gone");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    register(&hub, "k-2").await.expect("a new registration");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_on_its_own_nats_generates_a_key_once_and_keeps_it() {
    let data = tempfile::tempdir().expect("data dir");
    let hub = HubBuilder::dev().data_dir(data.path()).start().await;
    let first = register(&hub, "g-1").await.expect("registered");
    hub.stop().await.expect("stop");
    let key = data.path().join("secrets").join("command-hash.key");
    let text = std::fs::read(&key).expect("a generated key");
    assert_eq!(text.trim_ascii().len(), 64, "32 random bytes, in hex");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(
            mode & 0o077,
            0,
            "readable by the hub's user alone: {mode:o}"
        );
    }
    // Started again, the hub keeps its key: the retry is recognised.
    let hub = HubBuilder::dev().data_dir(data.path()).start().await;
    let again = register(&hub, "g-1").await.expect("registered");
    assert_eq!(again, first);
    assert_eq!(std::fs::read(&key).expect("key"), text, "the same key");
    hub.stop().await.expect("stop");
}
