//! What the command side needs of the event log, behind a trait: the executor's every exit
//! is unit-tested against an in-memory log (`execute::tests`), and runs on JetStream through
//! [`Appender`] (the end-to-end tests).

use hub_log::append::Appended;
use hub_log::{AppendError, Appender, Entry, GroupCommit, NewEvent};

#[tonic::async_trait]
pub trait CommandLog: Send + Sync + 'static {
    /// Appends events all together or not at all (see [`Appender::append_all`]).
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError>;

    /// Every message of one aggregate's subject after `position`, oldest first, read with
    /// batched direct gets and completed from the stream's leader where a replica behind it
    /// answered.
    async fn read_subject(&self, subject: &str, position: u64) -> Result<Vec<Entry>, AppendError>;

    /// The message at `position`, if the log holds one there.
    async fn read_at(&self, position: u64) -> Result<Option<Entry>, AppendError>;

    /// The position of the log's last event.
    async fn last_position(&self) -> Result<u64, AppendError>;
}

#[tonic::async_trait]
impl CommandLog for Appender {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        self.append_all(events).await
    }

    async fn read_subject(&self, subject: &str, position: u64) -> Result<Vec<Entry>, AppendError> {
        Appender::read_subject_current(self, subject, position).await
    }

    async fn read_at(&self, position: u64) -> Result<Option<Entry>, AppendError> {
        Appender::read_at(self, position).await
    }

    async fn last_position(&self) -> Result<u64, AppendError> {
        Appender::last_position(self).await
    }
}

/// Commands through the group committer: concurrent ones share atomic batches.
#[tonic::async_trait]
impl CommandLog for GroupCommit {
    async fn append(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        self.append_all(events).await
    }

    async fn read_subject(&self, subject: &str, position: u64) -> Result<Vec<Entry>, AppendError> {
        self.appender()
            .read_subject_current(subject, position)
            .await
    }

    async fn read_at(&self, position: u64) -> Result<Option<Entry>, AppendError> {
        self.appender().read_at(position).await
    }

    async fn last_position(&self) -> Result<u64, AppendError> {
        self.appender().last_position().await
    }
}
