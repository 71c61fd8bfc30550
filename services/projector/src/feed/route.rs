//! Which department's feed an event goes to, and in which view.
//!
//! - The aggregate's owner (`ce-department`) gets it whole: it is its own data.
//! - The departments a case concerns (its reporter, its district command centre, every
//!   department it was dispatched or asked to transfer to) get its events whole from the
//!   moment they are named, as they read its rows in the case datasets.
//! - A grant's requester gets the grant's events whole (the owner is the grant's owner).
//! - A department with a grant in force for the dataset an aggregate feeds (care records feed
//!   the care roster) gets its events masked to that grant's fields.
//!
//! What the publisher remembers to decide this lives in its own store: the facts of each case
//! and care record (`f/<type>/<id>`: parties, district, grid) and every grant
//! (`g/<grant id>`), all built from the log in order, so a grant approved at position P covers
//! exactly the events after P.

use std::collections::{BTreeMap, BTreeSet};

use hub_domain::case::{CaseEvent, CaseKind};
use hub_domain::grant::GrantEvent;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How a department receives an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// As stored.
    Full,
    /// Masked to the fields the grants in force name.
    Masked {
        granted: BTreeSet<String>,
        grants: Vec<String>,
    },
}

/// A grant as the publisher keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedGrant {
    pub grant_id: String,
    pub requester: String,
    pub owner: String,
    pub dataset: String,
    pub fields: Vec<String>,
    pub status: String,
    pub expires_at: Timestamp,
}

impl FeedGrant {
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.status == "approved" && now < self.expires_at
    }
}

/// What the publisher remembers of an aggregate: the departments it concerns, and where it
/// is (which subscribers filter on; never personal).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub parties: Vec<String>,
    pub district: String,
    pub grid: String,
}

pub fn facts_key(aggregate_type: &str, id: &str) -> Vec<u8> {
    format!("f/{aggregate_type}/{id}").into_bytes()
}

/// Learns what a case event tells of its case.
pub fn learn_from_case(facts: &mut Facts, event: &CaseEvent) {
    if let CaseEvent::Reported(e) = event {
        facts.district = e.district.to_string();
        if let CaseKind::GridIncident(incident) = &e.kind {
            facts.grid = incident.grid.to_string();
        }
    }
    for named in named_by_case_event(event) {
        if !facts.parties.contains(&named) {
            facts.parties.push(named);
        }
    }
}

pub fn grant_key(grant_id: &str) -> Vec<u8> {
    [b"g/", grant_id.as_bytes()].concat()
}

/// The prefix of every grant the publisher keeps.
pub const GRANTS_PREFIX: &[u8] = b"g/";

/// The departments a case event names, to add to the case's parties.
pub fn named_by_case_event(event: &CaseEvent) -> Vec<String> {
    match event {
        CaseEvent::Reported(e) => vec![e.reported_by.to_string(), e.dispatch_unit.to_string()],
        CaseEvent::Dispatched(e) => vec![e.department.to_string(), e.dispatched_by.to_string()],
        CaseEvent::TransferRequested(e) => vec![e.from.to_string(), e.to.to_string()],
        _ => Vec::new(),
    }
}

/// The grant as `event` leaves it (`None` before its request was seen).
pub fn grant_after(grant: Option<FeedGrant>, event: &GrantEvent) -> Option<FeedGrant> {
    if let GrantEvent::Requested(e) = event {
        return Some(FeedGrant {
            grant_id: e.grant_id.to_string(),
            requester: e.requester.to_string(),
            owner: e.owner.to_string(),
            dataset: e.dataset.clone(),
            fields: e.fields.clone(),
            status: "requested".into(),
            expires_at: e.expires_at,
        });
    }
    let mut grant = grant?;
    grant.status = match event {
        GrantEvent::Requested(_) => return Some(grant),
        GrantEvent::Approved(_) => "approved",
        GrantEvent::Rejected(_) => "rejected",
        GrantEvent::Revoked(_) => "revoked",
        GrantEvent::Expired(_) => "expired",
    }
    .into();
    Some(grant)
}

/// Every department that receives an event, with its view: `owner` and `parties` whole,
/// and the requesters of `grants` in force at `now` for `dataset` masked (a department that
/// receives the event whole anyway is not sent it twice).
pub fn deliveries(
    owner: &str,
    parties: &[String],
    dataset: Option<&str>,
    grants: &[FeedGrant],
    now: Timestamp,
) -> BTreeMap<String, View> {
    let mut out: BTreeMap<String, View> = BTreeMap::new();
    for department in std::iter::once(owner).chain(parties.iter().map(String::as_str)) {
        if !department.is_empty() {
            out.insert(department.to_owned(), View::Full);
        }
    }
    let Some(dataset) = dataset else {
        return out;
    };
    for grant in grants
        .iter()
        .filter(|g| g.dataset == dataset && g.in_force(now))
    {
        let view = out
            .entry(grant.requester.clone())
            .or_insert_with(|| View::Masked {
                granted: BTreeSet::new(),
                grants: Vec::new(),
            });
        if let View::Masked { granted, grants } = view {
            granted.extend(grant.fields.iter().cloned());
            grants.push(grant.grant_id.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    fn grant(id: &str, requester: &str, fields: &[&str], status: &str, hours: i64) -> FeedGrant {
        FeedGrant {
            grant_id: id.into(),
            requester: requester.into(),
            owner: "civil-affairs".into(),
            dataset: "care_roster".into(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            status: status.into(),
            expires_at: Timestamp::UNIX_EPOCH + SignedDuration::from_hours(hours),
        }
    }

    #[test]
    fn owners_and_parties_get_events_whole_and_grantees_masked_while_in_force() {
        let now = Timestamp::UNIX_EPOCH + SignedDuration::from_hours(10);
        let grants = [
            grant("g-1", "public-security", &["name"], "approved", 20),
            grant("g-2", "public-security", &["phone"], "approved", 20),
            grant("g-3", "housing", &["name"], "revoked", 20),
            grant("g-4", "urban-management", &["name"], "approved", 5),
            grant("g-5", "civil-affairs", &["name"], "approved", 20),
        ];
        let out = deliveries("civil-affairs", &[], Some("care_roster"), &grants, now);
        assert_eq!(out["civil-affairs"], View::Full, "the owner, whole");
        assert_eq!(
            out["public-security"],
            View::Masked {
                granted: ["name".to_owned(), "phone".to_owned()].into(),
                grants: vec!["g-1".into(), "g-2".into()],
            }
        );
        assert!(!out.contains_key("housing"), "revoked");
        assert!(!out.contains_key("urban-management"), "expired");
        // An event of a dataset no grant covers: the owner and parties only.
        let case = deliveries(
            "dcc-310104",
            &["urban-management".into(), "dcc-310104".into()],
            None,
            &grants,
            now,
        );
        assert_eq!(case.len(), 2);
        assert!(case.values().all(|v| *v == View::Full));
    }
}
