//! The feed publisher: each department's permitted, masked view of the log, written to its
//! own stream `FEED_<DEPT>` on `gov.feed.<department>.<aggregate type>.<aggregate id>`.
//!
//! It is a projection over the whole log with a transactional outbox: applying an event
//! decides who receives it and in which view ([`route`]), masks it ([`mask`]) and stores each
//! outgoing message under `o/<position>/<department>` in the same sled batch as its
//! checkpoint; [`outbox::drain`] publishes what the outbox holds, in order, and forgets each
//! message once its feed stream has acknowledged it. So a crash at any instant loses nothing
//! (an unsent message is still in the outbox) and a message sent twice carries the same
//! `Nats-Msg-Id` (the event id): the feed stream drops it inside its duplicate window, and a
//! receiver de-duplicates by `ce-id` beyond it.
//!
//! Every message is a CloudEvent in binary mode: the event's `ce-*` attributes except the
//! hub's internal ones (request id, command hash, correlation and causation ids), the body as
//! the owner or the grant lets it out, and `hub-position`, the event's GOV_EVENTS position;
//! a masked message also names the grants it was sent under and the fields masked or withheld.
//! When a grant is revoked or expires, and no other grant of the department covers the
//! dataset, the department's feed is purged of that dataset's events.

pub mod mask;
pub mod outbox;
pub mod redeliver;
pub mod route;

use std::collections::BTreeSet;
use std::sync::Arc;

use hub_api::aggregate::{Aggregate, Care, Case, Grant};
use hub_domain::care::CareEvent;
use hub_domain::clock::Clock;
use hub_domain::grant::GrantEvent;
use hub_log::names::headers::HUB_POSITION;
use hub_log::names::{feed_stream, feed_subject, parse_event_subject};
use hub_log::{StoredEvent, Unreadable};
use hub_store::Batch;
use tracing::warn;

use self::mask::mask_care_event;
use self::outbox::{FeedDisclosure, Outgoing, outbox_key};
use self::route::{
    Facts, FeedGrant, GRANTS_PREFIX, View, deliveries, facts_key, grant_after, grant_key,
    learn_from_case,
};
use crate::datasets::care::ROSTER;
use crate::projection::{Projection, ProjectionError};

/// The publisher's read model (its state and outbox), and its consumer's name.
pub const FEED_MODEL: &str = "feeds";

/// Header: the district of the event's case or care record, when known.
pub const HUB_DISTRICT: &str = "hub-district";
/// Header: the grid of the event's case, when known (a grid incident).
pub const HUB_GRID: &str = "hub-grid";
/// Header of a masked message: the grants it was sent under, comma-separated.
pub const HUB_GRANTS: &str = "hub-grants";
/// Header of a masked message: the fields shown masked, comma-separated.
pub const HUB_MASKED: &str = "hub-masked";
/// Header of a masked message: the fields left out, comma-separated.
pub const HUB_WITHHELD: &str = "hub-withheld";

/// The dataset whose grants cover an aggregate type's events, if any.
fn covering_dataset(aggregate_type: &str) -> Option<&'static str> {
    (aggregate_type == Care::TYPE).then_some(ROSTER.id)
}

/// The aggregate types whose events a grant on `dataset` covers.
fn covered_types(dataset: &str) -> &'static [&'static str] {
    if dataset == ROSTER.id {
        &[Care::TYPE]
    } else {
        &[]
    }
}

pub struct FeedPublisher {
    /// The units with a feed; anyone else named by an event gets nothing.
    units: BTreeSet<String>,
    clock: Arc<dyn Clock>,
}

impl FeedPublisher {
    pub fn new(units: impl IntoIterator<Item = String>, clock: Arc<dyn Clock>) -> Self {
        Self {
            units: units.into_iter().collect(),
            clock,
        }
    }

