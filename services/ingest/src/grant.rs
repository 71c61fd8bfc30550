//! `gov.hub.v1.GrantCommandService`: conditional-sharing requests between departments.

use hub_api::aggregate::Grant;
use hub_api::v1::grant_command_service_server::GrantCommandService;
use hub_api::v1::*;
use hub_api::{ValidGrantCommand, ValidRequestGrant};
use tonic::{Request, Response, Status};

use crate::service::Commands;

pub type GrantCommands = Commands<Grant>;

/// An RPC on an existing grant.
macro_rules! on_grant {
    ($self:ident, $rpc:literal, $request:ident, $response:ident) => {
        Ok(Response::new($response {
            result: $self
                .on_existing::<_, ValidGrantCommand>($rpc, $request)
                .await?,
        }))
    };
}

#[tonic::async_trait]
impl GrantCommandService for Commands<Grant> {
    async fn request_grant(
        &self,
        request: Request<RequestGrantRequest>,
    ) -> Result<Response<RequestGrantResponse>, Status> {
        let result = self
            .create::<_, ValidRequestGrant>("RequestGrant", request)
            .await?;
        Ok(Response::new(RequestGrantResponse {
            result: Some(result),
        }))
    }

    async fn approve_grant(
        &self,
        request: Request<ApproveGrantRequest>,
    ) -> Result<Response<ApproveGrantResponse>, Status> {
        on_grant!(self, "ApproveGrant", request, ApproveGrantResponse)
    }

    async fn reject_grant(
        &self,
        request: Request<RejectGrantRequest>,
    ) -> Result<Response<RejectGrantResponse>, Status> {
        on_grant!(self, "RejectGrant", request, RejectGrantResponse)
    }

    async fn revoke_grant(
        &self,
        request: Request<RevokeGrantRequest>,
    ) -> Result<Response<RevokeGrantResponse>, Status> {
        on_grant!(self, "RevokeGrant", request, RevokeGrantResponse)
    }
}
