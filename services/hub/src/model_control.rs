//! Each read model's task: its live projector, and the rebuilds beside it that an operator
//! (or a new version of its code) asks for.
//!
//! A rebuild is a new sled database in a folder of its own (`read-models/<name>.v<version>`
//! for a new version of the code, `read-models/<name>.r<number>` for an operator's), built
//! from position 1 by a consumer of its own in large batches while the live one serves what
//! it has. A swap stops both projectors, lets the build reach the live one's position, flushes
//! it, marks it with the code's version, makes it live by the pointer file, swaps it into the
//! handle, removes the old folder and starts the live projector again on it. A version
//! rebuild swaps by itself once caught up (the live projector does not run meanwhile: the new
//! code may not fit the old rows); an operator's waits for SwapReadModel, following the log,
//! and is dropped at a restart.
//!
//! A verify stops the live projector just long enough to digest its rows at its checkpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hub_api::ApiError;
use hub_domain::policy::Policy;
use hub_log::names::EVENTS_STREAM;
use hub_projector::{Alarms, Projection, ProjectorError, ProjectorOptions, ReadModel};
use hub_store::{Digest, MODEL_VERSION, ReadModelStore, SledStore};
use jiff::Timestamp;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::read_models::{
    Prepare, alarm_as_when_halted, alarm_when_halted, open_dir, remove_stale, set_live_folder,
};

/// How long a swap waits for the build to reach the live model's position.
const SWAP_CATCH_UP: Duration = Duration::from_secs(30);

/// A rebuild running beside the live read model.
#[derive(Debug, Clone)]
pub struct Building {
    /// The model being built: its position and state.
    pub model: ReadModel,
    pub started: Timestamp,
}

impl Building {
    /// Whether it has applied everything the log stored after it began.
    pub fn caught_up(&self) -> bool {
        caught_up_since(&self.model.state(), self.started)
    }
}

/// Whether a build begun at `started` that stands at `state` has applied everything the log
/// stored after it began (and has not halted).
fn caught_up_since(state: &hub_projector::ModelState, started: Timestamp) -> bool {
    state.halted.is_none() && state.complete_as_of.is_some_and(|t| t >= started)
}

enum Control {
    Rebuild(oneshot::Sender<Result<Building, ApiError>>),
    Swap(oneshot::Sender<Result<u64, ApiError>>),
    Digest(oneshot::Sender<Result<(Digest, u64), ApiError>>),
}

/// What the rest of the hub holds of a read model's task.
#[derive(Clone)]
pub struct Managed {
    pub model: ReadModel,
    pub projection: Arc<dyn Projection>,
    /// What is done with a store before its projector runs on it: a fresh build to compare
    /// with the live one is prepared the same way.
    pub prepare: (Prepare, Arc<Policy>),
    control: mpsc::Sender<Control>,
    building: watch::Receiver<Option<Building>>,
}

impl std::fmt::Debug for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Managed {
    /// The rebuild beside it, if one runs.
    pub fn building(&self) -> Option<Building> {
        self.building.borrow().clone()
    }

