//! Creations in bulk: decided first, checked against every earlier use of their request ids,
//! then appended in atomic batches.

use futures::StreamExt;
use hub_api::ApiError;
use hub_api::aggregate::Aggregate;
use hub_domain::Refusal;
use hub_log::{AppendError, NewEvent, StoredEvent};
use hub_projector::command_state::RequestRecord;
use tracing::warn;

use super::{Executed, Executor, Submitted};
use crate::append_error;

/// Atomic batches of one import in flight at once (the server allows 50 per stream).
const IMPORT_BATCHES_IN_FLIGHT: usize = 4;

impl<A: Aggregate> Executor<A> {
    /// Decides a command that creates an aggregate, without appending: for imports, which
    /// check every item before storing any.
    pub fn prepare_new(&self, submitted: &Submitted<A>) -> Result<Vec<StoredEvent>, Refusal> {
        let events = self.decide(submitted, None)?;
        Ok(self.stored_events(submitted, &events))
    }

    /// The records of `source` under each request id, from an index that has applied the
    /// whole log as it stands now: however recently a request id was used, this sees it.
    /// UNAVAILABLE when the index does not get there within the configured wait.
    pub async fn requests_now(
        &self,
        source: &str,
        request_ids: Vec<String>,
    ) -> Result<Vec<Option<RequestRecord>>, ApiError> {
        let last = self.log.last_position().await.map_err(append_error)?;
        self.index.wait_position(last).await?;
        self.index.requests(source, request_ids).await
    }

    /// Appends prepared creations in atomic batches of up to `batch_size` events, a few
    /// batches in flight at once, each aggregate's event expecting an empty subject. A batch
    /// the server refuses (an item stored meanwhile by a concurrent call) is executed item
    /// by item instead, which answers those with their first result.
    pub async fn import(
        &self,
        prepared: Vec<(Submitted<A>, Vec<StoredEvent>)>,
        batch_size: usize,
    ) -> Result<Vec<Executed>, ApiError> {
        let mut chunks = Vec::new();
        let mut items = prepared.into_iter().peekable();
        while items.peek().is_some() {
            let mut chunk = Vec::new();
            let mut events = 0;
            while let Some((_, stored)) = items.peek() {
                if !chunk.is_empty() && events + stored.len() > batch_size {
                    break;
                }
                events += stored.len();
                chunk.extend(items.next());
            }
            chunks.push(chunk);
        }
        let outcomes: Vec<Result<Vec<Executed>, ApiError>> = futures::stream::iter(chunks)
            .map(|chunk| self.import_batch(chunk))
            .buffered(IMPORT_BATCHES_IN_FLIGHT)
            .collect()
            .await;
        let mut done = Vec::new();
        for outcome in outcomes {
            done.extend(outcome?);
        }
        Ok(done)
    }

    async fn import_batch(
        &self,
        chunk: Vec<(Submitted<A>, Vec<StoredEvent>)>,
    ) -> Result<Vec<Executed>, ApiError> {
        let batch: Vec<NewEvent> = chunk
            .iter()
            .flat_map(|(_, stored)| {
                stored.iter().enumerate().map(|(index, e)| NewEvent {
                    subject: e.subject.clone(),
                    envelope: e.envelope.clone(),
                    body: e.body.clone(),
                    expected_last_subject_sequence: (index == 0).then_some(0),
                })
            })
            .collect();
        let appended = match self.log.append(batch).await {
            Ok(appended) => appended,
            Err(AppendError::Unavailable(reason)) => {
                return Err(append_error(AppendError::Unavailable(reason)));
            }
            Err(err) => {
                warn!(error = %err, items = chunk.len(), "import batch refused; importing its items one by one");
                let mut done = Vec::with_capacity(chunk.len());
                for (submitted, _) in chunk {
                    done.push(self.execute(submitted).await?);
                }
                return Ok(done);
            }
        };
        hub_store::failpoint::crash("between-import-batches");
        let mut positions = appended.iter().map(|a| a.position);
        Ok(chunk
            .into_iter()
            .map(|(submitted, stored)| {
                let position = positions
                    .by_ref()
                    .take(stored.len())
                    .last()
                    .unwrap_or_default();
                Executed {
                    record: RequestRecord {
                        hash: submitted.hash.as_str().to_owned(),
                        aggregate: submitted.aggregate(),
                        event_ids: stored.into_iter().map(|e| e.envelope.id).collect(),
                        position,
                    },
                    appended: true,
                }
            })
            .collect())
    }
}
