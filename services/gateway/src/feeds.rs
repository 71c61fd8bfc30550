//! `gov.hub.v1.FeedService`: a department's feed as a gRPC server stream.
//!
//! Each subscription reads the department's own feed stream (`FEED_<DEPT>`, which the feed
//! publisher fills with exactly what the department may read, masked) through an ordered
//! consumer of its own, and hands events to the client through a small bounded channel: a
//! slow client holds up its own consumer only, never the publisher, the projector or another
//! subscriber. Every event carries its GOV_EVENTS position; progress messages say how far the
//! subscription stands and its lag behind the log. When a grant the subscription started under
//! is revoked or expires, the stream ends with PERMISSION_DENIED.
//!
//! Events go out in the current version of their type: a message the feed stream took before
//! an upgrade, in an older version, is upcast on the way out (`hub_api::upcast`), and a filter
//! naming an older version of a type matches the type in its current version.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use async_nats::jetstream::message::Message;
use async_nats::jetstream::stream::Stream as JsStream;
use futures::{Stream, StreamExt};
use hub_api::v1::feed_service_server::FeedService;
use hub_api::{ApiError, v1};
use hub_domain::FieldViolation;
use hub_log::Appender;
use hub_log::names::headers::{CE_DATASCHEMA, CE_SCHEMAVERSION, CE_TYPE, HUB_POSITION};
use hub_log::names::{feed_stream, live_feed_subjects};
use hub_projector::feed::{HUB_DISTRICT, HUB_GRANTS, HUB_GRID};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::{debug, warn};

use crate::datasets::{Datasets, Reader};

/// How often a subscription checks its grants and reports progress (at most once a second).
const CHECK_EVERY: Duration = Duration::from_millis(200);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Events queued for one client before its consumer waits.
const QUEUE: usize = 64;

/// The feed service.
#[derive(Clone)]
pub struct Feeds {
    datasets: Datasets,
    log: Appender,
    /// Up to where the feed publisher has every message acknowledged by its stream.
    published: watch::Receiver<u64>,
    /// Ends every subscription (UNAVAILABLE) when the hub stops.
    shutdown: CancellationToken,
}

impl Feeds {
    pub fn new(
        datasets: Datasets,
        log: Appender,
        published: watch::Receiver<u64>,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            datasets,
            log,
            published,
            shutdown,
        }
    }
}

/// What a subscription delivers.
#[derive(Debug, Clone, Default)]
struct Filter {
    event_types: BTreeSet<String>,
    district: String,
    grid: String,
}

impl Filter {
    fn parse(request: &v1::SubscribeRequest) -> Result<Self, ApiError> {
        let mut violations = Vec::new();
        let digits = |value: &str, len: usize| {
            value.is_empty() || (value.len() == len && value.bytes().all(|b| b.is_ascii_digit()))
        };
        if !digits(&request.district_code, 6) {
            violations.push(FieldViolation::new("district_code", "must be 6 digits"));
        }
        if !digits(&request.grid_code, 15) {
            violations.push(FieldViolation::new("grid_code", "must be 15 digits"));
        }
        for event_type in &request.event_types {
            let valid = !event_type.is_empty()
                && event_type.len() <= 128
                && event_type
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._".contains(&b));
            if !valid {
                violations.push(FieldViolation::new(
                    "event_types",
                    "each must be an event type such as gov.hub.case.reported.v2",
                ));
                break;
            }
        }
        if request.start_position > 0 && request.start_time.is_some() {
            violations.push(FieldViolation::new(
                "start_time",
                "give either start_position or start_time, not both",
            ));
        }
        if !violations.is_empty() {
            return Err(ApiError::InvalidArgument(violations));
        }
        Ok(Self {
            // Events are read in the current version of their type: so is a filter.
            event_types: request
                .event_types
                .iter()
                .map(|t| hub_api::upcast::read_as(t).map_or_else(|| t.clone(), |c| c.name.into()))
                .collect(),
            district: request.district_code.clone(),
            grid: request.grid_code.clone(),
        })
    }

