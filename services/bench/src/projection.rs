//! Building the read models from the log, against what it costs to read the log and to write
//! the same rows into sled.
//!
//! - [`project`]: every read model the hub rebuilds, built from position 1 by the hub's own
//!   projector (`hub_projector::run`: its consumer, decoding, projection and sled commit,
//!   with the hub's `max_batch` of 1024), in this process, all at once as the hub runs them;
//!   the time until each has applied the log's last position.
//! - [`ordered_replay`]: an ordered consumer reading every event of the log.
//! - [`pull_consume`]: a pull consumer reading every event in batches of 1024.
//! - [`sled_only`]: the rows those read models write, worked out beforehand by the same
//!   projections over an in-memory store (batch by batch, as the projector applies them) and
//!   then written by a plain loop into sled, one database per read model opened as the hub
//!   opens its own (same cache, mode and `flush_every_ms(FLUSH_EVERY_MS)`), one
//!   `apply_batch` per batch with its checkpoint key and no flush per batch. Only the
//!   writing is timed.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use hub_log::Entry;
use hub_log::names::{EVENTS_STREAM, projector_consumer};
use hub_projector::case_queue::CaseQueue;
use hub_projector::command_state::CommandState;
use hub_projector::{Alarms, Projection, ProjectorOptions, ReadModel, apply_entries};
use hub_store::{Batch, MemStore, ReadModelStore, SledStore, Write};
use tokio_util::sync::CancellationToken;

/// The hub's sled page cache per read model (`read_models.cache_mb`, default 16 MiB, or
/// `HUB_READ_MODELS__CACHE_MB` as the bench's hub process takes it).
fn cache_bytes() -> anyhow::Result<u64> {
    Ok(crate::serve::read_models()?.cache_mb << 20)
}

/// The projections of every read model the hub rebuilds, made as the hub makes them.
pub fn projections() -> anyhow::Result<Vec<Arc<dyn Projection>>> {
    let config = hub::Config::default();
    let tz = config.time_zone().map_err(anyhow::Error::msg)?;
    let registry = hub::load_registry(None)?;
    let policy = Arc::new(hub_domain::policy::Policy::with_defaults(
        registry.calendar(tz.clone()),
    ));
    let alarms = Alarms::default();
    let mut all: Vec<Arc<dyn Projection>> = vec![
        Arc::new(CaseQueue::new(alarms.clone())),
        Arc::new(CommandState::new(policy, alarms.clone())),
    ];
    all.extend(
        hub::dataset_projections(&tz, &alarms)
            .into_iter()
            .map(|(_, p)| p),
    );
    Ok(all)
}

/// Whether NATS subject filter `filter` (`*` and `>` wildcards) matches `subject`.
fn matches(filter: &str, subject: &str) -> bool {
    let mut subject = subject.split('.');
    for token in filter.split('.') {
        match (token, subject.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (t, Some(s)) if t == s => {}
            _ => return false,
        }
    }
    subject.next().is_none()
}

/// Builds every projection from position 1 by the hub's projector with `max_batch`, all at
/// once, into sled databases under `dir`, until each stands at `last`: how long that took.
/// The databases and consumers are removed afterwards.
pub async fn project(
    url: &str,
    dir: &Path,
    last: u64,
    max_batch: usize,
) -> anyhow::Result<Duration> {
    // A connection of its own, as the hub's projectors have.
    let js = jetstream::new(async_nats::connect(url).await?);
    let stop = CancellationToken::new();
    let mut models = Vec::new();
    let mut tasks = Vec::new();
    let mut consumers = Vec::new();
    for projection in projections()? {
        let name = projection.name();
        let store_dir = dir.join(name);
        let cache = cache_bytes()?;
        let store = tokio::task::spawn_blocking(move || {
            SledStore::open_with(&store_dir, cache, hub::compressed(name))
        })
        .await??;
        let model = ReadModel::new(name, Arc::new(store), 0);
        let mut options = ProjectorOptions::new(projector_consumer(name, "bench-project"));
        options.max_batch = max_batch;
        consumers.push(options.consumer_name.clone());
        models.push(model.clone());
        tasks.push((projection, model, options));
    }
    let started = Instant::now();
    let running: Vec<_> = tasks
        .into_iter()
        .map(|(projection, model, options)| {
            tokio::spawn(hub_projector::run(
                js.clone(),
                model,
                projection,
                options,
                stop.child_token(),
            ))
        })
        .collect();
    for model in &models {
        model
            .wait_for(last, Duration::from_secs(3600))
            .await
            .map_err(|e| anyhow::anyhow!("read model {}: {e:?}", model.name()))?;
    }
    let took = started.elapsed();
    stop.cancel();
    for task in running {
        task.await??;
    }
    let stream = js.get_stream(EVENTS_STREAM).await?;
    for consumer in consumers {
        stream.delete_consumer(&consumer).await?;
    }
    drop(models);
    remove(dir).await;
    Ok(took)
}

async fn remove(dir: &Path) {
    let dir = dir.to_owned();
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
}

