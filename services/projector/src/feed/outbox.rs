//! The feed publisher's outbox: messages decided with the checkpoint, sent after it.
//!
//! Entries live under `o/<position, 20 digits>/<department>` (a purge under
//! `o/<position>/~purge/<department>`, after that position's messages), so a scan returns them
//! in log order. [`drain`] sends them in that order, waits for every acknowledgement of a
//! round, and only then forgets them: after a crash the unacknowledged ones are sent again
//! with the same `Nats-Msg-Id`.
//!
//! Two checks at sending time keep a late send from saying more than the log now allows:
//! a message masked under grants is sent only if every one of them is still in force (a
//! revocation stored after it, whose purge has not run yet, stops it: a purge cannot call
//! back what a live subscriber already heard); and a message at or below the position its
//! feed already holds is not sent again (a resend after a crash or a rebuilt publisher
//! beyond the duplicate window), so positions in a feed only grow.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream;
use async_nats::jetstream::kv;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, warn};

use super::HUB_GRANTS;
use super::route::{FeedGrant, grant_key};
use crate::model::ReadModel;
use hub_api::v1::AuditRecord;
use hub_audit::Audit;
use hub_audit::ledger::FEED_ACTION_PREFIX;
use hub_domain::clock::Clock;
use hub_log::lease;
use hub_log::names::headers::CE_ID;
use hub_log::names::headers::CE_TRACEPARENT;
use hub_log::names::headers::HUB_POSITION;
use hub_log::names::live_feed_subjects;

/// Key prefix of the outbox.
pub const OUTBOX_PREFIX: &[u8] = b"o/";

/// Most entries sent in one round.
const ROUND: usize = 512;

/// One message to send, or a purge to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outgoing {
    Publish {
        stream: String,
        subject: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// For a care event: whose data it carries, recorded in the audit log (and so the
        /// disclosure ledger) before it is sent. Absent in entries written before it existed.
        #[serde(default)]
        disclosure: Option<FeedDisclosure>,
    },
    /// Removes every message on `subject` (a wildcard) from `stream`.
    Purge { stream: String, subject: String },
}

/// What a feed message discloses of a care record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedDisclosure {
    pub care_id: String,
    /// The dataset whose grants cover it.
    pub dataset: String,
    /// The personal fields it carries in clear.
    pub clear_fields: Vec<String>,
    /// The grants it is sent under (none for the owner's own feed).
    pub grants: Vec<String>,
}

impl FeedDisclosure {
    /// The audit record of sending it as message `position` of `stream` to `department`.
    pub(super) fn record(
        self,
        (stream, department): (&str, &str),
        position: u64,
        headers: &[(String, String)],
    ) -> AuditRecord {
        let action = format!("{FEED_ACTION_PREFIX}{stream}");
        let event_id = headers
            .iter()
            .find(|(name, _)| name == CE_ID)
            .map(|(_, id)| id.clone());
        // Sent under grants, for their purposes, named as a read under a grant names its own.
        let purpose = self
            .grants
            .iter()
            .map(|g| format!("grant:{g}"))
            .collect::<Vec<_>>()
            .join(",");
        AuditRecord {
            department: department.to_owned(),
            purpose,
            dataset: self.dataset,
            aggregate: format!("care/{}", self.care_id),
            count: 1,
            grants: self.grants,
            position,
            persons: vec![self.care_id],
            clear_fields: self.clear_fields,
            event_ids: event_id.into_iter().collect(),
            ..hub_audit::record_status(None, &action, None)
        }
    }
}

/// First byte of an entry kept as postcard. Entries written before were JSON, which starts
/// with `{`: both are read. Postcard stores fields by position, so `#[serde(default)]` does
/// not keep older entries readable: a change to the layout of [`Outgoing`] or
/// [`FeedDisclosure`] takes a new tag, and keeps a decoder for this one.
const POSTCARD_ENTRY: u8 = 1;

impl Outgoing {
    /// The entry as stored: postcard behind a tag byte. JSON wrote a body's bytes as a list of
    /// numbers, about three times its size, and a hub catching up holds many entries at once.
    pub fn encode(&self) -> Vec<u8> {
        // Serialising plain strings and bytes into a vector cannot fail.
        postcard::to_extend(self, vec![POSTCARD_ENTRY]).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (&POSTCARD_ENTRY, rest) => postcard::from_bytes(rest).ok(),
            _ => serde_json::from_slice(bytes).ok(),
        }
    }
}