    /// Whether an event of `event_type` (as read) in `message` is wanted.
    fn matches(&self, message: &Message, event_type: Option<&str>) -> bool {
        let header = |name: &str| message.headers.as_ref().and_then(|h| h.get(name));
        let is = |name: &str, wanted: &str| {
            wanted.is_empty() || header(name).is_some_and(|v| v.as_str() == wanted)
        };
        (self.event_types.is_empty() || event_type.is_some_and(|t| self.event_types.contains(t)))
            && is(HUB_DISTRICT, &self.district)
            && is(HUB_GRID, &self.grid)
    }
}

/// A feed message's attributes and body in the current version of its event type: as sent
/// when it is current (or its type unknown, or its body beyond its upcaster), else upcast, with
/// `ce-type`, `ce-dataschema` and `ce-schemaversion` those of the current version.
fn current_form(
    headers: Option<&async_nats::HeaderMap>,
    payload: &[u8],
) -> (HashMap<String, String>, Vec<u8>) {
    let mut attributes: HashMap<String, String> = headers
        .map(|h| {
            h.iter()
                .filter_map(|(name, values)| {
                    Some((name.to_string(), values.first()?.as_str().to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    let upcast = attributes
        .get(CE_TYPE)
        .and_then(|t| hub_api::upcast::upcast(t, payload).ok().flatten());
    match upcast {
        Some(current) => {
            let t = current.event_type;
            attributes.insert(CE_TYPE.to_owned(), t.name.to_owned());
            attributes.insert(CE_DATASCHEMA.to_owned(), t.dataschema.to_owned());
            attributes.insert(CE_SCHEMAVERSION.to_owned(), t.schema_version.to_string());
            (attributes, current.body)
        }
        None => (attributes, payload.to_vec()),
    }
}

fn position_of(headers: Option<&async_nats::HeaderMap>) -> Option<u64> {
    headers?.get(HUB_POSITION)?.as_str().parse().ok()
}

/// The first feed stream sequence whose event stands at `position` or later (a binary search
/// over the publisher's own messages on `subjects`, whose positions only grow; purged
/// stretches and an operator's re-deliveries are stepped over).
async fn first_sequence_at(
    stream: &JsStream,
    subjects: &str,
    (first, last): (u64, u64),
    position: u64,
) -> Result<u64, String> {
    let (mut low, mut high) = (first, last + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        match stream
            .get_first_raw_message_by_subject(subjects, middle)
            .await
        {
            Ok(message) if message.sequence >= high => high = middle,
            Ok(message) => {
                let at = position_of(Some(&message.headers)).unwrap_or(0);
                if at >= position {
                    high = middle;
                } else {
                    low = message.sequence + 1;
                }
            }
            // Nothing at or after `middle`.
            Err(_) => high = middle,
        }
    }
    // Sequences start at 1 (an empty stream reports 0 as its first).
    Ok(low.max(1))
}

type Events = Pin<Box<dyn Stream<Item = Result<v1::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FeedService for Feeds {
    type SubscribeStream = Events;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Events>, Status> {
        // One audit record per subscription, its start or its refusal, stored before the
        // stream (or the refusal) is given.
        let who = self.datasets.reader_grpc(&request);
        let start_position = request.get_ref().start_position;
        let opened = self.open(who.clone(), request).await;
        let mut record = hub_audit::record_status(
            who.as_ref().ok(),
            "gov.hub.v1.FeedService/Subscribe",
            opened.as_ref().err(),
        );
        // Where it starts (0: the oldest event the feed holds, or a start time).
        record.position = start_position;
        self.datasets
            .audit()
            .record(record)
            .await
            .map_err(ApiError::from)?;
        opened
    }
}

impl Feeds {
    /// Opens `who`'s subscription.
    async fn open(
        &self,
        who: Result<Reader, ApiError>,
        request: Request<v1::SubscribeRequest>,
    ) -> Result<Response<Events>, Status> {
        let Reader::Department(department) = who? else {
            return Err(ApiError::Unauthenticated(
                "a feed is a department's: identify as the department by client certificate \
                 or signed token"
                    .into(),
            )
            .into());
        };
        let department = department.code.to_string();
        let filter = Filter::parse(request.get_ref())?;
        let unavailable = |e: &dyn std::fmt::Display| {
            warn!(error = %e, "feed subscription cannot start");
            Status::unavailable("the feed cannot be read now; retry")
        };
        // The grants in force as of the log's end now: one approved just before is seen.
        let log_position = self
            .log
            .last_position()
            .await
            .map_err(|e| unavailable(&e))?;
        let grants = self
            .datasets
            .grants_in_force_at(&department, log_position, self.datasets.max_wait())
            .await?;
        let register = self.datasets.grant_register_changes()?;

        let js = self.log.context();
        let mut stream = js
            .get_stream(feed_stream(&department))
            .await
            .map_err(|e| unavailable(&e))?;
        let state = stream
            .info()
            .await
            .map_err(|e| unavailable(&e))?
            .state
            .clone();
        let request = request.into_inner();
        // The feed sequence before the first one it delivers, as far as known.
        let mut seen = state.first_sequence.saturating_sub(1);
        let deliver_policy = match (&request.start_time, request.start_position) {
            (Some(t), _) => {
                let nanos = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
                let start_time =
                    time::OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| {
                        ApiError::InvalidArgument(vec![FieldViolation::new(
                            "start_time",
                            "is not a valid instant",
                        )])
                    })?;
                DeliverPolicy::ByStartTime { start_time }
            }
            (None, 0) => DeliverPolicy::All,
            (None, position) => {
                let start_sequence = first_sequence_at(
                    &stream,
                    &live_feed_subjects(&department),
                    (state.first_sequence, state.last_sequence),
                    position,
                )
                .await
                .map_err(|e| unavailable(&e))?;
                seen = start_sequence.saturating_sub(1);
                DeliverPolicy::ByStartSequence { start_sequence }
            }
        };
        if matches!(deliver_policy, DeliverPolicy::ByStartTime { .. }) {
            seen = 0;
        }
        let consumer = stream
            .create_consumer(OrderedConfig {
                deliver_policy,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable(&e))?;
        let messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let (ended, end) = watch::channel(None);
        let subscription = Subscription {
            ended,
            datasets: self.datasets.clone(),
            log: self.log.clone(),
            published: self.published.clone(),
            department,
            filter,
            grants,
            start: request.start_position,
            stream,
            seen,
            position: request.start_position.saturating_sub(1),
        };
        tokio::spawn(subscription.pump(messages, register, tx, self.shutdown.clone()));
        Ok(Response::new(Box::pin(responses(rx, end))))
    }
}

/// What the client receives: the queued items, unless the subscription was ended (a grant
/// revoked, say), whose status then goes first and the queued items not at all.
fn responses(
    rx: mpsc::Receiver<Result<v1::SubscribeResponse, Status>>,
    end: watch::Receiver<Option<Status>>,
) -> impl Stream<Item = Result<v1::SubscribeResponse, Status>> {
    futures::stream::unfold(
        (rx, end, false, true),
        |(mut rx, mut end, done, mut alive)| async move {
            if done {
                return None;
            }
            let ended = end.borrow_and_update().clone();
            if let Some(status) = ended {
                return Some((Err(status), (rx, end, true, alive)));
            }
            let item = loop {
                tokio::select! {
                    biased;
                    changed = end.changed(), if alive => match changed {
                        Ok(()) => {
                            let ended = end.borrow_and_update().clone();
                            if let Some(status) = ended {
                                return Some((Err(status), (rx, end, true, alive)));
                            }
                        }
                        // The subscription ended by itself: what it queued still goes out.
                        Err(_) => alive = false,
                    },
                    item = rx.recv() => break item,
                }
            };
            item.map(|item| (item, (rx, end, false, alive)))
        },
    )
}

struct Subscription {
    /// Ends the stream at once with a status, ahead of anything queued.
    ended: watch::Sender<Option<Status>>,
    datasets: Datasets,
    log: Appender,
    published: watch::Receiver<u64>,
    department: String,
    filter: Filter,
    /// Every grant in force since it started: it ends when any of them no longer is.
    grants: BTreeSet<String>,
    start: u64,
    stream: JsStream,
    /// The feed stream sequence of the last message received.
    seen: u64,
    /// The position it stands at.
    position: u64,
}

type Sender = mpsc::Sender<Result<v1::SubscribeResponse, Status>>;

impl Subscription {
    async fn pump(
        mut self,
        mut messages: async_nats::jetstream::consumer::pull::Ordered,
        mut register: watch::Receiver<hub_projector::ModelState>,
        tx: Sender,
        shutdown: CancellationToken,
    ) {
        let mut check = tokio::time::interval(CHECK_EVERY);
        let mut last_progress: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = shutdown.cancelled() => {
                    self.end(Status::unavailable("the hub is stopping; resume from the highest position received + 1"));
                    return;
                }
                next = messages.next() => {
                    let message = match next {
                        Some(Ok(message)) => message,
                        Some(Err(err)) => {
                            warn!(error = %err, "feed subscription lost its consumer");
                            self.end(Status::unavailable("the feed was interrupted; resume from the highest position received + 1"));
                            return;
                        }
                        None => return,
                    };
                    if !self.deliver(message, &tx).await {
                        return;
                    }
                }
                _ = register.changed() => {
                    if !self.grants_hold().await {
                        return;
                    }
                }
                _ = check.tick() => {
                    if !self.grants_hold().await {
                        return;
                    }
                    if last_progress.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) {
                        last_progress = Some(Instant::now());
                        if !self.progress(&tx).await {
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Sends one message if it matches; `false` once the client is gone or it must end.
    async fn deliver(&mut self, message: Message, tx: &Sender) -> bool {
        let headers = message.headers.as_ref();
        let position = position_of(headers).unwrap_or(0);
        if let Ok(info) = message.info() {
            self.seen = self.seen.max(info.stream_sequence);
        }
        if position < self.start {
            return true;
        }
        // A masked message sent under a grant not known to be in force: look again; one sent
        // under a grant that has ended since goes no further.
        if let Some(under) = headers.and_then(|h| h.get(HUB_GRANTS)) {
            let unknown =
                |grants: &BTreeSet<String>| under.as_str().split(',').any(|g| !grants.contains(g));
            if unknown(&self.grants) {
                if !self.grants_hold().await {
                    return false;
                }
                if unknown(&self.grants) {
                    self.position = self.position.max(position);
                    return true;
                }
            }
        }
        self.position = self.position.max(position);
        let (attributes, data) = current_form(headers, &message.payload);
        let event_type = attributes.get(CE_TYPE).map(String::as_str);
        if !self.filter.matches(&message, event_type) {
            return true;
        }
        let event = v1::FeedEvent {
            position,
            attributes,
            data,
        };
        // While a slow client holds the queue full, the grants are still checked: a
        // revocation ends the stream at once, whether or not the client reads.
        let permit = loop {
            tokio::select! {
                permit = tx.reserve() => match permit {
                    Ok(permit) => break permit,
                    Err(_) => return false,
                },
                _ = tokio::time::sleep(CHECK_EVERY) => {
                    if !self.grants_hold().await {
                        return false;
                    }
                }
            }
        };
        permit.send(Ok(v1::SubscribeResponse {
            item: Some(v1::subscribe_response::Item::Event(event)),
        }));
        true
    }

    fn end(&self, status: Status) {
        self.ended.send_replace(Some(status));
    }

    /// Whether every grant in force since it started still is (and takes note of new ones);
    /// if not, ends the stream with PERMISSION_DENIED and says `false`.
    async fn grants_hold(&mut self) -> bool {
        let now = match self.datasets.grants_in_force(&self.department).await {
            Ok(now) => now,
            // Fail closed: without the register, a revocation could go unseen.
            Err(err) if !self.grants.is_empty() => {
                debug!(error = ?err, "feed subscription: grants not readable now");
                self.end(Status::unavailable(
                    "the grants this subscription reads under cannot be checked now; resume later",
                ));
                return false;
            }
            Err(_) => return true,
        };
        match self.grants.iter().find(|g| !now.contains(*g)) {
            None => {
                self.grants = now;
                true
            }
            Some(ended) => {
                self.end(Status::permission_denied(format!(
                    "grant {ended} is no longer in force (revoked or expired); subscribe \
                     again to go on with what remains readable"
                )));
                false
            }
        }
    }

    /// Reports how far it stands. Past the last message received, it stands at the
    /// publisher's position once it has received everything the feed held when that position
    /// was read (every message up to it was stored before).
    async fn progress(&mut self, tx: &Sender) -> bool {
        let published = *self.published.borrow();
        if let Ok(info) = self.stream.get_info().await
            && self.seen >= info.state.last_sequence
        {
            self.position = self.position.max(published);
        }
        let log_position = self.log.last_position().await.unwrap_or(self.position);
        let progress = v1::FeedProgress {
            position: self.position,
            log_position,
            lag: log_position.saturating_sub(self.position),
        };
        // Progress is advisory: a client whose queue is full gets the next one.
        !matches!(
            tx.try_send(Ok(v1::SubscribeResponse {
                item: Some(v1::subscribe_response::Item::Progress(progress)),
            })),
            Err(mpsc::error::TrySendError::Closed(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use hub_api::{CASE_REPORTED, CASE_REPORTED_V1, v1};
    use prost::Message as _;

    use super::*;

    #[test]
    fn a_message_sent_before_an_upgrade_goes_out_upcast_and_a_filter_names_the_current_type() {
        // A v1 report as the feed stream took it before the upgrade: no channel.
        let body = v1::CaseReported {
            case_id: "c-1".into(),
            reporter: Some(v1::Reporter {
                kind: v1::ReporterKind::GridWorker as i32,
                grid_worker_id: "GW-1".into(),
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(CE_TYPE, CASE_REPORTED_V1.name);
        headers.insert(CE_SCHEMAVERSION, "1");
        headers.insert(CE_DATASCHEMA, CASE_REPORTED_V1.dataschema);
        headers.insert(HUB_POSITION, "7");
        let (attributes, data) = current_form(Some(&headers), &body);
        assert_eq!(attributes[CE_TYPE], "gov.hub.case.reported.v2");
        assert_eq!(attributes[CE_SCHEMAVERSION], "2");
        assert_eq!(attributes[CE_DATASCHEMA], CASE_REPORTED.dataschema);
        assert_eq!(attributes[HUB_POSITION], "7");
        let read = v1::CaseReported::decode(data.as_slice()).expect("a v2 body");
        assert_eq!(read.channel, v1::ReportChannel::GridPatrol as i32);

        // A current message, and one whose body its upcaster cannot read, go as sent.
        headers.insert(CE_TYPE, CASE_REPORTED.name);
        let (attributes, data) = current_form(Some(&headers), &body);
        assert_eq!(
            (attributes[CE_TYPE].as_str(), data),
            (CASE_REPORTED.name, body)
        );
        headers.insert(CE_TYPE, CASE_REPORTED_V1.name);
        let (attributes, data) = current_form(Some(&headers), b"\xff\xff");
        assert_eq!(
            (attributes[CE_TYPE].as_str(), data.as_slice()),
            (CASE_REPORTED_V1.name, &b"\xff\xff"[..])
        );

        let filter = Filter::parse(&v1::SubscribeRequest {
            event_types: vec![
                CASE_REPORTED_V1.name.into(),
                "gov.hub.case.closed.v1".into(),
            ],
            ..Default::default()
        })
        .expect("a valid filter");
        assert_eq!(
            filter.event_types,
            BTreeSet::from([
                "gov.hub.case.closed.v1".to_owned(),
                "gov.hub.case.reported.v2".to_owned()
            ])
        );
    }
}
