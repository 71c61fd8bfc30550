//! `gov.hub.v1.CareCommandService`: key-population care records, civil affairs only.
//!
//! Sensitive personal information: requests and events are never logged, errors never
//! repeat a name or an identity number, and answers carry ids and positions only.

use hub_api::aggregate::Care;
use hub_api::v1::care_command_service_server::CareCommandService;
use hub_api::v1::*;
use hub_api::{ValidCareCommand, ValidRegisterCare};
use tonic::{Request, Response, Status};

use crate::service::Commands;

pub type CareCommands = Commands<Care>;

/// An RPC on an existing care record.
macro_rules! on_care {
    ($self:ident, $rpc:literal, $request:ident, $response:ident) => {
        Ok(Response::new($response {
            result: $self
                .on_existing::<_, ValidCareCommand>($rpc, $request)
                .await?,
        }))
    };
}

#[tonic::async_trait]
impl CareCommandService for Commands<Care> {
    async fn register_care(
        &self,
        request: Request<RegisterCareRequest>,
    ) -> Result<Response<RegisterCareResponse>, Status> {
        let result = self
            .create::<_, ValidRegisterCare>("RegisterCare", request)
            .await?;
        Ok(Response::new(RegisterCareResponse {
            result: Some(result),
        }))
    }

    async fn log_care_visit(
        &self,
        request: Request<LogCareVisitRequest>,
    ) -> Result<Response<LogCareVisitResponse>, Status> {
        on_care!(self, "LogCareVisit", request, LogCareVisitResponse)
    }

    async fn change_care_risk_level(
        &self,
        request: Request<ChangeCareRiskLevelRequest>,
    ) -> Result<Response<ChangeCareRiskLevelResponse>, Status> {
        on_care!(
            self,
            "ChangeCareRiskLevel",
            request,
            ChangeCareRiskLevelResponse
        )
    }

    async fn close_care(
        &self,
        request: Request<CloseCareRequest>,
    ) -> Result<Response<CloseCareResponse>, Status> {
        on_care!(self, "CloseCare", request, CloseCareResponse)
    }
}
