//! The hub in-process, on a loopback port chosen by the kernel.

use std::path::{Path, PathBuf};
use std::time::Duration;

use std::sync::Arc;

use hub::Config;
use hub_api::v1::admin_service_client::AdminServiceClient;
use hub_api::v1::audit_service_client::AuditServiceClient;
use hub_api::v1::care_command_service_client::CareCommandServiceClient;
use hub_api::v1::case_command_service_client::CaseCommandServiceClient;
use hub_api::v1::case_query_service_client::CaseQueryServiceClient;
use hub_api::v1::catalog_service_client::CatalogServiceClient;
use hub_api::v1::dataset_service_client::DatasetServiceClient;
use hub_api::v1::feed_service_client::FeedServiceClient;
use hub_api::v1::grant_command_service_client::GrantCommandServiceClient;
use hub_domain::clock::Clock;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::nats::Nats;
use crate::tls::ClientTls;

/// How long a hub may take to come up (a cold debug build on a loaded 2-core machine).
const START_LIMIT: Duration = Duration::from_secs(60);

/// Configures a hub for a test.
pub struct HubBuilder {
    config: Config,
    temp: Option<TempDir>,
    clock: Arc<dyn Clock>,
    /// How the harness itself connects: plain, or over this TLS.
    client_tls: Option<ClientTls>,
}

impl HubBuilder {
    /// A hub on its own nats-server child (development mode), in a fresh temp data dir.
    pub fn dev() -> Self {
        let temp = tempfile::Builder::new()
            .prefix("hub-test-data-")
            .tempdir()
            .expect("temp dir");
        let mut config = Config {
            data_dir: temp.path().to_owned(),
            // A name of its own, so a test can name its read models' consumers (to hold one).
            instance: temp
                .path()
                .file_name()
                .map(|n| {
                    n.to_string_lossy()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
                })
                .unwrap_or_default(),
            listen: ([127, 0, 0, 1], 0).into(),
            supervision_interval_ms: 50,
            // Another instance takes a stopped one's duties over within seconds.
            lease_ms: 3_000,
            ..Config::default()
        };
        // Audit checkpoints by record count only, so a test counting batches is not surprised
        // by one a slow run's clock set off.
        config.audit.checkpoint_seconds = 86_400;
        // Departments named by header unless a test sets up certificates or tokens.
        config.identity.mode = hub_api::identity::Mode::Development;
        Self {
            config,
            temp: Some(temp),
            clock: Arc::new(hub_ingest::SystemClock),
            client_tls: None,
        }
    }

    /// A hub on the given test server, checked through its monitoring endpoint.
    /// Every hub on one server shares its command hash key, as production requires.
    pub fn on(nats: &Nats) -> Self {
        let mut builder = Self::dev()
            .nats_url(nats.url())
            .monitor_url(Some(nats.monitor_url()));
        builder.config.commands.hash_key_file = Some(nats.hash_key_file());
        builder.config.audit.signing_key_file = Some(nats.audit_key_file());
        builder.config.nats.nkey_file = nats.hub_seed().map(|s| s.path().to_owned());
        // A server started without accounts isolates nobody: say so, as an operator must.
        builder.config.nats.accept_no_isolation = nats.hub_seed().is_none();
        builder
    }

    /// A hub on a cluster: every node's client URL and monitoring URL, 3 replicas.
    pub fn on_cluster(cluster: &crate::Cluster) -> Self {
        let mut builder = Self::dev()
            .nats_url(&cluster.urls())
            .monitor_url(Some(&cluster.monitor_urls()));
        builder.config.commands.hash_key_file = Some(cluster.hash_key_file());
        builder.config.audit.signing_key_file = Some(cluster.audit_key_file());
        builder.config.nats.replicas = 3;
        builder.config.nats.accept_no_isolation = true;
        builder
    }

    pub fn nats_url(mut self, url: &str) -> Self {
        self.config.nats.url = Some(url.to_owned());
        self
    }

