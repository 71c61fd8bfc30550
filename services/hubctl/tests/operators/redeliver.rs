//! `hubctl replay --into-feed`: a department's feed re-delivered from the log.

use std::time::Duration;

use async_nats::jetstream::message::StreamMessage;
use hub_api::v1;
use hub_tests::fixtures::{self, CARE_IDENTITY, CARE_PHONE};
use hub_tests::{HubBuilder, Nats, wait_until};

use crate::*;

use hub_tests::feed_messages as feed;

fn header(message: &StreamMessage, name: &str) -> Option<String> {
    message.headers.get(name).map(|v| v.as_str().to_owned())
}

fn position(message: &StreamMessage) -> u64 {
    header(message, "hub-position")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

/// Waits until `stream` holds a message at position `at` or later; then what it holds.
async fn reaches(js: &async_nats::jetstream::Context, stream: &str, at: u64) -> Vec<StreamMessage> {
    wait_until(
        &format!("{stream} to reach {at}"),
        Duration::from_secs(20),
        || async {
            let messages = feed(js, stream).await;
            messages
                .iter()
                .any(|m| position(m) >= at)
                .then_some(messages)
        },
    )
    .await
}

/// `department`'s feed as `hubctl status` reports it.
async fn feed_of(hub: &hub_tests::Hub, department: &str) -> serde_json::Value {
    let status = json(&hubctl(hub, &["status", "--json"]).await);
    status["feeds"]
        .as_array()
        .expect("feeds")
        .iter()
        .find(|f| f["department"] == department)
        .unwrap_or_else(|| panic!("no feed of {department}: {status}"))
        .clone()
}

/// The last line of a `--json` re-delivery: its outcome.
fn outcome(output: &std::process::Output) -> serde_json::Value {
    let lines = lines(output);
    let last = lines.last().expect("progress lines").clone();
    assert_eq!(last["phase"], "done", "{lines:?}");
    last
}

/// The purposes of the PUBLISH records of care events sent into public security's feed.
async fn feed_disclosures(hub: &hub_tests::Hub) -> Vec<String> {
    access(hub, "public-security")
        .await
        .into_iter()
        .filter(|r| r.action == "PUBLISH FEED_PUBLIC_SECURITY" && !r.persons.is_empty())
        .map(|r| r.purpose)
        .collect()
}

/// Public security asks for the care roster's names for a day; the grant's id.
async fn ask_grant(hub: &hub_tests::Hub, request_id: &str) -> String {
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    hub.grants()
        .request_grant(fixtures::from(
            "public-security",
            v1::RequestGrantRequest {
                request_id: request_id.into(),
                dataset: "care_roster".into(),
                fields: vec!["name".into()],
                purpose: "checking persons at risk".into(),
                expires_at: Some(prost_types::Timestamp {
                    seconds: expires.as_second(),
                    nanos: 0,
                }),
            },
        ))
        .await
        .expect("asked")
        .into_inner()
        .result
        .expect("a result")
        .id
}

async fn approve(hub: &hub_tests::Hub, request_id: &str, grant: &str) {
    hub.grants()
        .approve_grant(fixtures::from(
            "civil-affairs",
            v1::ApproveGrantRequest {
                request_id: request_id.into(),
                grant_id: grant.into(),
                expected_version: None,
            },
        ))
        .await
        .expect("approved");
}

async fn revoke(hub: &hub_tests::Hub, request_id: &str, grant: &str) {
    hub.grants()
        .revoke_grant(fixtures::from(
            "civil-affairs",
            v1::RevokeGrantRequest {
                request_id: request_id.into(),
                grant_id: grant.into(),
                expected_version: None,
                reason: "purpose fulfilled".into(),
            },
        ))
        .await
        .expect("revoked");
}

/// Civil affairs registers a person for care; the registration's position.
async fn register(hub: &hub_tests::Hub, request_id: &str) -> u64 {
    hub.care()
        .register_care(fixtures::from("civil-affairs", fixtures::care(request_id)))
        .await
        .expect("registered")
        .into_inner()
        .result
        .expect("a result")
        .position
}

/// Whether public security's feed holds any care record, re-delivered or not.
async fn police_hold_care(js: &async_nats::jetstream::Context) -> bool {
    feed(js, "FEED_PUBLIC_SECURITY")
        .await
        .iter()
        .any(|m| m.subject.contains(".care."))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_into_a_feed_sends_again_what_the_department_was_sent_and_nothing_a_grant_ended_forbids()
 {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let hub = HubBuilder::on(&nats).start().await;

    // A case urban management reported, dispatched to housing.
    let (case, reported) = report(&hub, "rd-1").await;
    let dispatched = hub
        .commands()
        .dispatch_case(fixtures::from(
            "dcc-310104",
            v1::DispatchCaseRequest {
                request_id: "rd-d".into(),
                case_id: case.clone(),
                department: "housing".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("dispatched")
        .into_inner()
        .result
        .expect("a result")
        .position;
    // A care record public security reads masked under a grant, registered after approval.
    let grant = ask_grant(&hub, "rd-g").await;
    // Registered before the approval: public security was never sent it.
    let before = register(&hub, "rd-c0").await;
    approve(&hub, "rd-a", &grant).await;
    let care = register(&hub, "rd-c").await;

    let urban = reaches(&js, "FEED_URBAN_MANAGEMENT", dispatched).await;
    assert_eq!(
        urban.iter().map(position).collect::<Vec<_>>(),
        [reported, dispatched]
    );
    let police = reaches(&js, "FEED_PUBLIC_SECURITY", care).await;
    let masked = police
        .iter()
        .find(|m| position(m) == care)
        .expect("the masked registration")
        .clone();
    let disclosed = feed_disclosures(&hub).await;
    assert_eq!(
        disclosed,
        [format!("grant:{grant}")],
        "the publisher recorded what it sent"
    );
    assert!(police.iter().all(|m| position(m) != before));

    // Refused first, in the same setup: a department may not re-deliver, a unit that does
    // not exist has no feed, an id must be well formed; nothing is sent.
    let refused = hubctl(
        &hub,
        &[
            "--department",
            "urban-management",
            "replay",
            "--into-feed",
            "urban-management",
        ],
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains("PermissionDenied"),
        "{}",
        stderr(&refused)
    );
    let unknown = hubctl(
        &hub,
        &[
            "replay",
            "--into-feed",
            "no-such-unit",
            "--from",
            "9",
            "--to",
            "3",
        ],
    )
    .await;
    assert_eq!(unknown.status.code(), Some(1));
    let said = stderr(&unknown);
    assert!(
        said.contains("InvalidArgument") && said.contains("department"),
        "{said}"
    );
    assert!(said.contains("selection.to_position"), "{said}");
    let bad_id = hubctl(
        &hub,
        &[
            "replay",
            "--into-feed",
            "urban-management",
            "--redelivery-id",
            "a b",
        ],
    )
    .await;
    assert!(
        stderr(&bad_id).contains("redelivery_id"),
        "{}",
        stderr(&bad_id)
    );
    assert_eq!(feed(&js, "FEED_URBAN_MANAGEMENT").await.len(), 2);

    // One event, selected by its first version's type (read as the second): sent again on
    // the re-delivery subject with its event id, position and body; the feed's own last
    // position stands.
    let aggregate = format!("case/{case}");
    let one = hubctl(
        &hub,
        &[
            "--json",
            "replay",
            "--into-feed",
            "urban-management",
            "--aggregate",
            &aggregate,
            "--event-type",
            "gov.hub.case.reported.v1",
            "--redelivery-id",
            "r-1",
        ],
    )
    .await;
    let done = outcome(&one);
    assert_eq!(number(&done["sent"]), 1, "{done}");
    assert_eq!(number(&done["firstPosition"]), reported);
    let now = feed(&js, "FEED_URBAN_MANAGEMENT").await;
    assert_eq!(now.len(), 3);
    let again = &now[2];
    assert_eq!(
        again.subject.as_str(),
        format!("gov.feed.urban-management.case.{case}.redelivered")
    );
    assert_eq!(position(again), reported);
    assert_eq!(header(again, "ce-id"), header(&urban[0], "ce-id"));
    assert_eq!(header(again, "hub-redelivery").as_deref(), Some("r-1"));
    assert_eq!(again.payload, urban[0].payload);
    let feed_status = feed_of(&hub, "urban-management").await;
    assert_eq!(
        number(&feed_status["position"]),
        dispatched,
        "{feed_status}"
    );

    // Everything of the department's, twice under one id: stored once.
    for (sent, duplicates) in [(2, 0), (0, 2)] {
        let all = hubctl(
            &hub,
            &[
                "--json",
                "replay",
                "--into-feed",
                "urban-management",
                "--redelivery-id",
                "r-2",
            ],
        )
        .await;
        let done = outcome(&all);
        assert_eq!(
            (number(&done["sent"]), number(&done["duplicates"])),
            (sent, duplicates),
            "{done}"
        );
        assert_eq!(
            (
                number(&done["firstPosition"]),
                number(&done["lastPosition"])
            ),
            (reported, dispatched)
        );
    }
    assert_eq!(feed(&js, "FEED_URBAN_MANAGEMENT").await.len(), 5);

    // The department acknowledges through its durable consumer up to a re-delivered message
    // of a lower position: status still says it has everything up to the dispatch.
    let consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_consumer_from_stream("feed-urban-management", "FEED_URBAN_MANAGEMENT")
        .await
        .expect("the department's consumer");
    let mut batch = consumer
        .fetch()
        .max_messages(4)
        .messages()
        .await
        .expect("fetch");
    let mut acked = 0;
    while let Some(message) = futures::StreamExt::next(&mut batch).await {
        message
            .expect("a message")
            .double_ack()
            .await
            .expect("acked");
        acked += 1;
    }
    assert_eq!(acked, 4);
    let feed_status = feed_of(&hub, "urban-management").await;
    assert_eq!(
        (
            number(&feed_status["acknowledgedPosition"]),
            number(&feed_status["pending"]),
            number(&feed_status["lag"])
        ),
        (dispatched, 1, 0),
        "{feed_status}"
    );
    // The re-deliveries were audited as the operator's, naming the feed.
    let redeliveries = access(&hub, "big-data-centre")
        .await
        .into_iter()
        .filter(|r| r.action == "gov.hub.v1.AdminService/RedeliverFeed" && r.outcome == "ok")
        .map(|r| r.dataset)
        .collect::<Vec<_>>();
    assert_eq!(redeliveries, ["FEED_URBAN_MANAGEMENT"; 3]);

    // A subscriber resuming from the dispatch starts there (the re-deliveries, with lower
    // positions, do not mislead the search), and hears the dispatch again, marked.
    let mut subscription = hub
        .feeds()
        .subscribe(fixtures::from(
            "urban-management",
            v1::SubscribeRequest {
                start_position: dispatched,
                ..Default::default()
            },
        ))
        .await
        .expect("subscribed")
        .into_inner();
    let mut heard = Vec::new();
    while heard.len() < 2 {
        let item = tokio::time::timeout(Duration::from_secs(20), subscription.message())
            .await
            .expect("in time")
            .expect("no error")
            .expect("open");
        if let Some(v1::subscribe_response::Item::Event(event)) = item.item {
            heard.push(event);
        }
    }
    assert_eq!(heard[0].position, dispatched);
    assert!(!heard[0].attributes.contains_key("hub-redelivery"));
    assert_eq!(heard[1].position, dispatched);
    assert_eq!(heard[1].attributes["hub-redelivery"], "r-2");
    drop(subscription);

    // Everything public security was sent, decided again in log order: its grant's events
    // and the care record registered after the approval, masked as it was sent; not the one
    // registered before, nor any case; recorded again, naming the re-delivery.
    let care_again = hubctl(
        &hub,
        &[
            "--json",
            "replay",
            "--into-feed",
            "public-security",
            "--redelivery-id",
            "r-3",
        ],
    )
    .await;
    let done = outcome(&care_again);
    assert_eq!(
        (number(&done["sent"]), number(&done["withheld"])),
        (3, 0),
        "{done}"
    );
    let police = feed(&js, "FEED_PUBLIC_SECURITY").await;
    let kinds: Vec<&str> = police
        .iter()
        .filter(|m| header(m, "hub-redelivery").as_deref() == Some("r-3"))
        .map(|m| m.subject.split('.').nth(3).unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["grant", "grant", "care"]);
    assert!(police.iter().all(|m| position(m) != before));
    let resent = police
        .iter()
        .find(|m| {
            header(m, "hub-redelivery").as_deref() == Some("r-3") && m.subject.contains(".care.")
        })
        .expect("the re-delivered registration");
    assert_eq!(resent.payload, masked.payload, "masked as then");
    assert_eq!(header(resent, "hub-grants"), Some(grant.clone()));
    for cleartext in [CARE_IDENTITY, CARE_PHONE] {
        let found = resent
            .payload
            .windows(cleartext.len())
            .any(|w| w == cleartext.as_bytes());
        assert!(!found, "{cleartext} re-delivered to public security");
    }
    let mut recorded = disclosed.clone();
    recorded.push(format!("grant:{grant},redelivery:r-3"));
    assert_eq!(feed_disclosures(&hub).await, recorded);

    // The grant revoked: the feed is purged, and a re-delivery withholds what it covered.
    revoke(&hub, "rd-r", &grant).await;
    wait_until("the purge", Duration::from_secs(20), || async {
        feed(&js, "FEED_PUBLIC_SECURITY")
            .await
            .iter()
            .all(|m| !m.subject.contains(".care."))
            .then_some(())
    })
    .await;
    let after = hubctl(
        &hub,
        &[
            "--json",
            "replay",
            "--into-feed",
            "public-security",
            "--type",
            "care",
            "--redelivery-id",
            "r-4",
        ],
    )
    .await;
    let done = outcome(&after);
    assert_eq!(
        (number(&done["sent"]), number(&done["withheld"])),
        (0, 1),
        "{done}"
    );
    assert!(
        feed(&js, "FEED_PUBLIC_SECURITY")
            .await
            .iter()
            .all(|m| !m.subject.contains(".care.")),
        "nothing of the care record after the revocation"
    );
    assert_eq!(feed_disclosures(&hub).await, recorded);

    // Text output for a person.
    let text = hubctl(
        &hub,
        &["replay", "--into-feed", "housing", "--redelivery-id", "r-5"],
    )
    .await;
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(
        stdout(&text).contains(&format!(
            "re-delivered 1 events into housing's feed (positions {dispatched} to {dispatched}) \
             as r-5; 0 there already"
        )),
        "{}",
        stdout(&text)
    );
    hub.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_revoked_while_a_redelivery_is_sent_has_what_it_covered_purged_again() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let hub = HubBuilder::on(&nats).start().await;
    let grant = ask_grant(&hub, "rh-g").await;
    approve(&hub, "rh-a", &grant).await;
    let care = register(&hub, "rh-c").await;
    reaches(&js, "FEED_PUBLIC_SECURITY", care).await;

    // The re-delivery is held once its round is checked (the grant in force) and audited,
    // before it is sent.
    fail::cfg("redelivery-hold", "return(r-held)").expect("failpoint");
    let args = [
        "--json",
        "replay",
        "--into-feed",
        "public-security",
        "--type",
        "care",
        "--redelivery-id",
        "r-held",
    ];
    let mut command = hubctl_command(&hub, &args);
    let running = tokio::spawn(async move { command.output().await.expect("hubctl runs") });
    wait_until(
        "the held round's record",
        Duration::from_secs(20),
        || async {
            feed_disclosures(&hub)
                .await
                .iter()
                .any(|p| p.ends_with("redelivery:r-held"))
                .then_some(())
        },
    )
    .await;
    // Meanwhile the grant is revoked and the publisher purges the feed: the held round's
    // message would land after that purge.
    revoke(&hub, "rh-r", &grant).await;
    wait_until("the purge", Duration::from_secs(20), || async {
        (!police_hold_care(&js).await).then_some(())
    })
    .await;
    fail::remove("redelivery-hold");
    let output = running.await.expect("hubctl ran");
    let done = outcome(&output);
    assert_eq!(
        (number(&done["sent"]), number(&done["withheld"])),
        (0, 1),
        "stored, then purged again: {done}"
    );
    assert!(
        !police_hold_care(&js).await,
        "nothing of the care record stays in the feed"
    );
    // The allowed case in the same setup: with a grant in force again, it is sent and stays.
    let again = ask_grant(&hub, "rh-g2").await;
    approve(&hub, "rh-a2", &again).await;
    let later = register(&hub, "rh-c2").await;
    reaches(&js, "FEED_PUBLIC_SECURITY", later).await;
    let sent = hubctl(
        &hub,
        &[
            "--json",
            "replay",
            "--into-feed",
            "public-security",
            "--type",
            "care",
            "--from",
            &later.to_string(),
            "--redelivery-id",
            "r-free",
        ],
    )
    .await;
    let done = outcome(&sent);
    assert_eq!(
        (number(&done["sent"]), number(&done["withheld"])),
        (1, 0),
        "{done}"
    );
    assert!(
        feed(&js, "FEED_PUBLIC_SECURITY")
            .await
            .iter()
            .any(|m| header(m, "hub-redelivery").as_deref() == Some("r-free"))
    );
    hub.stop().await.expect("stop");
}
