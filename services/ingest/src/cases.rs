//! `gov.hub.v1.CaseCommandService`.

use std::sync::Arc;

use hub_api::v1::case_command_service_server::CaseCommandService;
use hub_api::v1::{self, ReportCaseRequest, ReportCaseResponse};
use hub_api::{ApiError, ValidReport, encode_case_event};
use hub_domain::FieldViolation;
use hub_domain::case::{self, CaseCommand, CaseError, CaseId};
use hub_domain::clock::Clock;
use hub_domain::codes::DepartmentCode;
use hub_domain::registry::Registry;
use hub_log::names::{AggregateType, department_source, event_subject};
use hub_log::{AppendError, Appender, Classification, Envelope, NewEvent, StoredEvent};
use prost::Message;
use tonic::metadata::MetadataMap;
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

/// What a command carries besides its body: who sent it and the trace it belongs to.
struct CommandContext {
    department: DepartmentCode,
    request_id: String,
    correlation_id: String,
    traceparent: String,
}

fn header(metadata: &MetadataMap, name: &str) -> String {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_default()
        .to_owned()
}

fn append_error(err: AppendError) -> ApiError {
    match err {
        AppendError::Conflict => ApiError::AlreadyExists { what: "case" },
        AppendError::Unavailable(reason) => {
            warn!(reason = %reason, "append unavailable");
            ApiError::Unavailable(
                "the event log did not confirm the append; retry with the same request_id".into(),
            )
        }
        AppendError::Refused(reason) => {
            error!(reason = %reason, "append refused");
            ApiError::Internal
        }
    }
}

impl CaseCommands {
    pub fn new(appender: Appender, registry: Arc<Registry>, clock: Arc<dyn Clock>) -> Self {
        Self {
            appender,
            registry,
            clock,
        }
    }

    fn envelope(
        &self,
        ctx: &CommandContext,
        case_id: &CaseId,
        index: usize,
        event: &case::CaseEvent,
    ) -> (Envelope, Vec<u8>) {
        let (event_type, body) = encode_case_event(event);
        let envelope = Envelope {
            id: ids::event_id(ctx.department.as_str(), &ctx.request_id, index),
            source: department_source(ctx.department.as_str()),
            event_type: event_type.name.to_owned(),
            subject: format!("case/{}", case_id.as_str()),
            time: self.clock.now(),
            dataschema: event_type.dataschema.to_owned(),
            department: ctx.department.to_string(),
            classification: Classification::Internal,
            schema_version: event_type.schema_version,
            correlation_id: ctx.correlation_id.clone(),
            causation_id: ctx.request_id.clone(),
            traceparent: ctx.traceparent.clone(),
            request_id: ctx.request_id.clone(),
        };
        (envelope, body)
    }

    /// A report whose case subject already has events: the same request sent again (its
    /// first result is returned), or its request id reused for other content (refused).
    async fn earlier_report(
        &self,
        subject: &str,
        envelope: &Envelope,
        body: &[u8],
    ) -> Result<u64, ApiError> {
        let stored: StoredEvent = self
            .appender
            .first_event(subject)
            .await
            .map_err(append_error)?
            .ok_or(ApiError::AlreadyExists { what: "case" })?;
        if stored.envelope.id != envelope.id {
            return Err(ApiError::AlreadyExists { what: "case" });
        }
        let original = v1::CaseReported::decode(stored.body.as_ref()).map_err(|e| {
            error!(position = stored.position, error = %e, "stored report does not decode");
            ApiError::Internal
        })?;
        let mut retried = v1::CaseReported::decode(body).map_err(|_| ApiError::Internal)?;
        // The retry was decided later; everything but the time must match.
        retried.reported_at = original.reported_at;
        if retried == original {
            Ok(stored.position)
        } else {
            Err(ApiError::InvalidArgument(vec![FieldViolation::new(
                "request_id",
                "was used before by this department for a different report",
            )]))
        }
    }
}

#[tonic::async_trait]
impl CaseCommandService for CaseCommands {
    async fn report_case(
        &self,
        request: Request<ReportCaseRequest>,
    ) -> Result<Response<ReportCaseResponse>, Status> {
        let department = caller_department(request.metadata())?;
        let valid = ValidReport::try_from(request.get_ref()).map_err(ApiError::from)?;
        let correlation = header(request.metadata(), CORRELATION_HEADER);
        let ctx = CommandContext {
            correlation_id: if correlation.is_empty() {
                valid.request_id.clone()
            } else {
                correlation
            },
            traceparent: header(request.metadata(), TRACEPARENT),
            request_id: valid.request_id.clone(),
            department,
        };
        let case_id = CaseId::new(ids::case_id(ctx.department.as_str(), &ctx.request_id));
        let command =
            CaseCommand::Report(valid.into_command(case_id.clone(), ctx.department.clone()));

        // A new case: there is no state to read; expecting subject sequence 0 guards the subject.
        let events = case::decide(None, command, &self.registry, self.clock.now()).map_err(
            |err| match err {
                CaseError::Invalid(violations) => ApiError::from(violations),
                CaseError::AlreadyExists => ApiError::AlreadyExists { what: "case" },
            },
        )?;
        let [event] = events.as_slice() else {
            error!(
                events = events.len(),
                "a report decided into other than one event"
            );
            return Err(ApiError::Internal.into());
        };
        let subject = event_subject(AggregateType::Case, case_id.as_str());
        let (envelope, body) = self.envelope(&ctx, &case_id, 0, event);
        let event_id = envelope.id.clone();
        let appended = self
            .appender
            .append(NewEvent {
                subject: subject.clone(),
                envelope: envelope.clone(),
                body: body.clone().into(),
                expected_last_subject_sequence: Some(0),
            })
            .await;
        let position = match appended {
            Ok(appended) => appended.position,
            Err(AppendError::Conflict) => {
                let position = self.earlier_report(&subject, &envelope, &body).await?;
                info!(department = %ctx.department, position, "retried report answered with its first result");
                position
            }
            Err(err) => return Err(append_error(err).into()),
        };
        info!(department = %ctx.department, position, "case reported");
        Ok(Response::new(ReportCaseResponse {
            case_id: case_id.as_str().to_owned(),
            event_ids: vec![event_id],
            position,
        }))
    }
}
