//! The event log's chained digest, against a real nats-server: the task follows the log,
//! every entry is the fold of the stored messages' leaves, the head equals the digest
//! recomputed from the stream, and a stopped task resumes from its store where it left off.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use hub_audit::log_digest::{
    self, DigestEntry, EMPTY, LogDigest, LogHead, Stored, content_hash, leaf, next, subject_hash,
};
use hub_log::names::EVENTS_STREAM;
use hub_log::stream::{EVENTS, EventsStreamSettings, ensure_stream};
use hub_tests::Nats;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A failure guard only: the watch channel says when the head moves.
const PATIENCE: Duration = Duration::from_secs(30);

async fn log(nats: &Nats) -> jetstream::Context {
    let js = nats.jetstream().await;
    ensure_stream(&js, EVENTS, &EventsStreamSettings::default())
        .await
        .expect("events stream");
    js
}

/// Appends `count` events to a few case subjects, with CloudEvents-like headers (one name
/// twice in every other event), a `Nats-Msg-Id`, and payloads of varied length; returns the last position.
async fn append(js: &jetstream::Context, from: usize, count: usize) -> u64 {
    let mut last = 0;
    for n in from..from + count {
        let mut headers = HeaderMap::new();
        headers.insert("ce-id", format!("e-{n}").as_str());
        headers.insert("ce-type", "gov.hub.test.digest.v1");
        headers.append("x-tag", "first");
        if n % 2 == 0 {
            headers.append("x-tag", format!("second-{n}").as_str());
        }
        headers.insert("Nats-Msg-Id", format!("r-{n}").as_str());
        let payload = bytes::Bytes::from("x".repeat(n % 7) + &n.to_string());
        last = js
            .publish_with_headers(format!("gov.events.case.c-{}", n % 3), headers, payload)
            .await
            .expect("publish")
            .await
            .expect("stored")
            .sequence;
    }
    last
}

async fn reach(heads: &mut watch::Receiver<LogHead>, position: u64) -> LogHead {
    *tokio::time::timeout(PATIENCE, heads.wait_for(|head| head.position >= position))
        .await
        .unwrap_or_else(|_| panic!("the digest did not reach position {position}"))
        .expect("the digest task is running")
}

/// The entries of positions `from..=to`, folded here from direct gets onto `previous`.
async fn fold_from_direct_gets(
    js: &jetstream::Context,
    from: u64,
    to: u64,
    mut previous: [u8; 32],
) -> Vec<DigestEntry> {
    let stream = js.get_stream(EVENTS_STREAM).await.expect("stream");
    let mut entries = Vec::new();
    for position in from..=to {
        let message = stream.direct_get(position).await.expect("direct get");
        assert_eq!(message.sequence, position);
        let time = i64::try_from(message.time.unix_timestamp_nanos()).expect("i64 nanos");
        let subject = subject_hash(&message.subject);
        let content = content_hash(time, &message.headers, &message.payload);
        previous = next(&previous, &leaf(position, &subject, &content));
        entries.push(DigestEntry {
            position,
            subject_hash: subject,
            content_hash: content,
            digest: previous,
        });
    }
    entries
}

