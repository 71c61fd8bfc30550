//! Deadline supervision: every missed deadline escalates once per tier, with two hub
//! instances watching and one of them restarted, on a clock the test moves.

use std::sync::Arc;
use std::time::Duration;

use hub_domain::clock::ManualClock;
use hub_tests::{Hub, HubBuilder, Nats, escalations, wait_until};
use jiff::SignedDuration;

use crate::cmd::*;
use crate::read_case;

/// Waits until `hub` shows the case at `tier`; another instance's read model may not have
/// applied the report yet, so a refusal counts as not yet.
async fn tier_reached(hub: &Hub, case_id: &str, tier: u32) {
    wait_until(
        &format!("escalation tier {tier}"),
        Duration::from_secs(30),
        || async {
            let found = hub
                .queries()
                .get_case(hub_tests::fixtures::from(
                    "dcc-310104",
                    hub_api::v1::GetCaseRequest {
                        case_id: case_id.into(),
                        min_position: 0,
                    },
                ))
                .await;
            match found {
                Ok(answer) => answer
                    .into_inner()
                    .r#case
                    .filter(|c| c.escalation_tier >= tier)
                    .map(|_| ()),
                // Not yet applied: the same answer as a case it has no role on.
                Err(status) if status.code() == tonic::Code::PermissionDenied => None,
                Err(status) => panic!("case {case_id}: {status:?}"),
            }
        },
    )
    .await;
}

/// An urgent case, to be accepted by urban management within 30 minutes.
async fn urgent_case(hub: &Hub, rid: &str) -> String {
    hub.dispatched_case(rid, "urban-management").await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_deadline_escalates_once_per_tier_with_two_instances_and_a_restart() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    // Monday 2026-11-23, 10:00 in Shanghai.
    let clock = Arc::new(ManualClock::new(
        "2026-11-23T02:00:00Z".parse().expect("time"),
    ));
    let dir = tempfile::tempdir().expect("temp dir");
    let start_a = || {
        HubBuilder::on(&nats)
            .data_dir(dir.path())
            .clock(clock.clone())
            .start()
    };
    let a = start_a().await;
    let b = HubBuilder::on(&nats).clock(clock.clone()).start().await;

    // An urgent case must be accepted within 30 minutes.
    let id = urgent_case(&a, "esc-1").await;
    clock.advance(SignedDuration::from_mins(29));
    let quiet = urgent_case(&a, "esc-quiet").await;
    clock.advance(SignedDuration::from_mins(2));
    tier_reached(&a, &id, 1).await;
    assert_eq!(
        escalations(&js, &quiet).await,
        0,
        "a case within its deadline is left alone"
    );

    // Tier 2 one working day after the deadline (Tuesday 10:30), tier 3 three (Thursday 10:30).
    clock.advance(SignedDuration::from_hours(24));
    tier_reached(&b, &id, 2).await;
    a.stop().await.expect("stop a");
    let a = start_a().await;
    clock.advance(SignedDuration::from_hours(48));
    tier_reached(&a, &id, 3).await;

    // Another breach later shows supervision went on through the restart, by whichever
    // instance holds its lease; the first case stays at three escalations, one per tier,
    // however many scans and instances saw it.
    let later = urgent_case(&b, "esc-2").await;
    clock.advance(SignedDuration::from_mins(31));
    tier_reached(&b, &later, 1).await;
    tier_reached(&a, &later, 1).await;
    assert_eq!(escalations(&js, &id).await, 3);
    assert_eq!(escalations(&js, &later).await, 1);
    let case = read_case(&a, &id, 0).await;
    assert_eq!(case.escalation_tier, 3);

    // Accepting ends the accept breach: the resolve deadline is a new one, from tier 1.
    let accepted = accept(&a, "urban-management", "esc-1-acc", &id, None)
        .await
        .expect("accept");
    assert_eq!(
        read_case(&a, &id, accepted.position).await.escalation_tier,
        0
    );
    a.stop().await.expect("stop a");
    b.stop().await.expect("stop b");
}
