//! The operators' web console, served by the hub on its own port: a page of plain HTML, a
//! little JavaScript and CSS (embedded in the binary, nothing fetched from elsewhere) that
//! asks who you are and then reads two JSON routes.
//!
//! - `GET /console`: the page (`/console/console.js`, `/console/console.css` beside it);
//! - `GET /console/api/status`: the answer of `AdminService.GetStatus` as proto3 JSON
//!   (streams, read models, feeds, health, alarms, durability), for operators only: auditors
//!   get 403 here, as they do from the admin service;
//! - `GET /console/api/events?aggregate=case/<id>[&after=<position>][&page_size=N]`: an
//!   aggregate's events after a log position, oldest first, each with its envelope and its
//!   decoded body, a care record's masked as for a department without a grant (as
//!   `AuditService.GetHistory` and `AdminService.Replay` give them), as the proto3 JSON of a
//!   `GetHistoryResponse`; its `nextPageToken` is the `after` of the next page. For operators
//!   and auditors.
//!
//! The JSON is proto3 JSON as `buf curl` prints it: 64-bit numbers as strings, fields at
//! their default value left out.
//!
//! Who asks is worked out as for every HTTP request (client certificate, signed token, or in
//! development mode the `x-hub-department` header, with `x-hub-user` and `x-hub-purpose`)
//! and checked before anything is looked up: 401 without identity, 403 for any other unit.
//! Every call of the JSON routes is audited like the gRPC ones, before its answer leaves.
//! Errors are `{"error": <text>, "field": <the field at fault, or null>}`; like every error
//! of the hub they never repeat a request's values.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hub_api::ApiError;
use hub_api::identity::{Identity, Mode};
use hub_api::v1::GetHistoryResponse;
use hub_domain::registry::UnitKind;
use hub_domain::{FieldViolation, Violations};
use hub_gateway::audited::{Answered, Asked, audited};
use hub_gateway::log_failed;
use hub_gateway::{history_event, parse_aggregate};
use hub_log::names::event_subject;
use serde::Deserialize;

pub use crate::proto_json::to_json;

use crate::admin::Admin;

const PAGE: &str = include_str!("index.html");
const SCRIPT: &str = include_str!("console.js");
const STYLE: &str = include_str!("console.css");
/// Where the page learns how the hub identifies callers (which fields it asks for).
const MODE_PLACEHOLDER: &str = "__HUB_IDENTITY_MODE__";

const STATUS_ACTION: &str = "GET /console/api/status";
const EVENTS_ACTION: &str = "GET /console/api/events";

/// Events on a page unless the request asks for fewer, and never more than [`MAX_PAGE_SIZE`].
const DEFAULT_PAGE_SIZE: usize = 100;
const MAX_PAGE_SIZE: usize = 500;

/// Only this page's own script and style, no frames, no other origin.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

struct Console {
    admin: Arc<Admin>,
    /// The page, told the hub's identity mode.
    page: String,
}

/// The console's routes, to merge with the gRPC services and the other HTTP routes on one
/// port; `admin` is the admin service's own state, shared with it.
pub fn router(admin: Arc<Admin>) -> Router {
    let mode = match admin.auth().mode() {
        Mode::Development => "development",
        Mode::Production => "production",
    };
    let state = Arc::new(Console {
        page: PAGE.replace(MODE_PLACEHOLDER, mode),
        admin,
    });
    Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route("/console/console.js", get(script))
        .route("/console/console.css", get(style))
        .route("/console/api/status", get(status))
        .route("/console/api/events", get(events))
        .with_state(state)
}

