//! `gov.hub.v1.AdminService`: what the hub's operators (units of kind operator in the
//! registry) ask of it, with `hubctl` as its client. Everyone else is refused (the public
//! with UNAUTHENTICATED, any other unit with PERMISSION_DENIED) before anything is looked up,
//! and every call is audited like a query.
//!
//! - [`status`]: where the streams, read models, feeds, health, alarms and durability stand;
//! - [`replay`]: the log's events by position, time, aggregate, type and event type;
//! - [`redeliver`]: a department's view of such a selection, sent into its feed again;
//! - rebuild, swap and verify of read models, through each read model's task
//!   ([`crate::model_control`]); [`verify`] builds the fresh copy to compare.

mod backup;
mod redeliver;
mod replay;
mod status;
mod verify;

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use futures::Stream;
use hub_api::ApiError;
use hub_api::identity::{Authenticator, Identity};
use hub_api::v1::admin_service_server::AdminService;
use hub_api::v1::{
    ExportLogRequest, ExportLogResponse, GetStatusRequest, GetStatusResponse, ImportLogRequest,
    ImportLogResponse, RebuildProgress, RebuildReadModelRequest, RebuildReadModelResponse,
    RedeliverFeedRequest, RedeliverFeedResponse, ReplayRequest, ReplayResponse,
    SwapReadModelRequest, SwapReadModelResponse, VerifyReadModelRequest, VerifyReadModelResponse,
};
use hub_audit::Audit;
use hub_audit::log_digest::LogDigest;
use hub_domain::registry::UnitKind;
use hub_gateway::audited::{Answered, Asked, audited};
use hub_log::Appender;
use hub_log::stream::EventsStreamSettings;
use hub_projector::Alarms;
use hub_projector::datasets::Dataset;
use tonic::{Request, Response, Status};

pub use verify::clear_scratch;

use crate::model_control::{Building, Managed};

/// The action of an import's records: when it is asked, and its outcome.
const IMPORTED: &str = "gov.hub.v1.AdminService/ImportLog";

/// How often a rebuild's progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The NATS server (or every member of the cluster) the hub checks for durability.
#[derive(Debug, Clone)]
pub struct Durability {
    /// One monitoring URL, or every cluster member's, comma-separated.
    pub monitor_url: Option<String>,
    /// The hub's connection: the server it is connected to now is one of the checked.
    pub client: async_nats::Client,
    pub settings: EventsStreamSettings,
}

