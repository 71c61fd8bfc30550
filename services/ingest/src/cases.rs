//! `gov.hub.v1.CaseCommandService`: every RPC validates at the edge and goes through the
//! one executor.

use std::sync::Arc;

use hub_api::aggregate::Case;
use hub_api::v1::case_command_service_server::CaseCommandService;
use hub_api::v1::*;
use hub_api::{ApiError, ValidCaseCommand, ValidReport};
use hub_domain::case::{CaseCommand, CaseId};
use hub_domain::registry::Registry;
use hub_projector::command_state::RequestRecord;
use tonic::{Request, Response, Status};

use crate::caller::{Caller, caller};
use crate::execute::{Executor, Submitted};
use crate::hash::command_hash;
use crate::ids;

pub struct CaseCommands {
    executor: Arc<Executor<Case>>,
    registry: Arc<Registry>,
}

fn result(case_id: &CaseId, record: RequestRecord) -> CommandResult {
    CommandResult {
        id: case_id.to_string(),
        event_ids: record.event_ids,
        position: record.position,
    }
}

impl CaseCommands {
    pub fn new(executor: Arc<Executor<Case>>, registry: Arc<Registry>) -> Self {
        Self { executor, registry }
    }

    pub(crate) fn executor(&self) -> &Executor<Case> {
        &self.executor
    }

    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    async fn run(
        &self,
        caller: Caller,
        valid: ValidCaseCommand,
        hash: String,
    ) -> Result<CommandResult, Status> {
        let submitted = Submitted {
            source: caller.source(),
            actor: caller.actor(),
            owner: caller.department.to_string(),
            request_id: valid.request_id,
            hash,
            id: valid.case_id.to_string(),
            expected_version: valid.expected_version,
            command: valid.command,
            correlation_id: caller.correlation_id,
            traceparent: caller.traceparent,
            decided_at: None,
        };
        let executed = self.executor.execute(submitted).await?;
        Ok(result(&valid.case_id, executed.record))
    }
}

/// A request for a command on an existing case.
pub trait CaseRequest: prost::Message + Clone + Default {
    fn clear_request_id(&mut self);
}

macro_rules! case_request {
    ($($request:ty),*) => {
        $(impl CaseRequest for $request {
            fn clear_request_id(&mut self) {
                self.request_id.clear();
            }
        })*
    };
}

case_request!(
    DispatchCaseRequest,
    AcceptCaseRequest,
    RequestCaseTransferRequest,
    AcceptCaseTransferRequest,
    RejectCaseTransferRequest,
    ResolveCaseRequest,
    RateCaseRequest,
    CloseCaseRequest
);

impl CaseCommands {
    /// One RPC on an existing case: validate, hash, execute.
    async fn command<R>(
        &self,
        rpc: &str,
        request: Request<R>,
    ) -> Result<Option<CommandResult>, Status>
    where
        R: CaseRequest,
        for<'a> ValidCaseCommand: TryFrom<&'a R, Error = hub_domain::Violations>,
    {
        let caller = caller(request.metadata(), &self.registry)?;
        let valid = ValidCaseCommand::try_from(request.get_ref()).map_err(ApiError::from)?;
        let hash = command_hash(rpc, request.get_ref(), R::clear_request_id);
        self.run(caller, valid, hash).await.map(Some)
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
        let case_id = CaseId::new(ids::case_id(caller.department.as_str(), &valid.request_id));
        let request_id = valid.request_id.clone();
        let command =
            CaseCommand::Report(valid.into_command(case_id.clone(), caller.department.clone()));
        let valid = ValidCaseCommand {
            request_id,
            case_id,
            expected_version: None,
            command,
        };
        let result = self.run(caller, valid, hash).await?;
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
        Ok(Response::new(DispatchCaseResponse {
            result: self.command("DispatchCase", request).await?,
        }))
    }

    async fn accept_case(
        &self,
        request: Request<AcceptCaseRequest>,
    ) -> Result<Response<AcceptCaseResponse>, Status> {
        Ok(Response::new(AcceptCaseResponse {
            result: self.command("AcceptCase", request).await?,
        }))
    }

    async fn request_case_transfer(
        &self,
        request: Request<RequestCaseTransferRequest>,
    ) -> Result<Response<RequestCaseTransferResponse>, Status> {
        Ok(Response::new(RequestCaseTransferResponse {
            result: self.command("RequestCaseTransfer", request).await?,
        }))
    }

    async fn accept_case_transfer(
        &self,
        request: Request<AcceptCaseTransferRequest>,
    ) -> Result<Response<AcceptCaseTransferResponse>, Status> {
        Ok(Response::new(AcceptCaseTransferResponse {
            result: self.command("AcceptCaseTransfer", request).await?,
        }))
    }

    async fn reject_case_transfer(
        &self,
        request: Request<RejectCaseTransferRequest>,
    ) -> Result<Response<RejectCaseTransferResponse>, Status> {
        Ok(Response::new(RejectCaseTransferResponse {
            result: self.command("RejectCaseTransfer", request).await?,
        }))
    }

    async fn resolve_case(
        &self,
        request: Request<ResolveCaseRequest>,
    ) -> Result<Response<ResolveCaseResponse>, Status> {
        Ok(Response::new(ResolveCaseResponse {
            result: self.command("ResolveCase", request).await?,
        }))
    }

    async fn rate_case(
        &self,
        request: Request<RateCaseRequest>,
    ) -> Result<Response<RateCaseResponse>, Status> {
        Ok(Response::new(RateCaseResponse {
            result: self.command("RateCase", request).await?,
        }))
    }

    async fn close_case(
        &self,
        request: Request<CloseCaseRequest>,
    ) -> Result<Response<CloseCaseResponse>, Status> {
        Ok(Response::new(CloseCaseResponse {
            result: self.command("CloseCase", request).await?,
        }))
    }
}
