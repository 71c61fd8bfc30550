//! Starting, serving and stopping the hub.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use hub_api::aggregate::{Care, Case, Grant};
use hub_api::v1::LogDigestHead;
use hub_api::v1::admin_service_server::AdminServiceServer;
use hub_api::v1::audit_service_server::AuditServiceServer;
use hub_api::v1::care_command_service_server::CareCommandServiceServer;
use hub_api::v1::case_command_service_server::CaseCommandServiceServer;
use hub_api::v1::case_query_service_server::CaseQueryServiceServer;
use hub_api::v1::catalog_service_server::CatalogServiceServer;
use hub_api::v1::dataset_service_server::DatasetServiceServer;
use hub_api::v1::feed_service_server::FeedServiceServer;
use hub_api::v1::grant_command_service_server::GrantCommandServiceServer;
use hub_audit::ledger::Ledger;
use hub_audit::log_digest::LogDigest;
use hub_audit::{Audit, Checkpoints};
use hub_domain::clock::Clock;
use hub_domain::policy::Policy;
use hub_gateway::catalog::Publisher;
use hub_gateway::{Auditors, CaseQueries, Catalog, Datasets, Feeds, http};
use hub_ingest::{
    CareCommands, CaseCommands, CommandHasher, Executor, ExecutorContext, Freshness, GrantCommands,
    Index, Supervisor, SystemClock,
};
use hub_log::credentials::Seed;
use hub_log::feeds::{FeedSettings, ensure_feeds};
use hub_log::names::projector_consumer;
use hub_log::stream::{AUDIT, EventsStreamSettings, ensure_events_stream, ensure_stream};
use hub_log::{Appender, GroupCommit, GroupOptions};
use hub_projector::case_queue::{self, CaseQueue};
use hub_projector::command_state::CommandState;
use hub_projector::feed::FeedPublisher;
use hub_projector::{Alarms, Projection, ProjectorOptions, ReadModel};
use hub_store::ReadModelStore;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::connections::Connections;
use crate::identity::Identities;
use crate::nats_child::ChildNats;
use crate::reference::load_registry;
use crate::{health, model_control, nats_accounts, read_models};

/// Runs the hub until `shutdown` completes or a part fails for good.
///
/// Before serving it checks that the NATS it uses cannot lose acknowledged events, and
/// refuses to start otherwise, saying why.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    run_with_clock(config, listener, shutdown, Arc::new(SystemClock)).await
}

