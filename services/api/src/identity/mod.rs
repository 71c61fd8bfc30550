//! Who calls, and for whom and what.
//!
//! A department proves who it is by the client certificate its TLS connection presented (the
//! subject's common name is its registry code; the hub's TLS layer has checked the chain to
//! the configured CA) or by a signed token in `authorization: Bearer …` ([`token`]). In
//! development mode only, the `x-hub-department` header names it unproven; the hub says so at
//! start-up. A caller that proves nothing is the anonymous public, which reads open datasets
//! and the catalogue and nothing else.
//!
//! A department's request also names the person acting (`x-hub-user`, a staff or account id,
//! as X-Road's user header) and the purpose it serves (`x-hub-purpose`: the case, the grant or
//! another reference of the department's, as X-Road's issue header). Neither may carry a
//! phone or identity number.

pub mod token;

use std::sync::Arc;

use hub_domain::FieldViolation;
use hub_domain::clock::Clock;
use hub_domain::codes::DepartmentCode;
use hub_domain::registry::Registry;
use serde::{Deserialize, Serialize};
use tonic::codegen::http::HeaderMap;

use crate::{ApiError, is_safe_id};
use token::TokenVerifier;

/// Request header naming the calling department, e.g. `urban-management`; honoured in
/// development mode only.
pub const DEPARTMENT_HEADER: &str = "x-hub-department";
/// Request header naming the person acting for the department (a staff or account id).
pub const PERSON_HEADER: &str = "x-hub-user";
/// Request header naming what the request serves: a case, a grant, another reference.
pub const PURPOSE_HEADER: &str = "x-hub-purpose";
/// Longest acting person id.
pub const MAX_PERSON: usize = 64;
/// Longest purpose.
pub const MAX_PURPOSE: usize = 128;

/// The client certificate a TLS connection presented (its leaf, DER; `None`: none), which
/// the hub's TLS acceptor puts into every request's extensions. The chain was checked
/// against the configured CA during the handshake.
#[derive(Debug, Clone, Default)]
pub struct PeerCertificate(pub Option<Arc<[u8]>>);

/// How the hub learns who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Client certificates and signed tokens only.
    Production,
    /// Also the unproven `x-hub-department` header: for a developer's own machine.
    Development,
}

/// How a department proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    Certificate,
    Token,
    /// The development-mode header: nothing proven.
    Header,
}

/// A department's request: who, proved how, acting through whom, for what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub code: DepartmentCode,
    pub proof: Proof,
    /// The acting person's id.
    pub person: String,
    /// The case, grant or other reference the request serves.
    pub purpose: String,
}

/// Who calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Nothing proven: the anonymous public.
    Public,
    Department(Department),
}

impl Identity {
    pub fn department(&self) -> Option<&Department> {
        match self {
            Identity::Public => None,
            Identity::Department(d) => Some(d),
        }
    }
}

/// Works out who calls from a request's headers and its connection's client certificate.
#[derive(Clone)]
pub struct Authenticator {
    mode: Mode,
    tokens: Option<TokenVerifier>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("mode", &self.mode)
            .field("tokens", &self.tokens.is_some())
            .finish_non_exhaustive()
    }
}

fn unauthenticated(reason: impl Into<String>) -> ApiError {
    ApiError::Unauthenticated(reason.into())
}

