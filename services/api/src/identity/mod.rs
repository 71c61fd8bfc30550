//! Who calls, as the request names it. For now (development identity) the calling department
//! is the `x-hub-department` header; client certificates and signed tokens come with the
//! identity work.

use hub_domain::FieldViolation;
use hub_domain::codes::DepartmentCode;
use hub_domain::registry::Registry;

use crate::ApiError;

/// Request header naming the calling department, e.g. `urban-management`.
pub const DEPARTMENT_HEADER: &str = "x-hub-department";

/// The department a request's `x-hub-department` header value (`None`: no header) names:
/// `None` without one; a value that is not a department of the registry is refused by field.
pub fn named_department(
    value: Option<&[u8]>,
    registry: &Registry,
) -> Result<Option<DepartmentCode>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let invalid = |reason: String| {
        ApiError::InvalidArgument(vec![FieldViolation::new(DEPARTMENT_HEADER, reason)])
    };
    let text = std::str::from_utf8(value)
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| invalid("must be ascii".into()))?;
    let department = DepartmentCode::parse(text).map_err(|e| invalid(e.to_string()))?;
    if registry.unit(&department).is_none() {
        return Err(invalid("no such department in the registry".into()));
    }
    Ok(Some(department))
}
