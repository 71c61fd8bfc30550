//! One aggregate as a command sees it: its state and version, whether an event blocks it,
//! and the caller's own record under the command's request id, with how far each is known.

use hub_api::aggregate::Aggregate;
use hub_log::Entry;
use hub_projector::command_state::{AggregateRow, Blocked, RequestRecord};

use crate::index::IndexRead;

#[derive(Debug)]
pub struct View<A: Aggregate> {
    /// State, version (the subject's last event) and block, folded as `command_state` does.
    pub row: AggregateRow<A::State>,
    /// The caller's record under the request id: from the index, or from events read.
    pub own: Option<RequestRecord>,
    /// The index the view was read from was fresh enough for a new decision (see `index`).
    pub index_fresh: bool,
    /// The index had applied the log up to here: a record it holds at or after this position
    /// may lack the command's later events (a projector batch can end inside a command).
    pub checkpoint: u64,
    /// The view was brought up to the log's end by reading it (so a refusal decided on it is
    /// the log's word, not a lagging index's).
    pub verified: bool,
}

impl<A: Aggregate> View<A> {
    pub fn from_index(read: IndexRead<A::State>) -> Self {
        Self {
            row: read.row.unwrap_or_default(),
            own: read.own,
            index_fresh: read.fresh,
            checkpoint: read.checkpoint,
            verified: false,
        }
    }

    pub fn version(&self) -> u64 {
        self.row.version
    }

    pub fn state(&self) -> Option<&A::State> {
        self.row.state.as_ref()
    }

    pub fn blocked(&self) -> Option<&Blocked> {
        self.row.blocked.as_ref()
    }

    /// Folds events read from the aggregate's subject, all of them after the view's version,
    /// and picks up the record of (`source`, `request_id`) among them. The view is then the
    /// log's own as of the read.
    pub fn absorb(&mut self, entries: &[Entry], aggregate: &str, source: &str, request_id: &str) {
        for entry in entries {
            match entry {
                Entry::Event(event) => {
                    self.row.fold::<A>(Ok(event));
                    let envelope = &event.envelope;
                    if envelope.source == source && envelope.request_id == request_id {
                        RequestRecord::extend(&mut self.own, || aggregate.to_owned(), event);
                    }
                }
                Entry::Unreadable(unreadable) => {
                    self.row.fold::<A>(Err(unreadable));
                }
            }
        }
        self.verified = true;
    }
}
