//! `gov.hub.v1.CaseQueryService`, over read model `case_queue`. Deny by default: only a
//! department with a role on a case reads it (its holder, the department that reported it,
//! the one asked to take it over, the district's command centre), and a department lists
//! only its own queue.

use std::time::Duration;

use hub_api::ApiError;
use hub_api::identity::{Authenticator, Identity};
use hub_api::v1::case_query_service_server::CaseQueryService;
use hub_api::v1::{CaseView, GetCaseRequest, GetCaseResponse, ListCasesRequest, ListCasesResponse};
use hub_audit::Audit;
use hub_domain::Violations;
use hub_domain::codes::DepartmentCode;
use hub_domain::registry::Registry;
use hub_projector::ReadModel;
use hub_projector::case_queue::{self, QueueCursor};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use crate::audited::{Answered, Asked, audited};
use crate::deadline::read_wait;
use crate::model_read::{blocking, reach};

const DEFAULT_PAGE_SIZE: u32 = 100;
const MAX_PAGE_SIZE: u32 = 500;

pub struct CaseQueries {
    model: ReadModel,
    auth: Authenticator,
    audit: Audit,
    max_wait: Duration,
}

/// The one answer to a department without a role on a case, whether the case exists or not.
const NO_ROLE: &str = "the calling department has no role on this case, or there is no such case";

impl CaseQueries {
    pub fn new(
        model: ReadModel,
        (auth, audit): (Authenticator, Audit),
        max_wait: Duration,
    ) -> Self {
        Self {
            model,
            auth,
            audit,
            max_wait,
        }
    }

    fn registry(&self) -> &Registry {
        self.auth.registry()
    }

    /// The calling department; the public reads no case.
    fn department(who: &Result<Identity, ApiError>) -> Result<DepartmentCode, ApiError> {
        match who.as_ref().map_err(Clone::clone)? {
            Identity::Department(d) => Ok(d.code.clone()),
            Identity::Public => Err(ApiError::Unauthenticated(
                "cases are read by the departments that have a role on them: identify by \
                 client certificate or signed token"
                    .into(),
            )),
        }
    }

    /// Whether `department` has a role on the case `view` shows.
    fn has_role(&self, department: &DepartmentCode, view: &CaseView) -> bool {
        let me = department.as_str();
        let command_centre = hub_domain::codes::DivisionCode::parse(&view.district_code)
            .ok()
            .and_then(|code| self.registry().district(&code))
            .map(|district| district.command_centre.as_str() == me);
        view.holder == me
            || view.reported_by == me
            || view.pending_transfer_to == me
            || command_centre == Some(true)
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
        let who = self.auth.identify_grpc(&request);
        let result = self.get(&who, &request).await;
        let id = &request.get_ref().case_id;
        let asked = Asked {
            action: "gov.hub.v1.CaseQueryService/GetCase",
            // The aggregate only when the id is one (never the text of a malformed one).
            aggregate: hub_api::case_id(&mut Violations::new(), id)
                .map(|id| format!("case/{id}"))
                .unwrap_or_default(),
            ..Asked::default()
        };
        let answer = audited(&self.audit, &who, asked, result, |answer| Answered {
            count: 1,
            position: answer.position,
            ..Answered::default()
        })
        .await?;
        Ok(Response::new(answer))
    }

    async fn list_cases(
        &self,
        request: Request<ListCasesRequest>,
    ) -> Result<Response<ListCasesResponse>, Status> {
        let who = self.auth.identify_grpc(&request);
        let result = self.list(&who, &request).await;
        let asked = Asked {
            action: "gov.hub.v1.CaseQueryService/ListCases",
            ..Asked::default()
        };
        let answer = audited(&self.audit, &who, asked, result, |answer| Answered {
            count: answer.cases.len() as u64,
            position: answer.position,
            ..Answered::default()
        })
        .await?;
        Ok(Response::new(answer))
    }
}

impl CaseQueries {
    async fn get(
        &self,
        who: &Result<Identity, ApiError>,
        request: &Request<GetCaseRequest>,
    ) -> Result<GetCaseResponse, ApiError> {
        let department = Self::department(who)?;
        let mut violations = Violations::new();
        let id =
            hub_api::case_id(&mut violations, &request.get_ref().case_id).map(|id| id.to_string());
        let id = violations.finish(|| id.unwrap_or_default())?;
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
        // Who asks before whether it exists or how it stands: no role and no case get the
        // same answer (and a case whose report could not be read shows no one a role).
        let view = view
            .filter(|view| self.has_role(&department, view))
            .ok_or_else(|| ApiError::PermissionDenied(NO_ROLE.into()))?;
        // A row the read model could not keep up to date is not served as current.
        if let Some(block) = behind {
            return Err(ApiError::Unavailable(format!(
                "the case's row is behind the log: its event {} at position {} {}",
                block.event_type, block.position, block.why
            )));
        }
        Ok(GetCaseResponse {
            r#case: Some(view),
            position,
        })
    }

    async fn list(
        &self,
        who: &Result<Identity, ApiError>,
        request: &Request<ListCasesRequest>,
    ) -> Result<ListCasesResponse, ApiError> {
        let department = Self::department(who)?;
        let req = request.get_ref();
        let mut violations = Violations::new();
        let holder = violations.check("holder", DepartmentCode::parse(&req.holder));
        if let Some(code) = &holder
            && self.registry().unit(code).is_none()
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
        let holder = violations.finish(|| holder.map(String::from).unwrap_or_default())?;
        if holder != department.as_str() {
            return Err(ApiError::PermissionDenied(
                "a department lists its own queue only: holder must be the calling department"
                    .into(),
            ));
        }
        // AIP-158: a page size above the maximum is lowered to it, not refused.
        let limit = match req.page_size {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        } as usize;

        let position = self.reach(request.metadata(), req.min_position).await?;
        let (cases, next) = self
            .read(move |store| case_queue::list_queue(store, &holder, cursor.as_ref(), limit))
            .await?;
        Ok(ListCasesResponse {
            cases,
            next_page_token: next.map(|c| c.to_token()).unwrap_or_default(),
            position,
        })
    }
}