/// [`run`] with the clock commands and deadline supervision read: tests move a manual
/// clock across deadlines instead of waiting for them.
pub async fn run_with_clock(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<()> {
    run_with(
        config,
        listener,
        shutdown,
        RunOptions {
            clock,
            started: None,
        },
    )
    .await
}

/// What a running hub shows of itself to the code that started it (tests; later the
/// operators' status).
#[derive(Debug, Clone)]
pub struct Started {
    /// Every read model, with its position and freshness.
    pub read_models: Vec<ReadModel>,
    pub alarms: Alarms,
    /// The NATS the hub uses (its own child's, in development mode); on a cluster every
    /// member's URL, comma-separated (`hub_log::guard::url_list` splits them).
    pub nats_url: String,
    /// Where the event log's chained digest stands.
    pub log_digest: tokio::sync::watch::Receiver<hub_audit::log_digest::LogHead>,
    /// The group committer commands are appended through.
    pub group_commit: GroupCommit,
}

/// How [`run_with`] runs the hub besides its configuration.
pub struct RunOptions {
    /// The clock commands and deadline supervision read.
    pub clock: Arc<dyn Clock>,
    /// Told what the hub runs once it serves.
    pub started: Option<tokio::sync::oneshot::Sender<Started>>,
}

/// [`run`] with options.
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: RunOptions,
) -> anyhow::Result<()> {
    config
        .validate()
        .map_err(anyhow::Error::msg)
        .context("invalid configuration")?;
    crate::allocator::purge_in_background();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let registry = Arc::new(load_registry(config.reference_data.as_deref())?);
    // Before anything is started or opened: a hub that must refuse does so at once.
    let hasher = Arc::new(crate::secrets::command_hasher(&config).await?);
    let identities = config
        .identity
        .load(
            listener.local_addr()?,
            registry.clone(),
            options.clock.clone(),
        )
        .context("caller identity")?;

    // On its own nats-server the hub runs every unit in an account of its own, with keys it
    // generates once; on an external one it authenticates with the configured seed, if any.
    let (child, hub_seed) = match &config.nats.url {
        None => {
            nats_accounts::refuse_a_log_from_before_accounts(&config.data_dir.join("nats"))?;
            let secrets = nats_accounts::secrets_dir(&config.data_dir);
            let prepared = {
                let registry = registry.clone();
                tokio::task::spawn_blocking(move || nats_accounts::prepare(&secrets, &registry))
                    .await??
            };
            let (credentials, accounts) = prepared;
            let child = ChildNats::start(&config.data_dir.join("nats"), Some(accounts))
                .await
                .context("starting the nats-server child")?;
            nats_accounts::announce(child.client_url(), &credentials);
            (Some(child), Some(credentials.hub))
        }
        Some(_) => {
            let seed = match &config.nats.nkey_file {
                Some(path) => {
                    Some(Seed::read(path).context("reading the hub's NATS seed (nats.nkey_file)")?)
                }
                None if config.nats.accept_no_isolation => {
                    warn!(
                        "departments NOT isolated on NATS: no nats.nkey_file, and \
                         accept_no_isolation is set; any client of that NATS may read every feed"
                    );
                    None
                }
                None => anyhow::bail!(
                    "refusing to start: the hub would connect to {} without nats.nkey_file, so \
                     no NATS account keeps one department's feed from another; run that server \
                     with the accounts `hub nats-accounts --out DIR` writes and set \
                     nats.nkey_file to DIR/hub.nk, or accept the risk with \
                     nats.accept_no_isolation (--accept-no-isolation)",
                    config.nats.url.as_deref().unwrap_or_default()
                ),
            };
            (None, seed)
        }
    };
    let outcome = serve(
        &config,
        (registry, hasher, hub_seed),
        identities,
        child.as_ref(),
        listener,
        shutdown,
        options,
    )
    .await;
    if let Some(child) = child {
        child.stop().await;
    }
    outcome
}

