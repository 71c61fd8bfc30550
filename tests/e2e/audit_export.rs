//! Signed checkpoints and exports of the audit log: auditors alone export it, and the hub's
//! public key alone verifies the file; a changed or cut export fails at the exact item.

use hub::audit_cli::{Caller, NotVerified, export, verify};
use hub_api::v1::{self, AuditBatch, ExportAuditResponse, export_audit_response::Item};
use hub_audit::export::{read_items, write_item};
use hub_audit::{check_chain, read_chain};
use hub_tests::{HubBuilder, Nats, fixtures};
use prost::Message;
use tonic::Code;

use crate::datasets::read;
use crate::{from, incident};

const EXPORT: &str = "gov.hub.v1.AuditService/ExportAudit";

fn caller(hub: &hub_tests::Hub) -> Caller {
    Caller {
        hub: format!("http://{}", hub.addr()),
        department: Some("discipline-inspection".into()),
        user: "inspector-01".into(),
        purpose: "inspection:2026-17".into(),
        ..Caller::default()
    }
}

/// The batches of an export file, decoded, with their item numbers.
fn batches(items: &[ExportAuditResponse]) -> Vec<(usize, AuditBatch)> {
    items
        .iter()
        .enumerate()
        .filter_map(|(at, item)| match &item.item {
            Some(Item::Batch(b)) => Some((at, AuditBatch::decode(b.body.as_slice()).ok()?)),
            _ => None,
        })
        .collect()
}

fn write(path: &std::path::Path, items: &[ExportAuditResponse]) {
    let mut bytes = Vec::new();
    for item in items {
        write_item(item, &mut bytes);
    }
    std::fs::write(path, bytes).expect("write export");
}

