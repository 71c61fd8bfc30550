//! What the case datasets remember of each case between its events: where it is, who holds
//! it, and since when. Each model keeps its own copy (`i/<case_id>`) in its own database.

use hub_domain::case::{CaseEvent, CaseKind};
use hub_store::Batch;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::common::{complaint_category, incident_category, load, save};
use crate::projection::ProjectionError;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CaseFacts {
    pub district: String,
    pub dispatch_unit: String,
    /// Grid incidents: the grid and the category.
    pub grid: Option<String>,
    pub incident_category: Option<String>,
    /// Property complaints: the company (unified social credit code), compound, category.
    pub company: Option<String>,
    pub compound: Option<String>,
    pub complaint_category: Option<String>,
    /// The unit holding the case: the dispatch unit, then the department.
    pub holder: String,
    /// When the holder was asked to accept (dispatch, transfer request); cleared on acceptance.
    pub accept_from: Option<Timestamp>,
    pub accept_by: Option<Timestamp>,
    /// When the holder's clock to resolve started (acceptance of a dispatch or transfer,
    /// reopening).
    pub resolve_from: Option<Timestamp>,
    pub resolve_by: Option<Timestamp>,
    /// The department that resolved the case last.
    pub resolved_by: Option<String>,
    /// The open transfer request: its ledger key.
    pub transfer_key: Option<String>,
}

pub fn facts_key(case_id: &str) -> Vec<u8> {
    [b"i/", case_id.as_bytes()].concat()
}

/// Applies a case event to the facts kept for its case and returns them before and after;
/// `None` when the case's report was never seen (the model passes the event over).
pub fn track(
    batch: &mut Batch<'_>,
    event: &CaseEvent,
    position: u64,
) -> Result<Option<(CaseFacts, CaseFacts)>, ProjectionError> {
    let key = facts_key(event.case_id().as_str());
    let before = match event {
        CaseEvent::Reported(_) => CaseFacts::default(),
        _ => match load::<CaseFacts>(batch, &key, position)? {
            Some(facts) => facts,
            None => return Ok(None),
        },
    };
    let mut after = before.clone();
    match event {
        CaseEvent::Reported(e) => {
            after.district = e.district.to_string();
            after.dispatch_unit = e.dispatch_unit.to_string();
            after.holder = e.dispatch_unit.to_string();
            match &e.kind {
                CaseKind::GridIncident(g) => {
                    after.grid = Some(g.grid.to_string());
                    after.incident_category = Some(incident_category(g.category).to_owned());
                }
                CaseKind::PropertyComplaint(p) => {
                    after.company = Some(p.company.to_string());
                    after.compound = Some(p.compound.clone());
                    after.complaint_category = Some(complaint_category(p.category).to_owned());
                }
            }
        }
        CaseEvent::Dispatched(e) => {
            after.holder = e.department.to_string();
            after.accept_from = Some(e.dispatched_at);
            after.accept_by = Some(e.accept_by);
            after.resolve_by = Some(e.resolve_by);
            after.resolve_from = None;
        }
        CaseEvent::Accepted(e) => {
            after.accept_from = None;
            after.resolve_from = Some(e.accepted_at);
        }
        CaseEvent::TransferRequested(e) => {
            after.transfer_key = Some(transfer_key(e.case_id.as_str(), position));
        }
        CaseEvent::TransferAccepted(e) => {
            after.holder = e.to.to_string();
            after.accept_from = None;
            after.accept_by = None;
            after.resolve_from = Some(e.accepted_at);
            after.resolve_by = Some(e.resolve_by);
            after.transfer_key = None;
        }
        CaseEvent::TransferRejected(_) => after.transfer_key = None,
        CaseEvent::Escalated(_) => {}
        CaseEvent::Resolved(e) => {
            after.resolved_by = Some(e.department.to_string());
            after.resolve_from = None;
        }
        CaseEvent::Rated(_) => {}
        CaseEvent::Reopened(e) => {
            after.holder = e.holder.to_string();
            after.resolve_from = Some(e.reopened_at);
            after.resolve_by = Some(e.resolve_by);
        }
        CaseEvent::Closed(_) => {}
    }
    save(batch, key, &after);
    Ok(Some((before, after)))
}

/// The transfer ledger's key of the transfer requested at `position`.
pub fn transfer_key(case_id: &str, position: u64) -> String {
    format!("{case_id}/{position:020}")
}

/// Seconds from `from` to `to`, never negative.
pub fn seconds(from: Timestamp, to: Timestamp) -> i64 {
    to.duration_since(from).as_secs().max(0)
}

#[cfg(test)]
mod tests {
    use hub_store::{Batch, MemStore};

    use super::*;
    use crate::datasets::common::{load, save};

    #[test]
    fn case_facts_round_trip_as_compact_records() {
        let at: Timestamp = "2026-11-23T08:00:00.5Z".parse().expect("timestamp");
        let facts = CaseFacts {
            district: "310104".into(),
            dispatch_unit: "dcc-310104".into(),
            grid: Some("310104001001001".into()),
            incident_category: Some("fire_hazard".into()),
            company: None,
            compound: Some("康健苑 3号楼".into()),
            complaint_category: None,
            holder: "urban-management".into(),
            accept_from: None,
            accept_by: Some(at),
            resolve_from: Some(at),
            resolve_by: Some("2026-11-30T01:00:00Z".parse().expect("timestamp")),
            resolved_by: None,
            transfer_key: Some(transfer_key("c-1", 42)),
        };
        let store = MemStore::new();
        let mut batch = Batch::new(&store);
        save(&mut batch, facts_key("c-1"), &facts);
        assert_eq!(
            load::<CaseFacts>(&batch, &facts_key("c-1"), 7).expect("read"),
            Some(facts.clone())
        );
        assert_eq!(
            load::<CaseFacts>(&batch, &facts_key("c-2"), 7).expect("read"),
            None
        );

        let stored = batch.get(&facts_key("c-1")).expect("get").expect("stored");
        let json = serde_json::to_vec(&facts).expect("json");
        assert!(
            stored.len() * 2 < json.len(),
            "{} bytes, against {} as JSON",
            stored.len(),
            json.len()
        );
        // A record that does not decode halts the model, naming the position.
        batch.put(facts_key("c-3"), b"{\"district\":".to_vec());
        let err = load::<CaseFacts>(&batch, &facts_key("c-3"), 9).expect_err("corrupt");
        assert!(err.to_string().contains("position 9"), "{err}");
    }
}
