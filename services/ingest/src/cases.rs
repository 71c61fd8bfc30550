//! `gov.hub.v1.CaseCommandService`.

use std::sync::Arc;

use hub_api::v1::case_command_service_server::CaseCommandService;
use hub_api::v1::{ReportCaseRequest, ReportCaseResponse};
use hub_api::{ApiError, ValidReport, case_event_id, encode_case_event};
use hub_domain::case::{self, CaseCommand, CaseError, CaseId};
use hub_domain::clock::Clock;
use hub_domain::registry::Registry;
use hub_log::names::{AggregateType, department_source, event_subject};
use hub_log::{AppendError, Appender, Classification, Envelope, NewEvent};
use tonic::{Request, Response, Status};
use tracing::{error, info, warn};

use crate::caller::caller_department;
use crate::ids;

/// W3C trace context header, passed through into the events.
const TRACEPARENT: &str = "traceparent";
const CORRELATION_HEADER: &str = "x-correlation-id";

pub struct CaseCommands {
    appender: Appender,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
}

impl CaseCommands {
    pub fn new(appender: Appender, registry: Arc<Registry>, clock: Arc<dyn Clock>) -> Self {
        Self {
            appender,
            registry,
            clock,
        }
    }
}

fn header(request: &Request<ReportCaseRequest>, name: &str) -> String {
    request
        .metadata()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_default()
        .to_owned()
}

#[tonic::async_trait]
impl CaseCommandService for CaseCommands {
    async fn report_case(
        &self,
        request: Request<ReportCaseRequest>,
    ) -> Result<Response<ReportCaseResponse>, Status> {
        let department = caller_department(request.metadata())?;
        let traceparent = header(&request, TRACEPARENT);
        let correlation = header(&request, CORRELATION_HEADER);
        let valid = ValidReport::try_from(request.get_ref()).map_err(ApiError::from)?;
        let request_id = valid.request_id.clone();
        let case_id = CaseId::new(ids::case_id(department.as_str(), &request_id));
        let command = CaseCommand::Report(valid.into_command(case_id.clone(), department.clone()));

        // A new case: no state to read; the expected subject sequence 0 guards the subject.
        let events = case::decide(None, command, &self.registry, self.clock.now()).map_err(
            |err| match err {
                CaseError::Invalid(violations) => ApiError::from(violations),
                CaseError::AlreadyExists => ApiError::AlreadyExists { what: "case" },
            },
        )?;

        let subject = event_subject(AggregateType::Case, case_id.as_str());
        let mut event_ids = Vec::with_capacity(events.len());
        let mut position = 0;
        for (index, event) in events.iter().enumerate() {
            let (event_type, body) = encode_case_event(event);
            let id = ids::event_id(department.as_str(), &request_id, index);
            let envelope = Envelope {
                id: id.clone(),
                source: department_source(department.as_str()),
                event_type: event_type.name.to_owned(),
                subject: format!("case/{}", case_event_id(event).as_str()),
                time: self.clock.now(),
                dataschema: event_type.dataschema.to_owned(),
                department: department.to_string(),
                classification: Classification::Internal,
                schema_version: event_type.schema_version,
                correlation_id: if correlation.is_empty() {
                    request_id.clone()
                } else {
                    correlation.clone()
                },
                causation_id: request_id.clone(),
                traceparent: traceparent.clone(),
                request_id: request_id.clone(),
            };
            let appended = self
                .appender
                .append(NewEvent {
                    subject: subject.clone(),
                    envelope,
                    body: body.into(),
                    expected_last_subject_sequence: (index == 0).then_some(0),
                })
                .await
                .map_err(|err| match err {
                    // The case's subject has events already: this request id was used before,
                    // outside the duplicate window.
                    AppendError::Conflict => ApiError::AlreadyExists { what: "case for this request_id" },
                    AppendError::Unavailable(reason) => {
                        warn!(reason = %reason, "append unavailable");
                        ApiError::Unavailable("the event log did not confirm the append; retry with the same request_id".into())
                    }
                    AppendError::Refused(reason) => {
                        error!(reason = %reason, "append refused");
                        ApiError::Internal
                    }
                })?;
            if appended.duplicate {
                info!(
                    position = appended.position,
                    "retried report recognised as duplicate"
                );
            }
            position = appended.position;
            event_ids.push(id);
        }
        info!(department = %department, position, "case reported");
        Ok(Response::new(ReportCaseResponse {
            case_id: case_id.as_str().to_owned(),
            event_ids,
            position,
        }))
    }
}
