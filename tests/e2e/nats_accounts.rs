//! Department isolation on NATS by account (`hub_log::accounts`), on a real nats-server with
//! the accounts generated for the demo registry and real async-nats clients as each
//! department's user. Every refusal is checked in the same setup as a department reading its
//! own feed, so none passes by everything failing; each says how it is refused: a permissions
//! violation the server reports naming the subject (the request then gets no answer), or
//! proof that nothing was stored.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use async_nats::{Client, Event, HeaderMap};
use futures::StreamExt;
use hub_log::feeds::{FeedSettings, ensure_feeds};
use hub_log::names::{
    DEPARTMENT_JS_API_PREFIX, EVENTS_STREAM, department_inbox_prefix, feed_ack_subjects,
    feed_consumer, feed_info_subject, feed_next_subject, feed_stream, feed_subject, headers,
};
use hub_log::stream::{EventsStreamSettings, ensure_events_stream};
use hub_tests::{Nats, wait_until};

/// Department A reads; B is another department; both are units of the demo registry.
const A: &str = "civil-affairs";
const B: &str = "urban-management";

/// How long a refused request waits for the answer that does not come.
const NO_ANSWER: Duration = Duration::from_millis(700);

/// The server with accounts, the hub's streams filled a little, and A connected as its user.
struct Setup {
    nats: Nats,
    hub: jetstream::Context,
    a: Client,
    /// The errors the server sent A's connection (permissions violations).
    a_errors: Arc<Mutex<Vec<String>>>,
}

async fn stored(js: &jetstream::Context, stream: &str) -> u64 {
    let mut stream = js.get_stream(stream).await.expect("stream exists");
    stream.info().await.expect("stream info").state.messages
}

