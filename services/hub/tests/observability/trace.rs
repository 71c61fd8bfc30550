//! One report, one trace; and no personal data in any span or log line.

use std::collections::HashMap;
use std::time::Duration;

use hub_api::v1;
use hub_api::v1::admin_service_client::AdminServiceClient;
use hub_tests::fixtures::{
    CARE_ADDRESS, CARE_IDENTITY, CARE_NAME, CARE_PHONE, care, from, incident,
};
use hub_tests::{Nats, wait_until};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::collector::{Collector, attribute, everything};
use crate::{exporting, refused_report, sample, scrape_until};

/// The caller's trace: the report continues it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> String {
    attribute(&span.attributes, key).unwrap_or_default()
}

/// The spans of one trace, and lookups over them.
struct Trace(Vec<Span>);

impl Trace {
    fn of(spans: Vec<Span>, trace_id: &str) -> Self {
        Self(
            spans
                .into_iter()
                .filter(|s| hex(&s.trace_id) == trace_id)
                .collect(),
        )
    }

    fn named(&self, name: &str) -> Vec<&Span> {
        self.0.iter().filter(|s| s.name == name).collect()
    }

    /// The `process gov.events` span of the read model `model`.
    fn processed_by(&self, model: &str) -> Option<&Span> {
        let group = format!("projector-{model}-");
        self.named("process gov.events")
            .into_iter()
            .find(|s| attr(s, "messaging.consumer.group.name").starts_with(&group))
    }

    fn has_all(&self, models: &[&str], feeds: &[&str]) -> bool {
        !self
            .named("gov.hub.v1.CaseCommandService/ReportCase")
            .is_empty()
            && !self.named("publish gov.events").is_empty()
            && models.iter().all(|m| self.processed_by(m).is_some())
            && feeds
                .iter()
                .all(|f| !self.named(&format!("publish gov.feed.{f}")).is_empty())
    }
}

