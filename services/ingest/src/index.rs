//! The command side's reads of `command_state`, and how fresh that index must be before a
//! command may be decided afresh.
//!
//! Freshness is about request ids used on *other* aggregates: `command_state` answers for
//! every command it has applied, and the log's own duplicate check (`Nats-Msg-Id`, event ids
//! derived from the request id) answers for whatever the log stored within its duplicate
//! window. Together they cover every earlier use of a request id only while the index is less
//! than one window behind the log; past that, a new command gets UNAVAILABLE and the command
//! services report NOT_SERVING until the index catches up (a rebuild, say).

use std::time::Duration;

use hub_api::ApiError;
use hub_api::aggregate::Aggregate;
use hub_projector::command_state::{self, AggregateRow, RequestRecord};
use hub_projector::{ModelState, ReadModel};
use hub_store::{ReadModelStore, StoreError};
use jiff::Timestamp;
use tracing::error;

/// How fresh `command_state` must be for a command to be decided afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The events stream's duplicate window.
    pub duplicate_window: Duration,
    /// Room for the time from the check to the log storing the append.
    pub margin: Duration,
    /// How long a command waits for the index to become fresh before it gets UNAVAILABLE.
    pub wait: Duration,
}

/// Allowance for the hub's clock and the server's disagreeing (the index's completeness is
/// dated by the server's storage times and the hub's own clock).
const CLOCK_SKEW: Duration = Duration::from_secs(1);

impl Freshness {
    /// `duplicate_window` is the events stream's own (what the server enforces, not what a
    /// configuration asks). The margin covers the time from the check to the server storing
    /// the append (the acknowledgement timeout: a server slower than that is out of the
    /// ordinary) and clock skew, and is at most half the window.
    pub fn new(duplicate_window: Duration, ack_timeout: Duration, wait: Duration) -> Self {
        Self {
            duplicate_window,
            margin: (ack_timeout + CLOCK_SKEW).min(duplicate_window / 2),
            wait,
        }
    }

    /// The oldest the index's completeness may be.
    pub fn max_age(&self) -> Duration {
        self.duplicate_window.saturating_sub(self.margin)
    }

    /// Whether an index in `state` is fresh enough now for a command to be decided afresh.
    /// The command services' health uses the same rule.
    pub fn fresh(&self, state: &ModelState) -> bool {
        state.halted.is_none()
            && state
                .lag_age(Timestamp::now())
                .is_some_and(|age| age <= self.max_age())
    }
}

/// What the index says of one aggregate and one request id, read together.
#[derive(Debug)]
pub struct IndexRead<S> {
    /// Whether the index was fresh enough (see [`Freshness`]) just before the reads: then the
    /// record below answers for every earlier use of the request id that the log's duplicate
    /// check would not catch.
    pub fresh: bool,
    /// The index had applied the log up to here when the reads began.
    pub checkpoint: u64,
    pub row: Option<AggregateRow<S>>,
    /// The caller's record under this request id, wherever it acted.
    pub own: Option<RequestRecord>,
}

#[derive(Clone)]
pub struct Index {
    model: ReadModel,
    freshness: Freshness,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("model", &self.model)
            .field("freshness", &self.freshness)
            .finish()
    }
}

fn store_error(err: StoreError) -> ApiError {
    error!(error = %err, "command state read failed");
    ApiError::Internal
}

impl Index {
    pub fn new(model: ReadModel, freshness: Freshness) -> Self {
        Self { model, freshness }
    }

    /// Refuses to act on an index that stopped rather than serve wrong data.
    fn usable(&self) -> Result<(), ApiError> {
        match self.model.state().halted {
            Some(_) => Err(ApiError::Unavailable(
                "the command state read model is halted; see the hub's log".into(),
            )),
            None => Ok(()),
        }
    }

    /// Runs `read` on the store off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn ReadModelStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        self.usable()?;
        let model = self.model.clone();
        tokio::task::spawn_blocking(move || read(&*model.store()))
            .await
            .map_err(|e| {
                error!(error = %e, "command state read task failed");
                ApiError::Internal
            })?
            .map_err(store_error)
    }

    /// The aggregate's row and the caller's record under `request_id`. Freshness is judged
    /// before the reads and the checkpoint read first, so both understate what the reads saw.
    pub async fn read<A: Aggregate>(
        &self,
        id: &str,
        source: &str,
        request_id: &str,
    ) -> Result<IndexRead<A::State>, ApiError> {
        let fresh = self.fresh();
        let (id, source, request_id) = (id.to_owned(), source.to_owned(), request_id.to_owned());
        self.blocking(move |store| {
            let checkpoint = store.checkpoint()?;
            let row = command_state::get_aggregate::<A>(store, &id)?;
            let own = command_state::get_request(store, &source, &request_id)?;
            Ok(IndexRead {
                fresh,
                checkpoint,
                row,
                own,
            })
        })
        .await
    }

    /// The aggregate's row as the index has it now.
    pub async fn row<A: Aggregate>(
        &self,
        id: &str,
    ) -> Result<Option<AggregateRow<A::State>>, ApiError> {
        let id = id.to_owned();
        self.blocking(move |store| command_state::get_aggregate::<A>(store, &id))
            .await
    }

    /// The records of `source` under each request id, in order.
    pub async fn requests(
        &self,
        source: &str,
        request_ids: Vec<String>,
    ) -> Result<Vec<Option<RequestRecord>>, ApiError> {
        let source = source.to_owned();
        self.blocking(move |store| {
            request_ids
                .iter()
                .map(|rid| command_state::get_request(store, &source, rid))
                .collect()
        })
        .await
    }

    /// Whether the index is fresh enough now for a command to be decided afresh.
    pub fn fresh(&self) -> bool {
        self.freshness.fresh(&self.model.state())
    }

    /// Waits, within the configured bound, until the index is fresh enough.
    pub async fn wait_fresh(&self) -> bool {
        self.model
            .wait_complete_within(self.freshness.max_age(), self.freshness.wait)
            .await
    }

    /// Waits, within the configured bound, until the index has applied the log up to
    /// `position`; UNAVAILABLE, saying how far it is, when it does not.
    pub async fn wait_position(&self, position: u64) -> Result<(), ApiError> {
        self.usable()?;
        self.model
            .wait_for(position, self.freshness.wait)
            .await
            .map(|_| ())
            .map_err(|e| {
                ApiError::Unavailable(format!(
                    "the command state index cannot yet rule out an earlier use of a request id ({e}, the log is at {position}); retry later"
                ))
            })
    }
}
