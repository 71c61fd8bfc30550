//! Department feeds on NATS: each department's stream holds its own data whole, the cases it
//! is a party to, and another department's care records only under a grant in force, masked;
//! a revocation purges them at once.

use std::time::{Duration, Instant};

use async_nats::jetstream::message::StreamMessage;
use futures::StreamExt;
use hub_api::v1;
use hub_tests::{Hub, HubBuilder, Nats, wait_until};
use prost::Message;

use crate::sharing::{ADDRESS, IDENTITY, NAME, PHONE, approve, asked, grant, register, revoke};
use crate::{cmd, from, incident};

use hub_tests::feed_messages as feed;

fn header(message: &StreamMessage, name: &str) -> Option<String> {
    message.headers.get(name).map(|v| v.as_str().to_owned())
}

/// Waits until `stream` holds a message at hub position `position` or later.
pub(crate) async fn feed_reaches(
    js: &async_nats::jetstream::Context,
    stream: &str,
    position: u64,
) -> Vec<StreamMessage> {
    wait_until(
        &format!("{stream} to reach {position}"),
        Duration::from_secs(20),
        || async {
            let messages = feed(js, stream).await;
            messages
                .iter()
                .any(|m| {
                    header(m, "hub-position").and_then(|p| p.parse::<u64>().ok()) >= Some(position)
                })
                .then_some(messages)
        },
    )
    .await
}

