//! Who is calling. For now the department comes from request metadata; identity by client
//! certificate or signed token comes with the identity work.

use hub_api::ApiError;
use hub_domain::codes::DepartmentCode;
use hub_domain::registry::Registry;
use hub_domain::{Actor, FieldViolation};
use hub_log::names::department_source;
use tonic::metadata::MetadataMap;

/// Request header naming the calling department, e.g. `urban-management`.
pub const DEPARTMENT_HEADER: &str = "x-hub-department";
/// W3C trace context header, passed through into the events.
const TRACEPARENT: &str = "traceparent";
/// A client's conversation id, passed through into the events.
const CORRELATION_HEADER: &str = "x-correlation-id";

/// The calling department and what its request carries besides the command.
#[derive(Debug, Clone)]
pub struct Caller {
    pub department: DepartmentCode,
    pub traceparent: String,
    pub correlation_id: String,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        Actor::Department(self.department.clone())
    }

    pub fn source(&self) -> String {
        department_source(self.department.as_str())
    }
}

fn header(metadata: &MetadataMap, name: &str) -> String {
    metadata
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or_default()
        .to_owned()
}

pub fn caller_department(metadata: &MetadataMap) -> Result<DepartmentCode, ApiError> {
    let value = metadata
        .get(DEPARTMENT_HEADER)
        .ok_or(ApiError::Unauthenticated(
            "request header x-hub-department is missing",
        ))?;
    let text = value.to_str().map_err(|_| {
        ApiError::InvalidArgument(vec![FieldViolation::new(
            DEPARTMENT_HEADER,
            "must be ascii",
        )])
    })?;
    DepartmentCode::parse(text).map_err(|e| {
        ApiError::InvalidArgument(vec![FieldViolation::new(DEPARTMENT_HEADER, e.to_string())])
    })
}

/// The caller of a command: a department known to the registry.
pub fn caller(metadata: &MetadataMap, registry: &Registry) -> Result<Caller, ApiError> {
    let department = caller_department(metadata)?;
    if registry.unit(&department).is_none() {
        return Err(ApiError::InvalidArgument(vec![FieldViolation::new(
            DEPARTMENT_HEADER,
            "no such department in the registry",
        )]));
    }
    Ok(Caller {
        department,
        traceparent: header(metadata, TRACEPARENT),
        correlation_id: header(metadata, CORRELATION_HEADER),
    })
}
