//! Reading one aggregate's events back from the log: many to a round trip (batched direct
//! gets), in order, only that aggregate's, from any position.

use std::time::Duration;

use hub_log::stream::{EventsStreamSettings, ensure_events_stream};
use hub_log::{Appender, Classification, Entry, Envelope, NewEvent};
use hub_tests::Nats;

/// A test event on `subject`, with id `<subject>-<n>` and body `n`.
pub(crate) fn event(subject: &str, n: usize) -> NewEvent {
    NewEvent {
        subject: subject.into(),
        envelope: Envelope {
            id: format!("{subject}-{n}"),
            source: "/tests".into(),
            event_type: "gov.hub.test.read.v1".into(),
            subject: subject.into(),
            time: jiff::Timestamp::now(),
            dataschema: "type.googleapis.com/gov.hub.test.Read".into(),
            department: "tests".into(),
            classification: Classification::Public,
            schema_version: 1,
            correlation_id: String::new(),
            causation_id: String::new(),
            traceparent: String::new(),
            request_id: format!("r-{n}"),
            command_hash: String::new(),
            acting_person: String::new(),
        },
        body: bytes::Bytes::from(n.to_string()),
        expected_last_subject_sequence: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregates_events_are_read_hundreds_to_a_request() {
    let nats = Nats::start().await;
    let appender = Appender::new(nats.client().await, Duration::from_secs(5));
    ensure_events_stream(appender.context(), &EventsStreamSettings::default())
        .await
        .expect("events stream");
    // 600 events of one aggregate, with another's between them, in batches of 100.
    let (mine, other) = ("gov.events.case.mine", "gov.events.case.other");
    for chunk in 0..12 {
        let batch: Vec<NewEvent> = (chunk * 50..(chunk + 1) * 50)
            .flat_map(|n| [event(mine, n), event(other, n)])
            .collect();
        appender.append_all(batch).await.expect("append");
    }

    let before = appender.direct_gets();
    let entries = appender.read_subject(mine, 0).await.expect("read");
    let requests = appender.direct_gets() - before;
    assert_eq!(entries.len(), 600);
    assert!(requests <= 4, "600 events in {requests} requests");
    let bodies: Vec<String> = entries
        .iter()
        .map(|e| match e {
            Entry::Event(e) => {
                assert_eq!(e.subject, mine);
                String::from_utf8_lossy(&e.body).into_owned()
            }
            Entry::Unreadable(u) => panic!("unreadable {u:?}"),
        })
        .collect();
    let expected: Vec<String> = (0..600).map(|n| n.to_string()).collect();
    assert_eq!(bodies, expected, "in order");

    // From a position: only what came after it; past the end: nothing, in one request.
    let from = entries[299].position();
    let rest = appender.read_subject(mine, from).await.expect("read");
    assert_eq!(rest.len(), 300);
    assert_eq!(rest[0].position(), entries[300].position());
    let before = appender.direct_gets();
    let none = appender
        .read_subject(mine, entries[599].position())
        .await
        .expect("read");
    assert!(none.is_empty());
    assert_eq!(appender.direct_gets() - before, 1);
}