    fn load<T: serde::de::DeserializeOwned>(
        batch: &Batch<'_>,
        key: &[u8],
    ) -> Result<Option<T>, ProjectionError> {
        match batch.get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| ProjectionError::CorruptRow(format!("feed state: {e}"))),
        }
    }

    fn save<T: serde::Serialize>(
        batch: &mut Batch<'_>,
        key: Vec<u8>,
        value: &T,
    ) -> Result<(), ProjectionError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ProjectionError::CorruptRow(format!("feed state: {e}")))?;
        batch.put(key, bytes);
        Ok(())
    }

    fn grants(batch: &Batch<'_>) -> Result<Vec<FeedGrant>, ProjectionError> {
        batch
            .scan_prefix(GRANTS_PREFIX)?
            .into_iter()
            .map(|(_, bytes)| {
                serde_json::from_slice(&bytes)
                    .map_err(|e| ProjectionError::CorruptRow(format!("feed grant: {e}")))
            })
            .collect()
    }

    /// What is known of a case or care record once `stored` is applied. An event this
    /// version cannot read teaches nothing; what is known already still stands.
    fn facts(
        batch: &mut Batch<'_>,
        stored: &StoredEvent,
        aggregate_type: &str,
        id: &str,
    ) -> Result<Facts, ProjectionError> {
        let key = facts_key(aggregate_type, id);
        let mut facts: Facts = Self::load(batch, &key)?.unwrap_or_default();
        let before = facts.clone();
        let event_type = stored.envelope.event_type.as_str();
        if aggregate_type == Case::TYPE {
            if let Ok(Some(event)) = Case::decode(event_type, &stored.body) {
                learn_from_case(&mut facts, &event);
            }
        } else if let Ok(Some(CareEvent::Registered(e))) = Care::decode(event_type, &stored.body) {
            facts.district = e.district.to_string();
        }
        if facts != before {
            Self::save(batch, key, &facts)?;
        }
        Ok(facts)
    }

    /// The grant's requester, once `stored` is applied. When a grant ends (revoked, expired,
    /// or an event of it this version cannot read: it fails closed), the requester's feed is
    /// purged of every event of the dataset: what another grant still covers was sent masked
    /// to the union of both grants' fields, more than that grant alone allows.
    fn grant_event(
        &self,
        batch: &mut Batch<'_>,
        stored: &StoredEvent,
        id: &str,
    ) -> Result<Vec<String>, ProjectionError> {
        let key = grant_key(id);
        let before: Option<FeedGrant> = Self::load(batch, &key)?;
        let (grant, ended) = match Grant::decode(&stored.envelope.event_type, &stored.body) {
            Ok(Some(event)) => {
                let ended = matches!(event, GrantEvent::Revoked(_) | GrantEvent::Expired(_));
                (grant_after(before, &event), ended)
            }
            // Unreadable: whatever it says, the grant no longer counts as in force.
            _ => (
                before.map(|g| FeedGrant {
                    status: "unreadable".into(),
                    ..g
                }),
                true,
            ),
        };
        let Some(grant) = grant else {
            return Ok(Vec::new());
        };
        Self::save(batch, key, &grant)?;
        if ended && self.units.contains(&grant.requester) {
            for aggregate_type in covered_types(&grant.dataset) {
                let purge = Outgoing::Purge {
                    stream: feed_stream(&grant.requester),
                    subject: format!("gov.feed.{}.{aggregate_type}.>", grant.requester),
                };
                let key = outbox_key(stored.position, &format!("~purge/{}", grant.requester));
                batch.put(key, purge.encode());
            }
        }
        Ok(vec![grant.requester])
    }

    /// The message `department` receives, or `None` when the view lets nothing out.
    fn message(
        stored: &StoredEvent,
        (aggregate_type, id): (&str, &str),
        facts: &Facts,
        department: &str,
        view: &View,
    ) -> Option<Outgoing> {
        let mut headers = stored.envelope.to_feed_headers();
        headers.push((HUB_POSITION.to_owned(), stored.position.to_string()));
        for (name, value) in [(HUB_DISTRICT, &facts.district), (HUB_GRID, &facts.grid)] {
            if !value.is_empty() {
                headers.push((name.to_owned(), value.clone()));
            }
        }
        // A care event carries its person's data: what went out in clear is recorded with it.
        let person = (aggregate_type == Care::TYPE).then(|| FeedDisclosure {
            care_id: id.to_owned(),
            dataset: ROSTER.id.to_owned(),
            ..FeedDisclosure::default()
        });
        let (body, disclosure) = match view {
            View::Full => {
                let disclosure = person.map(|person| FeedDisclosure {
                    clear_fields: clear_in_full(&stored.envelope.event_type, &stored.body),
                    ..person
                });
                (stored.body.to_vec(), disclosure)
            }
            View::Masked { granted, grants } => {
                let masked = mask_care_event(&stored.envelope.event_type, &stored.body, granted)?;
                headers.push((HUB_GRANTS.to_owned(), grants.join(",")));
                if !masked.masked.is_empty() {
                    headers.push((HUB_MASKED.to_owned(), masked.masked.join(",")));
                }
                if !masked.withheld.is_empty() {
                    headers.push((HUB_WITHHELD.to_owned(), masked.withheld.join(",")));
                }
                let disclosure = person.map(|person| FeedDisclosure {
                    clear_fields: masked.clear.iter().map(|f| (*f).to_owned()).collect(),
                    grants: grants.clone(),
                    ..person
                });
                (masked.body, disclosure)
            }
        };
        Some(Outgoing::Publish {
            stream: feed_stream(department),
            subject: feed_subject(department, aggregate_type, id),
            headers,
            body,
            disclosure,
        })
    }
}

