//! The test harness: real nats-server processes and the hub in-process on port 0.
//!
//! Every server runs the pinned binary (`deploy/setup.sh`, or `HUB_NATS_SERVER`) on a
//! loopback port it picks itself, with its store in a temp dir; it is killed and the dir
//! removed on drop. Waits are on conditions with a time limit, never on sleeps.

mod cluster;
pub mod fixtures;
mod hold;
mod hub;
mod nats;
mod process;
mod rebuild;
mod shacl;
pub mod tls;

use std::future::Future;
use std::time::{Duration, Instant};

pub use cluster::Cluster;
pub use hold::Hold;
pub use hub::{Hub, HubBuilder};
pub use nats::Nats;
pub use process::{HubProcess, ProcessBuilder};
pub use rebuild::{assert_read_models_equal_a_rebuild, default_policy, open_stopped};
pub use shacl::dcat_ap_conforms;

/// Every message a stream (a department's feed, say) holds now, in order; a purged one is
/// skipped.
pub async fn feed_messages(
    js: &async_nats::jetstream::Context,
    stream: &str,
) -> Vec<async_nats::jetstream::message::StreamMessage> {
    let stream = js.get_stream(stream).await.expect("the stream exists");
    let info = stream.get_info().await.expect("stream info");
    let mut messages = Vec::new();
    if info.state.messages == 0 {
        return messages;
    }
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        if let Ok(message) = stream.get_raw_message(sequence).await {
            messages.push(message);
        }
    }
    messages
}

/// What a test reads of an event in the log: its position, subject and some headers.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    pub position: u64,
    pub subject: String,
    /// `ce-id`.
    pub id: String,
    /// `ce-type`.
    pub event_type: String,
    /// `ce-requestid` (empty for a message without one, such as a duplicate-window probe).
    pub request_id: String,
}

/// Every event in `GOV_EVENTS`, in order, read one by one from the stream's leader.
pub async fn logged_events(js: &async_nats::jetstream::Context) -> Vec<LoggedEvent> {
    feed_messages(js, "GOV_EVENTS")
        .await
        .into_iter()
        .map(|message| {
            let header = |name: &str| {
                message
                    .headers
                    .get(name)
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default()
            };
            LoggedEvent {
                position: message.sequence,
                subject: message.subject.to_string(),
                id: header("ce-id"),
                event_type: header("ce-type"),
                request_id: header("ce-requestid"),
            }
        })
        .collect()
}

/// How many times case `case_id` was escalated, by the log.
pub async fn escalations(js: &async_nats::jetstream::Context, case_id: &str) -> usize {
    logged_events(js)
        .await
        .iter()
        .filter(|e| e.subject.ends_with(case_id) && e.event_type == "gov.hub.case.escalated.v1")
        .count()
}

/// Waits until NATS no longer recognises a message id it stored: its duplicate window has
/// passed. Probes are well-formed events of a type no read model consumes.
pub async fn wait_for_duplicate_window(js: &async_nats::jetstream::Context) {
    let appender = hub_log::Appender::new(js.client(), Duration::from_secs(5));
    let probe = || hub_log::NewEvent {
        subject: "gov.events.probe.window".into(),
        envelope: hub_log::Envelope {
            id: "window-probe".into(),
            source: "/tests".into(),
            event_type: "gov.hub.test.probe.v1".into(),
            subject: "probe/window".into(),
            time: jiff::Timestamp::now(),
            dataschema: "type.googleapis.com/gov.hub.test.Probe".into(),
            department: "tests".into(),
            classification: hub_log::Classification::Public,
            schema_version: 1,
            correlation_id: String::new(),
            causation_id: String::new(),
            traceparent: String::new(),
            request_id: String::new(),
            command_hash: String::new(),
            acting_person: String::new(),
        },
        body: bytes::Bytes::new(),
        expected_last_subject_sequence: None,
    };
    appender.append(probe()).await.expect("first probe");
    crate::wait_until(
        "the duplicate window to pass",
        Duration::from_secs(30),
        || async {
            let appended = appender.append(probe()).await.expect("probe");
            (!appended.duplicate).then_some(())
        },
    )
    .await;
}

/// Polls `condition` until it yields `Some`, or panics after `limit` naming `what`.
pub async fn wait_until<T, F, Fut>(what: &str, limit: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}