/// Reads every event of the log with an ordered consumer: the time that took, and the events.
pub async fn ordered_replay(url: &str, last: u64) -> anyhow::Result<(Duration, Vec<Entry>)> {
    let js = jetstream::new(async_nats::connect(url).await?);
    let stream = js.get_stream(EVENTS_STREAM).await?;
    let started = Instant::now();
    let mut messages = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await?
        .messages()
        .await?;
    let mut read = Vec::with_capacity(last as usize);
    while (read.len() as u64) < last {
        let message = messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("the ordered consumer ended"))??;
        read.push(message);
    }
    let took = started.elapsed();
    drop(messages);
    let entries = read
        .into_iter()
        .map(|m| Entry::from_message(&m).map_err(|e| anyhow::anyhow!("{e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        entries.last().map(Entry::position) == Some(last),
        "the replay did not end at position {last}"
    );
    Ok((took, entries))
}

/// Reads every event of the log with a pull consumer, in batches of `batch`, acknowledging
/// nothing: how long that took.
pub async fn pull_consume(url: &str, last: u64, batch: usize) -> anyhow::Result<Duration> {
    let js = jetstream::new(async_nats::connect(url).await?);
    let stream = js.get_stream(EVENTS_STREAM).await?;
    let started = Instant::now();
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            ack_policy: consumer::AckPolicy::None,
            deliver_policy: consumer::DeliverPolicy::All,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(batch)
        .messages()
        .await?;
    let mut read = 0;
    while read < last {
        messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("the pull consumer ended"))??;
        read += 1;
    }
    Ok(started.elapsed())
}

/// One read model's writes, batch by batch, each with the checkpoint written beside it.
type Writes = Vec<(Vec<Write>, u64)>;

/// The writes `projection` makes applying `entries` (the log from position 1) in batches of
/// `batch` of the events it consumes, as its projector would; worked out over a store in
/// memory.
fn writes_of(
    projection: &dyn Projection,
    entries: &[Entry],
    batch: usize,
) -> anyhow::Result<Writes> {
    let filter = projection.filter_subject();
    let mine: Vec<&Entry> = entries
        .iter()
        .filter(|e| matches(&filter, e.subject()))
        .collect();
    let store = MemStore::new();
    let mut all = Vec::new();
    for chunk in mine.chunks(batch) {
        let chunk: Vec<Entry> = chunk.iter().map(|&e| e.clone()).collect();
        let checkpoint = store.checkpoint()?;
        let mut pending = Batch::new(&store);
        let last = apply_entries(projection, &mut pending, &chunk, checkpoint)
            .map_err(|e| anyhow::anyhow!("{}: {e}", projection.name()))?;
        let writes = pending.into_writes();
        store.write(writes.clone(), last)?;
        all.push((writes, last));
    }
    Ok(all)
}

/// For each read model in turn: works out its writes for `entries` in batches of `batch`
/// (not timed), then writes them into a new sled database under `dir` (timed, with one flush
/// at the end, so that all of the writing's disk work is inside the time). How long the
/// writing took in all, and how many rows were written.
///
/// One database after the other, by one thread: on two cores that wrote the same rows
/// faster than a thread per database at once (which is how the hub's projectors run), so it
/// is the baseline to beat. Working out one database's writes at a time keeps only one read
/// model's rows in memory.
pub async fn sled_only(
    dir: &Path,
    entries: Arc<Vec<Entry>>,
    batch: usize,
) -> anyhow::Result<(Duration, u64)> {
    let dir = dir.to_owned();
    let outcome = tokio::task::spawn_blocking(move || -> anyhow::Result<(Duration, u64)> {
        let (mut took, mut rows) = (Duration::ZERO, 0);
        let cache = cache_bytes()?;
        for projection in projections()? {
            let writes = writes_of(&*projection, &entries, batch)?;
            rows += writes.iter().map(|(w, _)| w.len() as u64).sum::<u64>();
            let db = open_like_the_hub(
                &dir.join(projection.name()),
                cache,
                hub::compressed(projection.name()),
            )?;
            let started = Instant::now();
            write_all(&db, writes)?;
            db.flush()?;
            took += started.elapsed();
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok((took, rows))
    })
    .await??;
    Ok(outcome)
}

/// A new sled database made as the hub makes a read model's (`hub_store`'s `open_db`).
fn open_like_the_hub(dir: &Path, cache: u64, compress: bool) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(dir)
        .cache_capacity(if compress {
            cache / hub_store::COMPRESSED_CACHE_SHARE
        } else {
            cache
        })
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(Some(hub_store::FLUSH_EVERY_MS))
        .use_compression(compress)
        .compression_factor(hub_store::COMPRESSION_LEVEL)
        .open()
}

/// The plain loop: one atomic batch per projector batch, rows under the hub's row prefix and
/// the checkpoint beside them, as `SledStore::write` lays them out; no flush.
fn write_all(db: &sled::Db, writes: Writes) -> anyhow::Result<()> {
    for (rows, checkpoint) in writes {
        let mut batch = sled::Batch::default();
        for write in rows {
            match write {
                Write::Put { key, value } => batch.insert([b"r/".as_slice(), &key].concat(), value),
                Write::Delete { key } => batch.remove([b"r/".as_slice(), &key].concat()),
            }
        }
        batch.insert(b"m/checkpoint".as_slice(), &checkpoint.to_be_bytes());
        db.apply_batch(batch)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn subject_filters_match_as_nats_does() {
        assert!(matches("gov.events.>", "gov.events.case.x"));
        assert!(matches("gov.events.case.>", "gov.events.case.x"));
        assert!(!matches("gov.events.care.>", "gov.events.case.x"));
        assert!(matches("gov.*.case.x", "gov.events.case.x"));
        assert!(!matches("gov.events.case.>", "gov.events.case"));
        assert!(!matches("gov.events", "gov.events.case"));
    }
}
