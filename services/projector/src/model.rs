//! A read model as the query side sees it: its store, its position, and whether it is live.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hub_store::ReadModelStore;
use jiff::Timestamp;
use tokio::sync::{Notify, watch};

/// Where a read model stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelState {
    /// Every event at or below this position that the model consumes has been applied.
    pub position: u64,
    /// Every event the model consumes that the log stored at or before this instant has been
    /// applied; `None` until the model has learned it (its first batch or idle check).
    pub complete_as_of: Option<Timestamp>,
    /// Set when the model stopped rather than serve wrong data; says why.
    pub halted: Option<String>,
}

impl ModelState {
    /// How far behind the log the model is, in time: zero when it is complete as of now.
    pub fn lag_age(&self, now: Timestamp) -> Option<Duration> {
        let as_of = self.complete_as_of?;
        Some(
            now.duration_since(as_of)
                .try_into()
                .unwrap_or(Duration::ZERO),
        )
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WaitError {
    #[error("read model is at position {reached}")]
    NotReached { reached: u64 },
    #[error("read model halted: {0}")]
    Halted(String),
}

struct Inner {
    name: &'static str,
    /// The live store; a rebuild beside it is swapped in whole.
    store: RwLock<Arc<dyn ReadModelStore>>,
    state: watch::Sender<ModelState>,
    nudge: Notify,
}

/// Shared handle on one read model.
#[derive(Clone)]
pub struct ReadModel {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ReadModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadModel")
            .field("name", &self.inner.name)
            .field("state", &self.state())
            .finish()
    }
}

impl ReadModel {
    pub fn new(name: &'static str, store: Arc<dyn ReadModelStore>, position: u64) -> Self {
        let (state, _) = watch::channel(ModelState {
            position,
            complete_as_of: None,
            halted: None,
        });
        Self {
            inner: Arc::new(Inner {
                name,
                store: RwLock::new(store),
                state,
                nudge: Notify::new(),
            }),
        }
    }

    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The live store. A read holds it for as long as it reads, so a swap never pulls it away
    /// from under a read.
    pub fn store(&self) -> Arc<dyn ReadModelStore> {
        self.inner
            .store
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn store_arc(&self) -> Arc<dyn ReadModelStore> {
        self.store()
    }

    /// Swaps in `store`, built beside the live one up to `position` (at or past the live
    /// position: the position never moves back), and returns the store it replaced. Its
    /// projector must not be running meanwhile. A halted model is live again: the store
    /// swapped in was built without halting.
    pub fn swap(&self, store: Arc<dyn ReadModelStore>, position: u64) -> Arc<dyn ReadModelStore> {
        let old = std::mem::replace(
            &mut *self
                .inner
                .store
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            store,
        );
        self.inner
            .state
            .send_if_modified(|s| s.halted.take().is_some());
        self.advance(position);
        old
    }

    pub fn state(&self) -> ModelState {
        self.inner.state.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<ModelState> {
        self.inner.state.subscribe()
    }

    /// Moves the position forward (never back). The projector's, and unit tests'.
    pub fn advance(&self, position: u64) {
        self.inner.state.send_if_modified(|s| {
            let moved = position > s.position;
            s.position = s.position.max(position);
            moved
        });
    }

    /// Records that every event the log stored at or before `as_of` is applied (never back).
    /// The projector's, and unit tests'.
    pub fn complete_as_of(&self, as_of: Timestamp) {
        self.inner.state.send_if_modified(|s| {
            let moved = s.complete_as_of.is_none_or(|t| as_of > t);
            if moved {
                s.complete_as_of = Some(as_of);
            }
            moved
        });
    }

    pub(crate) fn halt(&self, reason: String) {
        self.inner.state.send_modify(|s| s.halted = Some(reason));
    }

    pub(crate) async fn nudged(&self) {
        self.inner.nudge.notified().await;
    }

    /// Waits until the model is at most `max_age` behind the log in time (see
    /// [`ModelState::lag_age`]), or `timeout` passes; returns whether it is.
    pub async fn wait_complete_within(&self, max_age: Duration, timeout: Duration) -> bool {
        let fresh = |s: &ModelState| {
            s.halted.is_none()
                && s.lag_age(Timestamp::now())
                    .is_some_and(|age| age <= max_age)
        };
        let mut rx = self.subscribe();
        if fresh(&rx.borrow_and_update()) {
            return true;
        }
        // An idle model learns that it is complete only when it asks the log; ask now.
        self.inner.nudge.notify_one();
        matches!(
            tokio::time::timeout(timeout, rx.wait_for(fresh)).await,
            Ok(Ok(_))
        )
    }

    /// Waits until the model has applied the log up to `min`, or `timeout` passes.
    pub async fn wait_for(&self, min: u64, timeout: Duration) -> Result<u64, WaitError> {
        let mut rx = self.subscribe();
        let check = |s: &ModelState| s.halted.is_some() || s.position >= min;
        {
            let s = rx.borrow_and_update();
            if let Some(reason) = &s.halted {
                return Err(WaitError::Halted(reason.clone()));
            }
            if s.position >= min {
                return Ok(s.position);
            }
        }
        // A filtered model learns that the log moved past it only when it checks; ask now.
        self.inner.nudge.notify_one();
        // `wait_for` answers with a read guard on the state: it is dropped here, before the
        // state is read again. Held, that second read waits behind any writer queued
        // meanwhile (the projector advancing), which waits on the guard: a deadlock (seen in
        // CI, an e2e test hung in `state()` with `complete_as_of` waiting to write).
        let reached = matches!(
            tokio::time::timeout(timeout, rx.wait_for(check)).await,
            Ok(Ok(_))
        );
        let s = self.state();
        match (&s.halted, reached) {
            (Some(reason), _) => Err(WaitError::Halted(reason.clone())),
            (None, true) => Ok(s.position),
            (None, false) => Err(WaitError::NotReached {
                reached: s.position,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_store::MemStore;

    #[tokio::test]
    async fn a_wait_ends_when_the_position_is_reached_or_the_time_is_up() {
        let model = ReadModel::new("t", Arc::new(MemStore::new()), 3);
        assert_eq!(model.wait_for(3, Duration::ZERO).await, Ok(3));
        assert_eq!(
            model.wait_for(5, Duration::from_millis(10)).await,
            Err(WaitError::NotReached { reached: 3 })
        );

        let waiter = {
            let model = model.clone();
            tokio::spawn(async move { model.wait_for(5, Duration::from_secs(30)).await })
        };
        model.advance(4);
        model.advance(6);
        assert_eq!(waiter.await.expect("join"), Ok(6));

        model.advance(2);
        assert_eq!(model.state().position, 6, "a position never moves back");
        model.halt("gap".into());
        assert_eq!(
            model.wait_for(1, Duration::ZERO).await,
            Err(WaitError::Halted("gap".into()))
        );
    }
}
