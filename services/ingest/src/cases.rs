//! `gov.hub.v1.CaseCommandService`: every RPC validates at the edge and goes through the
//! one executor.

use hub_api::aggregate::Case;
use hub_api::v1::case_command_service_server::CaseCommandService;
use hub_api::v1::*;
use hub_api::{ValidCaseCommand, ValidReport};
use tonic::{Request, Response, Status};

use crate::service::Commands;

pub type CaseCommands = Commands<Case>;

/// An RPC on an existing case: validate, execute, answer with the command's result.
macro_rules! on_case {
    ($self:ident, $rpc:literal, $request:ident, $response:ident) => {
        Ok(Response::new($response {
            result: $self
                .on_existing::<_, ValidCaseCommand>($rpc, $request)
                .await?,
        }))
    };
}

#[tonic::async_trait]
impl CaseCommandService for Commands<Case> {
    async fn import_cases(
        &self,
        request: Request<tonic::Streaming<ImportCasesRequest>>,
    ) -> Result<Response<ImportCasesResponse>, Status> {
        let who = self.auth().identify_grpc(&request);
        let outcome = self.import(&who, request).await;
        // A refused import is recorded in the audit log; an accepted one is on the event log.
        if let Err(status) = &outcome {
            let record = hub_audit::record_status(
                who.as_ref().ok(),
                "gov.hub.v1.CaseCommandService/ImportCases",
                Some(status),
            );
            self.audit()
                .record(record)
                .await
                .map_err(hub_api::ApiError::from)?;
        }
        outcome.map(Response::new)
    }

    async fn report_case(
        &self,
        request: Request<ReportCaseRequest>,
    ) -> Result<Response<ReportCaseResponse>, Status> {
        let result = self.create::<_, ValidReport>("ReportCase", request).await?;
        Ok(Response::new(ReportCaseResponse {
            case_id: result.id,
            event_ids: result.event_ids,
            position: result.position,
        }))
    }

    async fn dispatch_case(
        &self,
        request: Request<DispatchCaseRequest>,
    ) -> Result<Response<DispatchCaseResponse>, Status> {
        on_case!(self, "DispatchCase", request, DispatchCaseResponse)
    }

    async fn accept_case(
        &self,
        request: Request<AcceptCaseRequest>,
    ) -> Result<Response<AcceptCaseResponse>, Status> {
        on_case!(self, "AcceptCase", request, AcceptCaseResponse)
    }

    async fn request_case_transfer(
        &self,
        request: Request<RequestCaseTransferRequest>,
    ) -> Result<Response<RequestCaseTransferResponse>, Status> {
        on_case!(
            self,
            "RequestCaseTransfer",
            request,
            RequestCaseTransferResponse
        )
    }

    async fn accept_case_transfer(
        &self,
        request: Request<AcceptCaseTransferRequest>,
    ) -> Result<Response<AcceptCaseTransferResponse>, Status> {
        on_case!(
            self,
            "AcceptCaseTransfer",
            request,
            AcceptCaseTransferResponse
        )
    }

    async fn reject_case_transfer(
        &self,
        request: Request<RejectCaseTransferRequest>,
    ) -> Result<Response<RejectCaseTransferResponse>, Status> {
        on_case!(
            self,
            "RejectCaseTransfer",
            request,
            RejectCaseTransferResponse
        )
    }

    async fn resolve_case(
        &self,
        request: Request<ResolveCaseRequest>,
    ) -> Result<Response<ResolveCaseResponse>, Status> {
        on_case!(self, "ResolveCase", request, ResolveCaseResponse)
    }

    async fn rate_case(
        &self,
        request: Request<RateCaseRequest>,
    ) -> Result<Response<RateCaseResponse>, Status> {
        on_case!(self, "RateCase", request, RateCaseResponse)
    }

    async fn close_case(
        &self,
        request: Request<CloseCaseRequest>,
    ) -> Result<Response<CloseCaseResponse>, Status> {
        on_case!(self, "CloseCase", request, CloseCaseResponse)
    }
}
