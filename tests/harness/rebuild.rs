//! "Every read model equals a fresh rebuild": a stopped hub's read models, compared row by
//! row with the same projections applied afresh to the log up to the same position.

use std::path::Path;
use std::sync::Arc;

use hub_domain::policy::Policy;
use hub_log::Entry;
use hub_projector::case_queue::CaseQueue;
use hub_projector::command_state::{self, CommandState};
use hub_projector::{Alarms, Projection};
use hub_store::{Batch, MemStore, ReadModelStore, SledStore};

/// The policy of a hub on the default configuration and the demo reference data.
pub fn default_policy() -> Arc<Policy> {
    let config = hub::Config::default();
    let registry = hub::load_registry(None).expect("demo reference data");
    let tz = config.time_zone().expect("time zone");
    Arc::new(Policy::with_defaults(registry.calendar(tz)))
}

/// Opens a stopped hub's read model: its sled database lets go of its lock a moment after
/// the hub stops, so a held lock is waited for (not any other error).
pub async fn open_stopped(dir: &Path) -> SledStore {
    let started = std::time::Instant::now();
    loop {
        match SledStore::open(dir, 16 << 20) {
            Ok(store) => return store,
            Err(err)
                if err.to_string().contains("could not acquire lock")
                    && started.elapsed() < std::time::Duration::from_secs(30) =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(err) => panic!("opening {}: {err}", dir.display()),
        }
    }
}

/// Every entry of the log from position 1 up to `last`, in order, read with one ordered
/// consumer rather than a request per event.
async fn read_log(js: &async_nats::jetstream::Context, last: u64) -> Vec<Entry> {
    use futures::StreamExt;
    let mut entries = Vec::with_capacity(last as usize);
    if last == 0 {
        return entries;
    }
    let stream = js.get_stream("GOV_EVENTS").await.expect("events stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
        .await
        .expect("ordered consumer");
    let mut messages = consumer.messages().await.expect("messages");
    while let Some(message) = messages.next().await {
        let message = message.expect("message");
        let entry = Entry::from_message(&message).expect("a stored event");
        let position = entry.position();
        entries.push(entry);
        if position >= last {
            break;
        }
    }
    entries
}

fn rows(store: &dyn ReadModelStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    store.scan(b"", None, usize::MAX).expect("scan")
}

fn consumes(filter: &str, subject: &str) -> bool {
    match filter.strip_suffix('>') {
        Some(prefix) => subject.starts_with(prefix),
        None => filter == subject,
    }
}

/// Asserts that each read model under `data_dir` (its hub stopped) holds exactly the rows its
/// projection gives when applied afresh to the log up to the model's own checkpoint; returns
/// the checkpoints, by model.
pub async fn assert_read_models_equal_a_rebuild(
    data_dir: &Path,
    js: &async_nats::jetstream::Context,
    policy: Arc<Policy>,
) -> Vec<(&'static str, u64)> {
    let tz = hub::Config::default().time_zone().expect("time zone");
    let mut projections: Vec<Arc<dyn Projection>> = vec![
        Arc::new(CaseQueue::new(Alarms::default())),
        Arc::new(CommandState::new(policy.clone(), Alarms::default())),
    ];
    // Every dataset of the catalogue too.
    projections.extend(
        hub::dataset_projections(&tz, &Alarms::default())
            .into_iter()
            .map(|(_, projection)| projection),
    );
    let mut lives = Vec::new();
    for projection in &projections {
        let live = open_stopped(&hub::read_model_dir(data_dir, projection.name())).await;
        let checkpoint = live.checkpoint().expect("checkpoint");
        lives.push((live, checkpoint));
    }
    // The log up to the furthest checkpoint, read once for every model.
    let furthest = lives.iter().map(|(_, c)| *c).max().unwrap_or(0);
    let log = read_log(js, furthest).await;
    let mut checkpoints = Vec::new();
    for (projection, (live, checkpoint)) in projections.into_iter().zip(lives) {
        let name = projection.name();
        let fresh = MemStore::new();
        let mut batch = Batch::new(&fresh);
        let filter = projection.filter_subject();
        for entry in log.iter().take_while(|e| e.position() <= checkpoint) {
            if !consumes(&filter, entry.subject()) {
                continue;
            }
            let position = entry.position();
            match entry {
                Entry::Event(event) => projection.apply(event, &mut batch),
                Entry::Unreadable(unreadable) => {
                    projection.apply_unreadable(unreadable, &mut batch)
                }
            }
            .unwrap_or_else(|e| panic!("{name} at {position}: {e}"));
        }
        fresh
            .commit(batch.into_writes(), checkpoint)
            .expect("commit");
        if name == command_state::NAME {
            // The hub records the policy its due index was built with as it starts.
            command_state::due::reschedule(&fresh, &policy).expect("policy");
        }
        let (live_rows, fresh_rows) = (rows(&live), rows(&fresh));
        assert_eq!(
            live_rows.len(),
            fresh_rows.len(),
            "read model {name} at {checkpoint}: row count differs from a rebuild"
        );
        for (live_row, fresh_row) in live_rows.iter().zip(&fresh_rows) {
            assert_eq!(
                live_row,
                fresh_row,
                "read model {name} at {checkpoint}: row {:?} differs from a rebuild",
                String::from_utf8_lossy(&live_row.0)
            );
        }
        // The same rows give the same digest: what two builds or a replica compare.
        assert_eq!(
            hub_store::digest(&live).expect("digest"),
            hub_store::digest(&fresh).expect("digest"),
            "read model {name}: digest differs from a rebuild"
        );
        checkpoints.push((name, checkpoint));
    }
    checkpoints
}