    pub fn monitor_url(mut self, url: Option<&str>) -> Self {
        self.config.nats.monitor_url = url.map(str::to_owned);
        self
    }

    /// Whether the hub may start on a NATS without a hub seed (see `nats.accept_no_isolation`).
    pub fn accept_no_isolation(mut self, accept: bool) -> Self {
        self.config.nats.accept_no_isolation = accept;
        self
    }

    pub fn accept_durability_risk(mut self) -> Self {
        self.config.nats.accept_durability_risk = true;
        self
    }

    /// Keeps the data in `dir` (which outlives the hub) instead of a temp dir.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.config.data_dir = dir.to_owned();
        self.temp = None;
        self
    }

    /// The clock commands and deadline supervision read (a manual one crosses deadlines at once).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Production identity over the development CA's files in `ca`: TLS, client
    /// certificates and signed tokens; the harness's own channel presents `unit`'s
    /// certificate.
    pub fn production(mut self, ca: &hub::dev_ca::DevCa, unit: &str) -> Self {
        let identity = &mut self.config.identity;
        identity.mode = hub_api::identity::Mode::Production;
        identity.tls_cert_file = Some(ca.server_cert.clone());
        identity.tls_key_file = Some(ca.server_key.clone());
        identity.client_ca_file = Some(ca.ca_cert.clone());
        identity.token_public_key_file = Some(ca.token_public_key.clone());
        let unit = ca
            .units
            .iter()
            .find(|u| u.code == unit)
            .unwrap_or_else(|| panic!("no certificate for {unit}"));
        self.client_tls = Some(ClientTls::presenting(&ca.ca_cert, &unit.cert, &unit.key));
        self
    }

    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// The durable consumer the hub will give its read model `name` (what [`crate::Hold`]
    /// names), so a model can be held before the hub starts.
    pub fn consumer(&self, read_model: &str) -> String {
        hub_log::names::projector_consumer(read_model, &self.config.instance)
    }

    /// Starts the hub and waits until it serves; panics with the hub's error if it fails.
    pub async fn start(self) -> Hub {
        match self.try_start().await {
            Ok(hub) => hub,
            Err(err) => panic!("hub failed to start: {err:#}"),
        }
    }

    /// Starts the hub; `Err` is the hub's own reason for not starting.
    pub async fn try_start(self) -> anyhow::Result<Hub> {
        let listener = TcpListener::bind(self.config.listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let data_dir = self.config.data_dir.clone();
        let instance = self.config.instance.clone();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let (started_tx, mut started_rx) = oneshot::channel();
        let mut task = tokio::spawn(hub::run_with(
            self.config,
            listener,
            shutdown,
            hub::RunOptions {
                clock: self.clock,
                started: Some(started_tx),
            },
        ));
        let endpoint = match &self.client_tls {
            Some(tls) => tls.endpoint(addr),
            None => Endpoint::from_shared(format!("http://{addr}"))?
                .connect_timeout(Duration::from_secs(5)),
        };
        let deadline = tokio::time::Instant::now() + START_LIMIT;
        loop {
            // The hub either serves (health says so) or ends with its reason.
            if task.is_finished() {
                return match (&mut task).await {
                    Ok(Ok(())) => Err(anyhow::anyhow!("hub stopped before serving")),
                    Ok(Err(err)) => Err(err),
                    Err(join) => Err(anyhow::anyhow!("hub task panicked: {join}")),
                };
            }
            if let Ok(channel) = endpoint.connect().await {
                let mut health = HealthClient::new(channel.clone());
                if let Ok(answer) = health
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    && answer.get_ref().status == ServingStatus::Serving as i32
                    && let Ok(started) = started_rx.try_recv()
                {
                    return Ok(Hub {
                        addr,
                        started,
                        instance,
                        channel,
                        task: Some(task),
                        stop: Some(stop),
                        data_dir,
                        _temp: self.temp,
                    });
                }
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "hub did not serve within {START_LIMIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A running hub. Dropping it stops it without waiting; [`Hub::stop`] waits.
pub struct Hub {
    addr: std::net::SocketAddr,
    started: hub::Started,
    instance: String,
    channel: Channel,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    stop: Option<oneshot::Sender<()>>,
    data_dir: PathBuf,
    _temp: Option<TempDir>,
}

impl Hub {
    /// The demo grid incident reported by urban management under `rid`, then dispatched by
    /// Xuhui's command centre to `to` (a fire hazard: to be accepted within 30 minutes);
    /// returns the case id and the dispatch's position.
    pub async fn dispatched_case(&self, rid: &str, to: &str) -> (String, u64) {
        use crate::fixtures::{from, incident};
        let reported = self
            .commands()
            .report_case(from("urban-management", incident(rid)))
            .await
            .expect("report")
            .into_inner();
        let dispatched = self
            .commands()
            .dispatch_case(from(
                "dcc-310104",
                hub_api::v1::DispatchCaseRequest {
                    request_id: format!("{rid}-d"),
                    case_id: reported.case_id.clone(),
                    expected_version: None,
                    department: to.into(),
                },
            ))
            .await
            .expect("dispatch")
            .into_inner()
            .result
            .expect("an accepted command returns its result");
        (reported.case_id, dispatched.position)
    }

    pub fn commands(&self) -> CaseCommandServiceClient<Channel> {
        CaseCommandServiceClient::new(self.channel.clone())
    }

    pub fn care(&self) -> CareCommandServiceClient<Channel> {
        CareCommandServiceClient::new(self.channel.clone())
    }

    pub fn grants(&self) -> GrantCommandServiceClient<Channel> {
        GrantCommandServiceClient::new(self.channel.clone())
    }

    pub fn queries(&self) -> CaseQueryServiceClient<Channel> {
        CaseQueryServiceClient::new(self.channel.clone())
    }

    pub fn catalog(&self) -> CatalogServiceClient<Channel> {
        CatalogServiceClient::new(self.channel.clone())
    }

    pub fn datasets(&self) -> DatasetServiceClient<Channel> {
        DatasetServiceClient::new(self.channel.clone())
    }

    pub fn feeds(&self) -> FeedServiceClient<Channel> {
        FeedServiceClient::new(self.channel.clone())
    }

    pub fn auditors(&self) -> AuditServiceClient<Channel> {
        AuditServiceClient::new(self.channel.clone())
    }

    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone())
    }

    /// This hub's instance name (its audit chain is `gov.audit.<instance>`).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The address the hub serves gRPC and HTTP on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// The hub's HTTP endpoints (catalogue, dataset rows), on its gRPC port.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// This hub's read model `name`, to wait for its position.
    pub fn read_model(&self, name: &str) -> &hub_projector::ReadModel {
        self.started
            .read_models
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("no read model {name}"))
    }

    /// The NATS this hub uses (its own child's, for a hub from [`HubBuilder::dev`]).
    pub fn nats_url(&self) -> &str {
        &self.started.nats_url
    }

    /// The alarms the hub has raised.
    pub fn alarms(&self) -> &hub_projector::Alarms {
        &self.started.alarms
    }

    /// The group committer this hub's commands are appended through (how many wait, how
    /// many batches held several); [`crate::Hold::commands`] holds it by [`Hub::instance`].
    pub fn group_commit(&self) -> &hub_log::GroupCommit {
        &self.started.group_commit
    }

    /// Where the event log's chained digest stands, as its task publishes it.
    pub fn log_digest(&self) -> tokio::sync::watch::Receiver<hub_audit::log_digest::LogHead> {
        self.started.log_digest.clone()
    }

    /// The durable consumer of this hub's read model `name` (what [`crate::Hold`] names).
    pub fn consumer(&self, read_model: &str) -> String {
        hub_log::names::projector_consumer(read_model, &self.instance)
    }

    /// Stops the hub as Ctrl-C would and returns how `run` ended.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