/// Headers every console answer carries: nothing cached, nothing sniffed, never framed.
fn guarded(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn page(State(console): State<Arc<Console>>) -> Response {
    let mut response = guarded("text/html; charset=utf-8", console.page.clone());
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

async fn script() -> Response {
    guarded("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    guarded("text/css; charset=utf-8", STYLE)
}

/// `who`, if it is a unit of one of the kinds `allowed`: UNAUTHENTICATED for the public,
/// PERMISSION_DENIED for any other unit.
fn allowed(
    console: &Console,
    who: &Result<Identity, ApiError>,
    allowed: &[UnitKind],
    whom: &str,
) -> Result<UnitKind, ApiError> {
    match who.as_ref().map_err(Clone::clone)? {
        Identity::Public => Err(ApiError::Unauthenticated(format!(
            "this is for {whom}: identify by client certificate or signed token (in \
             development mode, by the x-hub-department header)"
        ))),
        Identity::Department(d) => {
            let kind = console
                .admin
                .auth()
                .registry()
                .unit(&d.code)
                .map(|u| u.kind);
            match kind {
                Some(kind) if allowed.contains(&kind) => Ok(kind),
                _ => Err(ApiError::PermissionDenied(format!(
                    "this is for {whom} only"
                ))),
            }
        }
    }
}

async fn status(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let who = console.admin.auth().identify_http(&headers, &extensions);
    let result = async {
        allowed(
            &console,
            &who,
            &[UnitKind::Operator],
            "operators (units of kind operator)",
        )?;
        let status = console.admin.status().await?;
        to_json("gov.hub.v1.GetStatusResponse", &status)
    }
    .await;
    let asked = Asked {
        action: STATUS_ACTION,
        ..Asked::default()
    };
    match audited(console.admin.audit(), &who, asked, result, |_| {
        Answered::default()
    })
    .await
    {
        Ok(json) => guarded("application/json", axum::Json(json)),
        Err(err) => error_response(err),
    }
}

/// The events route's parameters, as text: each is checked with its field named.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsParams {
    #[serde(default)]
    aggregate: String,
    #[serde(default)]
    after: String,
    #[serde(default)]
    page_size: String,
}

/// What an events request reads.
struct Wanted {
    kind: &'static str,
    id: String,
    after: u64,
    page_size: usize,
}

fn violation(field: &str, reason: &str) -> ApiError {
    ApiError::InvalidArgument(vec![FieldViolation::new(field, reason)])
}

/// Checks `params`, every field at once, none of their text repeated.
fn wanted(params: &EventsParams) -> Result<Wanted, ApiError> {
    let mut violations = Violations::new();
    let aggregate = if params.aggregate.is_empty() {
        violations.push(
            "aggregate",
            "is required: case/<id>, care/<id> or grant/<id>",
        );
        None
    } else {
        parse_aggregate(&mut violations, "aggregate", &params.aggregate)
    };
    let after = match params.after.as_str() {
        "" => Some(0),
        text => {
            let parsed = text
                .bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| text.parse::<u64>().ok())
                .flatten();
            if parsed.is_none() {
                violations.push("after", "must be a log position (a whole number)");
            }
            parsed
        }
    };
    let page_size = match params.page_size.as_str() {
        "" => Some(DEFAULT_PAGE_SIZE),
        text => {
            let parsed = text
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n));
            if parsed.is_none() {
                violations.push("page_size", "must be a whole number from 1 to 500");
            }
            parsed
        }
    };
    violations.finish(|| ())?;
    let (kind, id) = aggregate.ok_or(ApiError::Internal)?;
    Ok(Wanted {
        kind,
        id,
        after: after.unwrap_or_default(),
        page_size: page_size.unwrap_or(DEFAULT_PAGE_SIZE),
    })
}

/// A page of the aggregate's events, and the position of its last event when more follow.
async fn read_events(console: &Console, wanted: &Wanted) -> Result<GetHistoryResponse, ApiError> {
    let subject = event_subject(wanted.kind, &wanted.id);
    let mut entries = console
        .admin
        .log()
        .read_subject_at_most(&subject, wanted.after, wanted.page_size + 1)
        .await
        .map_err(log_failed)?;
    let more = entries.len() > wanted.page_size;
    entries.truncate(wanted.page_size);
    let next_page_token = match entries.last() {
        Some(last) if more => last.position().to_string(),
        _ => String::new(),
    };
    Ok(GetHistoryResponse {
        events: entries
            .iter()
            .map(|entry| history_event(wanted.kind, entry))
            .collect(),
        next_page_token,
    })
}

