//! `gov.hub.v1.CaseQueryService`, over read model `case_queue`.

use std::sync::Arc;
use std::time::Duration;

use hub_api::ApiError;
use hub_api::v1::case_query_service_server::CaseQueryService;
use hub_api::v1::{GetCaseRequest, GetCaseResponse, ListCasesRequest, ListCasesResponse};
use hub_domain::Violations;
use hub_domain::codes::DepartmentCode;
use hub_domain::registry::Registry;
use hub_projector::ReadModel;
use hub_projector::case_queue::{self, QueueCursor};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::deadline::read_wait;
use crate::model_read::{blocking, reach};

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 500;

pub struct CaseQueries {
    model: ReadModel,
    registry: Arc<Registry>,
    max_wait: Duration,
}

impl CaseQueries {
    pub fn new(model: ReadModel, registry: Arc<Registry>, max_wait: Duration) -> Self {
        Self {
            model,
            registry,
            max_wait,
        }
    }

    /// Waits until the model has reached `min_position`; returns the position it stands at.
    async fn reach(&self, metadata: &MetadataMap, min_position: u64) -> Result<u64, ApiError> {
        reach(
            &self.model,
            min_position,
            read_wait(metadata, self.max_wait),
        )
        .await
    }

    /// Runs a read of the store off the async threads (sled may block on disk).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn hub_store::ReadModelStore) -> Result<T, hub_store::StoreError>
        + Send
        + 'static,
    ) -> Result<T, ApiError> {
        blocking(&self.model, f).await
    }
}

#[tonic::async_trait]
impl CaseQueryService for CaseQueries {
    async fn get_case(
        &self,
        request: Request<GetCaseRequest>,
    ) -> Result<Response<GetCaseResponse>, Status> {
        let mut violations = Violations::new();
        let id =
            hub_api::case_id(&mut violations, &request.get_ref().case_id).map(|id| id.to_string());
        let id = violations
            .finish(|| id.unwrap_or_default())
            .map_err(ApiError::from)?;
        let position = self
            .reach(request.metadata(), request.get_ref().min_position)
            .await?;
        let (view, behind) = self
            .read(move |store| {
                Ok((
                    case_queue::get_case(store, &id)?,
                    case_queue::behind(store, &id)?,
                ))
            })
            .await?;
        // A row the read model could not keep up to date is not served as current.
        if let Some(block) = behind {
            return Err(ApiError::Unavailable(format!(
                "the case's row is behind the log: its event {} at position {} {}",
                block.event_type, block.position, block.why
            ))
            .into());
        }
        let view = view.ok_or(ApiError::NotFound { what: "case" })?;
        Ok(Response::new(GetCaseResponse {
            r#case: Some(view),
            position,
        }))
    }

    async fn list_cases(
        &self,
        request: Request<ListCasesRequest>,
    ) -> Result<Response<ListCasesResponse>, Status> {
        let req = request.get_ref();
        let mut violations = Violations::new();
        let holder = violations.check("holder", DepartmentCode::parse(&req.holder));
        if let Some(code) = &holder
            && self.registry.unit(code).is_none()
        {
            violations.push(
                "holder",
                "no such department or dispatch unit in the registry",
            );
        }
        let cursor = if req.page_token.is_empty() {
            None
        } else {
            let cursor = QueueCursor::from_token(&req.page_token);
            if cursor.is_none() {
                violations.push("page_token", "is not a token from a previous response");
            }
            cursor
        };
        let holder = violations
            .finish(|| holder.map(String::from).unwrap_or_default())
            .map_err(ApiError::from)?;
        // AIP-158: a page size above the maximum is lowered to it, not refused.
        let limit = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        } as usize;

        let position = self.reach(request.metadata(), req.min_position).await?;
        let (cases, next) = self
            .read(move |store| case_queue::list_queue(store, &holder, cursor.as_ref(), limit))
            .await?;
        Ok(Response::new(ListCasesResponse {
            cases,
            next_page_token: next.map(|c| c.to_token()).unwrap_or_default(),
            position,
        }))
    }
}
