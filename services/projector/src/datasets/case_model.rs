//! The engine of the case datasets: decode, pass over what cannot be read, keep the case's
//! facts, and let the dataset turn the event into rows.

use hub_api::aggregate::{Aggregate, Case};
use hub_api::decode_case_event;
use hub_domain::case::CaseEvent;
use hub_log::names::aggregate_filter;
use hub_log::{StoredEvent, Unreadable};
use hub_store::Batch;
use jiff::tz::TimeZone;

use super::Dataset;
use super::case_facts::{CaseFacts, track};
use super::common::{decoded_or_passed, misfit_passed, pass_over, passed, unreadable_passed};
use super::rows::Rows;
use crate::alarm::Alarms;
use crate::projection::{Projection, ProjectionError};

/// One case event as a dataset sees it.
pub struct CaseChange<'e> {
    pub stored: &'e StoredEvent,
    pub event: &'e CaseEvent,
    pub before: &'e CaseFacts,
    pub after: &'e CaseFacts,
    pub tz: &'e TimeZone,
}

/// A dataset built from case events.
pub trait CaseRows: Send + Sync + 'static {
    fn dataset(&self) -> &'static Dataset;
    fn apply(
        &self,
        rows: &mut Rows<'_, '_>,
        change: &CaseChange<'_>,
    ) -> Result<(), ProjectionError>;
}

/// A [`CaseRows`] dataset as a projection.
pub struct CaseModel<M> {
    rows: M,
    tz: TimeZone,
    alarms: Alarms,
}

impl<M: CaseRows> CaseModel<M> {
    pub fn new(rows: M, tz: TimeZone, alarms: Alarms) -> Self {
        Self { rows, tz, alarms }
    }
}

impl<M: CaseRows> Projection for CaseModel<M> {
    fn name(&self) -> &'static str {
        self.rows.dataset().id
    }

    fn filter_subject(&self) -> String {
        aggregate_filter(Case::TYPE)
    }

    fn version(&self) -> u32 {
        self.rows.dataset().version
    }

    fn apply(&self, stored: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let event_type = stored.envelope.event_type.as_str();
        let at = (stored.subject.as_str(), stored.position, event_type);
        if passed(batch, &stored.subject)? {
            return Ok(());
        }
        let decoded = decode_case_event(event_type, &stored.body);
        let Some(event) = decoded_or_passed(self.name(), &self.alarms, batch, at, decoded)? else {
            return Ok(());
        };
        let Some((before, after)) = track(batch, &event, stored.position)? else {
            let why = "belongs to a case whose report it has not applied";
            return pass_over(self.name(), &self.alarms, batch, at, why);
        };
        let change = CaseChange {
            stored,
            event: &event,
            before: &before,
            after: &after,
            tz: &self.tz,
        };
        let applied = self.rows.apply(&mut Rows::new(batch), &change);
        misfit_passed(self.name(), &self.alarms, batch, at, applied)
    }

    fn apply_unreadable(
        &self,
        unreadable: &Unreadable,
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        unreadable_passed(self.name(), &self.alarms, batch, unreadable)
    }
}