fn tampered(file: &std::path::Path, key: &std::path::Path) -> hub_audit::export::Tampered {
    match verify(file, &[key.to_owned()], &[]) {
        Err(NotVerified::Tampered(t)) => t,
        other => panic!("expected tampering to be found, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_exports_the_audit_log_and_the_public_key_alone_verifies_it() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let mut builder = HubBuilder::on(&nats);
    builder.config_mut().audit.checkpoint_records = 3;
    let hub = builder.start().await;
    let at = hub
        .commands()
        .report_case(from("urban-management", incident("ax-1")))
        .await
        .expect("report")
        .into_inner()
        .position;
    // Four reads: a checkpoint is stored in the chain after the third record.
    let mut datasets = hub.datasets();
    for _ in 0..4 {
        datasets
            .read_dataset(read("incident_stats", at))
            .await
            .expect("open data");
    }

    // Only auditors export: the public and a department are refused, in the same setup as the
    // auditor's export below.
    let mut auditors = hub.auditors();
    let public = auditors
        .export_audit(fixtures::acting(
            fixtures::PURPOSE,
            v1::ExportAuditRequest {},
        ))
        .await
        .expect_err("the public exports nothing");
    assert_eq!(public.code(), Code::Unauthenticated);
    let department = auditors
        .export_audit(from("civil-affairs", v1::ExportAuditRequest {}))
        .await
        .expect_err("a department exports nothing");
    assert_eq!(department.code(), Code::PermissionDenied, "{department:?}");

    // The digest has folded the report before the export's checkpoint is made.
    let mut digest = hub.log_digest();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        digest.wait_for(|head| head.position >= at),
    )
    .await
    .expect("the digest catches up")
    .expect("the digest task runs");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("audit.export");
    let written = export(&caller(&hub), &file)
        .await
        .expect("the auditor exports");
    assert!(written.items > 1, "{written:?}");
    let key = nats.audit_public_key_file();
    let verified =
        verify(&file, std::slice::from_ref(&key), &[]).expect("the untouched export verifies");
    assert_eq!(verified.manifest.instance, hub.instance());
    assert_eq!(verified.manifest.reason, "export");
    assert_eq!(verified.manifest.chains.len(), 1);
    // After the third read, and after the two refusals (records 4 to 6).
    assert_eq!(verified.checkpoints, 2, "{verified:?}");
    // Four reads and three export requests.
    assert_eq!(verified.records, 7, "{verified:?}");

    // The export holds its own record (who, as whom, why) and the two refusals.
    let items = read_items(&std::fs::read(&file).expect("read export")).expect("items");
    let records: Vec<v1::AuditRecord> = batches(&items)
        .into_iter()
        .flat_map(|(_, b)| b.records)
        .filter(|r| r.action == EXPORT)
        .collect();
    let outcomes: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.department.as_str(), r.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("", "unauthenticated"),
            ("civil-affairs", "permission_denied"),
            ("discipline-inspection", "ok"),
        ]
    );
    assert_eq!(records[2].acting_person, "inspector-01");
    assert_eq!(records[2].purpose, "inspection:2026-17");

    // The event log's digest the manifest signs is the one recomputed from the log itself.
    let signed = verified.events.clone();
    assert_eq!(signed.position, at, "{signed:?}");
    let recomputed = hub_audit::log_digest::compute(&js, at)
        .await
        .expect("recompute");
    assert_eq!(recomputed.digest.to_vec(), signed.digest);

    // The stored chain, checkpoints included, is one whole line, and the export's manifest is
    // stored in it too (after the export's last batch).
    let stored = read_chain(&js, hub.instance()).await.expect("chain");
    check_chain(hub.instance(), &stored).expect("whole");
    let last = stored.last().expect("a batch");
    assert_eq!(last.batch.number, verified.manifest.chains[0].number + 1);
    assert!(last.batch.checkpoint.is_some());

    // A record changed in the middle: named at its batch's item, and by its place in the
    // batch (the next batch, or the manifest, names each record's digest).
    let found = batches(&items);
    let (middle, mut batch) = found[found.len() / 2].clone();
    assert!(!batch.records.is_empty(), "a batch of records: {batch:?}");
    let mut changed = items.clone();
    let last = batch.records.len() - 1;
    batch.records[last].department = "public-security".into();
    if let Some(Item::Batch(b)) = &mut changed[middle].item {
        b.body = batch.encode_to_vec();
    }
    let changed_file = dir.path().join("changed.export");
    write(&changed_file, &changed);
    let broken = tampered(&changed_file, &key);
    assert_eq!(broken.item, middle as u64, "{broken}");
    assert!(
        broken.place.ends_with(&format!(", record {last} changed")),
        "{broken}"
    );

    // Cut short: the last batch dropped.
    let mut cut = items.clone();
    cut.pop();
    let cut_file = dir.path().join("cut.export");
    write(&cut_file, &cut);
    let broken = tampered(&cut_file, &key);
    assert!(broken.reason.contains("truncated"), "{broken}");

    // Another hub's key does not verify it.
    let other = tempfile::tempdir().expect("temp dir");
    let other_key = other.path().join("other.pub");
    std::fs::write(
        &other_key,
        hub_audit::signing::CheckpointSigner::from_bytes(&[9; 32])
            .public_key_pem()
            .expect("pem"),
    )
    .expect("write key");
    assert_eq!(tampered(&file, &other_key).item, 0);

    // A read after the export, then a clean stop: the chain ends with a shutdown checkpoint.
    datasets
        .read_dataset(read("incident_stats", at))
        .await
        .expect("open data");
    hub.stop().await.expect("stop");
    let stored = read_chain(&js, &verified.manifest.instance)
        .await
        .expect("chain");
    let last = stored.last().expect("a batch");
    let signed = last.batch.checkpoint.as_ref().expect("a checkpoint last");
    let checkpoint = hub_audit::signing::CheckpointVerifier::from_public_pem(
        &std::fs::read_to_string(&key).expect("key"),
    )
    .expect("key")
    .verify(signed)
    .expect("signed with the hub's key");
    assert_eq!(checkpoint.reason, "shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_log_export_both_chains_and_a_later_export_holds_the_earlier() {
    let nats = Nats::start().await;
    let a = HubBuilder::on(&nats).start().await;
    let b = HubBuilder::on(&nats).start().await;
    for hub in [&a, &b] {
        hub.datasets()
            .read_dataset(read("incident_stats", 0))
            .await
            .expect("open data");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let key = [nats.audit_public_key_file()];
    let first = dir.path().join("first.export");
    export(&caller(&a), &first).await.expect("export from a");
    let verified = verify(&first, &key, &[]).expect("both chains verify");
    let chains: Vec<&str> = verified
        .manifest
        .chains
        .iter()
        .map(|h| h.instance.as_str())
        .collect();
    let mut expected = vec![a.instance(), b.instance()];
    expected.sort();
    assert_eq!(chains, expected);

    // b's export, later, holds everything a's vouched for (a's manifest batch included).
    b.datasets()
        .read_dataset(read("incident_stats", 0))
        .await
        .expect("open data");
    let second = dir.path().join("second.export");
    export(&caller(&b), &second).await.expect("export from b");
    let later = verify(&second, &key, std::slice::from_ref(&first))
        .expect("the later export is consistent with the earlier");
    assert!(later.batches > verified.batches, "{later:?} {verified:?}");
    // Not the other way round: the earlier export lacks what the later one signed.
    match verify(&first, &key, std::slice::from_ref(&second)) {
        Err(NotVerified::Tampered(t)) => assert!(t.reason.contains("earlier export"), "{t}"),
        other => panic!("an export older than its 'earlier' one must fail, got {other:?}"),
    }
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_development_hub_generates_its_key_and_writes_the_public_key_beside_it() {
    let hub = HubBuilder::dev().start().await;
    hub.datasets()
        .read_dataset(read("incident_stats", 0))
        .await
        .expect("open data");
    let secrets = hub.data_dir().join("secrets");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("audit.export");
    export(&caller(&hub), &file).await.expect("export");
    let verified = verify(&file, &[secrets.join("audit-signing.pub")], &[]).expect("verifies");
    assert_eq!(verified.records, 2, "a read and the export: {verified:?}");
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_going_on_after_a_crash_first_closes_the_run_with_a_start_checkpoint() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    hub_log::stream::ensure_stream(&js, hub_log::stream::AUDIT, &Default::default())
        .await
        .expect("GOV_AUDIT");
    let signer = hub_audit::signing::CheckpointSigner::from_bytes(&[2; 32]);
    let checkpoints = || hub_audit::Checkpoints {
        signer: signer.clone(),
        every_records: 1000,
        every: std::time::Duration::from_secs(86_400),
        log_head: Box::new(v1::LogDigestHead::default),
    };
    let (audit, writer) = hub_audit::Audit::start(js.clone(), "crashy", checkpoints())
        .await
        .expect("writer");
    audit
        .record(v1::AuditRecord {
            action: "read".into(),
            ..Default::default()
        })
        .await
        .expect("stored");
    // Killed: no shutdown checkpoint.
    writer.abort();
    let _ = writer.await;
    let stored = read_chain(&js, "crashy").await.expect("chain");
    assert_eq!(stored.len(), 1);
    assert!(stored[0].batch.checkpoint.is_none());

    let (_audit, _writer) = hub_audit::Audit::start(js.clone(), "crashy", checkpoints())
        .await
        .expect("writer again");
    let stored = read_chain(&js, "crashy").await.expect("chain");
    check_chain("crashy", &stored).expect("whole");
    assert_eq!(stored.len(), 2);
    let signed = stored[1].batch.checkpoint.as_ref().expect("a checkpoint");
    let checkpoint = signer.verifier().verify(signed).expect("signed");
    assert_eq!(checkpoint.reason, "start");
    assert_eq!(checkpoint.chains[0].number, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cases_history_exported_with_its_proof_verifies_offline_and_a_changed_event_is_named() {
    use hub_api::v1::{ExportHistoryResponse, export_history_response::Item as HistoryItem};
    use prost::Message as _;

    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("hx-1")))
        .await
        .expect("report")
        .into_inner();
    // Another case's event between this one's, then this one dispatched.
    crate::report_incident(&hub, "hx-2").await;
    let dispatched = crate::cmd::dispatch(
        &hub,
        "dcc-310104",
        "hx-d1",
        &reported.case_id,
        "urban-management",
        None,
    )
    .await
    .expect("dispatch")
    .position;
    let last = crate::report_incident(&hub, "hx-3").await;
    let mut digest = hub.log_digest();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        digest.wait_for(|head| head.position >= last),
    )
    .await
    .expect("the digest catches up")
    .expect("the digest task runs");

    let dir = tempfile::tempdir().expect("temp dir");
    let key = [nats.audit_public_key_file()];
    // Only auditors, and never a care record's (its proof would carry personal data in clear);
    // a case's history is exported in the same setup.
    let refused = hub
        .auditors()
        .export_history(from(
            "civil-affairs",
            v1::ExportHistoryRequest {
                aggregate: format!("case/{}", reported.case_id),
            },
        ))
        .await
        .expect_err("a department");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let care = hub
        .auditors()
        .export_history(from(
            "discipline-inspection",
            v1::ExportHistoryRequest {
                aggregate: "care/9b6a682b-3fff-555e-8cc5-a03dbee6490c".into(),
            },
        ))
        .await
        .expect_err("a care record's");
    assert_eq!(care.code(), Code::PermissionDenied);
    let malformed = hub
        .auditors()
        .export_history(from(
            "discipline-inspection",
            v1::ExportHistoryRequest {
                aggregate: "person/11010519491231002X".into(),
            },
        ))
        .await
        .expect_err("a malformed aggregate");
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert_eq!(crate::violated_field(&malformed), "aggregate");
    assert!(!malformed.message().contains("11010519491231002X"));

    let file = dir.path().join("case.history");
    let aggregate = format!("case/{}", reported.case_id);
    hub::audit_cli::export_history(&caller(&hub), &aggregate, &file)
        .await
        .expect("the auditor exports the case's history");
    let verified = hub::audit_cli::verify_history(&file, &key).expect("it verifies");
    assert_eq!(verified.claim.positions, [reported.position, dispatched]);
    assert_eq!(verified.head.position, last);
    // hx-2 between the case's events, hx-3 after them.
    assert_eq!(verified.others, 2);
    // An audit export is not a history export, and the other way round.
    assert!(matches!(
        verify(&file, &key, &[]),
        Err(NotVerified::Unreadable(_))
    ));

    let bytes = std::fs::read(&file).expect("read");
    let mut rest = bytes.as_slice();
    let mut items = Vec::new();
    while !rest.is_empty() {
        items.push(ExportHistoryResponse::decode_length_delimited(&mut rest).expect("item"));
    }
    let write_items = |items: &[ExportHistoryResponse], name: &str| {
        let mut out = Vec::new();
        for item in items {
            hub_audit::history_proof::write_item(item, &mut out);
        }
        let path = dir.path().join(name);
        std::fs::write(&path, out).expect("write");
        path
    };
    // The dispatch's body changed (its department): named at its item.
    let mut changed = items.clone();
    let at = changed
        .iter()
        .position(|i| matches!(&i.item, Some(HistoryItem::Event(e)) if e.position == dispatched))
        .expect("the dispatch");
    if let Some(HistoryItem::Event(e)) = &mut changed[at].item {
        let mut body = v1::CaseDispatched::decode(e.payload.as_slice()).expect("dispatched");
        body.department = "housing".into();
        e.payload = body.encode_to_vec();
    }
    let path = write_items(&changed, "changed.history");
    match hub::audit_cli::verify_history(&path, &key) {
        Err(NotVerified::Tampered(t)) => {
            assert_eq!(t.item, at as u64, "{t}");
            assert!(t.reason.contains("changed"), "{t}");
        }
        other => panic!("a changed event must be found, got {other:?}"),
    }
    // The other case's event dropped.
    let mut dropped = items.clone();
    dropped.remove(2);
    let path = write_items(&dropped, "dropped.history");
    assert!(matches!(
        hub::audit_cli::verify_history(&path, &key),
        Err(NotVerified::Tampered(t)) if t.item == 2
    ));
    hub.stop().await.expect("stop");
}
