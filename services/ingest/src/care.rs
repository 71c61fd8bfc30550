//! `gov.hub.v1.CareCommandService`: key-population care records, civil affairs only.
//!
//! Sensitive personal information: requests and events are never logged, errors never
//! repeat a name or an identity number, and answers carry ids and positions only.

use std::sync::Arc;

use hub_api::aggregate::Care;
use hub_api::v1::care_command_service_server::CareCommandService;
use hub_api::v1::*;
use hub_api::{ApiError, ValidCareCommand, ValidRegisterCare};
use hub_domain::care::{CareCommand, CareId};
use hub_domain::registry::Registry;
use tonic::{Request, Response, Status};

use crate::caller::caller;
use crate::execute::Executor;
use crate::hash::command_hash;
use crate::ids;
use crate::submit::{answer, run_command, submitted};

pub struct CareCommands {
    executor: Arc<Executor<Care>>,
    registry: Arc<Registry>,
}

impl CareCommands {
    pub fn new(executor: Arc<Executor<Care>>, registry: Arc<Registry>) -> Self {
        Self { executor, registry }
    }

    async fn run<R>(
        &self,
        rpc: &str,
        request: Request<R>,
        clear: fn(&mut R),
    ) -> Result<Option<CommandResult>, Status>
    where
        R: prost::Message + Clone,
        for<'a> ValidCareCommand: TryFrom<&'a R, Error = hub_domain::Violations>,
    {
        run_command::<Care, R, ValidCareCommand>(
            &self.executor,
            &self.registry,
            rpc,
            request,
            clear,
        )
        .await
    }
}

#[tonic::async_trait]
impl CareCommandService for CareCommands {
    async fn register_care(
        &self,
        request: Request<RegisterCareRequest>,
    ) -> Result<Response<RegisterCareResponse>, Status> {
        let caller = caller(request.metadata(), &self.registry)?;
        let valid = ValidRegisterCare::try_from(request.get_ref()).map_err(ApiError::from)?;
        let hash = command_hash("RegisterCare", request.get_ref(), |r| r.request_id.clear());
        let id = ids::aggregate_id("care", caller.department.as_str(), &valid.request_id);
        let request_id = valid.request_id.clone();
        let command = CareCommand::Register(valid.into_command(CareId::new(id.clone())));
        let submitted = submitted::<Care>(&caller, request_id, id, None, command, hash);
        let result = answer(&self.executor, submitted).await?;
        Ok(Response::new(RegisterCareResponse {
            result: Some(result),
        }))
    }

    async fn log_care_visit(
        &self,
        request: Request<LogCareVisitRequest>,
    ) -> Result<Response<LogCareVisitResponse>, Status> {
        let result = self
            .run("LogCareVisit", request, |r| r.request_id.clear())
            .await?;
        Ok(Response::new(LogCareVisitResponse { result }))
    }

    async fn change_care_risk_level(
        &self,
        request: Request<ChangeCareRiskLevelRequest>,
    ) -> Result<Response<ChangeCareRiskLevelResponse>, Status> {
        let result = self
            .run("ChangeCareRiskLevel", request, |r| r.request_id.clear())
            .await?;
        Ok(Response::new(ChangeCareRiskLevelResponse { result }))
    }

    async fn close_care(
        &self,
        request: Request<CloseCareRequest>,
    ) -> Result<Response<CloseCareResponse>, Status> {
        let result = self
            .run("CloseCare", request, |r| r.request_id.clear())
            .await?;
        Ok(Response::new(CloseCareResponse { result }))
    }
}
