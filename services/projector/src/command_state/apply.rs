//! How `command_state` applies the log.

use std::sync::Arc;

use hub_api::aggregate::{Aggregate, Care, Case, Grant};
use hub_domain::policy::Policy;
use hub_log::names::{EVENTS_SUBJECTS, parse_event_subject};
use hub_log::{StoredEvent, Unreadable};
use hub_store::Batch;

use super::due::reschedule_row;
use super::{
    AggregateRow, NAME, RequestRecord, aggregate_key, blocked_alarm, blocked_key, read,
    request_key, write,
};
use crate::alarm::Alarms;
use crate::projection::{Projection, ProjectionError};

pub struct CommandState {
    policy: Arc<Policy>,
    alarms: Alarms,
}

impl std::fmt::Debug for CommandState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandState").finish_non_exhaustive()
    }
}

impl CommandState {
    /// The policy decides when the hub must act on an aggregate; a blocked aggregate raises
    /// an alarm in `alarms`.
    pub fn new(policy: Arc<Policy>, alarms: Alarms) -> Self {
        Self { policy, alarms }
    }

    /// Folds one message of an aggregate of type `A` into its row, its due entry and, when
    /// it blocks the aggregate, the blocked list.
    fn apply_row<A: Aggregate>(
        &self,
        id: &str,
        event: Result<&StoredEvent, &Unreadable>,
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        let key = aggregate_key(A::TYPE, id);
        let mut row: AggregateRow<A::State> = read(batch.get(&key)?)?.unwrap_or_default();
        if let Some(block) = row.fold::<A>(event) {
            batch.put(blocked_key(A::TYPE, id), write(block)?);
            self.alarms
                .raise(blocked_alarm(A::TYPE, id), block.describe(A::NOUN));
        }
        reschedule_row::<A>(&mut row, id, &self.policy, batch);
        batch.put(key, write(&row)?);
        Ok(())
    }

    fn apply_typed(
        &self,
        subject: &str,
        event: Result<&StoredEvent, &Unreadable>,
        batch: &mut Batch<'_>,
    ) -> Result<bool, ProjectionError> {
        let Some((aggregate_type, id)) = parse_event_subject(subject) else {
            return Ok(false);
        };
        match aggregate_type {
            Case::TYPE => self.apply_row::<Case>(id, event, batch)?,
            Care::TYPE => self.apply_row::<Care>(id, event, batch)?,
            Grant::TYPE => self.apply_row::<Grant>(id, event, batch)?,
            // Aggregate types this version takes no commands for.
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The record of the command an event carries: from the envelope alone, so a command's
    /// first result is remembered even when its body cannot be read.
    fn record_request(event: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        let envelope = &event.envelope;
        if envelope.request_id.is_empty() {
            return Ok(());
        }
        let key = request_key(&envelope.source, &envelope.request_id);
        let mut record: Option<RequestRecord> = read(batch.get(&key)?)?;
        let aggregate = || {
            parse_event_subject(&event.subject)
                .map(|(t, id)| format!("{t}/{id}"))
                .unwrap_or_default()
        };
        RequestRecord::extend(&mut record, aggregate, event);
        if let Some(record) = record {
            batch.put(key, write(&record)?);
        }
        Ok(())
    }
}

impl Projection for CommandState {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter_subject(&self) -> String {
        EVENTS_SUBJECTS.to_owned()
    }

    fn apply(&self, event: &StoredEvent, batch: &mut Batch<'_>) -> Result<(), ProjectionError> {
        if self.apply_typed(&event.subject, Ok(event), batch)? {
            Self::record_request(event, batch)?;
        }
        Ok(())
    }

    /// Blocks the aggregate the message belongs to; nothing else stops.
    fn apply_unreadable(
        &self,
        unreadable: &Unreadable,
        batch: &mut Batch<'_>,
    ) -> Result<(), ProjectionError> {
        self.apply_typed(&unreadable.subject, Err(unreadable), batch)?;
        Ok(())
    }
}
