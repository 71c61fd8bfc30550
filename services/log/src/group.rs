//! Group commit: commands ready at the same moment are appended as one atomic batch.
//!
//! With `sync_interval: always` the server writes every publish to disk before it answers,
//! so commands appended one publish each wait for one fsync each. An atomic batch is stored
//! with one fsync for all its messages. [`GroupCommit`] puts every command that is waiting
//! when a batch slot frees into one batch:
//!
//! - A lone command goes out at once: nothing waits for company. Batches form only while
//!   every slot is busy, so they grow with the load.
//! - One command's events stay together in one batch, and a batch holds at most one command
//!   per aggregate (subject): the server checks `Nats-Expected-Last-Subject-Sequence` on an
//!   aggregate's first message in a batch only, so a second command on the same aggregate
//!   waits for the next batch, where its expectation is checked.
//! - At most [`MAX_BATCH`] messages per batch and [`GroupOptions::in_flight`] batches
//!   awaiting their acknowledgement at once (the server takes 50 per stream).
//! - The server refuses a whole batch for one member's stale sequence or stored event id,
//!   without saying which: the members are then appended one by one, each answered with its
//!   own result. A batch whose outcome is unknown (no answer in time) answers each member so,
//!   and their retries with the same event ids are safe.
//!
//! Tracing: a batch of one command is appended under that command's span, as a lone append
//! is; a batch of several is a span of its own, linked to each command's trace.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::append::{AppendError, Appended, Appender, MAX_BATCH, NewEvent};

/// Most batches awaiting their acknowledgement at once that the server allows per stream.
pub const SERVER_MAX_IN_FLIGHT: usize = 50;

/// How a [`GroupCommit`] forms its batches.
#[derive(Debug, Clone)]
pub struct GroupOptions {
    /// Batches awaiting their acknowledgement at once, 1 to [`SERVER_MAX_IN_FLIGHT`]. Fewer
    /// slots make larger batches under load; a lone command never waits for one.
    pub in_flight: usize,
    /// The name a test holds this committer by (failpoint `group-commit-hold`), usually the
    /// hub's instance.
    pub name: String,
}

impl Default for GroupOptions {
    fn default() -> Self {
        Self {
            in_flight: 4,
            name: String::new(),
        }
    }
}

/// Appends each caller's events all together or not at all, as [`Appender::append_all`]
/// does, grouping concurrent callers into atomic batches. Clones share one committer; it
/// stops when the last clone is dropped, once the batches in flight are answered.
#[derive(Clone)]
pub struct GroupCommit {
    appender: Appender,
    queue: mpsc::Sender<Member>,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Counts {
    /// Members the committer has taken off its queue and not yet put into a batch.
    waiting: AtomicUsize,
    /// Batches stored that held more than one member.
    grouped: AtomicU64,
    /// Batches the server refused whose members were appended one by one.
    split: AtomicU64,
}

/// One caller's events, waiting for a batch.
struct Member {
    events: Vec<NewEvent>,
    /// The caller's span, under which its append is traced.
    span: tracing::Span,
    answer: oneshot::Sender<Result<Vec<Appended>, AppendError>>,
}

/// Members the committer takes off the queue ahead of the batch being formed.
const LOOKAHEAD: usize = 4 * MAX_BATCH;

impl GroupCommit {
    /// Starts the committer on the current tokio runtime.
    pub fn start(appender: Appender, options: GroupOptions) -> Self {
        let (queue, receiver) = mpsc::channel(LOOKAHEAD);
        let counts = Arc::new(Counts::default());
        let in_flight = options.in_flight.clamp(1, SERVER_MAX_IN_FLIGHT);
        tokio::spawn(run(
            appender.clone(),
            receiver,
            in_flight,
            options.name,
            counts.clone(),
        ));
        Self {
            appender,
            queue,
            counts,
        }
    }

    /// The appender the batches go through, for reads and lone appends.
    pub fn appender(&self) -> &Appender {
        &self.appender
    }