async fn events(
    State(console): State<Arc<Console>>,
    params: Result<Query<EventsParams>, QueryRejection>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let who = console.admin.auth().identify_http(&headers, &extensions);
    // The aggregate as the audit record names it: only a valid one, never other text.
    let aggregate = params
        .as_ref()
        .ok()
        .and_then(|Query(p)| parse_aggregate(&mut Violations::new(), "aggregate", &p.aggregate))
        .map(|(kind, id)| format!("{kind}/{id}"))
        .unwrap_or_default();
    let result = async {
        allowed(
            &console,
            &who,
            &[UnitKind::Operator, UnitKind::Auditor],
            "operators and auditors (units of kind operator or auditor)",
        )?;
        // An unknown parameter (a misspelt one) is refused, not ignored.
        let Query(params) =
            params.map_err(|_| violation("query", "an unknown or malformed parameter"))?;
        let wanted = wanted(&params)?;
        let page = read_events(&console, &wanted).await?;
        let mut json = to_json("gov.hub.v1.GetHistoryResponse", &page)?;
        if let Some(object) = json.as_object_mut() {
            object.insert(
                "aggregate".to_owned(),
                format!("{}/{}", wanted.kind, wanted.id).into(),
            );
        }
        let last = page.events.last().map(|e| e.position).unwrap_or_default();
        Ok((json, page.events.len() as u64, last))
    }
    .await;
    // A care record's events carry its personal fields (masked): the caller received them.
    let person = aggregate.strip_prefix("care/").map(str::to_owned);
    let asked = Asked {
        action: EVENTS_ACTION,
        aggregate,
        ..Asked::default()
    };
    let answer = audited(
        console.admin.audit(),
        &who,
        asked,
        result,
        |(_, count, last)| Answered {
            count: *count,
            position: *last,
            persons: person.filter(|_| *count > 0).into_iter().collect(),
            ..Answered::default()
        },
    )
    .await;
    match answer {
        Ok((json, _, _)) => guarded("application/json", axum::Json(json)),
        Err(err) => error_response(err),
    }
}

/// An error as HTTP: the status its gRPC code maps to, and `{"error", "field"}`.
fn error_response(err: ApiError) -> Response {
    let field = match &err {
        ApiError::InvalidArgument(violations) => violations.first().map(|v| v.field.clone()),
        _ => None,
    };
    let status: tonic::Status = err.into();
    let http = match status.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::FailedPrecondition => StatusCode::CONFLICT,
        tonic::Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({
        "error": status.message(),
        "field": field,
    });
    let mut response = guarded("application/json", (http, axum::Json(body)));
    if http == StatusCode::UNAUTHORIZED {
        // Not `WWW-Authenticate: Basic`, so no browser pops up its password dialog.
        response.headers_mut().insert(
            HeaderName::from_static("www-authenticate"),
            HeaderValue::from_static("Bearer realm=\"hub\""),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(aggregate: &str, after: &str, page_size: &str) -> EventsParams {
        EventsParams {
            aggregate: aggregate.into(),
            after: after.into(),
            page_size: page_size.into(),
        }
    }

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("not invalid argument: {other:?}"),
        }
    }

    #[test]
    fn an_events_request_is_checked_field_by_field() {
        let w = wanted(&params("case/abc-1", "", "")).expect("valid");
        assert_eq!((w.kind, w.id.as_str(), w.after), ("case", "abc-1", 0));
        assert_eq!(w.page_size, DEFAULT_PAGE_SIZE);
        let w = wanted(&params("care/x", "17", "5")).expect("valid");
        assert_eq!((w.kind, w.after, w.page_size), ("care", 17, 5));
        let Err(err) = wanted(&params("", "-1", "0")) else {
            panic!("accepted")
        };
        assert_eq!(fields(err), ["aggregate", "after", "page_size"]);
        let Err(err) = wanted(&params("person/1", "1", "501")) else {
            panic!("accepted")
        };
        assert_eq!(fields(err), ["aggregate", "page_size"]);
    }

    #[test]
    fn errors_name_their_field_and_map_to_http() {
        let response = error_response(violation("after", "must be a log position"));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = error_response(ApiError::Unauthenticated("who".into()));
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = error_response(ApiError::PermissionDenied("no".into()));
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn the_page_learns_the_identity_mode_and_loads_only_its_own_files() {
        assert!(PAGE.contains(MODE_PLACEHOLDER));
        for text in [PAGE, SCRIPT, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}