fn contains(message: &StreamMessage, needle: &str) -> bool {
    let in_body = message
        .payload
        .windows(needle.len())
        .any(|w| w == needle.as_bytes());
    let in_headers = message
        .headers
        .iter()
        .any(|(_, values)| values.iter().any(|v| v.as_str().contains(needle)));
    in_body || in_headers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_feed_holds_what_its_department_may_read_and_a_revocation_purges_it() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let hub: Hub = HubBuilder::on(&nats).start().await;

    // A case reported by urban management belongs to its district command centre until
    // dispatched; both are parties, and so is housing once it is dispatched there.
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("inc-1")))
        .await
        .expect("report")
        .into_inner();
    let dispatched = cmd::dispatch(
        &hub,
        "dcc-310104",
        "d-1",
        &reported.case_id,
        "housing",
        None,
    )
    .await
    .expect("dispatch");
    // Housing is a party from the dispatch on: it gets the events from there.
    let housing = feed_reaches(&js, "FEED_HOUSING", dispatched.position).await;
    let types: Vec<String> = housing
        .iter()
        .filter_map(|m| header(m, "ce-type"))
        .collect();
    assert_eq!(types, ["gov.hub.case.dispatched.v1"]);
    for stream in ["FEED_URBAN_MANAGEMENT", "FEED_DCC_310104"] {
        let messages = feed_reaches(&js, stream, dispatched.position).await;
        let types: Vec<String> = messages
            .iter()
            .filter_map(|m| header(m, "ce-type"))
            .collect();
        assert_eq!(
            types,
            ["gov.hub.case.reported.v2", "gov.hub.case.dispatched.v1"],
            "{stream}"
        );
        let first = &messages[0];
        assert_eq!(
            first.subject.as_str(),
            format!(
                "gov.feed.{}.case.{}",
                &stream[5..].to_lowercase().replace('_', "-"),
                reported.case_id
            )
        );
        assert_eq!(
            header(first, "hub-position"),
            Some(reported.position.to_string())
        );
        assert_eq!(header(first, "ce-id"), header(first, "Nats-Msg-Id"));
        assert_eq!(header(first, "ce-specversion").as_deref(), Some("1.0"));
        for internal in [
            "ce-requestid",
            "ce-commandhash",
            "ce-correlationid",
            "ce-causationid",
            "ce-actingperson",
        ] {
            assert_eq!(header(first, internal), None, "{stream}: {internal}");
        }
    }

    // Care records: civil affairs's own, whole; public security's only under its grant.
    let care = register(&hub, "care-1").await;
    let id = grant(
        &hub,
        "g-1",
        &["name"],
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24),
    )
    .await;
    let approved = approve(&hub, "ap-1", &id).await;
    let after = register(&hub, "care-2").await;
    let own = feed_reaches(&js, "FEED_CIVIL_AFFAIRS", after).await;
    let registrations: Vec<&StreamMessage> = own
        .iter()
        .filter(|m| header(m, "ce-type").as_deref() == Some("gov.hub.care.registered.v1"))
        .collect();
    assert_eq!(registrations.len(), 2);
    let whole = v1::CareRegistered::decode(registrations[0].payload.as_ref()).expect("body");
    assert_eq!(
        (whole.name.as_str(), whole.identity_number.as_str()),
        (NAME, IDENTITY)
    );
    assert_eq!(
        (whole.phone.as_str(), whole.address.as_str()),
        (PHONE, ADDRESS)
    );

    let theirs = feed_reaches(&js, "FEED_PUBLIC_SECURITY", after).await;
    let positions: Vec<Option<String>> = theirs.iter().map(|m| header(m, "hub-position")).collect();
    assert!(
        !positions.contains(&Some(care.to_string())),
        "the registration before the approval is not in the feed: {positions:?}"
    );
    let masked: Vec<&StreamMessage> = theirs
        .iter()
        .filter(|m| header(m, "ce-type").as_deref() == Some("gov.hub.care.registered.v1"))
        .collect();
    assert_eq!(masked.len(), 1, "{positions:?}");
    let event = v1::CareRegistered::decode(masked[0].payload.as_ref()).expect("body");
    assert_eq!(event.name, NAME, "the grant names it");
    assert_eq!(event.identity_number, "110105********002X");
    assert_eq!(event.phone, "138****5678");
    assert_eq!(event.address, "310104001001");
    assert_eq!(header(masked[0], "hub-grants"), Some(id.clone()));
    for message in &theirs {
        for cleartext in [IDENTITY, PHONE, ADDRESS] {
            assert!(
                !contains(message, cleartext),
                "{cleartext} in public security's feed"
            );
        }
    }
    assert!(
        theirs
            .iter()
            .all(|m| header(m, "hub-position") > Some(String::new()))
    );
    assert!(approved < after);
    // Housing has no grant: no care record reaches its feed.
    let housing = feed(&js, "FEED_HOUSING").await;
    assert!(housing.iter().all(|m| !m.subject.contains(".care.")));

    // Revoked: public security's feed is purged of care records at once.
    let started = Instant::now();
    revoke(&hub, "rv-1", &id).await;
    wait_until("the purge", Duration::from_secs(20), || async {
        let messages = feed(&js, "FEED_PUBLIC_SECURITY").await;
        messages
            .iter()
            .all(|m| !m.subject.contains(".care."))
            .then_some(())
    })
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "the purge took {took:?}");
    // A registration after the revocation, then a later event public security does get (a
    // new request of its own): once that is in its feed, so would the registration be.
    register(&hub, "care-3").await;
    let asked = asked(
        &hub,
        "g-2",
        &["name"],
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24),
    )
    .await
    .position;
    let after_revocation = feed_reaches(&js, "FEED_PUBLIC_SECURITY", asked).await;
    assert!(
        after_revocation
            .iter()
            .all(|m| !m.subject.contains(".care.")),
        "nothing new after the revocation"
    );
    hub.stop().await.expect("clean stop");
}

/// The next event of a subscription, skipping progress reports.
pub(crate) async fn next_event(
    stream: &mut tonic::Streaming<v1::SubscribeResponse>,
) -> Result<v1::FeedEvent, tonic::Status> {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("an item within 20 s")?
            .expect("the stream goes on");
        if let Some(v1::subscribe_response::Item::Event(event)) = item.item {
            return Ok(event);
        }
    }
}

/// The status a subscription ends with, whatever it sends before.
async fn ending(stream: &mut tonic::Streaming<v1::SubscribeResponse>) -> tonic::Status {
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.message().await {
                Err(status) => break status,
                Ok(Some(_)) => continue,
                Ok(None) => panic!("ended without a status"),
            }
        }
    })
    .await
    .expect("the stream ends")
}

