//! `gov.hub.v1.AuditService`: what auditors (units of kind auditor in the registry) ask of
//! the hub. Everyone else is refused (the public with UNAUTHENTICATED, a department with
//! PERMISSION_DENIED) before anything is looked up, and every call is itself audited.
//!
//! - [`history`]: an aggregate's events, and its state as of a position or a time;
//! - [`access`]: the access log, read from GOV_AUDIT, and the disclosure ledger, read from
//!   its index over GOV_AUDIT;
//! - [`row_as_of`]: a dataset's row as of a position, its projection replayed.

mod access;
mod history;

pub use history::{history_event, log_failed};
mod history_export;
mod row_as_of;

use std::pin::Pin;
use std::sync::Arc;

use async_nats::jetstream;
use futures::Stream;
use hub_api::ApiError;
use hub_api::identity::{Authenticator, Identity};
use hub_api::v1::audit_service_server::AuditService;
use hub_api::v1::{
    ExportAuditRequest, ExportAuditResponse, ExportHistoryRequest, ExportHistoryResponse,
    GetHistoryRequest, GetHistoryResponse, GetRowAsOfRequest, GetRowAsOfResponse,
    GetStateAsOfRequest, GetStateAsOfResponse, ListAccessRequest, ListAccessResponse,
    ListDisclosuresRequest, ListDisclosuresResponse,
};
use hub_audit::Audit;
use hub_audit::ledger::Ledger;
use hub_audit::log_digest::LogDigest;
use hub_domain::Violations;
use hub_domain::registry::UnitKind;
use hub_log::Appender;
use tonic::{Request, Response, Status};

use crate::audited::{Answered, Asked, audited};

/// Pages hold this many entries unless the request asks for fewer, and never more than
/// [`MAX_PAGE_SIZE`].
const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 500;

/// Rows as of a position replayed at once; more wait (each replays the log from its start).
const MAX_REPLAYS: usize = 2;

pub struct Auditors {
    auth: Authenticator,
    audit: Audit,
    /// Reads GOV_AUDIT.
    js: jetstream::Context,
    /// The disclosure ledger, an index over GOV_AUDIT.
    ledger: Ledger,
    /// Reads GOV_EVENTS.
    log: Appender,
    /// The event log's chained digest, which history exports prove against.
    digest: LogDigest,
    /// Each dataset's projection, which a row as of a position is replayed with.
    projections: row_as_of::Projections,
    /// Turns for replays.
    replays: Arc<tokio::sync::Semaphore>,
}

/// The aggregate types an auditor may name.
const AGGREGATE_TYPES: [&str; 3] = ["case", "care", "grant"];

/// An aggregate named as `<type>/<id>` (case/<uuid>, care/<uuid>, grant/<uuid>): its type and
/// id, or a violation of `field` that repeats none of the text.
pub fn parse_aggregate(
    violations: &mut Violations,
    field: &str,
    value: &str,
) -> Option<(&'static str, String)> {
    let parsed = value.split_once('/').and_then(|(kind, id)| {
        let kind = AGGREGATE_TYPES.into_iter().find(|k| *k == kind)?;
        let id_ok = !id.is_empty()
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        id_ok.then(|| (kind, id.to_owned()))
    });
    if parsed.is_none() {
        violations.push(
            field,
            "must name an aggregate as case/<id>, care/<id> or grant/<id>",
        );
    }
    parsed
}

/// A protobuf time as protobuf defines it (nanoseconds 0 to 999,999,999), `None` otherwise.
pub fn valid_time(value: &prost_types::Timestamp) -> Option<jiff::Timestamp> {
    (0..1_000_000_000)
        .contains(&value.nanos)
        .then(|| hub_api::from_timestamp(value))
        .flatten()
}

/// The page size asked for, bounded.
pub(crate) fn page_size(asked: u32) -> usize {
    match asked {
        0 => DEFAULT_PAGE_SIZE as usize,
        n => n.min(MAX_PAGE_SIZE) as usize,
    }
}

/// The aggregate of a request as its audit record names it: only a valid one, never the
/// text of a malformed one.
fn aggregate_of(value: &str) -> String {
    parse_aggregate(&mut Violations::new(), "aggregate", value)
        .map(|(kind, id)| format!("{kind}/{id}"))
        .unwrap_or_default()
}

