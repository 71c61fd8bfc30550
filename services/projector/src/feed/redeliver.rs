//! Re-delivery: a department's view of a selection of the log, sent into its feed again.
//!
//! What the department was sent is decided again by the publisher's own code ([`Deciding`]),
//! replayed from position 1 into a scratch store: who an event concerns and which grants
//! covered it are learnt from the log in order, exactly as the live publisher learnt them, so
//! a department receives again what it received then, masked as then, and nothing it did not.
//! Only the selected events' messages are kept, and no purge. Whether a grant was in force is
//! decided at each event's stored time, as the live publisher decided it when the event was
//! new. [`send`] then sends what was decided, in log order, withholding a message masked
//! under a grant that is no longer in force (by the log up to the re-delivery's end, and by
//! the live publisher's record, read each round): a re-delivery never says more than the
//! department may read today. After each round is stored the live record is read once more:
//! a grant that ended meanwhile has its re-delivered messages purged again, whichever of the
//! two purges ran first.
//!
//! Each message goes on `<feed subject>.redelivered` (so the publisher's own messages keep
//! positions that only grow) with the event's headers, its `hub-position`, a `hub-redelivery`
//! header naming the re-delivery and `Nats-Msg-Id` `<event id>/<re-delivery>`: the same
//! re-delivery asked again inside the feed's duplicate window stores nothing twice, and the
//! receiver de-duplicates by `ce-id` beyond it. A care event is audited before it is sent, as
//! the publisher audits its own messages.

use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream;
use hub_audit::Audit;
use hub_log::names::headers::{CE_ID, CE_TRACEPARENT, MSG_ID};
use hub_log::names::redelivered_subject;
use hub_log::{StoredEvent, Unreadable};
use hub_store::{Batch, ReadModelStore};
use jiff::Timestamp;
use tracing::Instrument;

use super::outbox::{
    OUTBOX_PREFIX, Outgoing, carried_traceparent, department_of, grants_in_force, outbox_key,
    position_of,
};
use super::{FEED_MODEL, FeedPublisher, HUB_GRANTS};
use crate::projection::{Projection, ProjectionError};
use hub_domain::clock::Clock;
use hub_log::names::{feed_subject, parse_feed_subject};

/// Header of a re-delivered feed message: the re-delivery that sent it.
pub const HUB_REDELIVERY: &str = "hub-redelivery";

/// Messages sent (and acknowledged) at a time.
const ROUND: usize = 256;

/// Whether an event is one a re-delivery selects.
pub type Selects = Box<dyn Fn(&StoredEvent) -> bool + Send + Sync>;

/// The time of the event being decided: the publisher's clock while it decides again.
#[derive(Debug)]
struct EventTime(std::sync::Mutex<Timestamp>);

impl Clock for EventTime {
    fn now(&self) -> Timestamp {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The feed publisher deciding for one department only, at each event's stored time,
/// keeping in its outbox the messages of the events `selects` takes and no purge.
pub struct Deciding {
    publisher: FeedPublisher,
    time: Arc<EventTime>,
    department: String,
    selects: Selects,
}

impl Deciding {
    pub fn new(department: &str, selects: Selects) -> Self {
        let time = Arc::new(EventTime(std::sync::Mutex::new(Timestamp::UNIX_EPOCH)));
        Self {
            publisher: FeedPublisher::new([department.to_owned()], time.clone()),
            time,
            department: department.to_owned(),
            selects,
        }
    }
}

impl Projection for Deciding {
    fn name(&self) -> &'static str {
        FEED_MODEL
    }

    fn filter_subject(&self) -> String {
        self.publisher.filter_subject()
    }

    fn apply(&self, stored: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        *self
            .time
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = stored.stored_at;
        self.publisher.apply(stored, batch)?;
        // The live feed was purged when it should have been; a re-delivery purges nothing.
        batch.delete(outbox_key(
            stored.position,
            &format!("~purge/{}", self.department),
        ));
        if !(self.selects)(stored) {
            batch.delete(outbox_key(stored.position, &self.department));
        }
        Ok(())
    }

    fn apply_unreadable(
        &self,
        unreadable: &Unreadable,
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        self.publisher.apply_unreadable(unreadable, batch)
    }
}

/// Where a re-delivery's messages go, and what decides whether each may still go.
pub struct Redelivery {
    pub js: jetstream::Context,
    pub audit: Audit,
    /// The live publisher's store: its record of every grant.
    pub live: Arc<dyn ReadModelStore>,
    /// The clock the live publisher reads.
    pub clock: Arc<dyn Clock>,
    /// Names the re-delivery in every message it sends.
    pub id: String,
}

/// How far a re-delivery has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sent {
    /// Messages the feed stored.
    pub sent: u64,
    /// Messages the feed had already under this re-delivery (asked again).
    pub duplicates: u64,
    /// Messages masked under a grant no longer in force: not sent, or purged again.
    pub withheld: u64,
    /// The first and last positions sent (0: none).
    pub first: u64,
    pub last: u64,
    /// The position of the last message looked at.
    pub reached: u64,
}

/// One message to send again.
struct Message {
    subject: String,
    headers: HeaderMap,
}

impl Redelivery {
    /// The headers and subject `message` goes out with again.
    fn again(&self, subject: &str, headers: &[(String, String)]) -> Message {
        let event_id = headers
            .iter()
            .find(|(name, _)| name == CE_ID)
            .map_or("", |(_, id)| id.as_str());
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            if name != MSG_ID {
                map.insert(name.as_str(), value.as_str());
            }
        }
        map.insert(MSG_ID, format!("{event_id}/{}", self.id).as_str());
        map.insert(HUB_REDELIVERY, self.id.as_str());
        Message {
            subject: redelivered_subject(subject),
            headers: map,
        }
    }
}

