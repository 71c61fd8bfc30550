//! `gov.hub.v1.CaseCommandService`: every RPC validates at the edge and goes through the
//! one executor.

use std::sync::Arc;

use hub_api::aggregate::Case;
use hub_api::v1::case_command_service_server::CaseCommandService;
use hub_api::v1::*;
use hub_api::{ApiError, ValidCaseCommand, ValidReport};
use hub_domain::case::{CaseCommand, CaseId};
use hub_domain::registry::Registry;
use tonic::{Request, Response, Status};

use crate::caller::caller;
use crate::execute::Executor;
use crate::hash::command_hash;
use crate::ids;
use crate::submit::{run_command, submitted};

pub struct CaseCommands {
    executor: Arc<Executor<Case>>,
    registry: Arc<Registry>,
}

impl CaseCommands {
    async fn command_rpc<R>(
        &self,
        rpc: &str,
        request: Request<R>,
        clear: fn(&mut R),
    ) -> Result<Option<CommandResult>, Status>
    where
        R: prost::Message + Clone,
        for<'a> ValidCaseCommand: TryFrom<&'a R, Error = hub_domain::Violations>,
    {
        run_command::<Case, R, ValidCaseCommand>(
            &self.executor,
            &self.registry,
            rpc,
            request,
            clear,
        )
        .await
    }

    pub fn new(executor: Arc<Executor<Case>>, registry: Arc<Registry>) -> Self {
        Self { executor, registry }
    }

    pub(crate) fn executor(&self) -> &Executor<Case> {
        &self.executor
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }
}

#[tonic::async_trait]
impl CaseCommandService for CaseCommands {
    async fn import_cases(
        &self,
        request: Request<tonic::Streaming<ImportCasesRequest>>,
    ) -> Result<Response<ImportCasesResponse>, Status> {
        self.import(request).await.map(Response::new)
    }

    async fn report_case(
        &self,
        request: Request<ReportCaseRequest>,
    ) -> Result<Response<ReportCaseResponse>, Status> {
        let caller = caller(request.metadata(), &self.registry)?;
        let valid = ValidReport::try_from(request.get_ref()).map_err(ApiError::from)?;
        let hash = command_hash("ReportCase", request.get_ref(), |r| r.request_id.clear());
        let case_id = ids::case_id(caller.department.as_str(), &valid.request_id);
        let request_id = valid.request_id.clone();
        let command = CaseCommand::Report(
            valid.into_command(CaseId::new(&case_id), caller.department.clone()),
        );
        let submitted =
            submitted::<Case>(&caller, request_id, case_id.clone(), None, command, hash);
        let record = self.executor.execute(submitted).await?.record;
        Ok(Response::new(ReportCaseResponse {
            case_id,
            event_ids: record.event_ids,
            position: record.position,
        }))
    }

    async fn dispatch_case(
        &self,
        request: Request<DispatchCaseRequest>,
    ) -> Result<Response<DispatchCaseResponse>, Status> {
        Ok(Response::new(DispatchCaseResponse {
            result: self
                .command_rpc("DispatchCase", request, |r| r.request_id.clear())
                .await?,
        }))
    }

    async fn accept_case(
        &self,
        request: Request<AcceptCaseRequest>,
    ) -> Result<Response<AcceptCaseResponse>, Status> {
        Ok(Response::new(AcceptCaseResponse {
            result: self
                .command_rpc("AcceptCase", request, |r| r.request_id.clear())
                .await?,
        }))
    }

    async fn request_case_transfer(
        &self,
        request: Request<RequestCaseTransferRequest>,
    ) -> Result<Response<RequestCaseTransferResponse>, Status> {
        Ok(Response::new(RequestCaseTransferResponse {
            result: self
                .command_rpc("RequestCaseTransfer", request, |r| r.request_id.clear())
                .await?,
        }))
    }

    async fn accept_case_transfer(
        &self,
        request: Request<AcceptCaseTransferRequest>,
    ) -> Result<Response<AcceptCaseTransferResponse>, Status> {
        Ok(Response::new(AcceptCaseTransferResponse {
            result: self
                .command_rpc("AcceptCaseTransfer", request, |r| r.request_id.clear())
                .await?,
        }))
    }

    async fn reject_case_transfer(
        &self,
        request: Request<RejectCaseTransferRequest>,
    ) -> Result<Response<RejectCaseTransferResponse>, Status> {
        Ok(Response::new(RejectCaseTransferResponse {
            result: self
                .command_rpc("RejectCaseTransfer", request, |r| r.request_id.clear())
                .await?,
        }))
    }

    async fn resolve_case(
        &self,
        request: Request<ResolveCaseRequest>,
    ) -> Result<Response<ResolveCaseResponse>, Status> {
        Ok(Response::new(ResolveCaseResponse {
            result: self
                .command_rpc("ResolveCase", request, |r| r.request_id.clear())
                .await?,
        }))
    }

    async fn rate_case(
        &self,
        request: Request<RateCaseRequest>,
    ) -> Result<Response<RateCaseResponse>, Status> {
        Ok(Response::new(RateCaseResponse {
            result: self
                .command_rpc("RateCase", request, |r| r.request_id.clear())
                .await?,
        }))
    }

    async fn close_case(
        &self,
        request: Request<CloseCaseRequest>,
    ) -> Result<Response<CloseCaseResponse>, Status> {
        Ok(Response::new(CloseCaseResponse {
            result: self
                .command_rpc("CloseCase", request, |r| r.request_id.clear())
                .await?,
        }))
    }
}