    async fn ask<T>(
        &self,
        control: impl FnOnce(oneshot::Sender<Result<T, ApiError>>) -> Control,
    ) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        let gone = || ApiError::Unavailable("the read model's task is stopping".into());
        self.control.send(control(tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Starts a rebuild beside the live model, or gives the one already running.
    pub async fn rebuild(&self) -> Result<Building, ApiError> {
        self.ask(Control::Rebuild).await
    }

    /// Makes a caught-up rebuild live; returns its position.
    pub async fn swap(&self) -> Result<u64, ApiError> {
        self.ask(Control::Swap).await
    }

    /// The live model's digest, and the position it stands at (at or past the digest's
    /// checkpoint: a filtered model stands at the log's last position).
    pub async fn digest(&self) -> Result<(Digest, u64), ApiError> {
        self.ask(Control::Digest).await
    }
}

/// What a read model's task runs with.
pub struct Task {
    pub js: async_nats::jetstream::Context,
    pub data_dir: PathBuf,
    pub cache_mb: u64,
    pub alarms: Alarms,
    pub options: ProjectorOptions,
    /// What is done with a store before its projector runs on it (a rebuild's too, before
    /// it is swapped in), with the policy it reads.
    pub prepare: (Prepare, Arc<Policy>),
}

/// The task of read model `model`, to be spawned: its live projector, or, when
/// `stored_older`, a rebuild for the code's version first; and the handle on it.
pub fn start(
    task: Task,
    model: ReadModel,
    projection: Arc<dyn Projection>,
    stored_older: bool,
    stop: CancellationToken,
) -> (
    Managed,
    impl Future<Output = Result<(), ProjectorError>> + Send + 'static,
) {
    let (control_tx, control_rx) = mpsc::channel(4);
    let (building_tx, building_rx) = watch::channel(None);
    let managed = Managed {
        model: model.clone(),
        projection: projection.clone(),
        prepare: task.prepare.clone(),
        control: control_tx,
        building: building_rx,
    };
    let runner = Runner {
        task,
        model,
        projection,
        live: None,
        build: None,
        building: building_tx,
        stop,
        fatal: None,
    };
    (managed, runner.run(control_rx, stored_older))
}

struct Running {
    task: JoinHandle<Result<(), ProjectorError>>,
    stop: CancellationToken,
}

impl Running {
    async fn stop(self) -> Result<(), ProjectorError> {
        self.stop.cancel();
        self.task.await.map_err(|e| task_failed(e.to_string()))?
    }
}

struct Build {
    running: Running,
    store: Arc<SledStore>,
    folder: String,
    consumer: String,
    info: Building,
    /// Swapped in by itself once caught up (a new version of the code).
    auto_swap: bool,
}

struct Runner {
    task: Task,
    model: ReadModel,
    projection: Arc<dyn Projection>,
    live: Option<Running>,
    build: Option<Build>,
    building: watch::Sender<Option<Building>>,
    stop: CancellationToken,
    /// A projector that failed to stop (a storage failure): the task ends with it, and the
    /// hub restarts.
    fatal: Option<ProjectorError>,
}

fn task_failed(reason: String) -> ProjectorError {
    ProjectorError::Store {
        model: "read model task",
        source: hub_store::StoreError::Io(reason),
    }
}

/// Waits for `running`'s task to end, or forever when there is none.
async fn ended(running: &mut Option<Running>) -> Result<(), ProjectorError> {
    match running {
        Some(r) => {
            let outcome = (&mut r.task).await;
            outcome.map_err(|e| task_failed(e.to_string()))?
        }
        None => std::future::pending().await,
    }
}

/// Waits until the build that swaps by itself has caught up, or forever.
async fn ready_to_swap(build: Option<(watch::Receiver<hub_projector::ModelState>, Timestamp)>) {
    match build {
        Some((mut state, started)) => {
            let caught_up = state
                .wait_for(|s| caught_up_since(s, started))
                .await
                .is_ok();
            if !caught_up {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

impl Runner {
    async fn run(
        mut self,
        mut control: mpsc::Receiver<Control>,
        stored_older: bool,
    ) -> Result<(), ProjectorError> {
        if stored_older {
            let version = self.projection.version();
            self.start_build(format!("{}.v{version}", self.model.name()), true)
                .await?;
        } else {
            self.start_live();
        }
        loop {
            let auto_swap = self
                .build
                .as_ref()
                .filter(|b| b.auto_swap)
                .map(|b| (b.info.model.subscribe(), b.info.started));
            let build_ended = async {
                match &mut self.build {
                    Some(b) => {
                        let outcome = (&mut b.running.task).await;
                        outcome.map_err(|e| task_failed(e.to_string()))?
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.stop.cancelled() => break,
                // A projector ends by itself only on a storage failure, which restarts the hub.
                outcome = ended(&mut self.live) => {
                    self.live = None;
                    outcome?;
                    if self.stop.is_cancelled() { break }
                }
                outcome = build_ended => {
                    self.build = None;
                    self.building.send_replace(None);
                    outcome?;
                    if self.stop.is_cancelled() { break }
                }
                () = ready_to_swap(auto_swap) => {
                    self.swap().await.map_err(|e| task_failed(format!("swap: {e}")))?;
                }
                Some(asked) = control.recv() => match asked {
                    Control::Rebuild(reply) => {
                        let outcome = self.rebuild().await;
                        let _ = reply.send(outcome);
                    }
                    Control::Swap(reply) => {
                        let outcome = self.swap().await;
                        let _ = reply.send(outcome);
                    }
                    Control::Digest(reply) => {
                        let outcome = self.digest().await;
                        let _ = reply.send(outcome);
                    }
                },
            }
            if let Some(err) = self.fatal.take() {
                return Err(err);
            }
        }
        // Shutdown: each projector stops after its batch; a version rebuild resumes from its
        // checkpoint at the next start, an operator's is dropped.
        if let Some(live) = self.live.take() {
            live.stop().await?;
        }
        if let Some(build) = self.build.take() {
            build.running.stop().await?;
        }
        Ok(())
    }

    fn start_live(&mut self) {
        let stop = self.stop.child_token();
        let task = tokio::spawn(hub_projector::run(
            self.task.js.clone(),
            self.model.clone(),
            self.projection.clone(),
            self.task.options.clone(),
            stop.clone(),
        ));
        self.live = Some(Running { task, stop });
    }

    /// The alarm key of a halted rebuild.
    fn build_alarm(&self) -> String {
        format!("halted/{}.rebuild", self.model.name())
    }

    /// Records `err`, a projector that failed to stop: the task ends after this request.
    fn failed(&mut self, err: ProjectorError) -> ApiError {
        warn!(read_model = self.model.name(), error = %err, "a projector failed to stop; the hub restarts");
        self.fatal = Some(err);
        ApiError::Unavailable("the read model's storage failed; the hub restarts".into())
    }

    /// Drops the rebuild beside the live model: its projector, consumer, folder and alarm.
    async fn drop_build(&mut self) -> Result<(), ApiError> {
        let Some(build) = self.build.take() else {
            return Ok(());
        };
        self.building.send_replace(None);
        if let Err(err) = build.running.stop().await {
            return Err(self.failed(err));
        }
        if let Ok(stream) = self.task.js.get_stream(EVENTS_STREAM).await
            && let Err(err) = stream.delete_consumer(&build.consumer).await
        {
            warn!(read_model = self.model.name(), error = %err, "could not remove a dropped rebuild's consumer");
        }
        let dir = self.task.data_dir.join("read-models").join(&build.folder);
        drop(build.store);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        self.task.alarms.clear(&self.build_alarm());
        Ok(())
    }

    async fn rebuild(&mut self) -> Result<Building, ApiError> {
        match &self.build {
            // A halted build is dropped and started again (the cause may be mended).
            Some(build) if build.info.model.state().halted.is_some() => {
                info!(
                    read_model = self.model.name(),
                    "a halted rebuild is dropped and started again"
                );
                self.drop_build().await?;
            }
            Some(build) => return Ok(build.info.clone()),
            None => {}
        }
        let folder = format!(
            "{}.r{}",
            self.model.name(),
            Timestamp::now().as_millisecond()
        );
        self.start_build(folder, false).await.map_err(|err| {
            warn!(read_model = self.model.name(), error = %err, "a rebuild could not start");
            ApiError::Unavailable(format!("the rebuild could not start: {err}"))
        })?;
        self.build
            .as_ref()
            .map(|b| b.info.clone())
            .ok_or(ApiError::Internal)
    }

    async fn start_build(&mut self, folder: String, auto_swap: bool) -> Result<(), ProjectorError> {
        let name = self.model.name();
        let failed = |e: anyhow::Error| ProjectorError::Store {
            model: name,
            source: hub_store::StoreError::Io(format!("rebuild: {e:#}")),
        };
        let dir = self.task.data_dir.join("read-models").join(&folder);
        let store = open_dir(dir, name, self.task.cache_mb)
            .await
            .map_err(failed)?;
        let checkpoint = store.checkpoint().map_err(|source| ProjectorError::Store {
            model: name,
            source,
        })?;
        info!(read_model = name, from = checkpoint + 1, folder = %folder, "rebuilding the read model beside the live one");
        let model = ReadModel::new(name, store.clone(), checkpoint);
        let mut options = self.task.options.clone();
        options.consumer_name = format!("{}-rebuild", self.task.options.consumer_name);
        options.max_batch = options.max_batch.max(4096);
        // A rebuild replays the log: its spans link to each event's trace, not continue it.
        options.replay = true;
        let stop = self.stop.child_token();
        let task = tokio::spawn(hub_projector::run(
            self.task.js.clone(),
            model.clone(),
            self.projection.clone(),
            options.clone(),
            stop.clone(),
        ));
        // A build that halts has an alarm of its own: the live model serves on meanwhile.
        tokio::spawn(alarm_as_when_halted(
            model.clone(),
            (self.task.alarms.clone(), self.build_alarm()),
            stop.clone(),
        ));
        let info = Building {
            model,
            started: Timestamp::now(),
        };
        self.building.send_replace(Some(info.clone()));
        self.build = Some(Build {
            running: Running { task, stop },
            store,
            folder,
            consumer: options.consumer_name,
            info,
            auto_swap,
        });
        Ok(())
    }

    async fn swap(&mut self) -> Result<u64, ApiError> {
        let name = self.model.name();
        let Some(build) = &self.build else {
            return Err(ApiError::FailedPrecondition(format!(
                "no rebuild of {name} runs: start one with RebuildReadModel"
            )));
        };
        if !build.info.caught_up() {
            let state = build.info.model.state();
            return Err(ApiError::FailedPrecondition(match state.halted {
                Some(reason) => format!("the rebuild of {name} halted: {reason}"),
                None => format!(
                    "the rebuild of {name} has not caught up with the log yet (at position {})",
                    state.position
                ),
            }));
        }
        // The live model stops where it stands; the build, which follows the log, reaches
        // that position before it stops too, so the position never moves back. It is let
        // reach where the live one stands now first, so the live one stops only briefly.
        let now = self.model.state().position;
        let _ = build.info.model.wait_for(now, SWAP_CATCH_UP).await;
        if let Some(live) = self.live.take()
            && let Err(err) = live.stop().await
        {
            return Err(self.failed(err));
        }
        let live_position = self.model.state().position;
        let reached = build
            .info
            .model
            .wait_for(live_position, SWAP_CATCH_UP)
            .await
            .is_ok();
        if !reached {
            self.start_live();
            return Err(ApiError::Unavailable(format!(
                "the rebuild of {name} did not reach the live model's position {live_position} \
                 within {} s; the live model runs on, try again",
                SWAP_CATCH_UP.as_secs()
            )));
        }
        let Some(build) = self.build.take() else {
            return Err(ApiError::Internal);
        };
        self.building.send_replace(None);
        if let Err(err) = build.running.stop().await {
            return Err(self.failed(err));
        }
        self.task.alarms.clear(&self.build_alarm());
        let version = self.projection.version();
        let made_live = {
            let (store, data_dir, folder) = (
                build.store.clone(),
                self.task.data_dir.clone(),
                build.folder.clone(),
            );
            let ((prepare, policy), alarms) = (self.task.prepare.clone(), self.task.alarms.clone());
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                prepare(name, &store, &policy, &alarms)?;
                store.flush()?;
                store.set_meta(MODEL_VERSION, &version.to_string())?;
                hub_store::failpoint::crash("rebuild-before-pointer");
                set_live_folder(&data_dir, name, &folder)?;
                hub_store::failpoint::crash("rebuild-after-pointer");
                Ok(())
            })
            .await
        };
        if let Err(err) = made_live.map_err(anyhow::Error::from).and_then(|made| made) {
            warn!(read_model = name, error = %format!("{err:#}"), "a rebuild could not be made live; the live model runs on");
            self.start_live();
            return Err(ApiError::Unavailable(
                "the rebuild could not be made live (see the hub's log); the live model runs on"
                    .into(),
            ));
        }
        let state = build.info.model.state();
        let was_halted = self.model.state().halted.is_some();
        let old = self.model.swap(build.store.clone(), state.position);
        if let Some(as_of) = state.complete_as_of {
            self.model.complete_as_of(as_of);
        }
        drop(old);
        // A halted model is live again: its alarm goes, and a new halt raises it again (the
        // watcher that raised it has ended).
        if was_halted {
            self.task.alarms.clear(&format!("halted/{name}"));
            tokio::spawn(alarm_when_halted(
                self.model.clone(),
                self.task.alarms.clone(),
                self.stop.child_token(),
            ));
        }
        info!(read_model = name, version, position = state.position, folder = %build.folder, "rebuilt read model swapped in");
        // The rebuild's consumer is done with; the server would otherwise keep it for a day.
        if let Ok(stream) = self.task.js.get_stream(EVENTS_STREAM).await
            && let Err(err) = stream.delete_consumer(&build.consumer).await
        {
            warn!(read_model = name, error = %err, "could not remove the rebuild's consumer");
        }
        let data_dir = self.task.data_dir.clone();
        let _ = tokio::task::spawn_blocking(move || remove_stale(&data_dir, name, &[])).await;
        self.start_live();
        Ok(self.model.state().position)
    }

    async fn digest(&mut self) -> Result<(Digest, u64), ApiError> {
        let name = self.model.name();
        let was_live = match self.live.take() {
            Some(live) => {
                if let Err(err) = live.stop().await {
                    return Err(self.failed(err));
                }
                true
            }
            None => false,
        };
        let store = self.model.store();
        let position = self.model.state().position;
        let digest = tokio::task::spawn_blocking(move || hub_store::digest(&*store)).await;
        if was_live {
            self.start_live();
        }
        match digest {
            Ok(Ok(digest)) => Ok((digest, position)),
            Ok(Err(err)) => {
                warn!(read_model = name, error = %err, "digesting the read model failed");
                Err(ApiError::Internal)
            }
            Err(err) => {
                warn!(read_model = name, error = %err, "the digest task failed");
                Err(ApiError::Internal)
            }
        }
    }
}
