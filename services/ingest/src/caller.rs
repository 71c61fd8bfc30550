//! Who is calling. For now the department comes from request metadata; identity by client
//! certificate or signed token comes with the identity work.

use hub_api::ApiError;
use hub_domain::FieldViolation;
use hub_domain::codes::DepartmentCode;
use tonic::metadata::MetadataMap;

/// Request header naming the calling department, e.g. `urban-management`.
pub const DEPARTMENT_HEADER: &str = "x-hub-department";

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