impl Redelivery {
    /// The producer span of a round, linked to each message's original trace.
    fn round_span(&self, round: &[Sending]) -> tracing::Span {
        let department = round
            .first()
            .map_or("", |sending| department_of(&sending.message.subject));
        let destination = format!("gov.feed.{department}");
        let span = hub_telemetry::producer_span!(destination, destination);
        span.record("messaging.batch.message_count", round.len());
        for sending in round {
            hub_telemetry::trace::link_to(&span, carried_traceparent(&sending.headers));
        }
        span
    }
}

/// One message of a round, and whether it was masked under grants.
struct Sending {
    position: u64,
    message: Message,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
}

/// Sends what [`Deciding`] left in `decided`'s outbox, a round at a time in log order, and
/// reports after each round through `progress`; stops between rounds once `stopped` says so.
pub async fn send(
    redelivery: &Redelivery,
    decided: Arc<dyn ReadModelStore>,
    mut progress: impl FnMut(&Sent),
    stopped: impl Fn() -> bool,
) -> Result<Sent, String> {
    let mut done = Sent::default();
    let mut after: Option<Vec<u8>> = None;
    while !stopped() {
        let entries = {
            let (store, after) = (decided.clone(), after.clone());
            tokio::task::spawn_blocking(move || store.scan(OUTBOX_PREFIX, after.as_deref(), ROUND))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?
        };
        let Some((last_key, _)) = entries.last() else {
            break;
        };
        after = Some(last_key.clone());
        let now = redelivery.clock.now();
        let mut records = Vec::new();
        let mut round = Vec::new();
        for (key, value) in entries {
            let position = position_of(&key).unwrap_or(0);
            done.reached = done.reached.max(position);
            let Some(Outgoing::Publish {
                stream,
                subject,
                headers,
                body,
                disclosure,
            }) = Outgoing::decode(&value)
            else {
                continue;
            };
            if !grants_in_force(&*decided, &headers, now)?
                || !grants_in_force(&*redelivery.live, &headers, now)?
            {
                done.withheld += 1;
                continue;
            }
            if let Some(disclosure) = disclosure {
                let department = department_of(&subject);
                let mut record = disclosure.record((&stream, department), position, &headers);
                // Which re-delivery sent it again (the disclosure ledger keeps a person's first
                // delivery of an event; the audit log keeps every one).
                let again = format!("redelivery:{}", redelivery.id);
                record.purpose = match record.purpose.as_str() {
                    "" => again,
                    purpose => format!("{purpose},{again}"),
                };
                records.push(record);
            }
            round.push(Sending {
                position,
                message: redelivery.again(&subject, &headers),
                body,
                headers,
            });
        }
        // A message is never out without its record.
        let audit = &redelivery.audit;
        futures::future::try_join_all(records.into_iter().map(|record| audit.record(record)))
            .await
            .map_err(|e| format!("audit: {e}"))?;
        // Tests hold a re-delivery here, its grants checked and its messages not yet sent.
        while hub_store::failpoint::holds("redelivery-hold", &redelivery.id) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // A replay: the round's span is part of the operator's call (the task runs under
        // it) and links to each event's original; the messages carry the round's context.
        let span = redelivery.round_span(&round);
        let own = hub_telemetry::trace::traceparent(&span);
        let mut acks = Vec::with_capacity(round.len());
        for sending in &round {
            let mut headers = sending.message.headers.clone();
            if let Some(own) = &own {
                headers.insert(CE_TRACEPARENT, own.as_str());
            }
            let ack = redelivery
                .js
                .publish_with_headers(
                    sending.message.subject.clone(),
                    headers,
                    sending.body.clone().into(),
                )
                .instrument(span.clone())
                .await
                .map_err(|e| format!("publish: {e}"))?;
            acks.push(ack);
        }
        for (sending, ack) in round.iter().zip(acks) {
            let ack = ack.await.map_err(|e| format!("feed ack: {e}"))?;
            if ack.duplicate {
                done.duplicates += 1;
            } else {
                done.sent += 1;
            }
            if done.first == 0 {
                done.first = sending.position;
            }
            done.last = sending.position;
        }
        recall_ended(redelivery, &round, &mut done).await?;
        progress(&done);
    }
    Ok(done)
}

/// Purges again, from the feeds they went to, the re-delivered messages of `round` masked
/// under a grant that ended while the round was sent: the live publisher's purge may have
/// run before they were stored.
async fn recall_ended(
    redelivery: &Redelivery,
    round: &[Sending],
    done: &mut Sent,
) -> Result<(), String> {
    let now = redelivery.clock.now();
    let mut purges = std::collections::BTreeSet::new();
    for sending in round {
        let masked = sending.headers.iter().any(|(name, _)| name == HUB_GRANTS);
        if masked && !grants_in_force(&*redelivery.live, &sending.headers, now)? {
            done.withheld += 1;
            done.sent = done.sent.saturating_sub(1);
            if let Some((department, kind, _)) = parse_feed_subject(&sending.message.subject) {
                purges.insert((department.to_owned(), kind.to_owned()));
            }
        }
    }
    for (department, kind) in purges {
        let stream = redelivery
            .js
            .get_stream(hub_log::names::feed_stream(&department))
            .await
            .map_err(|e| format!("purge: {e}"))?;
        let subject = redelivered_subject(&feed_subject(&department, &kind, "*"));
        stream
            .purge()
            .filter(&subject)
            .await
            .map_err(|e| format!("purge {subject}: {e}"))?;
    }
    Ok(())
}