async fn stop(shutdown: CancellationToken, task: tokio::task::JoinHandle<()>) {
    shutdown.cancel();
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the digest task stops when told")
        .expect("the digest task ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_follows_the_log_and_resumes_from_its_store() {
    let nats = Nats::start().await;
    let js = log(&nats).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let first_end = append(&js, 1, 25).await;
    assert_eq!(first_end, 25);

    let digest = LogDigest::open(dir.path()).expect("open");
    assert_eq!(
        digest.head(),
        LogHead {
            position: 0,
            digest: EMPTY
        }
    );
    let shutdown = CancellationToken::new();
    let (mut heads, task) = digest.start(js.clone(), shutdown.clone()).expect("start");
    assert!(
        digest.start(js.clone(), shutdown.clone()).is_err(),
        "a second task on one store is refused"
    );
    let head = reach(&mut heads, first_end).await;
    assert_eq!(head.position, first_end);
    assert_eq!(head, digest.head());
    assert_eq!(
        head,
        log_digest::compute(&js, first_end).await.expect("compute")
    );

    let entries = digest.range(1, first_end).expect("range");
    let expected = fold_from_direct_gets(&js, 1, first_end, EMPTY).await;
    assert_eq!(
        entries, expected,
        "each entry is the fold of the stored messages' leaves"
    );
    assert_eq!(entries.last().map(|e| e.digest), Some(head.digest));
    assert_eq!(digest.entry(7).expect("entry"), Some(expected[6]));
    assert_eq!(digest.entry(first_end + 1).expect("entry"), None);
    // A prefix of the log has its own digest, the one the store holds at that position.
    assert_eq!(
        log_digest::compute(&js, 10).await.expect("compute").digest,
        expected[9].digest
    );

    // Stopped, while the log goes on.
    stop(shutdown, task).await;
    drop(digest);
    let second_end = append(&js, 26, 40).await;
    assert_eq!(second_end, 65);

    let digest = LogDigest::open(dir.path()).expect("reopen");
    assert_eq!(
        digest.head(),
        head,
        "the store stands where the task stopped"
    );
    let shutdown = CancellationToken::new();
    let (mut heads, task) = digest.start(js.clone(), shutdown.clone()).expect("restart");
    let resumed = reach(&mut heads, second_end).await;
    assert_eq!(resumed.position, second_end);
    assert_eq!(
        resumed,
        log_digest::compute(&js, second_end).await.expect("compute")
    );
    let all = digest.range(1, second_end).expect("range");
    assert_eq!(
        all[..first_end as usize],
        entries[..],
        "entries before are unchanged"
    );
    assert_eq!(
        all[first_end as usize..],
        fold_from_direct_gets(&js, first_end + 1, second_end, head.digest).await[..],
        "the new entries fold on from the old head"
    );
    stop(shutdown, task).await;
    drop(digest);

    // Reopened with nothing new: the same head and entries, and a task started on it
    // stands where it was.
    let digest = LogDigest::open(dir.path()).expect("reopen again");
    assert_eq!(digest.head(), resumed);
    assert_eq!(digest.range(1, second_end).expect("range"), all);
    let shutdown = CancellationToken::new();
    let (heads, task) = digest
        .start(js.clone(), shutdown.clone())
        .expect("start again");
    assert_eq!(*heads.borrow(), resumed);
    assert!(digest.halted().borrow().is_none(), "following its own log");
    stop(shutdown, task).await;
    assert_eq!(digest.head(), resumed);
    drop(digest);

    // The log created again under the same name: the digest halts (it would fold another
    // log's messages onto this one's head), says why, and keeps the head it had.
    js.delete_stream(EVENTS_STREAM).await.expect("delete");
    let js = log(&nats).await;
    append(&js, 0, 3).await;
    let digest = LogDigest::open(dir.path()).expect("reopen on another log");
    let mut halted = digest.halted();
    let shutdown = CancellationToken::new();
    let (_, task) = digest
        .start(js.clone(), shutdown.clone())
        .expect("start on another log");
    let reason = tokio::time::timeout(PATIENCE, halted.wait_for(Option::is_some))
        .await
        .expect("the digest halts")
        .expect("the store is open")
        .clone()
        .expect("a reason");
    assert!(reason.contains("the log ends at position 3"), "{reason}");
    assert_eq!(digest.head(), resumed);
    stop(shutdown, task).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumers_copy_and_a_direct_or_raw_get_hash_the_same() {
    let nats = Nats::start().await;
    let js = log(&nats).await;
    let last = append(&js, 1, 5).await;
    let stream = js.get_stream(EVENTS_STREAM).await.expect("stream");
    let mut delivered = stream
        .create_consumer(consumer::pull::OrderedConfig::default())
        .await
        .expect("consumer")
        .messages()
        .await
        .expect("messages");
    for position in 1..=last {
        let message = tokio::time::timeout(PATIENCE, delivered.next())
            .await
            .expect("delivered in time")
            .expect("a message")
            .expect("not an error");
        let consumed = Stored::from_message(&message).expect("a JetStream message");
        assert_eq!(consumed.position, position);
        let direct = stream.direct_get(position).await.expect("direct get");
        let raw = stream.get_raw_message(position).await.expect("raw get");
        // The direct get adds NATS's own headers; the consumer's and the raw copy do not.
        assert!(direct.headers.get("Nats-Sequence").is_some());
        assert!(raw.headers.get("Nats-Sequence").is_none());
        let direct = Stored::from_stream_message(&direct).expect("a stored time in range");
        assert_eq!(direct.position, position);
        assert_eq!(direct.time_nanos, consumed.time_nanos, "same stored time");
        assert_eq!(direct.subject_hash(), consumed.subject_hash());
        assert_eq!(direct.content_hash(), consumed.content_hash());
        assert_eq!(direct.entry_after(&EMPTY), consumed.entry_after(&EMPTY));
        let raw_read = Stored::from_stream_message(&raw).expect("a stored time in range");
        assert_eq!(raw_read.position, position);
        assert_eq!(raw_read.time_nanos, consumed.time_nanos, "same stored time");
        assert_eq!(raw_read.subject_hash(), consumed.subject_hash());
        assert_eq!(raw_read.payload, consumed.payload);
        // async-nats 0.51 parses a raw get's headers keeping only the last value of a
        // repeated name (its consumer and direct-get parser keeps them all), so a raw copy
        // hashes the same only when no name repeats.
        let repeats = consumed
            .headers
            .is_some_and(|h| h.iter().any(|(_, values)| values.len() > 1));
        assert_eq!(repeats, position % 2 == 0);
        if !repeats {
            assert_eq!(raw_read.content_hash(), consumed.content_hash());
        }
        // A real time in unix nanoseconds (after 2023), not seconds or milliseconds.
        assert!(consumed.time_nanos > 1_700_000_000_000_000_000);
    }
}
