//! `gov.hub.v1.AuditService`: what auditors (units of kind auditor in the registry) ask of
//! the hub. Everyone else is refused (the public with UNAUTHENTICATED, a department with
//! PERMISSION_DENIED), and every call is itself audited.

use std::pin::Pin;

use async_nats::jetstream;
use futures::Stream;
use hub_api::ApiError;
use hub_api::identity::{Authenticator, Identity};
use hub_api::v1::audit_service_server::AuditService;
use hub_api::v1::{ExportAuditRequest, ExportAuditResponse};
use hub_audit::Audit;
use hub_domain::registry::UnitKind;
use tonic::{Request, Response, Status};

use crate::audited::{Answered, Asked, audited};

pub struct Auditors {
    auth: Authenticator,
    audit: Audit,
    js: jetstream::Context,
}

impl Auditors {
    /// `js` reads GOV_AUDIT.
    pub fn new((auth, audit): (Authenticator, Audit), js: jetstream::Context) -> Self {
        Self { auth, audit, js }
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

#[tonic::async_trait]
impl AuditService for Auditors {
    type ExportAuditStream = Items;

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
}

/// The items a receiver gets, as a stream.
fn tokio_stream_of<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
