//! The due index survives a change of calendar: each row remembers the due key it wrote, a
//! hub started with another policy reschedules every entry, and supervision pages through
//! all that are due (more than one page of them).

use std::sync::Arc;
use std::time::Duration;

use hub_api::v1;
use hub_domain::clock::ManualClock;
use hub_projector::command_state::due::due_page;
use hub_tests::{Hub, HubBuilder, Nats, open_stopped, wait_until};
use jiff::{SignedDuration, Timestamp};

use hub_tests::fixtures::{historic, import_chunks};

use crate::{cmd, events_in_log};

/// More than one page (256) of the supervisor's scan.
const CASES: usize = 300;

async fn events_reach(js: &async_nats::jetstream::Context, count: u64) {
    wait_until(
        &format!("{count} events"),
        Duration::from_secs(60),
        || async { (events_in_log(js).await >= count).then_some(()) },
    )
    .await;
}

/// Imports `CASES` fire hazards and dispatches each (accept within 30 minutes).
async fn dispatched_cases(hub: &Hub) -> Vec<String> {
    let cases: Vec<v1::HistoricCase> = (0..CASES)
        .map(|i| historic(&format!("due-{i}"), 1_790_000_000))
        .collect();
    hub.commands()
        .import_cases(import_chunks(&cases, 1000))
        .await
        .expect("import");
    let mut ids = Vec::with_capacity(CASES);
    for i in 0..CASES {
        let id = hub_ingest::case_id("urban-management", &format!("due-{i}"));
        cmd::dispatch(
            hub,
            "dcc-310104",
            &format!("due-d-{i}"),
            &id,
            "urban-management",
            None,
        )
        .await
        .expect("dispatch");
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_change_reschedules_every_due_entry_and_supervision_reaches_them_all() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    // Monday 2026-11-23, 09:00 in Shanghai.
    let clock = Arc::new(ManualClock::new(
        "2026-11-23T01:00:00Z".parse().expect("time"),
    ));
    // The first calendar has Tuesday 2026-11-24 off.
    let demo = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/reference/demo.toml"),
    )
    .expect("demo reference data");
    let with_holiday = demo.replacen("holidays = [", "holidays = [\n  \"2026-11-24\",", 1);
    assert_ne!(with_holiday, demo);
    let reference = dir.path().join("reference.toml");
    std::fs::write(&reference, with_holiday).expect("reference data");
    let mut builder = HubBuilder::on(&nats)
        .data_dir(dir.path())
        .clock(clock.clone());
    builder.config_mut().reference_data = Some(reference);
    let hub = builder.start().await;
    dispatched_cases(&hub).await;
    let dispatched = (2 * CASES) as u64;
    assert_eq!(events_in_log(&js).await, dispatched);

    // 09:31: every accept deadline has passed: tier 1 for all, more than a page of them. Tier 2
    // is due one working day after the deadline: Wednesday 09:30, Tuesday being off.
    clock.advance(SignedDuration::from_mins(31));
    events_reach(&js, dispatched + CASES as u64).await;
    hub.stop().await.expect("stop");

    // The calendar is corrected: Tuesday is a working day, tier 2 is due Tuesday 09:30, a day
    // earlier than the due index says. The hub starts with the corrected calendar.
    let hub = HubBuilder::on(&nats)
        .data_dir(dir.path())
        .clock(clock.clone())
        .start()
        .await;
    // Tuesday 09:31: tier 2 for every case, none left for Wednesday.
    clock.set("2026-11-24T01:31:00Z".parse().expect("time"));
    events_reach(&js, dispatched + 2 * CASES as u64).await;
    hub.read_model("command_state")
        .wait_for(dispatched + 2 * CASES as u64, Duration::from_secs(30))
        .await
        .expect("command_state applies the escalations");
    hub.stop().await.expect("stop");
    assert_eq!(events_in_log(&js).await, dispatched + 2 * CASES as u64);

    // One due entry per case (tier 3, three working days after the deadline: Thursday 09:30),
    // and nothing else: no entry of the old calendar left.
    let store = open_stopped(&dir.path().join("read-models/command_state")).await;
    let (entries, _) = due_page(&store, Timestamp::MAX, None, 10 * CASES).expect("due index");
    assert_eq!(
        entries.len(),
        CASES,
        "{:?}",
        &entries[..entries.len().min(5)]
    );
    let thursday: Timestamp = "2026-11-26T01:30:00Z".parse().expect("time");
    assert!(
        entries.iter().all(|e| e.at == thursday),
        "{:?}",
        entries.iter().find(|e| e.at != thursday)
    );
}