async fn publish(js: &jetstream::Context, subject: String, position: u64) {
    let mut headers = HeaderMap::new();
    headers.insert(headers::HUB_POSITION, position.to_string().as_str());
    headers.insert(headers::MSG_ID, format!("{subject}-{position}").as_str());
    js.publish_with_headers(subject, headers, "body".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
}

impl Setup {
    async fn new() -> Self {
        let nats = Nats::start_with_accounts().await;
        let hub = jetstream::new(nats.client().await);
        ensure_events_stream(&hub, &EventsStreamSettings::default())
            .await
            .expect("GOV_EVENTS");
        let registry = hub::load_registry(None).expect("demo registry");
        let units: Vec<String> = registry.units().map(|u| u.code.to_string()).collect();
        ensure_feeds(&hub, &units, &FeedSettings::default())
            .await
            .expect("feeds");
        // Created or updated twice: the same streams and consumers, nothing lost.
        publish(&hub, feed_subject(A, "case", "x"), 1).await;
        ensure_feeds(&hub, &units, &FeedSettings::default())
            .await
            .expect("feeds again");
        publish(&hub, feed_subject(A, "case", "x"), 2).await;
        publish(&hub, feed_subject(B, "case", "y"), 3).await;
        hub.publish("gov.events.case.c-1", "an event".into())
            .await
            .expect("publish")
            .await
            .expect("stored");
        assert_eq!(stored(&hub, &feed_stream(A)).await, 2);

        let a_errors = Arc::new(Mutex::new(Vec::new()));
        let sink = a_errors.clone();
        let a = nats
            .unit_options(A)
            .request_timeout(Some(NO_ANSWER))
            .event_callback(move |event| {
                let sink = sink.clone();
                async move {
                    if let Event::ServerError(err) = event {
                        sink.lock().expect("errors").push(err.to_string());
                    }
                }
            })
            .connect(nats.url())
            .await
            .expect("A connects with its seed");
        Self {
            nats,
            hub,
            a,
            a_errors,
        }
    }

    /// A's JetStream: the hub's feed API under A's own prefix.
    fn a_js(&self) -> jetstream::Context {
        jetstream::ContextBuilder::new()
            .api_prefix(DEPARTMENT_JS_API_PREFIX)
            .timeout(NO_ANSWER)
            .build(self.a.clone())
    }

    /// Waits for the server's permissions violation for `action` (`Publish` or
    /// `Subscription`) on `subject`, sent to A's connection.
    async fn violation(&self, action: &str, subject: &str) {
        let wanted = format!("Permissions Violation for {action} to \"{subject}\"");
        wait_until(&wanted, Duration::from_secs(5), || async {
            let errors = self.a_errors.lock().expect("errors");
            errors.iter().any(|e| e.contains(&wanted)).then_some(())
        })
        .await;
    }

    /// A's request on `subject` gets no answer, and the server reports the publish as a
    /// permissions violation.
    async fn request_refused(&self, subject: &str) {
        let answer = self.a.request(subject.to_owned(), "{}".into()).await;
        assert!(
            answer.is_err(),
            "{subject} answered A: {:?}",
            answer.map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        );
        self.violation("Publish", subject).await;
    }

    /// The hub's view of A's feed consumer.
    async fn consumer_of(&self, unit: &str) -> consumer::Info {
        let stream = self.hub.get_stream(feed_stream(unit)).await.expect("feed");
        stream
            .consumer_info(feed_consumer(unit))
            .await
            .expect("consumer info")
            .clone()
    }
}

/// The positive control: A binds to its durable by name through its prefix, with no stream
/// lookup, receives its messages with their headers, and its acks move the ack floor.
async fn a_reads_and_acks_its_feed(setup: &Setup) {
    let a_js = setup.a_js();
    let feed: consumer::Consumer<consumer::pull::Config> = a_js
        .get_consumer_from_stream(feed_consumer(A), feed_stream(A))
        .await
        .expect("A binds to its consumer by name (its info API)");
    let mut batch = feed
        .fetch()
        .max_messages(10)
        .expires(Duration::from_secs(2))
        .messages()
        .await
        .expect("A asks its consumer for messages (its next API)");
    let mut positions = Vec::new();
    while let Some(message) = batch.next().await {
        let message = message.expect("a feed message");
        assert_eq!(message.subject.as_str(), feed_subject(A, "case", "x"));
        let position = message
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::HUB_POSITION))
            .map(|v| v.as_str().to_owned())
            .expect("hub-position header");
        positions.push(position);
        message
            .double_ack()
            .await
            .expect("A acks (its ack service)");
    }
    assert_eq!(positions, ["1", "2"], "A's own messages, in order");
    let info = setup.consumer_of(A).await;
    assert_eq!(info.ack_floor.stream_sequence, 2, "A's acks took effect");
    assert_eq!(info.num_ack_pending, 0);
    // Nothing of B's feed came A's way; B's consumer is untouched.
    assert_eq!(setup.consumer_of(B).await.delivered.stream_sequence, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_reads_its_own_feed_live_and_from_its_durable() {
    let setup = Setup::new().await;
    a_reads_and_acks_its_feed(&setup).await;

    // Its info answers through its prefix, under its own inbox prefix.
    let inbox = setup.a.new_inbox();
    assert!(inbox.starts_with(&format!("{}.", department_inbox_prefix(A))));
    let mut replies = setup.a.subscribe(inbox.clone()).await.expect("own inbox");
    setup
        .a
        .publish_with_reply(
            feed_info_subject(DEPARTMENT_JS_API_PREFIX, A),
            inbox,
            "".into(),
        )
        .await
        .expect("publish");
    let reply = tokio::time::timeout(Duration::from_secs(5), replies.next())
        .await
        .expect("an answer")
        .expect("a message");
    let info: serde_json::Value = serde_json::from_slice(&reply.payload).expect("json");
    assert_eq!(info["name"], feed_consumer(A), "{info}");

    // The stream import: A hears its feed subjects live.
    let mut live = setup
        .a
        .subscribe(hub_log::names::feed_subjects(A))
        .await
        .expect("own feed subjects");
    setup.a.flush().await.expect("flush");
    publish(&setup.hub, feed_subject(B, "case", "live"), 5).await;
    publish(&setup.hub, feed_subject(A, "case", "live"), 4).await;
    let heard = tokio::time::timeout(Duration::from_secs(5), live.next())
        .await
        .expect("heard live")
        .expect("a message");
    assert_eq!(heard.subject.as_str(), feed_subject(A, "case", "live"));
    assert!(setup.a_errors.lock().expect("errors").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_cannot_read_another_feed_or_the_log() {
    let setup = Setup::new().await;
    a_reads_and_acks_its_feed(&setup).await;
    let (b_feed, b_consumer) = (feed_stream(B), feed_consumer(B));
    let hub_prefix = DEPARTMENT_JS_API_PREFIX;
    // Each is a permissions violation and gets no answer; without the permission the
    // subject would not reach the hub's account either: A imports none of these.
    let refused = [
        // B's feed consumer, next and info, under A's prefix and the hub's own.
        feed_next_subject(hub_prefix, B),
        feed_info_subject(hub_prefix, B),
        feed_next_subject("$JS.API", B),
        // B's durable on A's feed, and A's durable on B's feed.
        format!(
            "{hub_prefix}.CONSUMER.MSG.NEXT.{}.{b_consumer}",
            feed_stream(A)
        ),
        format!(
            "{hub_prefix}.CONSUMER.MSG.NEXT.{b_feed}.{}",
            feed_consumer(A)
        ),
        // Stream lookups.
        format!("{hub_prefix}.STREAM.INFO.{b_feed}"),
        format!("{hub_prefix}.STREAM.INFO.{EVENTS_STREAM}"),
        format!("{hub_prefix}.STREAM.INFO.{}", feed_stream(A)),
        format!("$JS.API.STREAM.INFO.{EVENTS_STREAM}"),
        format!("{hub_prefix}.STREAM.NAMES"),
        // Direct get and message get, of the log and of B's feed.
        format!("{hub_prefix}.DIRECT.GET.{EVENTS_STREAM}"),
        format!("$JS.API.DIRECT.GET.{EVENTS_STREAM}"),
        format!("{hub_prefix}.DIRECT.GET.{b_feed}"),
        format!("{hub_prefix}.STREAM.MSG.GET.{EVENTS_STREAM}"),
        format!("$JS.API.STREAM.MSG.GET.{EVENTS_STREAM}"),
        format!("{hub_prefix}.STREAM.MSG.GET.{b_feed}"),
        format!("{hub_prefix}.DIRECT.GET.{EVENTS_STREAM}.gov.events.case.c-1"),
    ];
    let checks = refused.iter().map(|subject| setup.request_refused(subject));
    futures::future::join_all(checks).await;

    // The same through async-nats's JetStream API (A's prefix): refused, not answered.
    let a_js = setup.a_js();
    let events = a_js
        .get_stream_no_info(EVENTS_STREAM)
        .await
        .expect("a handle");
    assert!(events.direct_get(1).await.is_err(), "direct get of the log");
    assert!(
        events.get_raw_message(1).await.is_err(),
        "message get of the log"
    );
    assert!(a_js.get_stream(&b_feed).await.is_err(), "B's stream info");
    let other: Result<consumer::Consumer<consumer::pull::Config>, _> =
        a_js.get_consumer_from_stream(&b_consumer, &b_feed).await;
    assert!(other.is_err(), "B's durable");

    // Acking B's messages: a violation, and B's consumer is as it was.
    let b_ack = feed_ack_subjects(B).replace('>', "1.3.3.0.0");
    setup
        .a
        .publish(b_ack.clone(), "+ACK".into())
        .await
        .expect("publish");
    setup.violation("Publish", &b_ack).await;
    assert_eq!(setup.consumer_of(B).await.ack_floor.stream_sequence, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_cannot_make_consumers_write_or_listen_beyond_its_own() {
    let setup = Setup::new().await;
    a_reads_and_acks_its_feed(&setup).await;
    let hub_prefix = DEPARTMENT_JS_API_PREFIX;
    let (a_feed, b_feed) = (feed_stream(A), feed_stream(B));

    // Consumer creation, on its own feed too, pull or push (delivering into the log).
    let push_into_log = serde_json::json!({
        "stream_name": a_feed,
        "config": {"durable_name": "evil", "deliver_subject": "gov.events.case.evil",
                   "ack_policy": "none"}
    });
    let creations = [
        format!("{hub_prefix}.CONSUMER.CREATE.{a_feed}"),
        format!("{hub_prefix}.CONSUMER.CREATE.{a_feed}.evil"),
        format!("{hub_prefix}.CONSUMER.DURABLE.CREATE.{a_feed}.evil"),
        format!("{hub_prefix}.CONSUMER.CREATE.{b_feed}.evil"),
        format!("$JS.API.CONSUMER.CREATE.{a_feed}.evil"),
    ];
    for subject in &creations {
        let answer = setup
            .a
            .request(subject.clone(), push_into_log.to_string().into())
            .await;
        assert!(answer.is_err(), "{subject} answered");
        setup.violation("Publish", subject).await;
    }
    let a_js = setup.a_js();
    let created = a_js
        .create_consumer_on_stream(
            consumer::push::Config {
                durable_name: Some("evil".into()),
                deliver_subject: "gov.events.case.evil".into(),
                ..Default::default()
            },
            a_feed.as_str(),
        )
        .await;
    assert!(created.is_err(), "a push consumer into the log");
    let mut names = setup
        .hub
        .get_stream(&a_feed)
        .await
        .expect("feed")
        .consumer_names();
    let mut consumers = Vec::new();
    while let Some(name) = names.next().await {
        consumers.push(name.expect("name"));
    }
    assert_eq!(consumers, [feed_consumer(A)], "no consumer but the hub's");

    // Listening beyond its own feed and inbox: violations.
    for subject in [
        "gov.events.>".to_owned(),
        hub_log::names::feed_subjects(B),
        "_INBOX.>".to_owned(),
        format!("{}.>", department_inbox_prefix(B)),
        ">".to_owned(),
    ] {
        let _ = setup.a.subscribe(subject.clone()).await;
        setup.violation("Subscription", &subject).await;
    }

    // Writing into the log or B's feed: violations, and nothing stored.
    let (events_before, b_before) = (
        stored(&setup.hub, EVENTS_STREAM).await,
        stored(&setup.hub, &b_feed).await,
    );
    for subject in [
        "gov.events.case.x".to_owned(),
        feed_subject(B, "case", "x"),
        format!("{hub_prefix}.STREAM.CREATE.EVIL"),
    ] {
        setup
            .a
            .publish(subject.clone(), "forged".into())
            .await
            .expect("publish");
        setup.violation("Publish", &subject).await;
    }
    setup.a.flush().await.expect("flush");
    assert_eq!(stored(&setup.hub, EVENTS_STREAM).await, events_before);
    assert_eq!(stored(&setup.hub, &b_feed).await, b_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_a_department_names_land_in_its_own_account() {
    let setup = Setup::new().await;
    a_reads_and_acks_its_feed(&setup).await;
    let b_feed = feed_stream(B);
    publish(&setup.hub, feed_subject(A, "case", "z"), 6).await;
    let (events_before, b_before) = (
        stored(&setup.hub, EVENTS_STREAM).await,
        stored(&setup.hub, &b_feed).await,
    );
    // Anyone in the hub's account listening there would hear what the server wrote.
    let hub_client = setup.hub.client();
    let mut overheard = hub_client.subscribe("gov.>").await.expect("hub subscribes");
    hub_client.flush().await.expect("flush");

    // Permitted requests (A's own next and info) whose replies name the log and B's feed:
    // no violation, and any answer goes to that subject in A's own account, where no stream
    // listens and (by its permissions) nobody may subscribe. The server answers the info
    // requests there, and drops the pull request, as nobody hears its reply subject.
    let evil = [
        "gov.events.case.evil".to_owned(),
        feed_subject(B, "evil", "1"),
    ];
    let next = || serde_json::json!({"batch": 1, "expires": 500_000_000}).to_string();
    for reply in &evil {
        for subject in [
            feed_info_subject(DEPARTMENT_JS_API_PREFIX, A),
            feed_next_subject(DEPARTMENT_JS_API_PREFIX, A),
        ] {
            setup
                .a
                .publish_with_reply(subject, reply.clone(), next().into())
                .await
                .expect("publish");
        }
    }
    setup.a.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(stored(&setup.hub, EVENTS_STREAM).await, events_before);
    assert_eq!(stored(&setup.hub, &b_feed).await, b_before);
    let heard = tokio::time::timeout(Duration::from_millis(200), overheard.next()).await;
    assert!(
        heard.is_err(),
        "nothing reached the hub's account: {heard:?}"
    );
    let errors = setup.a_errors.lock().expect("errors").clone();
    assert!(errors.is_empty(), "the requests were permitted: {errors:?}");

    // The same next request with A's own inbox as its reply gets A's message.
    let inbox = setup.a.new_inbox();
    let mut replies = setup.a.subscribe(inbox.clone()).await.expect("own inbox");
    setup
        .a
        .publish_with_reply(
            feed_next_subject(DEPARTMENT_JS_API_PREFIX, A),
            inbox,
            next().into(),
        )
        .await
        .expect("publish");
    let message = tokio::time::timeout(Duration::from_secs(5), replies.next())
        .await
        .expect("an answer")
        .expect("a message");
    assert_eq!(message.subject.as_str(), feed_subject(A, "case", "z"));
    assert!(
        message
            .reply
            .as_ref()
            .is_some_and(|r| r.starts_with(&feed_ack_subjects(A).replace('>', ""))),
        "{message:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jetstream_is_enabled_in_the_hubs_account_alone() {
    let setup = Setup::new().await;
    a_reads_and_acks_its_feed(&setup).await;
    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let registry = hub::load_registry(None).expect("demo registry");
    let accounts = std::iter::once(hub_log::accounts::HUB_ACCOUNT.to_owned())
        .chain(registry.units().map(|u| u.code.to_string()));
    for account in accounts {
        let url = format!("{}/accountz?acc={account}", setup.nats.monitor_url());
        let detail: serde_json::Value = http
            .get(&url)
            .send()
            .await
            .expect("accountz")
            .json()
            .await
            .expect("json");
        let enabled = detail["account_detail"]["jetstream_enabled"].as_bool();
        let hub = account == hub_log::accounts::HUB_ACCOUNT;
        assert_eq!(enabled, Some(hub), "{account}: {detail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_runs_and_makes_the_feeds_on_a_server_with_accounts() {
    let setup = Setup::new().await;
    a_reads_and_acks_its_feed(&setup).await;
    // The hub connects with its seed, finds the feeds made, and serves.
    let hub = hub_tests::HubBuilder::on(&setup.nats).start().await;
    let position = crate::report_incident(&hub, "accounts-1").await;
    assert!(position >= 2);
    // Without a seed, nobody gets in.
    let anonymous = async_nats::ConnectOptions::new()
        .max_reconnects(Some(0))
        .connect(setup.nats.url())
        .await;
    assert!(anonymous.is_err(), "an unauthenticated client was let in");
    hub.stop().await.expect("hub stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hubs_own_nats_runs_with_accounts_from_keys_made_once() {
    let dir = tempfile::Builder::new()
        .prefix("hub-test-accounts-")
        .tempdir()
        .expect("temp dir");
    let secrets = hub::nats_accounts::secrets_dir(dir.path());
    let seed_file = hub_log::credentials::unit_seed_file(&secrets, A);
    let a_reads_its_consumer = |url: String, seed: String| async move {
        let a = async_nats::ConnectOptions::with_nkey(seed)
            .custom_inbox_prefix(department_inbox_prefix(A))
            .connect(url)
            .await
            .expect("A connects to the hub's own NATS with its seed");
        let a_js = jetstream::ContextBuilder::new()
            .api_prefix(DEPARTMENT_JS_API_PREFIX)
            .build(a);
        let feed: consumer::Consumer<consumer::pull::Config> = a_js
            .get_consumer_from_stream(feed_consumer(A), feed_stream(A))
            .await
            .expect("the hub made A's feed and consumer");
        assert_eq!(feed.cached_info().name, feed_consumer(A));
    };

    let hub = hub_tests::HubBuilder::dev()
        .data_dir(dir.path())
        .start()
        .await;
    let seed = std::fs::read_to_string(&seed_file).expect("A's seed, generated at start");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&seed_file)
            .expect("seed file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    a_reads_its_consumer(hub.nats_url().to_owned(), seed.clone()).await;
    hub.stop().await.expect("hub stops");

    // Started again: the same keys, and A's seed still lets it in.
    let hub = hub_tests::HubBuilder::dev()
        .data_dir(dir.path())
        .start()
        .await;
    let again = std::fs::read_to_string(&seed_file).expect("A's seed");
    assert_eq!(again, seed, "the seed is kept across starts");
    a_reads_its_consumer(hub.nats_url().to_owned(), again).await;
    hub.stop().await.expect("hub stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_accounts_written_for_operators_pass_nats_server_t() {
    let out = tempfile::Builder::new()
        .prefix("hub-test-nats-accounts-")
        .tempdir()
        .expect("temp dir");
    let registry = hub::load_registry(None).expect("demo registry");
    // What `hub nats-accounts --out DIR` writes; written again, the keys are kept.
    let (file, first) = hub::nats_accounts::write(out.path(), &registry).expect("written");
    let (again, second) = hub::nats_accounts::write(out.path(), &registry).expect("again");
    assert_eq!(file, again);
    assert_eq!(first.hub.public_key(), second.hub.public_key());
    for unit in registry.units() {
        let path = hub_log::credentials::unit_seed_file(out.path(), unit.code.as_str());
        assert!(path.is_file(), "{}", path.display());
    }
    // A server configuration as an operator writes it around the generated accounts.
    let config = out.path().join("nats-server.conf");
    std::fs::write(
        &config,
        format!(
            "listen: \"127.0.0.1:-1\"\nhttp: \"127.0.0.1:-1\"\n\
             jetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n\
             include {accounts}\n",
            store = out.path().join("jetstream").display().to_string(),
            accounts = hub::nats_accounts::ACCOUNTS_FILE,
        ),
    )
    .expect("config");
    let binary = hub_log::server::locate_binary().expect("nats-server");
    let checked = std::process::Command::new(binary)
        .arg("-t")
        .arg("-c")
        .arg(&config)
        .output()
        .expect("nats-server -t");
    assert!(
        checked.status.success(),
        "nats-server -t refused the generated accounts:\n{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