async fn serve(
    config: &Config,
    (registry, hasher, hub_seed): (
        Arc<hub_domain::registry::Registry>,
        Arc<CommandHasher>,
        Option<Seed>,
    ),
    identities: Identities,
    child: Option<&ChildNats>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: RunOptions,
) -> anyhow::Result<()> {
    // Events stored before this, in a read model that starts empty, are a replay.
    let started_at = jiff::Timestamp::now();
    let RunOptions { clock, started } = options;
    let Identities { auth, tls } = identities;
    let (url, monitor_url) = match child {
        Some(child) => (
            child.client_url().to_owned(),
            Some(child.monitor_url().to_owned()),
        ),
        None => (
            config.nats.url.clone().unwrap_or_default(),
            config.nats.monitor_url.clone(),
        ),
    };
    let Connections {
        hub: client,
        projectors: projector_client,
        audit: audit_client,
    } = Connections::open(
        &url,
        hub_seed.as_ref(),
        monitor_url.as_deref(),
        config.nats.accept_durability_risk,
    )
    .await?;
    let appender = Appender::new(client.clone(), config.nats.ack_timeout());
    let settings = EventsStreamSettings {
        duplicate_window: config.nats.duplicate_window(),
        replicas: config.nats.replicas,
    };
    let stream = ensure_events_stream(appender.context(), &settings)
        .await
        .context("refusing to start")?;
    info!(stream = %stream.config.name, last_position = stream.state.last_sequence, "event log ready");
    let audit_js = async_nats::jetstream::new(audit_client);
    let audit_stream = ensure_stream(&audit_js, AUDIT, &settings)
        .await
        .context("refusing to start")?;
    info!(stream = %audit_stream.config.name, records_batches = audit_stream.state.messages, "audit log ready");
    // Each unit's feed and the durable consumer it binds to (the feed publisher fills them).
    let feed_settings = FeedSettings {
        max_age: Duration::from_secs(config.feeds.max_age_days * 24 * 3600),
        replicas: config.nats.replicas,
        ..FeedSettings::default()
    };
    let units: Vec<String> = registry.units().map(|u| u.code.to_string()).collect();
    ensure_feeds(appender.context(), &units, &feed_settings)
        .await
        .context("refusing to start")?;
    info!(units = units.len(), "department feeds ready");

    // How fresh command_state must be for new commands: by the stream's own duplicate window,
    // which is what the server enforces.
    let window = stream.config.duplicate_window;
    if window != config.nats.duplicate_window() {
        warn!(
            stream_window = ?window,
            configured = ?config.nats.duplicate_window(),
            "the events stream keeps its own duplicate window, not the configured one"
        );
    }
    let freshness = Freshness::new(
        window,
        config.nats.ack_timeout(),
        config.commands.index_wait(),
    );

    let tz = config.time_zone().map_err(anyhow::Error::msg)?;
    let policy = Arc::new(Policy::with_defaults(registry.calendar(tz.clone())));

    // Read models: one sled database, one consumer and one task each.
    let stop = CancellationToken::new();
    // Whichever way serving ends, an early `?` included, the tasks started below stop (the
    // log digest's would otherwise hold its store's lock).
    let _stop_on_return = stop.clone().drop_guard();
    let instance = instance_name(config)?;
    // Deadline supervision and sending the feeds: done by the instance holding each lease.
    let mut duties = crate::duties::Duties::open(
        appender.context(),
        &instance,
        (config.lease(), config.nats.replicas),
    )
    .await?;
    let (signer, public_key) = crate::secrets::audit_signer(config).await?;
    if let Some(public_key) = public_key {
        info!(public_key = %public_key.display(), "audit checkpoints are signed; exports verify with this public key");
    }
    // The event log's chained digest, folded after the fact by a task of its own; each
    // checkpoint signs where it stands.
    let log_digest = LogDigest::open(&config.data_dir.join("log-digest"))
        .context("opening the event log's digest")?;
    let (digest_head, digest_task) = log_digest
        .start(
            async_nats::jetstream::new(projector_client.clone()),
            stop.child_token(),
        )
        .context("starting the event log's digest")?;
    let alarms = Alarms::default();
    // Members checked at start are checked again while the hub runs: one that comes back or
    // joins unsafe raises an alarm.
    if let Some(monitor_url) = &monitor_url {
        tokio::spawn(crate::connections::watch_durability(
            client.clone(),
            monitor_url.clone(),
            config.nats.durability_check_interval(),
            alarms.clone(),
            stop.child_token(),
        ));
    }
    // A halted digest folds nothing more while checkpoints go on signing its last head: an
    // alarm, so operators look.
    raise_when(
        &alarms,
        "audit/log-digest",
        log_digest.halted(),
        stop.child_token(),
    );
    let checkpoints = Checkpoints {
        signer,
        every_records: config.audit.checkpoint_records,
        every: Duration::from_secs(config.audit.checkpoint_seconds),
        log_head: Box::new({
            let digest_head = digest_head.clone();
            move || {
                let head = *digest_head.borrow();
                LogDigestHead {
                    position: head.position,
                    digest: head.digest.to_vec(),
                }
            }
        }),
    };
    let (audit, audit_writer) = Audit::start(audit_js.clone(), &instance, checkpoints)
        .await
        .context("starting the audit log's writer")?;
    // The disclosure ledger, an index over GOV_AUDIT kept by a task of its own.
    let ledger = Ledger::open(&config.data_dir.join("disclosure-ledger"))
        .context("opening the disclosure ledger")?;
    let ledger_task = ledger
        .start(audit_js.clone(), stop.child_token())
        .context("starting the disclosure ledger")?;
    raise_when(
        &alarms,
        "audit/disclosure-ledger",
        ledger.alarm(),
        stop.child_token(),
    );
    // What a projector asks of the events stream (its info, a consumer made afresh) goes to
    // the stream's leader; when that member dies the request is lost, so it is given up on
    // and made again soon rather than waited on for the default 5 s.
    let projector_js = async_nats::jetstream::ContextBuilder::new()
        .timeout(Duration::from_secs(2))
        .build(projector_client.clone());
    crate::admin::clear_scratch(&config.data_dir);
    let mut projectors = tokio::task::JoinSet::new();
    let mut stores = Vec::new();
    let mut start = async |projection: Arc<dyn Projection>,
                           prepare: read_models::Prepare|
           -> anyhow::Result<model_control::Managed> {
        let version = projection.version();
        let store = read_models::open_read_model(
            &config.data_dir,
            projection.name(),
            config.read_models.cache_mb,
            version,
        )
        .await?;
        let (checkpoint, stored) = {
            let (store, policy, alarms) = (store.clone(), policy.clone(), alarms.clone());
            let name = projection.name();
            tokio::task::spawn_blocking(move || {
                prepare(name, &store, &policy, &alarms)?;
                let stored = read_models::check_version(&store, version)?;
                anyhow::Ok((store.checkpoint()?, stored))
            })
            .await??
        };
        let model = ReadModel::new(projection.name(), store.clone(), checkpoint);
        let mut options = ProjectorOptions::new(projector_consumer(projection.name(), &instance));
        options.max_batch = config.read_models.max_batch;
        // An idle model asks the log how far it stands often enough to stay fresh for commands.
        options.idle_check = options.idle_check.min(freshness.max_age() / 4);
        // Traces: a model built from empty over the log as it stood at start replays it
        // (linked to, not continued); in restore mode everything is a replay.
        options.replay_stored_before = Some(started_at);
        options.replay = config.restore;
        let older = match stored {
            read_models::Version::Current => false,
            read_models::Version::Older(stored) => {
                info!(
                    read_model = model.name(),
                    stored, version, "read model built by older code"
                );
                true
            }
        };
        let task = model_control::Task {
            js: projector_js.clone(),
            data_dir: config.data_dir.clone(),
            cache_mb: config.read_models.cache_mb,
            alarms: alarms.clone(),
            options,
            prepare: (prepare, policy.clone()),
        };
        let (managed, task) =
            model_control::start(task, model.clone(), projection, older, stop.child_token());
        projectors.spawn(task);
        tokio::spawn(read_models::alarm_when_halted(
            model.clone(),
            alarms.clone(),
            stop.child_token(),
        ));
        stores.push(store);
        Ok(managed)
    };
    // Every read model's task, for the operators' status, rebuilds and verifies.
    let mut managed = Vec::new();
    let model = start(
        Arc::new(CaseQueue::new(alarms.clone())),
        read_models::prepare_case_queue,
    )
    .await?;
    managed.push((None, model.clone()));
    let model = model.model;
    let command_state = start(
        Arc::new(CommandState::new(policy.clone(), alarms.clone())),
        read_models::prepare_command_state,
    )
    .await?;
    managed.push((None, command_state.clone()));
    let command_state = command_state.model;
    // The datasets of the catalogue, each on its own read model.
    let mut dataset_models = Vec::new();
    for (dataset, projection) in read_models::dataset_projections(&tz, &alarms) {
        let model = start(projection, read_models::prepare_dataset).await?;
        managed.push((Some(dataset), model.clone()));
        dataset_models.push((dataset, model.model));
    }

    // The feed publisher: decides each department's feed with its checkpoint, then sends.
    let units = registry.units().map(|u| u.code.to_string());
    let feed_model = start(
        Arc::new(FeedPublisher::new(units, clock.clone())),
        read_models::prepare_feed,
    )
    .await?;
    managed.push((None, feed_model.clone()));
    let feed_model = feed_model.model;
    let (feed_published, _) = tokio::sync::watch::channel(0);
    // Each care event placed in a feed is audited (the disclosure ledger reads it) before
    // it is sent.
    let feed_drain = tokio::spawn(hub_projector::feed::outbox::drain(
        (
            async_nats::jetstream::new(projector_client.clone()),
            audit.clone(),
        ),
        feed_model.clone(),
        clock.clone(),
        (
            feed_published.clone(),
            hub_projector::feed::outbox::Duty {
                // Held while the publisher's own model is live.
                held: duties.hold(hub_log::lease::FEEDS, {
                    let model = feed_model.clone();
                    Box::new(move || model.state().halted.is_none())
                }),
                marks: duties.marks.clone(),
                mark_key: hub_projector::feed::outbox::sent_mark_key(
                    &stream.created.unix_timestamp_nanos().to_string(),
                ),
            },
        ),
        stop.child_token(),
    ));

    // gRPC.
    let (health, health_service) = tonic_health::server::health_reporter();
    // The operators' status asks health in-process what the health service answers.
    let health_check = tonic_health::server::HealthService::from_health_reporter(health.clone());
    tokio::spawn(health::watch(
        health,
        model.clone(),
        command_state.clone(),
        freshness,
        alarms.clone(),
        stop.clone(),
    ));
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(hub_api::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().context("building reflection")?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .context("building reflection")?;

    // One executor per aggregate type, over the log and the command state index. Commands
    // are appended through the group committer: concurrent ones share atomic batches.
    let group_commit = GroupCommit::start(
        appender.clone(),
        GroupOptions {
            in_flight: config.commands.batches_in_flight,
            name: instance.clone(),
        },
    );
    let context = ExecutorContext {
        log: Arc::new(group_commit.clone()),
        index: Index::new(command_state.clone(), freshness),
        registry: registry.clone(),
        policy: policy.clone(),
        clock: clock.clone(),
        hasher,
    };
    let case_executor = Arc::new(Executor::<Case>::new(context.clone()));
    let care_executor = Arc::new(Executor::<Care>::new(context.clone()));
    let grant_executor = Arc::new(Executor::<Grant>::new(context));
    let supervisor = Supervisor::new(
        case_executor.clone(),
        grant_executor.clone(),
        command_state.clone(),
        Duration::from_millis(config.supervision_interval_ms),
    );
    // In restore mode nothing but the import writes to the log.
    let supervision = if config.restore {
        warn!(
            "RESTORE MODE: the hub takes a backup of the event log (hubctl import); the command \
             services answer UNAVAILABLE and deadline supervision is off; restart without \
             --restore once the import is done"
        );
        tokio::spawn(async {})
    } else {
        // Held while command_state is fresh enough for the hub's own commands.
        let held = duties.hold(hub_log::lease::SUPERVISION, {
            let cases = case_executor.clone();
            Box::new(move || cases.index_fresh())
        });
        tokio::spawn(supervisor.run(held, stop.child_token()))
    };
    let commands = CaseCommands::new(case_executor, (auth.clone(), audit.clone()));
    let care = CareCommands::new(care_executor, (auth.clone(), audit.clone()));
    let grants = GrantCommands::new(grant_executor, (auth.clone(), audit.clone()));
    let queries = CaseQueries::new(
        model.clone(),
        (auth.clone(), audit.clone()),
        Duration::from_millis(config.query.max_wait_ms),
    );
    let addr = listener.local_addr()?;
    let base_url = config.catalogue.base_url.clone().unwrap_or_else(|| {
        let scheme = if tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{addr}")
    });
    let all_read_models: Vec<ReadModel> = [model.clone(), command_state.clone()]
        .into_iter()
        .chain(dataset_models.iter().map(|(_, m)| m.clone()))
        .collect();
    // The catalogue: each department's case queue first, then the datasets.
    let catalogued = std::iter::once((&case_queue::DATASET, model.clone()))
        .chain(dataset_models)
        .collect();
    // Shared by the admin service and the operators' web console.
    let admin = Arc::new(crate::admin::Admin::new(crate::admin::Parts {
        auth: auth.clone(),
        audit: audit.clone(),
        instance: instance.clone(),
        log: appender.clone(),
        models: managed,
        units: registry.units().map(|u| u.code.to_string()).collect(),
        health: health_check,
        alarms: alarms.clone(),
        durability: crate::admin::Durability {
            monitor_url: monitor_url.clone(),
            client: client.clone(),
            settings: settings.clone(),
        },
        digest: log_digest.clone(),
        scratch: (config.data_dir.clone(), config.read_models.cache_mb),
        clock: clock.clone(),
        restore: config.restore,
        leases: duties.leases.clone(),
    }));
    let auditors = Auditors::new(
        (auth.clone(), audit.clone()),
        (audit_js, ledger),
        (appender.clone(), log_digest.clone()),
        // Alarms of their own: an auditor's replay never raises the hub's.
        read_models::dataset_projections(&tz, &Alarms::default()),
    );
    let datasets = Datasets::new(
        catalogued,
        appender.clone(),
        (auth, audit),
        Duration::from_millis(config.query.max_wait_ms),
        config.catalogue.small_count_threshold,
        clock.clone(),
    );
    let publisher = Publisher {
        name: config.catalogue.publisher.clone(),
        departments: registry
            .units()
            .map(|u| (u.code.to_string(), u.name.clone()))
            .collect(),
    };
    let catalog = Catalog::new(datasets.clone(), base_url.clone());
    let feeds = Feeds::new(
        datasets.clone(),
        appender.clone(),
        feed_published.subscribe(),
        stop.child_token(),
    );
    info!(%addr, nats = %url, data_dir = %config.data_dir.display(), catalogue = %format!("{base_url}/catalog"), "hub serving gRPC and HTTP");

    let restore = config.restore;
    let restoring = move |request: tonic::Request<()>| {
        if restore {
            Err(tonic::Status::unavailable(
                "this hub runs in restore mode (a backup of the event log is being imported); \
                 commands are taken once it is restarted without --restore",
            ))
        } else {
            Ok(request)
        }
    };
    let serving = {
        let stop = stop.clone();
        let stop_accepting = stop.clone();
        let mut routes = tonic::service::Routes::builder();
        routes
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(CaseCommandServiceServer::with_interceptor(
                commands, restoring,
            ))
            .add_service(CareCommandServiceServer::with_interceptor(care, restoring))
            .add_service(GrantCommandServiceServer::with_interceptor(
                grants, restoring,
            ))
            .add_service(CaseQueryServiceServer::new(queries))
            .add_service(CatalogServiceServer::new(catalog.clone()))
            .add_service(DatasetServiceServer::new(catalog))
            .add_service(FeedServiceServer::new(feeds))
            .add_service(AuditServiceServer::new(auditors))
            .add_service(AdminServiceServer::from_arc(admin.clone()));
        let mut routes = routes.routes();
        let grpc = std::mem::take(routes.axum_router_mut());
        *routes.axum_router_mut() = grpc
            .merge(http::router(datasets, publisher, base_url))
            .merge(crate::console::router(admin.clone()))
            .merge(crate::metrics::router());
        tokio::spawn(crate::metrics::refresh(admin, stop.clone()));
        // HTTP/1.1 too, for the catalogue and dataset rows; gRPC stays on HTTP/2. With TLS
        // configured, the port serves TLS only, through the hub's own acceptor.
        // A server span (continuing the caller's traceparent) and metrics for every call.
        let server = tonic::transport::Server::builder()
            .accept_http1(true)
            .layer(hub_telemetry::grpc::ServerSpans)
            .add_routes(routes);
        let shutdown = async move { stop.cancelled().await };
        match tls {
            Some(config) => {
                let incoming = crate::tls::incoming(listener, config, stop_accepting);
                tokio::spawn(server.serve_with_incoming_shutdown(incoming, shutdown))
            }
            None => {
                // TCP_NODELAY on each connection, as the TLS acceptor sets: without it a reply
                // written in pieces (a dataset page) waits ~40 ms on Nagle against the
                // client's delayed acknowledgement.
                let incoming =
                    tokio_stream::StreamExt::map(TcpListenerStream::new(listener), |tcp| {
                        tcp.inspect(|tcp| {
                            let _ = tcp.set_nodelay(true);
                        })
                    });
                tokio::spawn(server.serve_with_incoming_shutdown(incoming, shutdown))
            }
        }
    };
    if let Some(started) = started {
        // The receiver may be gone; the hub serves either way.
        let _ = started.send(Started {
            read_models: all_read_models,
            alarms: alarms.clone(),
            nats_url: url.clone(),
            log_digest: digest_head,
            group_commit,
        });
    }
    tokio::pin!(shutdown);
    let failed = tokio::select! {
        _ = &mut shutdown => {
            info!("shutting down");
            None
        }
        Some(outcome) = projectors.join_next() => Some(outcome),
    };
    stop.cancel();
    // The duties end first, and their leases are let go at once: another instance takes them
    // over while this one is still stopping, and no lease is renewed or taken meanwhile. The
    // feed publisher holds an audit handle: it lets go before the writer is awaited.
    if let Err(err) = feed_drain.await {
        warn!(error = %err, "the feed publisher's sending task failed");
    }
    if let Err(err) = supervision.await {
        error!(error = %err, "deadline supervision task failed");
    }
    duties.released().await;
    let mut outcomes: Vec<_> = failed.into_iter().collect();
    while let Some(outcome) = projectors.join_next().await {
        outcomes.push(outcome);
    }
    let served = crate::serve::drain_connections(serving).await;
    if let Err(err) = digest_task.await {
        warn!(error = %err, "the event log's digest task failed");
    }
    if let Err(err) = ledger_task.await {
        warn!(error = %err, "the disclosure ledger's task failed");
    }
    // The audit writer ends once the services holding it are gone, after storing what waits.
    if tokio::time::timeout(Duration::from_secs(5), audit_writer)
        .await
        .is_err()
    {
        warn!("the audit writer did not finish within 5 s of shutdown");
    }
    for store in &stores {
        read_models::store_flush(store).await;
    }
    for client in [&client, &projector_client] {
        if let Err(err) = client.flush().await {
            warn!(error = %err, "nats flush at shutdown");
        }
    }
    for outcome in outcomes {
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                error!(error = %err, "projector failed; stopping the hub");
                return Err(err.into());
            }
            Err(err) => bail!("projector task panicked: {err}"),
        }
    }
    served.context("grpc server task")?.context("grpc server")?;
    info!("hub stopped");
    Ok(())
}

/// The instance name: configured, or generated once and kept in the data dir.
fn instance_name(config: &Config) -> anyhow::Result<String> {
    if !config.instance.is_empty() {
        return Ok(config.instance.clone());
    }
    let path = config.data_dir.join("instance-id");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        _ => {
            let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
            std::fs::write(&path, &id).with_context(|| format!("writing {}", path.display()))?;
            Ok(id)
        }
    }
}

/// Raises the alarm `key` with the first text `findings` gives, unless `stop` comes first.
fn raise_when(
    alarms: &Alarms,
    key: &'static str,
    mut findings: tokio::sync::watch::Receiver<Option<String>>,
    stop: CancellationToken,
) {
    let alarms = alarms.clone();
    tokio::spawn(async move {
        let text = tokio::select! {
            _ = stop.cancelled() => return,
            found = findings.wait_for(Option::is_some) => match found {
                Ok(text) => text.clone().unwrap_or_default(),
                Err(_) => return,
            },
        };
        alarms.raise(key, text);
    });
}
