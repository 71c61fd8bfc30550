//! Two hub instances, one sending the feeds: the one that takes the duty over starts after
//! what the last holder recorded as sent, even when its own feed publisher is behind and
//! decides those old messages and purges only after it took over. A revocation's purge is
//! never run again over the messages sent after it.

use std::time::Duration;

use hub_tests::{Hold, HubBuilder, Nats, feed_messages, wait_until};

use crate::feeds::feed_reaches;
use crate::sharing::{approve, grant, register, revoke};

/// (hub position, subject) of every message in public security's feed.
async fn public_security_feed(js: &async_nats::jetstream::Context) -> Vec<(u64, String)> {
    feed_messages(js, "FEED_PUBLIC_SECURITY")
        .await
        .iter()
        .map(|m| {
            let position = m
                .headers
                .get("hub-position")
                .and_then(|p| p.as_str().parse().ok())
                .expect("hub-position");
            (position, m.subject.to_string())
        })
        .collect()
}

/// The positions of the care records among `feed`'s messages.
fn care_in(feed: &[(u64, String)]) -> Vec<u64> {
    feed.iter()
        .filter(|(_, subject)| subject.contains(".care."))
        .map(|(position, _)| *position)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_instance_that_takes_the_feeds_over_never_purges_again_what_was_sent_after() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let first = HubBuilder::on(&nats).start().await;
    // The second stands by with its feed publisher held: it decides nothing until released.
    let second = HubBuilder::on(&nats).start().await;
    let held = Hold::new(&second.consumer("feeds"));

    // Public security reads a care record under a grant; the grant is revoked (its feed is
    // purged of care records); a second grant lets the next registration through.
    let in_force = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    let first_grant = grant(&first, "t-g1", &["name"], in_force).await;
    approve(&first, "t-a1", &first_grant).await;
    let before = register(&first, "t-c1").await;
    feed_reaches(&js, "FEED_PUBLIC_SECURITY", before).await;
    revoke(&first, "t-r1", &first_grant).await;
    let second_grant = grant(&first, "t-g2", &["name"], in_force).await;
    approve(&first, "t-a2", &second_grant).await;
    let after = register(&first, "t-c2").await;
    feed_reaches(&js, "FEED_PUBLIC_SECURITY", after).await;
    let care = care_in(&public_security_feed(&js).await);
    assert_eq!(
        care,
        [after],
        "the purge took the first, the second came after it"
    );

    // The holder stops (recording how far it sent); the second takes the duty over while its
    // publisher is still held, then catches up, deciding the old messages and the purge.
    first.stop().await.expect("stop the holder");
    let me = second.instance().to_owned();
    wait_until(
        "the second to hold the feeds",
        Duration::from_secs(30),
        || async {
            let leases = js.get_key_value("hub_leases").await.ok()?;
            let holder = hub_log::lease::holder(&leases, "feeds").await.ok()??;
            (holder == me).then_some(())
        },
    )
    .await;
    held.release();
    // Once it sends something new, it has gone past the old ones.
    let latest = register(&second, "t-c3").await;
    feed_reaches(&js, "FEED_PUBLIC_SECURITY", latest).await;
    let now = public_security_feed(&js).await;
    let care = care_in(&now);
    assert_eq!(
        care,
        [after, latest],
        "the message sent after the purge survives the takeover, and nothing is sent twice"
    );
    let positions: Vec<u64> = now.iter().map(|(p, _)| *p).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "each position once, in log order: {positions:?}"
    );
    second.stop().await.expect("stop");
}