pub fn outbox_key(position: u64, suffix: &str) -> Vec<u8> {
    format!("o/{position:020}/{suffix}").into_bytes()
}

/// The log position an outbox key was written for.
pub(super) fn position_of(key: &[u8]) -> Option<u64> {
    std::str::from_utf8(key.get(2..22)?).ok()?.parse().ok()
}

/// The instance that sends: the holder of the feeds lease (`held`: 0 when not, else which
/// time it took it), and where the holders record the last outbox entry they sent.
pub struct Duty {
    pub held: watch::Receiver<u64>,
    pub marks: kv::Store,
    /// The mark's key, [`sent_mark_key`] of the log.
    pub mark_key: String,
}

/// Key of the feeds' mark in the marks bucket: the last outbox key whose message (or purge)
/// the holder of the duty has had acknowledged, for the log identified by `log_identity`
/// (the events stream's creation), so a mark of an earlier log never applies to a new one.
/// Outbox keys name a position of the log and a department (or a purge), so they sort the
/// same on every instance; which entries an instance holds may differ (a grant's expiry is
/// judged by the clock when the event is applied), but whatever sorts at or below the mark
/// was the holder's to send or skip, and every instance forgets it.
pub fn sent_mark_key(log_identity: &str) -> String {
    format!("feeds.sent.{log_identity}")
}

/// How often the holder records how far it has sent, besides after every purge.
const MARK_EVERY: Duration = Duration::from_millis(500);