async fn subscribe(
    hub: &Hub,
    by: Option<&str>,
    request: v1::SubscribeRequest,
) -> Result<tonic::Streaming<v1::SubscribeResponse>, tonic::Status> {
    let request = match by {
        Some(department) => from(department, request),
        None => tonic::Request::new(request),
    };
    hub.feeds().subscribe(request).await.map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_subscription_filters_resumes_reports_its_lag_and_ends_on_revocation() {
    let nats = Nats::start().await;
    let hub: Hub = HubBuilder::on(&nats).start().await;

    // Who asks first: the public has no feed; a malformed filter is refused by field.
    let refused = subscribe(&hub, None, v1::SubscribeRequest::default())
        .await
        .expect_err("the public has no feed");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let refused = subscribe(
        &hub,
        Some("housing"),
        v1::SubscribeRequest {
            district_code: "31010".into(),
            ..Default::default()
        },
    )
    .await
    .expect_err("a district is 6 digits");
    assert_eq!(crate::violated_field(&refused), "district_code");
    for (bad, field) in [
        (
            v1::SubscribeRequest {
                grid_code: "31010400100100".into(),
                ..Default::default()
            },
            "grid_code",
        ),
        (
            v1::SubscribeRequest {
                event_types: vec!["Case Reported".into()],
                ..Default::default()
            },
            "event_types",
        ),
        (
            v1::SubscribeRequest {
                start_position: 3,
                start_time: Some(prost_types::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
                ..Default::default()
            },
            "start_time",
        ),
    ] {
        let refused = subscribe(&hub, Some("housing"), bad)
            .await
            .expect_err(field);
        assert_eq!(crate::violated_field(&refused), field);
    }

    // Housing: two cases dispatched to it, in two districts; filtered to one district.
    let first = hub
        .commands()
        .report_case(from("urban-management", incident("inc-1")))
        .await
        .expect("report")
        .into_inner();
    let dispatched = cmd::dispatch(&hub, "dcc-310104", "d-1", &first.case_id, "housing", None)
        .await
        .expect("dispatch");
    let second = hub
        .commands()
        .report_case(from("housing", crate::complaint("cmp-1")))
        .await
        .expect("report")
        .into_inner();
    let mut xuhui = subscribe(
        &hub,
        Some("housing"),
        v1::SubscribeRequest {
            district_code: "310104".into(),
            ..Default::default()
        },
    )
    .await
    .expect("subscribe");
    // Housing became a party to the first case at its dispatch.
    let event = next_event(&mut xuhui).await.expect("event");
    assert_eq!(event.position, dispatched.position);
    assert_eq!(event.attributes["ce-type"], "gov.hub.case.dispatched.v1");
    assert_eq!(event.attributes["hub-district"], "310104");
    assert_eq!(event.attributes["hub-grid"], "310104001001001");
    // Changning's complaint is filtered out: the next thing is progress past it.
    let progress = loop {
        let item = tokio::time::timeout(Duration::from_secs(20), xuhui.message())
            .await
            .expect("progress within 20 s")
            .expect("item")
            .expect("open");
        match item.item {
            Some(v1::subscribe_response::Item::Progress(p)) if p.position >= second.position => {
                break p;
            }
            Some(v1::subscribe_response::Item::Event(e)) => {
                panic!("an event outside the filter: {e:?}")
            }
            _ => {}
        }
    };
    assert!(progress.log_position >= second.position, "{progress:?}");

    // Resumed from a position, filtered to a type: only what comes at or after it.
    let mut resumed = subscribe(
        &hub,
        Some("housing"),
        v1::SubscribeRequest {
            start_position: first.position + 1,
            event_types: vec!["gov.hub.case.reported.v2".into()],
            ..Default::default()
        },
    )
    .await
    .expect("subscribe");
    let event = next_event(&mut resumed).await.expect("event");
    assert_eq!(
        event.position, second.position,
        "the first report is before the cursor"
    );

    // A subscription under a grant: masked care records, ended by the revocation.
    let id = grant(
        &hub,
        "g-1",
        &["name"],
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24),
    )
    .await;
    let approved = approve(&hub, "ap-1", &id).await;
    let mut under_grant = subscribe(
        &hub,
        Some("public-security"),
        v1::SubscribeRequest {
            start_position: approved + 1,
            ..Default::default()
        },
    )
    .await
    .expect("subscribe");
    // A slow subscriber that never reads holds up nobody (on a connection of its own, as a
    // department system has: on a shared one, HTTP/2 flow control would stall the others).
    let channel = tonic::transport::Endpoint::from_shared(hub.http_url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let stalled = hub_api::v1::feed_service_client::FeedServiceClient::new(channel)
        .subscribe(from("public-security", v1::SubscribeRequest::default()))
        .await
        .expect("subscribe");
    let mut last = 0;
    // Enough that the stalled stream's queue and HTTP/2 window fill and its pump waits.
    for n in 0..400 {
        last = register(&hub, &format!("care-{n}")).await;
    }
    let mut received = 0;
    while received < 400 {
        let event = next_event(&mut under_grant).await.expect("event");
        assert_eq!(event.attributes["ce-type"], "gov.hub.care.registered.v1");
        assert_eq!(event.attributes["hub-grants"], id);
        let body = v1::CareRegistered::decode(event.data.as_slice()).expect("body");
        assert_eq!(body.identity_number, "110105********002X");
        received += 1;
    }
    assert_eq!(received, 400);
    // The stalled one is merely slow: read now, it starts from the beginning of the feed.
    let mut stalled = stalled.into_inner();
    let first = next_event(&mut stalled)
        .await
        .expect("the stalled stream still works");
    assert!(
        first.position < last,
        "{} is not behind {last}",
        first.position
    );
    // The projector went on too: the roster has every registration.
    hub.read_model("care_roster")
        .wait_for(last, Duration::from_secs(20))
        .await
        .expect("the roster reaches the last registration");

    let started = Instant::now();
    revoke(&hub, "rv-1", &id).await;
    let ended = ending(&mut under_grant).await;
    let took = started.elapsed();
    assert_eq!(ended.code(), tonic::Code::PermissionDenied, "{ended:?}");
    assert!(took < Duration::from_secs(1), "ended after {took:?}");
    // The stalled subscriber's stream ended too, though it never read: after what was already
    // on the wire, its next item is the refusal.
    let stalled_end = ending(&mut stalled).await;
    assert_eq!(stalled_end.code(), tonic::Code::PermissionDenied);
    // Housing, with no grant, kept its subscription through it all.
    let more = hub
        .commands()
        .report_case(from("housing", crate::complaint("cmp-2")))
        .await
        .expect("report")
        .into_inner();
    let event = next_event(&mut resumed).await.expect("event");
    assert_eq!(event.position, more.position);
    hub.stop().await.expect("clean stop");
}

/// A department's own system on NATS, as that department's user: the JetStream API under its
/// prefix, replies under its inbox prefix.
async fn department_js(nats: &Nats, unit: &str) -> async_nats::jetstream::Context {
    let client = nats
        .unit_options(unit)
        .connect(nats.url())
        .await
        .expect("the unit connects with its seed");
    async_nats::jetstream::ContextBuilder::new()
        .api_prefix(hub_log::names::DEPARTMENT_JS_API_PREFIX)
        .build(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_reads_its_masked_feed_over_nats_and_another_is_refused_it() {
    use async_nats::jetstream::consumer::{Consumer, pull};

    let nats = Nats::start_with_accounts().await;
    let hub: Hub = HubBuilder::on(&nats).start().await;
    register(&hub, "care-0").await;
    let id = grant(
        &hub,
        "g-1",
        &["name"],
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24),
    )
    .await;
    approve(&hub, "ap-1", &id).await;
    let last = register(&hub, "care-1").await;

    // Public security binds to its consumer by name and reads: the grant's events and the
    // registration after the approval, masked; it acknowledges what it read.
    let js = department_js(&nats, "public-security").await;
    let consumer: Consumer<pull::Config> = js
        .get_consumer_from_stream("feed-public-security", "FEED_PUBLIC_SECURITY")
        .await
        .expect("public security binds to its own consumer");
    let mut received: Vec<async_nats::jetstream::Message> = Vec::new();
    let reached = |m: &async_nats::jetstream::Message| {
        m.headers
            .as_ref()
            .and_then(|h| h.get("hub-position"))
            .is_some_and(|p| p.as_str() == last.to_string())
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !received.iter().any(reached) {
        assert!(Instant::now() < deadline, "the feed never reached {last}");
        let mut batch = consumer
            .fetch()
            .max_messages(10)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .expect("public security asks its consumer for messages");
        while let Some(message) = batch.next().await {
            let message = message.expect("a feed message");
            message.ack().await.expect("ack");
            received.push(message);
        }
    }
    let types: Vec<&str> = received
        .iter()
        .filter_map(|m| m.headers.as_ref()?.get("ce-type").map(|t| t.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            "gov.hub.grant.requested.v1",
            "gov.hub.grant.approved.v1",
            "gov.hub.care.registered.v1"
        ],
        "not the registration before the approval"
    );
    let registration = received.last().expect("the registration");
    let body = v1::CareRegistered::decode(registration.payload.as_ref()).expect("body");
    assert_eq!(body.name, NAME);
    assert_eq!(body.identity_number, "110105********002X");
    for message in &received {
        for cleartext in [IDENTITY, PHONE, ADDRESS] {
            assert!(
                !message
                    .payload
                    .windows(cleartext.len())
                    .any(|w| w == cleartext.as_bytes()),
                "{cleartext} reached public security"
            );
        }
    }

    // Housing reads its own (empty) consumer, and is refused public security's: it cannot
    // bind to it, ask it for messages, or listen to its subjects.
    let housing = department_js(&nats, "housing").await;
    let own: Result<Consumer<pull::Config>, _> = housing
        .get_consumer_from_stream("feed-housing", "FEED_HOUSING")
        .await;
    assert!(own.is_ok(), "housing binds to its own consumer");
    let theirs: Result<Consumer<pull::Config>, _> = housing
        .get_consumer_from_stream("feed-public-security", "FEED_PUBLIC_SECURITY")
        .await;
    assert!(
        theirs.is_err(),
        "housing bound to public security's consumer"
    );
    let client = housing.client();
    let next = "$JS.hub.API.CONSUMER.MSG.NEXT.FEED_PUBLIC_SECURITY.feed-public-security";
    let answer = tokio::time::timeout(
        Duration::from_secs(2),
        client.request(next, r#"{"batch":1,"no_wait":true}"#.into()),
    )
    .await;
    assert!(
        !matches!(answer, Ok(Ok(_))),
        "housing was answered from public security's consumer"
    );
    let mut snoop = client
        .subscribe("gov.feed.public-security.>")
        .await
        .expect("subscribe call");
    // Public security's own live subscription to its feed subjects: the positive control.
    let mut own_live = js
        .client()
        .subscribe("gov.feed.public-security.>")
        .await
        .expect("public security subscribes to its feed subjects");
    js.client().flush().await.expect("flush");
    let more = register(&hub, "care-2").await;
    assert!(more > last);
    let heard_own = tokio::time::timeout(Duration::from_secs(20), own_live.next())
        .await
        .expect("public security hears its feed live")
        .expect("a message");
    assert_eq!(
        heard_own
            .headers
            .as_ref()
            .and_then(|h| h.get("hub-position"))
            .map(|p| p.to_string()),
        Some(more.to_string())
    );
    // Housing's subscription was made first, so it would have heard it by now.
    let heard = tokio::time::timeout(Duration::from_millis(500), snoop.next()).await;
    assert!(
        !matches!(heard, Ok(Some(_))),
        "housing heard public security's feed"
    );
    hub.stop().await.expect("clean stop");
}