impl Auditors {
    /// `js` reads GOV_AUDIT, `ledger` is the disclosure ledger over it, `log` reads the event
    /// log, `digest` is the log's chained digest; `projections` build each dataset as the live
    /// read models do (`hub::dataset_projections`), given alarms of their own so that a replay
    /// never raises the hub's.
    pub fn new(
        (auth, audit): (Authenticator, Audit),
        (js, ledger): (jetstream::Context, Ledger),
        (log, digest): (Appender, LogDigest),
        projections: row_as_of::Projections,
    ) -> Self {
        Self {
            auth,
            audit,
            js,
            ledger,
            log,
            digest,
            projections,
            replays: Arc::new(tokio::sync::Semaphore::new(MAX_REPLAYS)),
        }
    }

    /// `who`, if it is an auditor.
    fn auditor(&self, who: &Result<Identity, ApiError>) -> Result<(), ApiError> {
        match who.as_ref().map_err(Clone::clone)? {
            Identity::Public => Err(ApiError::Unauthenticated(
                "the audit service is for auditors: identify by client certificate or signed \
                 token"
                    .into(),
            )),
            Identity::Department(d) => {
                let kind = self.auth.registry().unit(&d.code).map(|u| u.kind);
                if kind == Some(UnitKind::Auditor) {
                    Ok(())
                } else {
                    Err(ApiError::PermissionDenied(
                        "the audit service is for auditors (units of kind auditor) only".into(),
                    ))
                }
            }
        }
    }
}

type Items = Pin<Box<dyn Stream<Item = Result<ExportAuditResponse, Status>> + Send>>;
type HistoryItems = Pin<Box<dyn Stream<Item = Result<ExportHistoryResponse, Status>> + Send>>;

/// Whether the history of `aggregate` may be exported with its proof: a care record's may
/// not, as the proof carries its events exactly as stored, personal data in clear (auditors
/// read it masked through GetHistory).
fn exportable(aggregate: &str) -> Result<(), ApiError> {
    let mut violations = Violations::new();
    let parsed = parse_aggregate(&mut violations, "aggregate", aggregate);
    let (kind, _) = violations.finish(|| parsed.unwrap_or_default())?;
    if kind == "care" {
        return Err(ApiError::PermissionDenied(
            "a care record's history is not exported with its proof: the proof carries its \
             events as stored, personal data in clear; GetHistory gives it masked"
                .into(),
        ));
    }
    Ok(())
}

#[tonic::async_trait]
impl AuditService for Auditors {
    type ExportAuditStream = Items;
    type ExportHistoryStream = HistoryItems;

    async fn export_history(
        &self,
        request: Request<ExportHistoryRequest>,
    ) -> Result<Response<HistoryItems>, Status> {
        let who = self.auth.identify_grpc(&request);
        let allowed = self
            .auditor(&who)
            .and_then(|()| exportable(&request.get_ref().aggregate));
        let asked = Asked {
            action: "gov.hub.v1.AuditService/ExportHistory",
            aggregate: aggregate_of(&request.get_ref().aggregate),
            ..Asked::default()
        };
        audited(&self.audit, &who, asked, allowed, |()| Answered::default()).await?;
        let planned =
            history_export::plan(&self.log, &self.digest, &self.audit, request.get_ref()).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (log, digest) = (self.log.clone(), self.digest.clone());
        tokio::spawn(async move { history_export::send(&log, &digest, planned, &tx).await });
        let items = futures::StreamExt::map(tokio_stream_of(rx), |item| item.map_err(Status::from));
        Ok(Response::new(Box::pin(items)))
    }

    async fn export_audit(
        &self,
        request: Request<ExportAuditRequest>,
    ) -> Result<Response<Items>, Status> {
        let who = self.auth.identify_grpc(&request);
        let allowed = self.auditor(&who);
        // The export's own record is stored before the checkpoint the export ends at, so the
        // export shows who made it.
        audited(
            &self.audit,
            &who,
            Asked {
                action: "gov.hub.v1.AuditService/ExportAudit",
                ..Asked::default()
            },
            allowed,
            |()| Answered::default(),
        )
        .await?;
        let made = self.audit.checkpoint().await.map_err(ApiError::from)?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let js = self.js.clone();
        tokio::spawn(async move { hub_audit::export::send(&js, &made, &tx).await });
        let items = futures::StreamExt::map(tokio_stream_of(rx), |item| {
            item.map_err(|e| Status::from(ApiError::from(e)))
        });
        Ok(Response::new(Box::pin(items)))
    }