/// Sends the outbox of `model` while this instance holds the feeds duty, until `shutdown`,
/// and reports through `published` the position up to which every feed message has been
/// acknowledged by its stream.
///
/// Standing by, it forgets what the holder has sent (up to the mark), so its outbox stays
/// small. Taking over, it reads the mark from the bucket's leader and never sends an entry
/// at or below it, even one its own feeds model decides only later: what an earlier holder
/// sent is not sent again, and no purge it ran is run again over messages sent after it.
pub async fn drain(
    (js, audit): (jetstream::Context, Audit),
    model: ReadModel,
    clock: std::sync::Arc<dyn Clock>,
    (published, mut duty): (watch::Sender<u64>, Duty),
    shutdown: CancellationToken,
) {
    let mut changes = model.subscribe();
    let mut backoff = Duration::from_millis(50);
    let mut sender = Sender {
        js,
        audit,
        clock,
        last: HashMap::new(),
        floor: Vec::new(),
    };
    let advance = |to: u64| {
        published.send_if_modified(|p| {
            let moved = to > *p;
            *p = (*p).max(to);
            moved
        });
    };
    // Which taking of the lease it sends under (0: none yet), started after the mark.
    let mut sending = 0;
    // The last key sent and not yet recorded as the mark; whether it must be before going on.
    let mut unmarked: Option<Vec<u8>> = None;
    let mut must_mark = false;
    let mut marked_at = tokio::time::Instant::now();
    loop {
        // A lease task that has ended (it panicked) holds nothing.
        let held = if duty.held.has_changed().is_err() {
            0
        } else {
            *duty.held.borrow_and_update()
        };
        if held == 0 {
            // Leaving the holder's part: what it sent is recorded (the mark only moves
            // forward), so the next holder does not send it again.
            if sending != 0
                && let Some(key) = unmarked.take()
                && let Err(reason) = lease::advance_mark(&duty.marks, &duty.mark_key, &key).await
            {
                warn!(reason = %reason, "feed publisher: could not record how far it sent before standing by");
            }
            must_mark = false;
            sending = 0;
            match follow(&duty, &model).await {
                Ok((to, _)) => advance(to),
                Err(reason) => {
                    warn!(reason = %reason, "feed publisher: standing by, could not read the mark")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                held = duty.held.changed() => if held.is_err() { shutdown.cancelled().await; return },
                // The mark is read once a second, not on every batch the model applies.
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let step: Result<(), String> = async {
            if sending != held {
                // Taking over (again): after what the last holder sent, with the feeds asked
                // afresh.
                let (to, mark) = follow(&duty, &model).await?;
                advance(to);
                sender.last.clear();
                sender.floor = mark;
                sending = held;
            }
            if let Some(key) = unmarked.as_ref()
                && (must_mark || marked_at.elapsed() >= MARK_EVERY)
            {
                lease::advance_mark(&duty.marks, &duty.mark_key, key).await?;
                unmarked = None;
                must_mark = false;
                marked_at = tokio::time::Instant::now();
            }
            Ok(())
        }
        .await;
        if let Err(reason) = step {
            warn!(reason = %reason, ?backoff, "feed publisher: could not read or record how far the feeds are sent; retrying");
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
            continue;
        }
        if shutdown.is_cancelled() {
            // What was sent is recorded, so whoever takes over starts after it.
            if let Some(key) = unmarked.take()
                && let Err(reason) = lease::advance_mark(&duty.marks, &duty.mark_key, &key).await
            {
                warn!(reason = %reason, "feed publisher: could not record how far it sent before stopping");
            }
            return;
        }
        // The lease may have gone (or been lost and taken again) while the mark was recorded.
        if duty.held.has_changed().is_err() || *duty.held.borrow() != sending {
            continue;
        }
        // Read before the outbox: whatever was decided up to here is in this round or sent.
        let decided = model.state().position;
        match sender.round(&model).await {
            Ok(Some(sent)) => {
                advance(sent.pending_from.saturating_sub(1));
                // A purge is recorded before anything after it is sent, so a later holder
                // never runs it again over those messages.
                must_mark |= sent.purged;
                unmarked = Some(sent.last_key);
                backoff = Duration::from_millis(50);
                continue;
            }
            Ok(None) => {
                advance(decided);
                backoff = Duration::from_millis(50);
                // Idle: record how far it has got now rather than later.
                if unmarked.is_some() {
                    must_mark = true;
                    continue;
                }
                // Anything new may have landed while this round ran; look once more first.
                if changes.has_changed().unwrap_or(false) {
                    changes.borrow_and_update();
                    continue;
                }
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    // The lease's task has ended: nothing says this instance holds it now.
                    held = duty.held.changed() => if held.is_err() { shutdown.cancelled().await },
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
            Err(reason) => {
                // What the failed round sent may not be stored: ask the feeds again.
                sender.last.clear();
                warn!(reason = %reason, ?backoff, "feed publisher: sending failed; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Standing by (or taking over): forgets every outbox entry at or before the holder's mark;
/// returns the position up to which this instance's outbox is sent, and the mark.
async fn follow(duty: &Duty, model: &ReadModel) -> Result<(u64, Vec<u8>), String> {
    let decided = model.state().position;
    let mark = lease::mark(&duty.marks, &duty.mark_key).await?;
    let store = model.store();
    let floor = mark.clone();
    let sent = tokio::task::spawn_blocking(move || -> Result<u64, hub_store::StoreError> {
        loop {
            let entries = store.scan(OUTBOX_PREFIX, None, ROUND)?;
            let done: Vec<Vec<u8>> = entries
                .iter()
                .map(|(key, _)| key)
                .take_while(|key| key.as_slice() <= floor.as_slice())
                .cloned()
                .collect();
            if done.is_empty() {
                return Ok(entries
                    .first()
                    .and_then(|(key, _)| position_of(key))
                    .map_or(decided, |p| p.saturating_sub(1).min(decided)));
            }
            store.forget(done)?;
        }
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    Ok((sent, mark))
}

/// What a round sent.
struct Sent {
    /// Entries from this position on may remain.
    pending_from: u64,
    /// The last key it sent and forgot.
    last_key: Vec<u8>,
    /// Whether it was a purge.
    purged: bool,
}

struct Sender {
    js: jetstream::Context,
    /// Records each care event before it is sent.
    audit: Audit,
    clock: std::sync::Arc<dyn Clock>,
    /// The last position each feed stream holds, as far as known.
    last: HashMap<String, u64>,
    /// Outbox keys at or below this were done by an earlier holder of the duty: forgotten
    /// unsent, even those this instance decides only now (its feeds model behind the mark).
    floor: Vec<u8>,
}

/// A feed message's headers, and the producer span (`publish gov.feed.<dept>`) that sends
/// it: a child of the append that stored the event, and linked to it, whose context the
/// message carries on in `ce-traceparent` to the department.
pub(super) fn feed_headers(
    headers: &[(String, String)],
    subject: &str,
) -> (HeaderMap, tracing::Span) {
    let destination = format!("gov.feed.{}", department_of(subject));
    let span = hub_telemetry::producer_span!(destination, subject);
    hub_telemetry::trace::continue_from(&span, carried_traceparent(headers));
    let own = hub_telemetry::trace::traceparent(&span);
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        match &own {
            Some(own) if name == CE_TRACEPARENT => map.insert(name.as_str(), own.as_str()),
            _ => map.insert(name.as_str(), value.as_str()),
        }
    }
    (map, span)
}

/// A feed message stored (`hub_feed_messages_published_total`).
fn count_published(department: String) {
    hub_telemetry::metrics().feed_published.add(
        1,
        &[hub_telemetry::metrics::label("department", department)],
    );
}

/// The `ce-traceparent` an outbox entry carries from its event ("" when none).
pub(super) fn carried_traceparent(headers: &[(String, String)]) -> &str {
    headers
        .iter()
        .find(|(name, _)| name == CE_TRACEPARENT)
        .map_or("", |(_, value)| value.as_str())
}

/// The department a feed subject (`gov.feed.<department>.…`) goes to.
pub(super) fn department_of(subject: &str) -> &str {
    subject
        .strip_prefix("gov.feed.")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or_default()
}

impl Sender {
    /// The position of the last message `stream` holds of the publisher's own (0: none;
    /// an operator's re-deliveries, with lower positions, are not counted), asked once,
    /// then kept.
    async fn last_in(&mut self, stream: &str, subject: &str) -> Result<u64, String> {
        if let Some(last) = self.last.get(stream) {
            return Ok(*last);
        }
        let department = department_of(subject);
        let handle = self
            .js
            .get_stream(stream)
            .await
            .map_err(|e| format!("feed {stream}: {e}"))?;
        let last = match handle
            .get_last_raw_message_by_subject(&live_feed_subjects(department))
            .await
        {
            Ok(message) => message
                .headers
                .get(HUB_POSITION)
                .and_then(|p| p.as_str().parse().ok())
                .unwrap_or(0),
            Err(err)
                if err.kind()
                    == async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound =>
            {
                0
            }
            Err(err) => return Err(format!("feed {stream}: {err}")),
        };
        self.last.insert(stream.to_owned(), last);
        Ok(last)
    }

    async fn round(&mut self, model: &ReadModel) -> Result<Option<Sent>, String> {
        round(self, model).await
    }
}

/// Whether every grant a masked message was decided under is in force at `now`, by the
/// publisher's own record of the grants in `store`.
pub(super) fn grants_in_force(
    store: &dyn hub_store::ReadModelStore,
    headers: &[(String, String)],
    now: jiff::Timestamp,
) -> Result<bool, String> {
    let Some((_, grants)) = headers.iter().find(|(name, _)| name == HUB_GRANTS) else {
        return Ok(true);
    };
    for id in grants.split(',') {
        let grant: Option<FeedGrant> = store
            .get(&grant_key(id))
            .map_err(|e| e.to_string())?
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if !grant.is_some_and(|g| g.in_force(now)) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// What one outbox entry comes to in a round.
enum Step {
    Publish {
        subject: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Purge {
        stream: String,
        subject: String,
    },
    /// Sent before, or no longer allowed: forgotten unsent.
    Skip,
}

/// Sends one round of the outbox. `Ok(None)`: it was empty; `Ok(Some(sent))`: entries were
/// sent and forgotten.
///
/// The round is decided first, then the care events it sends are recorded in the audit log
/// (one batch, awaited), then it is sent: a message is never out without its record. After a
/// crash between the two, the record is made again when the message is sent again (the
/// ledger enters a delivery once, by department, event id and person).
async fn round(sender: &mut Sender, model: &ReadModel) -> Result<Option<Sent>, String> {
    let store = model.store();
    let entries = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.scan(OUTBOX_PREFIX, None, ROUND))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?
    };
    if entries.is_empty() {
        return Ok(None);
    }
    let mut entries: Vec<(Vec<u8>, Option<Outgoing>)> = entries
        .into_iter()
        .map(|(key, value)| {
            let decoded = Outgoing::decode(&value);
            (key, decoded)
        })
        .collect();
    // A purge goes in a round of its own, after a round of the messages before it: a round is
    // forgotten (flushed) before the next is decided, so a round retried after a failure never
    // runs a purge again over messages sent after it (which would remove them for good).
    if let Some(at) = entries
        .iter()
        .position(|(_, o)| matches!(o, Some(Outgoing::Purge { .. })))
    {
        entries.truncate(at.max(1));
    }
    let sent: Vec<Vec<u8>> = entries.iter().map(|(key, _)| key.clone()).collect();
    let last_key = sent.last().cloned().unwrap_or_default();
    let next = position_of(&last_key).unwrap_or(0);
    let purged = matches!(entries.first(), Some((_, Some(Outgoing::Purge { .. }))));
    let mut steps = Vec::with_capacity(entries.len());
    let mut records = Vec::new();
    for (key, decoded) in entries {
        let step = match decoded {
            _ if key.as_slice() <= sender.floor.as_slice() => Step::Skip,
            Some(Outgoing::Publish {
                stream,
                subject,
                headers,
                body,
                disclosure,
            }) => {
                let position = position_of(&key).unwrap_or(0);
                let last = sender.last_in(&stream, &subject).await?;
                let allowed = grants_in_force(&*store, &headers, sender.clock.now())?;
                if position <= last || !allowed {
                    Step::Skip
                } else {
                    if let Some(disclosure) = disclosure {
                        let department = department_of(&subject);
                        // Traced under the event it discloses.
                        let context =
                            hub_telemetry::trace::context_of(carried_traceparent(&headers));
                        records.push((
                            disclosure.record((&stream, department), position, &headers),
                            context,
                        ));
                    }
                    sender.last.insert(stream, position);
                    Step::Publish {
                        subject,
                        headers,
                        body,
                    }
                }
            }
            Some(Outgoing::Purge { stream, subject }) => Step::Purge { stream, subject },
            // Written by this code, so unreadable only if corrupted: not worth halting feeds.
            None => {
                warn!("feed publisher: an unreadable outbox entry is dropped");
                Step::Skip
            }
        };
        steps.push(step);
    }
    let audit = &sender.audit;
    futures::future::try_join_all(
        records
            .into_iter()
            .map(|(record, context)| audit.record_in(record, context)),
    )
    .await
    .map_err(|e| format!("audit: {e}"))?;
    hub_store::failpoint::crash("feed-after-audit");
    let mut acks = Vec::new();
    for step in steps {
        match step {
            Step::Skip => {}
            Step::Publish {
                subject,
                headers,
                body,
            } => {
                let department = department_of(&subject).to_owned();
                let (map, span) = feed_headers(&headers, &subject);
                let ack = sender
                    .js
                    .publish_with_headers(subject, map, body.into())
                    .instrument(span)
                    .await
                    .map_err(|e| format!("publish: {e}"))?;
                acks.push((ack, department));
            }
            Step::Purge { stream, subject } => {
                // Everything sent before the purge is stored first, so the purge covers it.
                for (ack, department) in acks.drain(..) {
                    ack.await.map_err(|e| format!("feed ack: {e}"))?;
                    count_published(department);
                }
                let stream = sender
                    .js
                    .get_stream(&stream)
                    .await
                    .map_err(|e| format!("purge {stream}: {e}"))?;
                let purged = stream
                    .purge()
                    .filter(&subject)
                    .await
                    .map_err(|e| format!("purge {subject}: {e}"))?;
                debug!(subject, purged = purged.purged, "feed purged");
            }
        }
    }
    for (ack, department) in acks {
        ack.await.map_err(|e| format!("feed ack: {e}"))?;
        count_published(department);
    }
    hub_store::failpoint::crash("feed-after-publish");
    tokio::task::spawn_blocking(move || {
        store.forget(sent)?;
        store.flush()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    Ok(Some(Sent {
        pending_from: next,
        last_key,
        purged,
    }))
}
