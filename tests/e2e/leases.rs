//! The lease of a once-per-hub duty, on a real nats-server: a bucket that would never let a
//! dead holder go is refused; a holder that becomes unfit stops at once and lets the lease
//! age out rather than deleting it under an act still running; one that stops lets it go at
//! once. Every change of the key is watched, so nothing here waits on luck: the watch says
//! whether a deletion was written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt as _;
use hub_log::lease::{self, LEASE_BUCKET, SUPERVISION};
use hub_tests::Nats;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_secs(3);

async fn until_held(held: &mut watch::Receiver<u64>, holds: bool) {
    tokio::time::timeout(TTL * 4, held.wait_for(|h| (*h > 0) == holds))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the lease was not {} in time",
                if holds { "taken" } else { "let go" }
            )
        })
        .expect("the lease task ended");
}

fn flag(value: bool) -> (Arc<AtomicBool>, lease::Fit) {
    let flag = Arc::new(AtomicBool::new(value));
    let read = flag.clone();
    (flag, Box::new(move || read.load(Ordering::SeqCst)))
}

/// The next change of the key: (the operation, the holder written).
async fn next_change(changes: &mut kv::Watch) -> (kv::Operation, String) {
    let entry = tokio::time::timeout(TTL * 4, changes.next())
        .await
        .expect("a change of the lease in time")
        .expect("the watch ended")
        .expect("a readable change");
    (
        entry.operation,
        String::from_utf8_lossy(&entry.value).into_owned(),
    )
}

/// The next change of the key other than a's renewals.
async fn next_change_besides_a(changes: &mut kv::Watch) -> (kv::Operation, String) {
    loop {
        match next_change(changes).await {
            (kv::Operation::Put, holder) if holder == "a" => {}
            other => break other,
        }
    }
}

/// A server and its lease bucket, with instance "a" holding the supervision lease (until
/// `stop`) and a watch on the key past a's take.
struct AHolds {
    _nats: Nats,
    bucket: kv::Store,
    ttl: Duration,
    changes: kv::Watch,
    /// Whether a is fit for the duty.
    a_fit: Arc<AtomicBool>,
    a: watch::Receiver<u64>,
    a_task: tokio::task::JoinHandle<()>,
}

async fn a_holds(stop: &CancellationToken) -> AHolds {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let (bucket, ttl) = lease::lease_bucket(&js, TTL, 1).await.expect("bucket");
    let mut changes = bucket.watch(SUPERVISION).await.expect("watch");
    let (a_fit, fit) = flag(true);
    let (mut a, a_task) = lease::hold(
        bucket.clone(),
        (SUPERVISION, "a".into()),
        ttl,
        fit,
        stop.clone(),
    );
    until_held(&mut a, true).await;
    assert_eq!(
        next_change(&mut changes).await,
        (kv::Operation::Put, "a".into())
    );
    AHolds {
        _nats: nats,
        bucket,
        ttl,
        changes,
        a_fit,
        a,
        a_task,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_bucket_that_never_expires_is_refused() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    js.create_key_value(kv::Config {
        bucket: LEASE_BUCKET.to_owned(),
        history: 1,
        max_age: Duration::ZERO,
        ..Default::default()
    })
    .await
    .expect("bucket");
    let Err(refused) = lease::lease_bucket(&js, TTL, 1).await else {
        panic!("a bucket without expiry was accepted");
    };
    assert!(
        refused.contains(LEASE_BUCKET) && refused.contains("max_age"),
        "the refusal names the bucket and its setting: {refused}"
    );
    // The same bucket with a lease time is taken, and its time is the one used.
    js.delete_key_value(LEASE_BUCKET).await.expect("delete");
    js.create_key_value(kv::Config {
        bucket: LEASE_BUCKET.to_owned(),
        history: 1,
        max_age: TTL * 2,
        ..Default::default()
    })
    .await
    .expect("bucket");
    let (_, ttl) = lease::lease_bucket(&js, TTL, 1).await.expect("accepted");
    assert_eq!(ttl, TTL * 2, "the bucket's lease time stands");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unfit_holder_stops_at_once_and_its_lease_ages_out_to_the_next() {
    let stop = CancellationToken::new();
    // Its server is bound too: a field left to `..` would be dropped here, and stop it.
    let AHolds {
        _nats,
        bucket,
        ttl,
        mut changes,
        a_fit,
        mut a,
        a_task,
        ..
    } = a_holds(&stop).await;
    let (_, fit) = flag(true);
    let (mut b, b_task) = lease::hold(
        bucket.clone(),
        (SUPERVISION, "b".into()),
        ttl,
        fit,
        stop.clone(),
    );

    a_fit.store(false, Ordering::SeqCst);
    until_held(&mut a, false).await;
    // a deletes nothing: the server lets the lease age out, and b's take is the next change
    // of the key after a's own writes (b can create the key only once it holds nothing).
    assert_eq!(
        next_change_besides_a(&mut changes).await,
        (kv::Operation::Put, "b".into()),
        "b took it over, with no deletion before"
    );
    until_held(&mut b, true).await;
    assert_eq!(*a.borrow(), 0, "a stays out while unfit");

    stop.cancel();
    a_task.await.expect("a's task");
    b_task.await.expect("b's task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_holder_lets_its_lease_go_at_once() {
    let stop_a = CancellationToken::new();
    let AHolds {
        _nats,
        bucket,
        mut changes,
        a_task,
        ..
    } = a_holds(&stop_a).await;
    assert_eq!(
        lease::holder(&bucket, SUPERVISION).await.expect("read"),
        Some("a".into())
    );
    stop_a.cancel();
    a_task.await.expect("a's task");
    assert_eq!(
        lease::holder(&bucket, SUPERVISION).await.expect("read"),
        None,
        "let go when a's task ended, not when it ages out"
    );
    assert_eq!(
        next_change_besides_a(&mut changes).await.0,
        kv::Operation::Delete
    );
}