/// The personal fields a care event sent as stored carries: every roster field it holds and
/// its free text (visit notes, visitor, reasons); all of the roster's personal fields when it
/// cannot be read (it goes out as stored all the same, so nothing is claimed hidden).
fn clear_in_full(event_type: &str, body: &[u8]) -> Vec<String> {
    let personal = || {
        ROSTER
            .fields
            .iter()
            .filter(|f| f.sensitivity >= crate::datasets::Sensitivity::Personal)
            .map(|f| f.name)
    };
    let everything: BTreeSet<String> = personal().map(str::to_owned).collect();
    match mask_care_event(event_type, body, &everything) {
        // With every roster field granted, what masking still leaves out is the free text,
        // which the stored body carries in clear.
        Some(masked) => masked
            .clear
            .iter()
            .chain(&masked.withheld)
            .map(|f| (*f).to_owned())
            .collect(),
        None => personal().map(str::to_owned).collect(),
    }
}

impl Projection for FeedPublisher {
    fn name(&self) -> &'static str {
        FEED_MODEL
    }

    fn filter_subject(&self) -> String {
        hub_log::names::EVENTS_SUBJECTS.to_owned()
    }

    fn apply(&self, stored: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let Some((aggregate_type, id)) = parse_event_subject(&stored.subject) else {
            return Ok(());
        };
        let facts = match aggregate_type {
            t if t == Case::TYPE || t == Care::TYPE => Self::facts(batch, stored, t, id)?,
            t if t == Grant::TYPE => Facts {
                parties: self.grant_event(batch, stored, id)?,
                ..Facts::default()
            },
            _ => Facts::default(),
        };
        let dataset = covering_dataset(aggregate_type);
        let grants = match dataset {
            Some(_) => Self::grants(batch)?,
            None => Vec::new(),
        };
        let now = self.clock.now();
        let owner = stored.envelope.department.as_str();
        for (department, view) in deliveries(owner, &facts.parties, dataset, &grants, now) {
            if !self.units.contains(&department) {
                continue;
            }
            match Self::message(stored, (aggregate_type, id), &facts, &department, &view) {
                Some(message) => {
                    batch.put(outbox_key(stored.position, &department), message.encode());
                }
                None => warn!(
                    position = stored.position,
                    event_type = %stored.envelope.event_type,
                    "feed: an event that cannot be masked is not shared"
                ),
            }
        }
        Ok(())
    }

    /// A message whose envelope cannot be read goes to no feed: without its owner nobody
    /// can be told it is theirs.
    fn apply_unreadable(
        &self,
        unreadable: &Unreadable,
        _batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        warn!(
            position = unreadable.position,
            "feed: a message with an unreadable envelope goes to no feed"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
