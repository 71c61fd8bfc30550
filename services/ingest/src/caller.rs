//! Who is calling: a department proven by certificate or token (or, in development mode,
//! named by header), with its acting person and purpose, as `hub_api::identity::Authenticator` works it out.

pub use hub_api::identity::DEPARTMENT_HEADER;
use hub_api::identity::Identity;
use hub_api::{ApiError, is_safe_id};
use hub_domain::codes::DepartmentCode;
use hub_domain::{Actor, FieldViolation};
use hub_log::names::department_source;
use tonic::metadata::MetadataMap;

/// W3C trace context header, passed through into the events.
const TRACEPARENT: &str = "traceparent";
/// A client's conversation id, passed through into the events.
const CORRELATION_HEADER: &str = "x-correlation-id";

/// The calling department and what its request carries besides the command.
#[derive(Debug, Clone)]
pub struct Caller {
    pub department: DepartmentCode,
    /// The person acting for the department (a staff or account id).
    pub person: String,
    /// The case, grant or other reference the command serves.
    pub purpose: String,
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

/// Longest correlation id.
const MAX_CORRELATION_ID: usize = 128;

/// The client's correlation id, which travels in the events' headers: absent, or a safe id.
fn correlation_id(metadata: &MetadataMap) -> Result<String, ApiError> {
    let Some(value) = metadata.get(CORRELATION_HEADER) else {
        return Ok(String::new());
    };
    value
        .to_str()
        .ok()
        .filter(|v| is_safe_id(v, MAX_CORRELATION_ID))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::InvalidArgument(vec![FieldViolation::new(
                CORRELATION_HEADER,
                "must be 1 to 128 ascii letters, digits, '-', '_', '.' or ':'",
            )])
        })
}

/// The W3C trace context, passed on when well-formed (`00-<32 hex>-<16 hex>-<2 hex>`, ids not
/// all zero) and ignored otherwise, as the W3C recommendation asks of a malformed one.
fn traceparent(metadata: &MetadataMap) -> String {
    let Some(value) = metadata.get(TRACEPARENT).and_then(|v| v.to_str().ok()) else {
        return String::new();
    };
    if hub_telemetry::trace::well_formed(value) {
        value.to_owned()
    } else {
        String::new()
    }
}

/// The caller of a command, from who sends it (as `Authenticator::identify_grpc` works it
/// out): a department of the registry, proven (the public issues no commands), with its
/// acting person and purpose.
pub fn caller_of(
    identity: Result<Identity, ApiError>,
    metadata: &MetadataMap,
) -> Result<Caller, ApiError> {
    let Identity::Department(department) = identity? else {
        return Err(ApiError::Unauthenticated(
            "a command must come from a department: identify by client certificate or signed \
             token (in development mode, by the x-hub-department header)"
                .into(),
        ));
    };
    Ok(Caller {
        department: department.code,
        person: department.person,
        purpose: department.purpose,
        traceparent: traceparent(metadata),
        correlation_id: correlation_id(metadata)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &'static str, value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert(name, value.parse().expect("ascii"));
        metadata
    }

    #[test]
    fn a_correlation_id_is_a_safe_id_or_refused_by_name() {
        assert_eq!(correlation_id(&MetadataMap::new()).expect("absent"), "");
        assert_eq!(
            correlation_id(&with(CORRELATION_HEADER, "flow-7.a:b_c")).expect("safe"),
            "flow-7.a:b_c"
        );
        for bad in ["has space", "x%0d%0a", "semi;colon", &"a".repeat(129)] {
            let err = correlation_id(&with(CORRELATION_HEADER, bad)).expect_err(bad);
            assert!(
                matches!(&err, ApiError::InvalidArgument(v) if v[0].field == CORRELATION_HEADER),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_traceparent_is_passed_on_only_when_well_formed() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(traceparent(&with(TRACEPARENT, good)), good);
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "not a trace",
        ] {
            assert_eq!(traceparent(&with(TRACEPARENT, bad)), "", "{bad}");
        }
    }
}