/// The read models and feeds a grid incident from urban management reaches.
const MODELS: [&str; 4] = ["case_queue", "command_state", "feeds", "incident_stats"];
const FEEDS: [&str; 2] = ["urban-management", "dcc-310104"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_report_is_one_trace_from_the_call_through_the_log_to_every_read_model_and_feed() {
    let nats = Nats::start().await;
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // An accepted command is logged at debug (no line per command at info).
    let hub = exporting(dir.path(), &nats, &collector)
        .env("RUST_LOG", "info,hub_ingest=debug")
        .start_serving_commands()
        .await;

    let mut request = from("urban-management", incident("trace-1"));
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN}-01")
            .parse()
            .expect("metadata"),
    );
    let reported = hub
        .commands()
        .report_case(request)
        .await
        .expect("report")
        .into_inner();

    let trace = wait_until(
        "the report's spans from every hop",
        Duration::from_secs(30),
        || async {
            let trace = Trace::of(collector.spans(), TRACE_ID);
            trace.has_all(&MODELS, &FEEDS).then_some(trace)
        },
    )
    .await;

    // The server span continues the caller's span, with the RPC conventions.
    let server = trace.named("gov.hub.v1.CaseCommandService/ReportCase");
    assert_eq!(server.len(), 1, "one server span");
    let server = server[0];
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(hex(&server.parent_span_id), CALLER_SPAN);
    assert_eq!(attr(server, "rpc.system"), "grpc");
    assert_eq!(attr(server, "rpc.service"), "gov.hub.v1.CaseCommandService");
    assert_eq!(attr(server, "rpc.method"), "ReportCase");
    assert_eq!(attr(server, "rpc.grpc.status_code"), "0");

    // The append is a producer span under the call, with the messaging conventions.
    let by_id: HashMap<String, &Span> = trace.0.iter().map(|s| (hex(&s.span_id), s)).collect();
    let under = |span: &Span, ancestor: &Span| {
        let mut parent = hex(&span.parent_span_id);
        while let Some(next) = by_id.get(&parent) {
            if next.span_id == ancestor.span_id {
                return true;
            }
            parent = hex(&next.parent_span_id);
        }
        false
    };
    let append = trace
        .named("publish gov.events")
        .into_iter()
        .find(|s| {
            attr(s, "messaging.destination.name") == format!("gov.events.case.{}", reported.case_id)
        })
        .expect("the append's span");
    assert_eq!(append.kind, SpanKind::Producer as i32);
    assert!(under(append, server), "the append is part of the call");
    assert_eq!(attr(append, "messaging.system"), "nats");
    assert_eq!(attr(append, "messaging.operation.type"), "send");
    assert_eq!(attr(append, "messaging.operation.name"), "publish");
    assert_eq!(attr(append, "hub.position"), reported.position.to_string());

    // The event carries the append's context in its headers.
    let js = nats.jetstream().await;
    let stored = js
        .get_stream("GOV_EVENTS")
        .await
        .expect("stream")
        .get_raw_message(reported.position)
        .await
        .expect("the event");
    let append_id = hex(&append.span_id);
    assert_eq!(
        stored
            .headers
            .get("ce-traceparent")
            .map(|v| v.as_str().to_owned()),
        Some(format!("00-{TRACE_ID}-{append_id}-01"))
    );

    // Every read model processes it in a consumer span, child of the append and linked to it.
    for model in MODELS {
        let process = trace.processed_by(model).expect("processed");
        assert_eq!(process.kind, SpanKind::Consumer as i32, "{model}");
        assert_eq!(hex(&process.parent_span_id), append_id, "{model}");
        assert!(
            process.links.iter().any(|l| hex(&l.span_id) == append_id),
            "{model}: linked to its producer"
        );
        assert_eq!(attr(process, "messaging.system"), "nats");
        assert_eq!(attr(process, "messaging.operation.type"), "process");
        assert_eq!(
            attr(process, "messaging.destination.name"),
            format!("gov.events.case.{}", reported.case_id)
        );
        assert_eq!(attr(process, "hub.position"), reported.position.to_string());
    }
    // The feed publisher sends it to both parties' feeds, each a producer span carried on in
    // the feed message's headers.
    for feed in FEEDS {
        let publish = trace.named(&format!("publish gov.feed.{feed}"));
        assert_eq!(publish.len(), 1, "{feed}");
        let publish = publish[0];
        assert_eq!(publish.kind, SpanKind::Producer as i32);
        assert_eq!(hex(&publish.parent_span_id), append_id, "{feed}");
        assert!(publish.links.iter().any(|l| hex(&l.span_id) == append_id));
        let stream = format!("FEED_{}", feed.to_uppercase().replace('-', "_"));
        let message = js
            .get_stream(&stream)
            .await
            .expect("feed stream")
            .get_last_raw_message_by_subject(&format!("gov.feed.{feed}.>"))
            .await
            .expect("the feed message");
        assert_eq!(
            message
                .headers
                .get("ce-traceparent")
                .map(|v| v.as_str().to_owned()),
            Some(format!("00-{TRACE_ID}-{}-01", hex(&publish.span_id))),
            "{feed}"
        );
    }
    assert!(
        collector.services().iter().all(|s| s == "hub-under-test"),
        "OTEL_SERVICE_NAME names the resource"
    );

    // A rebuild replays the log: a trace of its own, whose consumer span links to the
    // append's rather than continuing it.
    let mut rebuilding = AdminServiceClient::new(hub.channel())
        .rebuild_read_model(from(
            "big-data-centre",
            v1::RebuildReadModelRequest {
                read_model: "incident_stats".into(),
            },
        ))
        .await
        .expect("rebuild")
        .into_inner();
    while let Some(progress) = rebuilding.message().await.expect("progress") {
        if progress.progress.is_some_and(|p| p.caught_up) {
            break;
        }
    }
    drop(rebuilding);
    let replayed = wait_until("the rebuild's span", Duration::from_secs(30), || async {
        collector.spans().into_iter().find(|s| {
            s.name == "process gov.events"
                && attr(s, "messaging.consumer.group.name").ends_with("-rebuild")
                && s.links.iter().any(|l| hex(&l.span_id) == append_id)
        })
    })
    .await;
    assert_ne!(hex(&replayed.trace_id), TRACE_ID, "not the report's trace");
    assert_eq!(attr(&replayed, "hub.replay"), "true");
    assert_eq!(replayed.kind, SpanKind::Consumer as i32);

    // A refused call: its span says so, and a caller without a traceparent starts a trace.
    refused_report(&hub, "trace-2").await;
    let refused_span = wait_until(
        "the refused call's span",
        Duration::from_secs(30),
        || async {
            collector.spans().into_iter().find(|s| {
                s.name == "gov.hub.v1.CaseCommandService/ReportCase"
                    && attr(s, "rpc.grpc.status_code") == "3"
            })
        },
    )
    .await;
    assert!(refused_span.parent_span_id.is_empty(), "a root of its own");
    assert_ne!(hex(&refused_span.trace_id), TRACE_ID);

    // The metrics go over OTLP too.
    wait_until("metrics over OTLP", Duration::from_secs(30), || async {
        let names = collector.metrics();
        [
            "hub.commands",
            "hub.append.duration",
            "hub.projector.events.applied",
        ]
        .iter()
        .all(|n| names.iter().any(|m| m == n))
        .then_some(())
    })
    .await;

    // Logs are JSON lines, and a line written inside the call names its trace.
    let log = hub.whole_log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
    assert!(
        lines.iter().any(|l| l["trace_id"] == TRACE_ID),
        "a log line in the report's trace"
    );

    // The same run's metrics.
    let text = scrape_until(
        &hub,
        "hub_commands_total",
        &[("rpc", "CaseCommandService/ReportCase"), ("outcome", "ok")],
        1.0,
    )
    .await;
    assert_eq!(
        sample(
            &text,
            "hub_commands_total",
            &[
                ("rpc", "CaseCommandService/ReportCase"),
                ("outcome", "invalid_argument")
            ]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "hub_requests_refused_total",
            &[
                ("rpc_service", "gov.hub.v1.CaseCommandService"),
                ("reason", "invalid_argument")
            ]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_care_record_s_personal_data_is_in_no_span_and_no_log_line() {
    let nats = Nats::start().await;
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let hub = exporting(dir.path(), &nats, &collector)
        // Every span the hub makes, and every log line down to debug.
        .env(
            "RUST_LOG",
            "debug,h2=info,hyper=info,tonic=info,tower=info,async_nats=info",
        )
        .start_serving_commands()
        .await;

    let registered = hub
        .care()
        .register_care(from("civil-affairs", care("care-1")))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result");
    // Refused registrations that carry the data back: a wrong identity number's check digit,
    // and a second registration of the same person's request id with other data.
    let mut wrong = care("care-2");
    wrong.identity_number = "11010519491231002Y".into();
    let refused = hub
        .care()
        .register_care(from("civil-affairs", wrong))
        .await
        .expect_err("a wrong check digit");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    let mut reused = care("care-1");
    reused.phone = "13900001111".into();
    let _ = hub
        .care()
        .register_care(from("civil-affairs", reused))
        .await;

    // Wait for the record's spans from every hop: the append, the roster's projector, and
    // civil affairs's own feed.
    let subject = format!("gov.events.care.{}", registered.id);
    let spans = wait_until(
        "the care record's spans",
        Duration::from_secs(30),
        || async {
            let spans = collector.spans();
            let about = |name: &str| {
                spans.iter().any(|s| {
                    s.name == name && attr(s, "messaging.destination.name").contains(&registered.id)
                })
            };
            (about("publish gov.events")
                && about("process gov.events")
                && about("publish gov.feed.civil-affairs"))
            .then_some(spans)
        },
    )
    .await;
    // The search does read the record's spans: its id is there (generated, not personal).
    let text: Vec<String> = spans.iter().map(everything).collect();
    assert!(text.iter().any(|t| t.contains(&subject)));
    let log = hub.whole_log();
    // ... and the log's lines about it (the command accepted, in its trace).
    assert!(
        log.lines().any(|l| l.contains("command accepted")
            && l.contains("civil-affairs")
            && l.contains("trace_id")),
        "{log}"
    );

    for secret in [
        CARE_NAME,
        CARE_IDENTITY,
        "11010519491231002Y",
        CARE_PHONE,
        "13900001111",
        CARE_ADDRESS,
    ] {
        for (span, said) in spans.iter().zip(&text) {
            assert!(
                !said.contains(secret),
                "span {} holds personal data: {said}",
                span.name
            );
        }
        assert!(!log.contains(secret), "the log holds personal data");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_batched_together_are_one_append_span_linked_to_each_command_s_trace() {
    let nats = Nats::start().await;
    let collector = Collector::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    // The group committer's first batch waits for four commands, so they share it.
    let hub = exporting(dir.path(), &nats, &collector)
        .failpoints("group-commit-gather=1*return(4)")
        .start_serving_commands()
        .await;
    let traces: Vec<String> = (1..=4)
        .map(|i| format!("{:032x}", 0xbeef_0000_u64 + i))
        .collect();
    let calls = traces.iter().enumerate().map(|(i, trace)| {
        let mut request = from("urban-management", incident(&format!("batch-{i}")));
        request.metadata_mut().insert(
            "traceparent",
            format!("00-{trace}-{CALLER_SPAN}-01")
                .parse()
                .expect("metadata"),
        );
        let mut commands = hub.commands();
        async move { commands.report_case(request).await }
    });
    let reported: Vec<v1::ReportCaseResponse> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("report").into_inner())
        .collect();
    let mut positions: Vec<u64> = reported.iter().map(|r| r.position).collect();
    positions.sort_unstable();
    assert_eq!(
        positions,
        [1, 2, 3, 4],
        "one batch, in consecutive positions"
    );

    // One append span for the four, a trace of its own, linked to each command's trace.
    let batch = wait_until(
        "the batch's append span",
        Duration::from_secs(30),
        || async {
            collector
                .spans()
                .into_iter()
                .find(|s| s.name == "publish gov.events" && s.links.len() == 4)
        },
    )
    .await;
    assert_eq!(batch.kind, SpanKind::Producer as i32);
    assert_eq!(attr(&batch, "messaging.batch.message_count"), "4");
    assert!(batch.parent_span_id.is_empty(), "a root of its own");
    assert!(
        !traces.contains(&hex(&batch.trace_id)),
        "none of the commands' traces"
    );
    let mut linked: Vec<String> = batch.links.iter().map(|l| hex(&l.trace_id)).collect();
    linked.sort_unstable();
    assert_eq!(linked, traces, "each command's trace, once");

    // Each command's event goes on in its own trace: a read model processes it there.
    for trace in &traces {
        wait_until(
            "the event processed in its command's trace",
            Duration::from_secs(30),
            || async {
                Trace::of(collector.spans(), trace)
                    .processed_by("case_queue")
                    .is_some()
                    .then_some(())
            },
        )
        .await;
    }
}
