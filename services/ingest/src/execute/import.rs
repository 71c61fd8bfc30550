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

/// Prepared creations of one atomic batch, each with its position in the import.
type Chunk<A> = Vec<(usize, (Submitted<A>, Vec<StoredEvent>))>;

/// Why an import stopped.
#[derive(Debug)]
pub enum ImportError {
    Api(ApiError),
    /// These items (positions in what was given to import) reuse a request id that a
    /// concurrent command used for other content.
    Reused(Vec<usize>),
}

impl From<ApiError> for ImportError {
    fn from(err: ApiError) -> Self {
        ImportError::Api(err)
    }
}

/// Atomic batches of one import in flight at once (the server allows 50 per stream).
const IMPORT_BATCHES_IN_FLIGHT: usize = 4;

impl<A: Aggregate> Executor<A> {
    /// Decides a command that creates an aggregate, without appending: for imports, which
    /// check every item before storing any.
    pub fn prepare_new(&self, submitted: &Submitted<A>) -> Result<Vec<StoredEvent>, Refusal> {
        let events = self.decide(submitted, None)?;
        Ok(self.stored_events(submitted, None, &events))
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
    /// the server refuses holds an item stored meanwhile by a concurrent call: its items'
    /// records are read once the index has applied the log; an item whose request id was
    /// used for another command refuses the import ([`ImportError::Reused`], by position in
    /// `prepared`), one stored with the same content is answered with its first result, and
    /// the rest are executed one by one.
    pub async fn import(
        &self,
        prepared: Vec<(Submitted<A>, Vec<StoredEvent>)>,
        batch_size: usize,
    ) -> Result<Vec<Executed>, ImportError> {
        let mut chunks = Vec::new();
        let mut items = prepared.into_iter().enumerate().peekable();
        while items.peek().is_some() {
            let mut chunk = Vec::new();
            let mut events = 0;
            while let Some((_, (_, stored))) = items.peek() {
                if !chunk.is_empty() && events + stored.len() > batch_size {
                    break;
                }
                events += stored.len();
                chunk.extend(items.next());
            }
            chunks.push(chunk);
        }
        let outcomes: Vec<Result<Vec<Executed>, ImportError>> = futures::stream::iter(chunks)
            .map(|chunk| self.import_batch(chunk))
            .buffered(IMPORT_BATCHES_IN_FLIGHT)
            .collect()
            .await;
        let mut done = Vec::new();
        let mut reused = Vec::new();
        for outcome in outcomes {
            match outcome {
                Ok(executed) => done.extend(executed),
                Err(ImportError::Reused(items)) => reused.extend(items),
                Err(err) => return Err(err),
            }
        }
        if reused.is_empty() {
            Ok(done)
        } else {
            Err(ImportError::Reused(reused))
        }
    }

    /// The batch the server refused, item by item, as [`Executor::import`] says.
    async fn import_items(&self, chunk: Chunk<A>) -> Result<Vec<Executed>, ImportError> {
        let source = chunk
            .first()
            .map(|(_, (s, _))| s.source.clone())
            .unwrap_or_default();
        let request_ids = chunk
            .iter()
            .map(|(_, (s, _))| s.request_id.clone())
            .collect();
        let records = self.requests_now(&source, request_ids).await?;
        let reused: Vec<usize> = chunk
            .iter()
            .zip(&records)
            .filter(|((_, (s, _)), r)| r.as_ref().is_some_and(|r| !s.hash.matches(&r.hash)))
            .map(|((position, _), _)| *position)
            .collect();
        if !reused.is_empty() {
            return Err(ImportError::Reused(reused));
        }
        let mut done = Vec::with_capacity(chunk.len());
        for ((_, (submitted, _)), record) in chunk.into_iter().zip(records) {
            done.push(match record {
                Some(record) => Executed {
                    record,
                    appended: false,
                },
                None => self.execute(submitted).await?,
            });
        }
        Ok(done)
    }

    async fn import_batch(&self, chunk: Chunk<A>) -> Result<Vec<Executed>, ImportError> {
        let batch: Vec<NewEvent> = chunk
            .iter()
            .flat_map(|(_, (_, stored))| {
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
                return Err(append_error(AppendError::Unavailable(reason)).into());
            }
            Err(err) => {
                warn!(error = %err, items = chunk.len(), "import batch refused; looking at its items one by one");
                return self.import_items(chunk).await;
            }
        };
        hub_store::failpoint::crash("between-import-batches");
        let mut positions = appended.iter().map(|a| a.position);
        Ok(chunk
            .into_iter()
            .map(|(_, (submitted, stored))| {
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