    /// Appends `events` all together or not at all, in a batch with whatever other callers
    /// are waiting; the expected subject sequence goes on an aggregate's first event.
    pub async fn append_all(&self, events: Vec<NewEvent>) -> Result<Vec<Appended>, AppendError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if events.len() > MAX_BATCH {
            return Err(AppendError::Refused(format!(
                "{} events exceed an atomic batch of {MAX_BATCH}",
                events.len()
            )));
        }
        let (answer, answered) = oneshot::channel();
        let member = Member {
            events,
            span: tracing::Span::current(),
            answer,
        };
        if self.queue.send(member).await.is_err() {
            return Err(AppendError::Unavailable(
                "the hub is stopping: the append was not sent".into(),
            ));
        }
        answered.await.unwrap_or_else(|_| {
            Err(AppendError::Unavailable(
                "the append's outcome is unknown (the hub stopped while it was in flight); \
                 a retry with the same ids is safe"
                    .into(),
            ))
        })
    }

    /// Callers whose events the committer holds, waiting for a batch, in the order they
    /// arrived (a test holding the committer sees each one here before it sends the next).
    pub fn waiting(&self) -> usize {
        self.counts.waiting.load(Ordering::SeqCst)
    }

    /// Batches stored with more than one caller's events in them.
    pub fn grouped_batches(&self) -> u64 {
        self.counts.grouped.load(Ordering::SeqCst)
    }

    /// Batches the server refused whose callers were then appended one by one.
    pub fn split_batches(&self) -> u64 {
        self.counts.split.load(Ordering::SeqCst)
    }
}

/// The committer: waits for a member and a free slot, takes every member ready then into one
/// batch, and sends it on a task of its own.
async fn run(
    appender: Appender,
    mut queue: mpsc::Receiver<Member>,
    in_flight: usize,
    name: String,
    counts: Arc<Counts>,
) {
    let slots = Arc::new(Semaphore::new(in_flight));
    // The subjects of the batches in flight, and a wake-up when one of them is answered: a
    // command on one of those aggregates waits for it, so it can never overtake the command
    // ahead of it (and have that whole batch refused).
    let busy = Arc::new(Busy::default());
    let mut waiting = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(member) => waiting.push_back(member),
                None => break,
            }
            counts.waiting.store(waiting.len(), Ordering::SeqCst);
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if let Some(gather) =
            hub_store::failpoint::returned("group-commit-gather").and_then(|n| n.parse().ok())
        {
            while waiting.len() < gather {
                match queue.recv().await {
                    Some(member) => waiting.push_back(member),
                    None => break,
                }
            }
        }
        while hub_store::failpoint::holds("group-commit-hold", &name) {
            take_in(&mut queue, &mut waiting);
            counts.waiting.store(waiting.len(), Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        take_in(&mut queue, &mut waiting);
        let batch = next_batch(&mut waiting, &busy.subjects());
        counts.waiting.store(waiting.len(), Ordering::SeqCst);
        if batch.is_empty() {
            // Every command waiting is on an aggregate in flight: wait for an answer or a
            // new command.
            drop(slot);
            tokio::select! {
                () = busy.answered.notified() => {}
                member = queue.recv() => match member {
                    Some(member) => waiting.push_back(member),
                    None => break,
                },
            }
            counts.waiting.store(waiting.len(), Ordering::SeqCst);
            continue;
        }
        let subjects = busy.take(&batch);
        tokio::spawn(commit(
            appender.clone(),
            batch,
            (slot, subjects, busy.clone()),
            counts.clone(),
        ));
    }
    // Every sender is gone: the batches in flight finish before the committer does.
    let _ = slots.acquire_many(in_flight as u32).await;
    // Members still waiting behind an aggregate in flight when the hub stops were never
    // sent; dropping them answers their callers UNAVAILABLE.
}

/// The aggregates of the batches in flight.
#[derive(Default)]
struct Busy {
    in_flight: std::sync::Mutex<HashSet<String>>,
    answered: tokio::sync::Notify,
}

impl Busy {
    fn subjects(&self) -> HashSet<String> {
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Marks the batch's subjects in flight; returns them, to release once answered.
    fn take(&self, batch: &[Member]) -> Vec<String> {
        let subjects: Vec<String> = batch
            .iter()
            .flat_map(|m| m.events.iter().map(|e| e.subject.clone()))
            .collect();
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend(subjects.iter().cloned());
        subjects
    }

    fn release(&self, subjects: &[String]) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for subject in subjects {
            in_flight.remove(subject);
        }
        drop(in_flight);
        self.answered.notify_one();
    }
}