/// A read model as the operators see it: its task, and its dataset if it is one.
pub type Model = (Option<&'static Dataset>, Managed);

pub struct Admin {
    p: Parts,
    /// One scratch build at a time (a verify, a re-delivery): each replays the log.
    scratch_turn: Arc<tokio::sync::Semaphore>,
}

/// Everything [`Admin`] reads.
pub struct Parts {
    pub auth: Authenticator,
    pub audit: Audit,
    pub instance: String,
    pub log: Appender,
    pub models: Vec<Model>,
    pub units: Vec<String>,
    pub health: tonic_health::server::HealthService,
    pub alarms: Alarms,
    pub durability: Durability,
    /// The event log's chained digest.
    pub digest: LogDigest,
    /// Where verifies and re-deliveries build their fresh copies, and with what cache.
    pub scratch: (PathBuf, u64),
    /// The clock the feed publisher reads (whether a grant is in force).
    pub clock: Arc<dyn hub_domain::clock::Clock>,
    /// Restore mode: the only one in which ImportLog writes to the log.
    pub restore: bool,
    /// The duties' leases: who holds which.
    pub leases: async_nats::jetstream::kv::Store,
}

impl Admin {
    pub fn new(parts: Parts) -> Self {
        Self {
            p: parts,
            scratch_turn: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// `who`, if it is an operator.
    fn operator(&self, who: &Result<Identity, ApiError>) -> Result<(), ApiError> {
        match who.as_ref().map_err(Clone::clone)? {
            Identity::Public => Err(ApiError::Unauthenticated(
                "the admin service is for operators: identify by client certificate or signed \
                 token"
                    .into(),
            )),
            Identity::Department(d) => {
                let kind = self.p.auth.registry().unit(&d.code).map(|u| u.kind);
                if kind == Some(UnitKind::Operator) {
                    Ok(())
                } else {
                    Err(ApiError::PermissionDenied(
                        "the admin service is for operators (units of kind operator) only".into(),
                    ))
                }
            }
        }
    }

    /// Whether the hub runs in restore mode, the only one in which a backup is imported:
    /// nothing else then writes to the log, so the import cannot be forked by a command or
    /// an escalation landing between its messages.
    fn restoring(&self) -> Result<(), ApiError> {
        if self.p.restore {
            Ok(())
        } else {
            Err(ApiError::FailedPrecondition(
                "a backup is imported only into a hub started in restore mode (hub --restore), \
                 where nothing else writes to the log"
                    .into(),
            ))
        }
    }

    /// The read model named `name`, one that can be rebuilt and verified; a violation of
    /// `read_model` otherwise (the names are no secret: GetStatus lists them).
    fn rebuildable(&self, name: &str) -> Result<&Managed, ApiError> {
        let found = self.p.models.iter().find(|(_, m)| m.model.name() == name);
        match found {
            Some((_, m)) if m.model.name() == hub_projector::feed::FEED_MODEL => {
                Err(ApiError::FailedPrecondition(
                    "the feed publisher keeps what it has sent to each department, not rows the \
                     log alone gives: it is not rebuilt or verified"
                        .into(),
                ))
            }
            Some((_, m)) => Ok(m),
            None => {
                let mut violations = hub_domain::Violations::new();
                violations.push("read_model", "names no read model (GetStatus lists them)");
                Err(violations.into())
            }
        }
    }

    /// Records the call `action` on `read_model` by `who` with `result`.
    async fn recorded<T>(
        &self,
        who: &Result<Identity, ApiError>,
        action: &'static str,
        read_model: &str,
        result: Result<T, ApiError>,
        position: impl FnOnce(&T) -> u64,
    ) -> Result<T, ApiError> {
        let asked = Asked {
            action,
            dataset: self
                .p
                .models
                .iter()
                .find(|(_, m)| m.model.name() == read_model)
                .map(|(_, m)| m.model.name().to_owned())
                .unwrap_or_default(),
            ..Asked::default()
        };
        audited(&self.p.audit, who, asked, result, |value| Answered {
            position: position(value),
            ..Answered::default()
        })
        .await
    }
}

/// What the operators' web console ([`crate::console`]) reads through the admin service: the
/// same status GetStatus answers, and the identity, audit and log it works with.
impl Admin {
    pub(crate) fn auth(&self) -> &Authenticator {
        &self.p.auth
    }

    pub(crate) fn audit(&self) -> &Audit {
        &self.p.audit
    }

    pub(crate) fn log(&self) -> &Appender {
        &self.p.log
    }

    /// GetStatus's answer, for a caller already checked to be an operator.
    pub(crate) async fn status(&self) -> Result<GetStatusResponse, ApiError> {
        status::get_status(self).await
    }

    /// Sets the lag gauges (read models, feeds) to where things stand now.
    pub(crate) async fn observe(&self) {
        status::observe(self).await
    }
}

type Batches = Pin<Box<dyn Stream<Item = Result<ReplayResponse, Status>> + Send>>;
type ExportItems = Pin<Box<dyn Stream<Item = Result<ExportLogResponse, Status>> + Send>>;
type Redelivering = Pin<Box<dyn Stream<Item = Result<RedeliverFeedResponse, Status>> + Send>>;
type Progress = Pin<Box<dyn Stream<Item = Result<RebuildReadModelResponse, Status>> + Send>>;

/// The answers a task sends down `rx`, as a gRPC stream.
fn answers<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<Result<T, ApiError>>,
) -> Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>> {
    Box::pin(futures::StreamExt::map(
        tokio_stream::wrappers::ReceiverStream::new(rx),
        |answer| answer.map_err(Status::from),
    ))
}

/// Where `building` stands against a log whose last position is `last`.
fn progress(name: &str, building: &Building, last: u64) -> RebuildProgress {
    let state = building.model.state();
    RebuildProgress {
        read_model: name.to_owned(),
        position: state.position,
        last: last.max(state.position),
        caught_up: building.caught_up(),
        started: Some(hub_api::timestamp(building.started)),
        halted: state.halted.unwrap_or_default(),
    }
}

#[tonic::async_trait]
impl AdminService for Admin {
    type ReplayStream = Batches;
    type RebuildReadModelStream = Progress;
    type RedeliverFeedStream = Redelivering;
    type ExportLogStream = ExportItems;

    async fn export_log(
        &self,
        request: Request<ExportLogRequest>,
    ) -> Result<Response<ExportItems>, Status> {
        let who = self.p.auth.identify_grpc(&request);
        let planned = match self.operator(&who) {
            Ok(()) => backup::plan_export(&self.p.log, &self.p.instance).await,
            Err(err) => Err(err),
        };
        let asked = Asked {
            action: "gov.hub.v1.AdminService/ExportLog",
            ..Asked::default()
        };
        let header = audited(&self.p.audit, &who, asked, planned, |h| Answered {
            count: h.last_position,
            position: h.last_position,
            ..Answered::default()
        })
        .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let log = self.p.log.clone();
        tokio::spawn(async move { backup::send_export(&log, header, &tx).await });
        Ok(Response::new(answers(rx)))
    }

    async fn import_log(
        &self,
        request: Request<tonic::Streaming<ImportLogRequest>>,
    ) -> Result<Response<ImportLogResponse>, Status> {
        let who = self.p.auth.identify_grpc(&request);
        let mut items = request.into_inner();
        // Who asks first; then what the log holds and what the export says it holds.
        let planned = match self.operator(&who).and_then(|()| self.restoring()) {
            Ok(()) => match self.p.log.last_position().await {
                Ok(held) => backup::import_header(&mut items).await.and_then(|header| {
                    if held > header.last_position {
                        Err(ApiError::FailedPrecondition(format!(
                            "the event log holds {held} messages, more than this export \
                             ({}): an import restores into an empty hub",
                            header.last_position
                        )))
                    } else {
                        Ok((header, held))
                    }
                }),
                Err(err) => {
                    tracing::warn!(error = %err, "import: the event log cannot be read");
                    Err(ApiError::Unavailable(
                        "the event log cannot be read now; retry later".into(),
                    ))
                }
            },
            Err(err) => Err(err),
        };
        let asked = Asked {
            action: IMPORTED,
            ..Asked::default()
        };
        let (header, held) = audited(&self.p.audit, &who, asked, planned, |(h, _)| Answered {
            count: h.last_position,
            position: h.last_position,
            ..Answered::default()
        })
        .await?;
        let scratch = self.p.scratch.0.join("scratch");
        let imported = backup::import(
            &self.p.log,
            &self.p.digest,
            (header, held),
            &mut items,
            &scratch,
        )
        .await;
        let differs = |i: &ImportLogResponse| {
            format!(
                "the event log imported up to position {} does not digest as its backup did: \
                 what was stored differs from what was exported",
                i.last_position
            )
        };
        if let Ok(i) = &imported
            && i.log_digest != i.expected_log_digest
        {
            self.p.alarms.raise("import/log-digest", differs(i));
        }
        // Its outcome recorded too: how much was stored, and whether it digests as exported.
        let outcome = match &imported {
            Ok(i) if i.log_digest != i.expected_log_digest => Some(Status::data_loss(differs(i))),
            Ok(_) => None,
            Err(err) => Some(Status::from(err.clone())),
        };
        let stored = imported.as_ref().map_or(0, |i| i.last_position);
        let record = hub_api::v1::AuditRecord {
            count: imported.as_ref().map_or(0, |i| i.messages),
            position: stored,
            ..hub_audit::record_status(who.as_ref().ok(), IMPORTED, outcome.as_ref())
        };
        if let Err(err) = self.p.audit.record(record).await {
            tracing::warn!(error = %err, "import: its outcome cannot be audited");
        }
        Ok(Response::new(imported?))
    }

    async fn get_status(
        &self,
        request: Request<GetStatusRequest>,
    ) -> Result<Response<GetStatusResponse>, Status> {
        let who = self.p.auth.identify_grpc(&request);
        let result = match self.operator(&who) {
            Ok(()) => status::get_status(self).await,
            Err(err) => Err(err),
        };
        let asked = Asked {
            action: "gov.hub.v1.AdminService/GetStatus",
            ..Asked::default()
        };
        let answer = audited(&self.p.audit, &who, asked, result, |_| Answered::default()).await?;
        Ok(Response::new(answer))
    }

    async fn replay(&self, request: Request<ReplayRequest>) -> Result<Response<Batches>, Status> {
        let who = self.p.auth.identify_grpc(&request);
        let planned = match self.operator(&who) {
            Ok(()) => replay::plan(&self.p.log, request.get_ref()).await,
            Err(err) => Err(err),
        };
        // The replay is recorded before its first event goes out, with what it selects.
        let asked = Asked {
            action: replay::REPLAYED,
            aggregate: planned
                .as_ref()
                .map(|p| p.aggregate.clone())
                .unwrap_or_default(),
            ..Asked::default()
        };
        // Each batch carrying care records is recorded again, naming them, before it goes.
        let planned = audited(&self.p.audit, &who, asked, planned, |p| Answered {
            position: p.to,
            ..Answered::default()
        })
        .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (log, audit) = (self.p.log.clone(), self.p.audit.clone());
        let who = who.map_err(|_| Status::internal("an operator, checked"))?;
        tokio::spawn(
            async move { replay::send((&log, &audit), &who, planned, &tx).await }
                .instrument(tracing::Span::current()),
        );
        Ok(Response::new(answers(rx)))
    }

    async fn redeliver_feed(
        &self,
        request: Request<RedeliverFeedRequest>,
    ) -> Result<Response<Redelivering>, Status> {
        let who = self.p.auth.identify_grpc(&request);
        let planned = match self.operator(&who) {
            Ok(()) => redeliver::plan(self, request.get_ref()).await,
            Err(err) => Err(err),
        };
        let planned = planned.and_then(|p| Ok((p, self.running()?)));
        // Recorded before anything is decided, naming the feed and what is selected; each
        // care event sent is recorded as the publisher records its own.
        let asked = Asked {
            action: "gov.hub.v1.AdminService/RedeliverFeed",
            dataset: planned
                .as_ref()
                .map(|(p, _)| hub_log::names::feed_stream(&p.department))
                .unwrap_or_default(),
            aggregate: planned
                .as_ref()
                .map(|(p, _)| p.selection.aggregate.clone())
                .unwrap_or_default(),
        };
        let (planned, running) = audited(&self.p.audit, &who, asked, planned, |(p, _)| Answered {
            position: p.selection.to,
            ..Answered::default()
        })
        .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(redeliver::run(running, planned, tx).instrument(tracing::Span::current()));
        Ok(Response::new(answers(rx)))
    }

    async fn rebuild_read_model(
        &self,
        request: Request<RebuildReadModelRequest>,
    ) -> Result<Response<Progress>, Status> {
        let who = self.p.auth.identify_grpc(&request);
        let name = request.get_ref().read_model.clone();
        let result = match self.operator(&who).and_then(|()| self.rebuildable(&name)) {
            Ok(managed) => managed.rebuild().await.map(|b| (managed.clone(), b)),
            Err(err) => Err(err),
        };
        let (managed, building) = self
            .recorded(
                &who,
                "gov.hub.v1.AdminService/RebuildReadModel",
                &name,
                result,
                |_| 0,
            )
            .await?;
        let log = self.p.log.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let name = managed.model.name();
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            loop {
                tick.tick().await;
                let last = log.last_position().await.unwrap_or(0);
                let now = progress(name, &building, last);
                let done = now.caught_up || !now.halted.is_empty();
                let message = RebuildReadModelResponse {
                    progress: Some(now),
                };
                if tx.send(Ok(message)).await.is_err() || done {
                    return;
                }
                // Swapped in meanwhile (by another operator, or by itself): nothing to follow.
                if managed.building().is_none() {
                    return;
                }
            }
        });
        let progress = tokio_stream::wrappers::ReceiverStream::new(rx);
        Ok(Response::new(Box::pin(progress)))
    }

    async fn swap_read_model(
        &self,
        request: Request<SwapReadModelRequest>,
    ) -> Result<Response<SwapReadModelResponse>, Status> {
        let who = self.p.auth.identify_grpc(&request);
        let name = request.get_ref().read_model.clone();
        let result = match self.operator(&who).and_then(|()| self.rebuildable(&name)) {
            Ok(managed) => managed.swap().await,
            Err(err) => Err(err),
        };
        let position = self
            .recorded(
                &who,
                "gov.hub.v1.AdminService/SwapReadModel",
                &name,
                result,
                |p| *p,
            )
            .await?;
        Ok(Response::new(SwapReadModelResponse {
            read_model: name,
            position,
        }))
    }

    async fn verify_read_model(
        &self,
        request: Request<VerifyReadModelRequest>,
    ) -> Result<Response<VerifyReadModelResponse>, Status> {
        let who = self.p.auth.identify_grpc(&request);
        let name = request.get_ref().read_model.clone();
        let result = match self.operator(&who).and_then(|()| self.rebuildable(&name)) {
            Ok(managed) => match self.scratch_turn.acquire().await {
                Ok(_turn) => verify::verify(&self.p.log, managed, &self.p.scratch).await,
                Err(_) => Err(ApiError::Internal),
            },
            Err(err) => Err(err),
        };
        let verified = self
            .recorded(
                &who,
                "gov.hub.v1.AdminService/VerifyReadModel",
                &name,
                result,
                |v| v.position,
            )
            .await?;
        Ok(Response::new(verified))
    }
}
