//! The whole case loop over gRPC, read back at each step.

use hub_api::v1::CaseStatus;
use hub_tests::{HubBuilder, Nats};

use crate::cmd::*;
use crate::{events_in_log, from, incident, queue_ids, read_case};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_goes_round_the_whole_loop_with_a_transfer_and_a_reopening() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;
    let js = nats.jetstream().await;
    let h = &hub;

    let reported = h
        .commands()
        .report_case(from("urban-management", incident("loop-1")))
        .await
        .expect("report")
        .into_inner();
    let id = reported.case_id.as_str();

    let d = dispatch(
        h,
        "dcc-310104",
        "d-1",
        id,
        "urban-management",
        Some(reported.position),
    )
    .await
    .expect("dispatch");
    let case = read_case(h, id, d.position).await;
    assert_eq!(
        (case.status, case.holder.as_str()),
        (CaseStatus::Dispatched as i32, "urban-management")
    );
    let (accept_by, resolve_by) = (
        case.accept_by.expect("accept_by"),
        case.resolve_by.expect("resolve_by"),
    );
    assert_eq!(
        resolve_by.seconds - accept_by.seconds,
        24 * 3600 - 30 * 60,
        "urgent: accept in 30 minutes, resolve in 24 hours"
    );
    assert_eq!(queue_ids(h, "urban-management", d.position).await, [id]);
    assert!(
        queue_ids(h, "dcc-310104", d.position).await.is_empty(),
        "dispatched out of the command centre's queue"
    );

    accept(h, "urban-management", "a-1", id, Some(d.position))
        .await
        .expect("accept");
    transfer(h, "urban-management", "t-1", id, "housing")
        .await
        .expect("transfer requested");
    let rejected = reject_transfer(h, "housing", "t-1-no", id)
        .await
        .expect("transfer rejected");
    let case = read_case(h, id, rejected.position).await;
    assert_eq!(
        (case.holder.as_str(), case.pending_transfer_to.as_str()),
        ("urban-management", "")
    );

    let asked = transfer(h, "urban-management", "t-2", id, "housing")
        .await
        .expect("transfer requested again");
    let case = read_case(h, id, asked.position).await;
    assert_eq!(
        (case.holder.as_str(), case.pending_transfer_to.as_str()),
        ("urban-management", "housing"),
        "custody stays until accepted"
    );
    let moved = accept_transfer(h, "housing", "t-2-yes", id)
        .await
        .expect("transfer accepted");
    let case = read_case(h, id, moved.position).await;
    assert_eq!(
        (case.status, case.holder.as_str()),
        (CaseStatus::Accepted as i32, "housing")
    );
    let new_clock = case.resolve_by.expect("new clock");
    assert!(
        (new_clock.seconds, new_clock.nanos) > (resolve_by.seconds, resolve_by.nanos),
        "the new holder's clock restarted"
    );
    assert_eq!(queue_ids(h, "housing", moved.position).await, [id]);
    assert!(
        queue_ids(h, "urban-management", moved.position)
            .await
            .is_empty()
    );

    resolve(h, "housing", "r-1", id).await.expect("resolve");
    let poor = rate(h, "urban-management", "rate-1", id, 2)
        .await
        .expect("poor rating");
    assert_eq!(
        poor.event_ids.len(),
        2,
        "rated and reopened, in one atomic append"
    );
    let case = read_case(h, id, poor.position).await;
    assert_eq!(
        (
            case.status,
            case.holder.as_str(),
            case.reopened,
            case.rating
        ),
        (CaseStatus::Accepted as i32, "housing", 1, 2)
    );

    resolve(h, "housing", "r-2", id)
        .await
        .expect("resolve again");
    rate(h, "urban-management", "rate-2", id, 5)
        .await
        .expect("good rating");
    let closed = close(h, "dcc-310104", "c-1", id).await.expect("close");
    let case = read_case(h, id, closed.position).await;
    assert_eq!(
        (case.status, case.rating, case.last_position),
        (CaseStatus::Closed as i32, 5, closed.position)
    );
    assert!(
        queue_ids(h, "housing", closed.position).await.is_empty(),
        "a closed case leaves the queue"
    );
    assert_eq!(events_in_log(&js).await, 13);

    // The events of the case, in order, as any NATS client reads them.
    let stream = js.get_stream("GOV_EVENTS").await.expect("stream");
    let mut types = Vec::new();
    for position in 1..=closed.position {
        let message = stream.get_raw_message(position).await.expect("message");
        types.push(
            message
                .headers
                .get("ce-type")
                .expect("ce-type")
                .as_str()
                .trim_start_matches("gov.hub.case.")
                .to_owned(),
        );
    }
    let expected = [
        "reported.v2",
        "dispatched.v1",
        "accepted.v1",
        "transfer_requested.v1",
        "transfer_rejected.v1",
        "transfer_requested.v1",
        "transfer_accepted.v1",
        "resolved.v1",
        "rated.v1",
        "reopened.v1",
        "resolved.v1",
        "rated.v1",
        "closed.v1",
    ];
    assert_eq!(types, expected);
    hub.stop().await.expect("clean stop");
}