/// Moves what is queued now (up to the lookahead) behind the members already waiting.
fn take_in(queue: &mut mpsc::Receiver<Member>, waiting: &mut VecDeque<Member>) {
    while waiting.len() < LOOKAHEAD {
        match queue.try_recv() {
            Ok(member) => waiting.push_back(member),
            Err(_) => break,
        }
    }
}

/// The next batch, oldest members first: each whole, at most one per aggregate and none on
/// an aggregate `busy` in a batch in flight, at most [`MAX_BATCH`] events. Members left out
/// keep their order for the next batch. Empty only when every member waits on `busy`.
fn next_batch(waiting: &mut VecDeque<Member>, busy: &HashSet<String>) -> Vec<Member> {
    let mut subjects: HashSet<String> = busy.clone();
    let mut events = 0;
    let mut batch = Vec::new();
    let mut left = VecDeque::new();
    while let Some(member) = waiting.pop_front() {
        let fits = events + member.events.len() <= MAX_BATCH
            && member
                .events
                .iter()
                .all(|e| !subjects.contains(e.subject.as_str()));
        if fits {
            events += member.events.len();
            subjects.extend(member.events.iter().map(|e| e.subject.clone()));
            batch.push(member);
            if events == MAX_BATCH {
                break;
            }
        } else {
            left.push_back(member);
        }
    }
    left.append(waiting);
    *waiting = left;
    batch
}

/// Appends one batch and answers its members; holds its slot and its aggregates until they
/// are answered.
async fn commit(
    appender: Appender,
    batch: Vec<Member>,
    (_slot, subjects, busy): (OwnedSemaphorePermit, Vec<String>, Arc<Busy>),
    counts: Arc<Counts>,
) {
    append_and_answer(appender, batch, counts).await;
    busy.release(&subjects);
}

async fn append_and_answer(appender: Appender, mut batch: Vec<Member>, counts: Arc<Counts>) {
    if batch.len() == 1 {
        let Member {
            mut events,
            span,
            answer,
        } = batch.remove(0);
        let result = appender.append_slice(&mut events).instrument(span).await;
        if result.is_ok() {
            hub_store::failpoint::crash("between-group-batches");
        }
        let _ = answer.send(result);
        return;
    }
    let sizes: Vec<usize> = batch.iter().map(|m| m.events.len()).collect();
    let mut events: Vec<NewEvent> = batch.iter_mut().flat_map(|m| m.events.drain(..)).collect();
    // A root span of its own (no caller's span is current here), linked to each member's
    // trace by `append_slice`.
    let result = appender.append_slice(&mut events).await;
    match result {
        Ok(appended) => {
            counts.grouped.fetch_add(1, Ordering::SeqCst);
            hub_store::failpoint::crash("between-group-batches");
            let mut appended = appended.into_iter();
            for (member, size) in batch.into_iter().zip(sizes) {
                let _ = member
                    .answer
                    .send(Ok(appended.by_ref().take(size).collect()));
            }
        }
        Err(AppendError::Unavailable(reason)) => {
            for member in batch {
                let _ = member
                    .answer
                    .send(Err(AppendError::Unavailable(reason.clone())));
            }
        }
        Err(refused) => {
            counts.split.fetch_add(1, Ordering::SeqCst);
            tracing::debug!(error = %refused, members = batch.len(), "batch refused; appending its members one by one");
            let mut events = events.into_iter();
            for (member, size) in batch.iter_mut().zip(sizes) {
                member.events.extend(events.by_ref().take(size));
            }
            futures::stream::iter(batch)
                .for_each_concurrent(RETRIES_AT_ONCE, |member| {
                    let appender = appender.clone();
                    async move {
                        let Member {
                            mut events,
                            span,
                            answer,
                        } = member;
                        let result = appender.append_slice(&mut events).instrument(span).await;
                        let _ = answer.send(result);
                    }
                })
                .await;
        }
    }
}

/// Members of a refused batch appended at once; a member of several events is an atomic
/// batch of its own, and the server's limit per stream is shared with the batches in flight.
const RETRIES_AT_ONCE: usize = 8;