impl Authenticator {
    /// `tokens`: the verifier of signed tokens, when this hub accepts them.
    pub fn new(
        mode: Mode,
        tokens: Option<TokenVerifier>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            mode,
            tokens,
            registry,
            clock,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Who sends a gRPC request.
    pub fn identify_grpc<T>(&self, request: &tonic::Request<T>) -> Result<Identity, ApiError> {
        let leaf = request
            .extensions()
            .get::<PeerCertificate>()
            .and_then(|c| c.0.as_deref());
        self.identify(request.metadata().as_ref(), leaf)
    }

    /// Who sends an HTTP request (served on the gRPC port, so over the same TLS).
    pub fn identify_http(
        &self,
        headers: &HeaderMap,
        extensions: &tonic::codegen::http::Extensions,
    ) -> Result<Identity, ApiError> {
        let leaf = extensions
            .get::<PeerCertificate>()
            .and_then(|c| c.0.as_deref());
        self.identify(headers, leaf)
    }

    /// Who sends a request with `headers` over a connection whose client presented the
    /// certificate `leaf` (DER; `None`: no certificate, or no TLS).
    ///
    /// Refused (UNAUTHENTICATED) rather than treated as the public: a token or certificate
    /// that does not prove a department of the registry, the development header outside
    /// development mode, two proofs naming different departments. A proven department must
    /// name its acting person and purpose (INVALID_ARGUMENT by header otherwise).
    pub fn identify(&self, headers: &HeaderMap, leaf: Option<&[u8]>) -> Result<Identity, ApiError> {
        let mut proven: Vec<(DepartmentCode, Proof)> = Vec::new();
        if let Some(leaf) = leaf {
            proven.push((self.certificate_department(leaf)?, Proof::Certificate));
        }
        if let Some(value) = headers.get(tonic::codegen::http::header::AUTHORIZATION) {
            proven.push((self.token_department(value.as_bytes())?, Proof::Token));
        }
        if let Some(value) = headers.get(DEPARTMENT_HEADER) {
            if self.mode != Mode::Development {
                return Err(unauthenticated(
                    "the x-hub-department header is honoured only in development mode; \
                     identify by client certificate or by a signed token",
                ));
            }
            if let Some(code) = named_department(Some(value.as_bytes()), &self.registry)? {
                proven.push((code, Proof::Header));
            }
        }
        let Some((code, proof)) = proven.first().cloned() else {
            return Ok(Identity::Public);
        };
        if proven.iter().any(|(other, _)| *other != code) {
            return Err(unauthenticated(
                "the request's certificate, token and header name different departments",
            ));
        }
        Ok(Identity::Department(Department {
            code,
            proof,
            person: reference(headers, PERSON_HEADER, MAX_PERSON)?,
            purpose: reference(headers, PURPOSE_HEADER, MAX_PURPOSE)?,
        }))
    }

    /// The department a verified client certificate names: its subject's one common name,
    /// a unit of the registry.
    fn certificate_department(&self, leaf: &[u8]) -> Result<DepartmentCode, ApiError> {
        let refused = || {
            unauthenticated(
                "the client certificate's subject common name is not a department of the registry",
            )
        };
        let (_, certificate) = x509_parser::parse_x509_certificate(leaf).map_err(|_| refused())?;
        let mut names = certificate.subject().iter_common_name();
        let name = names
            .next()
            .and_then(|n| n.as_str().ok())
            .ok_or_else(refused)?;
        if names.next().is_some() {
            return Err(refused());
        }
        self.registered(name).ok_or_else(refused)
    }

    /// The department a bearer token names.
    fn token_department(&self, value: &[u8]) -> Result<DepartmentCode, ApiError> {
        let token = std::str::from_utf8(value)
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthenticated("the authorization header must be `Bearer <token>`"))?;
        let Some(verifier) = &self.tokens else {
            return Err(unauthenticated("this hub accepts no tokens"));
        };
        let subject = verifier
            .verify(token, self.clock.now())
            .map_err(|e| unauthenticated(format!("token refused: {e}")))?;
        self.registered(&subject).ok_or_else(|| {
            unauthenticated("the token's subject is not a department of the registry")
        })
    }

    fn registered(&self, name: &str) -> Option<DepartmentCode> {
        DepartmentCode::parse(name)
            .ok()
            .filter(|code| self.registry.unit(code).is_some())
    }
}

/// A department request's acting person or purpose header: required, 1 to `max` ASCII
/// letters, digits, `-`, `_`, `.` or `:`, and no run of 11 or more digits (a phone or an
/// identity number, which would put a person's data into every log and audit record) outside
/// a trailing `:<uuid>`.
fn reference(headers: &HeaderMap, name: &'static str, max: usize) -> Result<String, ApiError> {
    let invalid =
        |reason: String| ApiError::InvalidArgument(vec![FieldViolation::new(name, reason)]);
    let value = headers
        .get(name)
        .ok_or_else(|| invalid("a department's request must carry it".into()))?
        .to_str()
        .ok()
        .filter(|v| is_safe_id(v, max))
        .ok_or_else(|| {
            invalid(format!(
                "must be 1 to {max} ascii letters, digits, '-', '_', '.' or ':'"
            ))
        })?;
    // A reference ending in a UUID (`grant:<id>`, `case:<id>`) is the hub's own id: its hex
    // groups may hold long runs of digits by chance.
    let checked = match value.rsplit_once(':') {
        Some((head, tail)) if uuid::Uuid::try_parse(tail).is_ok() => head,
        _ => value,
    };
    let longest_digits = checked
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    if longest_digits >= 11 {
        return Err(invalid(
            "must not carry a phone or identity number (11 or more digits in a row)".into(),
        ));
    }
    Ok(value.to_owned())
}

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

#[cfg(test)]
mod tests;
