//! `gov.hub.v1.GrantCommandService`: conditional-sharing requests between departments.

use std::sync::Arc;

use hub_api::aggregate::Grant;
use hub_api::v1::grant_command_service_server::GrantCommandService;
use hub_api::v1::*;
use hub_api::{ApiError, ValidGrantCommand, ValidRequestGrant};
use hub_domain::grant::{GrantCommand, GrantId};
use hub_domain::registry::Registry;
use tonic::{Request, Response, Status};

use crate::caller::caller;
use crate::execute::Executor;
use crate::hash::command_hash;
use crate::ids;
use crate::submit::{answer, run_command, submitted};

pub struct GrantCommands {
    executor: Arc<Executor<Grant>>,
    registry: Arc<Registry>,
}

impl GrantCommands {
    pub fn new(executor: Arc<Executor<Grant>>, registry: Arc<Registry>) -> Self {
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
        for<'a> ValidGrantCommand: TryFrom<&'a R, Error = hub_domain::Violations>,
    {
        run_command::<Grant, R, ValidGrantCommand>(
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
impl GrantCommandService for GrantCommands {
    async fn request_grant(
        &self,
        request: Request<RequestGrantRequest>,
    ) -> Result<Response<RequestGrantResponse>, Status> {
        let caller = caller(request.metadata(), &self.registry)?;
        let valid = ValidRequestGrant::try_from(request.get_ref()).map_err(ApiError::from)?;
        let hash = command_hash("RequestGrant", request.get_ref(), |r| r.request_id.clear());
        let id = ids::aggregate_id("grant", caller.department.as_str(), &valid.request_id);
        let request_id = valid.request_id.clone();
        let command = GrantCommand::Request(
            valid.into_command(GrantId::new(id.clone()), caller.department.clone()),
        );
        let submitted = submitted::<Grant>(&caller, request_id, id, None, command, hash);
        let result = answer(&self.executor, submitted).await?;
        Ok(Response::new(RequestGrantResponse {
            result: Some(result),
        }))
    }

    async fn approve_grant(
        &self,
        request: Request<ApproveGrantRequest>,
    ) -> Result<Response<ApproveGrantResponse>, Status> {
        let result = self
            .run("ApproveGrant", request, |r| r.request_id.clear())
            .await?;
        Ok(Response::new(ApproveGrantResponse { result }))
    }

    async fn reject_grant(
        &self,
        request: Request<RejectGrantRequest>,
    ) -> Result<Response<RejectGrantResponse>, Status> {
        let result = self
            .run("RejectGrant", request, |r| r.request_id.clear())
            .await?;
        Ok(Response::new(RejectGrantResponse { result }))
    }

    async fn revoke_grant(
        &self,
        request: Request<RevokeGrantRequest>,
    ) -> Result<Response<RevokeGrantResponse>, Status> {
        let result = self
            .run("RevokeGrant", request, |r| r.request_id.clear())
            .await?;
        Ok(Response::new(RevokeGrantResponse { result }))
    }
}