    async fn get_history(
        &self,
        request: Request<GetHistoryRequest>,
    ) -> Result<Response<GetHistoryResponse>, Status> {
        let who = self.auth.identify_grpc(&request);
        let result = match self.auditor(&who) {
            Ok(()) => history::get_history(&self.log, request.get_ref()).await,
            Err(err) => Err(err),
        };
        let aggregate = aggregate_of(&request.get_ref().aggregate);
        // A care record's events carry its personal fields (masked): the auditor received it.
        let person = aggregate.strip_prefix("care/").map(str::to_owned);
        let asked = Asked {
            action: "gov.hub.v1.AuditService/GetHistory",
            aggregate,
            ..Asked::default()
        };
        let answer = audited(&self.audit, &who, asked, result, |r| Answered {
            count: r.events.len() as u64,
            position: r.events.last().map(|e| e.position).unwrap_or_default(),
            persons: person
                .filter(|_| !r.events.is_empty())
                .into_iter()
                .collect(),
            ..Answered::default()
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn get_state_as_of(
        &self,
        request: Request<GetStateAsOfRequest>,
    ) -> Result<Response<GetStateAsOfResponse>, Status> {
        let who = self.auth.identify_grpc(&request);
        let result = match self.auditor(&who) {
            Ok(()) => history::get_state_as_of(&self.log, request.get_ref()).await,
            Err(err) => Err(err),
        };
        let aggregate = aggregate_of(&request.get_ref().aggregate);
        // A care record's state concerns its person (its sensitive fields left out).
        let person = aggregate.strip_prefix("care/").map(str::to_owned);
        let asked = Asked {
            action: "gov.hub.v1.AuditService/GetStateAsOf",
            aggregate,
            ..Asked::default()
        };
        let answer = audited(&self.audit, &who, asked, result, |r| Answered {
            count: r.events,
            position: r.position,
            persons: person.filter(|_| r.exists).into_iter().collect(),
            ..Answered::default()
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn list_access(
        &self,
        request: Request<ListAccessRequest>,
    ) -> Result<Response<ListAccessResponse>, Status> {
        let who = self.auth.identify_grpc(&request);
        let result = match self.auditor(&who) {
            Ok(()) => access::list_access(&self.js, request.get_ref()).await,
            Err(err) => Err(err),
        };
        let asked = Asked {
            action: "gov.hub.v1.AuditService/ListAccess",
            aggregate: aggregate_of(&request.get_ref().aggregate),
            ..Asked::default()
        };
        let answer = audited(&self.audit, &who, asked, result, |r| Answered {
            count: r.entries.len() as u64,
            ..Answered::default()
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn list_disclosures(
        &self,
        request: Request<ListDisclosuresRequest>,
    ) -> Result<Response<ListDisclosuresResponse>, Status> {
        let who = self.auth.identify_grpc(&request);
        let result = match self.auditor(&who) {
            Ok(()) => access::list_disclosures((&self.js, &self.ledger), request.get_ref()).await,
            Err(err) => Err(err),
        };
        let care = request.get_ref().care_id.clone();
        let asked = Asked {
            action: "gov.hub.v1.AuditService/ListDisclosures",
            aggregate: aggregate_of(&format!("care/{care}")),
            ..Asked::default()
        };
        let answer = audited(&self.audit, &who, asked, result, |r| Answered {
            count: r.disclosures.len() as u64,
            ..Answered::default()
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn get_row_as_of(
        &self,
        request: Request<GetRowAsOfRequest>,
    ) -> Result<Response<GetRowAsOfResponse>, Status> {
        let who = self.auth.identify_grpc(&request);
        let result = match self.auditor(&who) {
            Ok(()) => {
                // Replays wait their turn: each reads and applies the log from its start.
                let _turn = self.replays.acquire().await.map_err(|_| ApiError::Internal);
                row_as_of::get_row_as_of(&self.log, &self.projections, request.get_ref()).await
            }
            Err(err) => Err(err),
        };
        let asked = Asked {
            action: "gov.hub.v1.AuditService/GetRowAsOf",
            dataset: row_as_of::dataset_of(&request.get_ref().dataset),
            ..Asked::default()
        };
        let answer = audited(&self.audit, &who, asked, result, row_as_of::answered).await?;
        Ok(Response::new(answer.response))
    }
}

/// The items a receiver gets, as a stream.
fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
