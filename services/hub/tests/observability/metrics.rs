//! The Prometheus endpoint, on a hub with no collector configured (export off, the default).

use std::path::Path;

use hub_tests::fixtures::{from, incident};
use hub_tests::{Nats, ProcessBuilder};

use crate::{HUB, refused_report, sample, scrape, scrape_when};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prometheus_endpoint_counts_commands_appends_projections_feeds_and_audit() {
    let nats = Nats::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = ProcessBuilder::new(Path::new(HUB), dir.path(), &nats)
        .start_serving_commands()
        .await;
    let before = scrape(&hub).await;
    assert_eq!(
        sample(
            &before,
            "hub_commands_total",
            &[("rpc", "CaseCommandService/ReportCase")]
        ),
        None,
        "nothing reported yet"
    );

    let mut positions = Vec::new();
    for rid in ["m-1", "m-2", "m-3"] {
        let reported = hub
            .commands()
            .report_case(from("urban-management", incident(rid)))
            .await
            .expect("report")
            .into_inner();
        positions.push(reported.position);
    }
    refused_report(&hub, "m-4").await;
    // A caller that names no department.
    let denied = hub
        .commands()
        .report_case(tonic::Request::new(incident("m-5")))
        .await
        .expect_err("no department named");

    // The feed publisher has sent the three reports to urban management's feed, which
    // nobody reads: three pending, and the feed stands at the last report's position, ahead
    // of the department's acknowledged position (0) by that much. The read models have
    // caught up: no lag.
    let last = *positions.last().expect("three reports") as f64;
    let urban = [("department", "urban-management")];
    let text = scrape_when(&hub, "the feed and the read models caught up", |text| {
        sample(text, "hub_feed_pending_messages", &urban) == Some(3.0)
            && sample(text, "hub_feed_lag_positions", &urban) == Some(last)
            && ["case_queue", "command_state", "feeds"]
                .iter()
                .all(|model| {
                    sample(text, "hub_projector_lag_events", &[("read_model", model)]) == Some(0.0)
                })
    })
    .await;
    let report = [("rpc", "CaseCommandService/ReportCase")];
    let count = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    assert_eq!(
        count("hub_commands_total", &[report[0], ("outcome", "ok")]),
        Some(3.0)
    );
    assert_eq!(
        count(
            "hub_commands_total",
            &[report[0], ("outcome", "invalid_argument")]
        ),
        Some(1.0)
    );
    let reason = match denied.code() {
        tonic::Code::PermissionDenied => "permission_denied",
        tonic::Code::Unauthenticated => "unauthenticated",
        other => panic!("no department named: {other:?}"),
    };
    let service = ("rpc_service", "gov.hub.v1.CaseCommandService");
    assert_eq!(
        count("hub_requests_refused_total", &[service, ("reason", reason)]),
        Some(1.0)
    );
    assert_eq!(
        count(
            "hub_requests_refused_total",
            &[service, ("reason", "invalid_argument")]
        ),
        Some(1.0)
    );
    // Appends: three single events, acknowledged, in the latency histogram; batch sizes of 1.
    assert_eq!(
        count(
            "hub_append_duration_seconds_count",
            &[("kind", "single"), ("outcome", "ok")]
        ),
        Some(3.0)
    );
    assert_eq!(
        count(
            "hub_append_batch_size_bucket",
            &[("kind", "single"), ("le", "1")]
        ),
        Some(3.0)
    );
    assert!(text.contains("# TYPE hub_append_duration_seconds histogram"));
    assert!(text.contains("# TYPE hub_commands_total counter"));
    // Every read model of cases applied the three.
    for model in ["case_queue", "command_state", "feeds"] {
        assert!(
            count(
                "hub_projector_events_applied_total",
                &[("read_model", model)]
            ) >= Some(3.0),
            "{model}: {text}"
        );
    }
    // A department with nothing in its feed: no lag, nothing pending.
    let housing = [("department", "housing")];
    assert_eq!(count("hub_feed_pending_messages", &housing), Some(0.0));
    assert_eq!(count("hub_feed_lag_positions", &housing), Some(0.0));
    assert_eq!(
        count(
            "hub_feed_messages_published_total",
            &[("department", "urban-management")]
        ),
        Some(3.0)
    );
    // Every call was audited: the chain has grown.
    assert!(count("hub_audit_chain_length", &[]) >= Some(1.0), "{text}");
    // gRPC server durations by method and code.
    assert!(
        count(
            "rpc_server_call_duration_seconds_count",
            &[("rpc_method", "ReportCase"), ("rpc_grpc_status_code", "0")]
        ) == Some(3.0),
        "{text}"
    );
    // Export is off by default: nothing was dropped, for there is no queue.
    assert_eq!(count("hub_telemetry_spans_dropped_total", &[]), None);
}
