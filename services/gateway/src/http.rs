//! The hub's HTTP face, on the gRPC port: the catalogue as DCAT-AP 3.0.1 for catalogue
//! software (CKAN's DCAT harvester, for one) and each dataset's rows as JSON, the access URL
//! every distribution names.
//!
//! - `GET /catalog.ttl`, `GET /catalog.jsonld`: the catalogue, `?page=N` (Hydra paging);
//! - `GET /catalog`: the same, the form chosen by the `Accept` header (`text/turtle`,
//!   `application/ld+json`; JSON-LD when the client takes anything);
//! - `GET /datasets/{id}`: a page of rows, with the query parameters of `ReadDataset`
//!   (`page_size`, `page_token`, `min_position`, `department`, `district_code`, `grid_code`,
//!   `time_from`, `time_to`). Open datasets need no identity.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hub_api::ApiError;
use hub_api::identity::Identity;
use hub_api::v1;
use serde::Deserialize;

use crate::audited::{Answered, Asked, audited, proven};
use crate::catalog::{Publisher, dcat};
use crate::datasets::Datasets;

/// Datasets per catalogue page.
pub const CATALOG_PAGE_SIZE: u64 = 50;

struct AppState {
    datasets: Datasets,
    publisher: Publisher,
    base_url: String,
}

/// The HTTP routes, to merge with the gRPC services on one port.
pub fn router(datasets: Datasets, publisher: Publisher, base_url: String) -> Router {
    let state = Arc::new(AppState {
        datasets,
        publisher,
        base_url: base_url.trim_end_matches('/').to_owned(),
    });
    Router::new()
        .route("/catalog", get(catalog_negotiated))
        .route("/catalog.ttl", get(catalog_turtle))
        .route("/catalog.jsonld", get(catalog_jsonld))
        .route("/datasets/{id}", get(dataset_rows))
        .with_state(state)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Turtle,
    JsonLd,
}

impl Form {
    fn content_type(self) -> &'static str {
        match self {
            Form::Turtle => "text/turtle; charset=utf-8",
            Form::JsonLd => "application/ld+json",
        }
    }
}

/// The form an `Accept` header asks for (RFC 9110): each form takes the q-value of the most
/// specific range that matches one of its media types; the highest q above 0 wins, JSON-LD
/// on a tie. `None` when the header takes neither.
fn negotiate(accept: Option<&str>) -> Option<Form> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Some(Form::JsonLd);
    };
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| {
                    let (name, value) = p.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("q")
                        .then(|| value.trim().parse().ok())?
                })
                .next()
                .unwrap_or(1.0);
            (media, q)
        })
        .collect();
    // Specificity: 2 for the exact type, 1 for `type/*`, 0 for `*/*`.
    let q_of = |types: &[&str]| -> f32 {
        let mut best: Option<(u8, f32)> = None;
        for (media, q) in &ranges {
            let specificity = types
                .iter()
                .filter_map(|t| {
                    let major = t.split('/').next().unwrap_or_default();
                    if media == t {
                        Some(2)
                    } else if media.strip_suffix("/*") == Some(major) {
                        Some(1)
                    } else if media == "*/*" {
                        Some(0)
                    } else {
                        None
                    }
                })
                .max();
            if let Some(s) = specificity
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, *q));
            }
        }
        best.map_or(0.0, |(_, q)| q)
    };
    let jsonld = q_of(&["application/ld+json", "application/json"]);
    let turtle = q_of(&["text/turtle", "application/x-turtle"]);
    match (jsonld > 0.0, turtle > 0.0) {
        (false, false) => None,
        _ if turtle > jsonld => Some(Form::Turtle),
        _ => Some(Form::JsonLd),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogParams {
    page: Option<u64>,
}

/// Who asks, from an HTTP request's headers and connection.
struct Caller {
    who: Result<Identity, ApiError>,
}

impl Caller {
    fn of(state: &AppState, headers: &HeaderMap, extensions: &axum::http::Extensions) -> Self {
        Self {
            who: state.datasets.reader_http(headers, extensions),
        }
    }
}

const CATALOG_ACTION: &str = "GET /catalog";
const ROWS_ACTION: &str = "GET /datasets/{id}";

type QueryResult<T> = Result<Query<T>, QueryRejection>;

/// A request's query parameters refused (unknown or malformed): recorded with a fixed reason
/// (the parameter's name is the request's own text), answered with serde's.
async fn refuse_query(
    state: &AppState,
    caller: &Caller,
    asked: Asked,
    rejection: QueryRejection,
) -> Response {
    let violation = |reason: String| {
        ApiError::InvalidArgument(vec![hub_domain::FieldViolation::new("query", reason)])
    };
    let recorded: Result<(), ApiError> =
        Err(violation("an unknown or malformed parameter".to_owned()));
    match audited(state.datasets.audit(), &caller.who, asked, recorded, |_| {
        Answered::default()
    })
    .await
    {
        Err(err @ ApiError::Unavailable(_)) => error_response(err),
        // The caller's own proof failed: that refusal comes first.
        Err(err @ (ApiError::Unauthenticated(_) | ApiError::InvalidArgument(_)))
            if caller.who.is_err() =>
        {
            error_response(err)
        }
        _ => error_response(violation(rejection.body_text())),
    }
}

async fn catalog_negotiated(
    State(state): State<Arc<AppState>>,
    params: QueryResult<CatalogParams>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let caller = Caller::of(&state, &headers, &extensions);
    let params = match params {
        Ok(Query(params)) => params,
        Err(rejection) => {
            let asked = Asked {
                action: CATALOG_ACTION,
                ..Asked::default()
            };
            return refuse_query(&state, &caller, asked, rejection).await;
        }
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let mut response = match negotiate(accept) {
        Some(form) => catalog(&state, caller, form, params.page).await,
        None => {
            let refusal: Result<(), ApiError> = Err(ApiError::InvalidArgument(vec![
                hub_domain::FieldViolation::new(
                    "accept",
                    "the catalogue is served as text/turtle or application/ld+json",
                ),
            ]));
            let asked = Asked {
                action: CATALOG_ACTION,
                ..Asked::default()
            };
            match audited(state.datasets.audit(), &caller.who, asked, refusal, |_| {
                Answered::default()
            })
            .await
            {
                Err(ApiError::InvalidArgument(_)) => (
                    StatusCode::NOT_ACCEPTABLE,
                    "the catalogue is served as text/turtle or application/ld+json\n",
                )
                    .into_response(),
                Err(err) => error_response(err),
                Ok(()) => StatusCode::NOT_ACCEPTABLE.into_response(),
            }
        }
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept"));
    response
}

async fn catalog_turtle(
    State(state): State<Arc<AppState>>,
    params: QueryResult<CatalogParams>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    catalog_in(&state, params, &headers, &extensions, Form::Turtle).await
}

async fn catalog_jsonld(
    State(state): State<Arc<AppState>>,
    params: QueryResult<CatalogParams>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    catalog_in(&state, params, &headers, &extensions, Form::JsonLd).await
}

async fn catalog_in(
    state: &AppState,
    params: QueryResult<CatalogParams>,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    form: Form,
) -> Response {
    let caller = Caller::of(state, headers, extensions);
    match params {
        Ok(Query(params)) => catalog(state, caller, form, params.page).await,
        Err(rejection) => {
            let asked = Asked {
                action: CATALOG_ACTION,
                ..Asked::default()
            };
            refuse_query(state, &caller, asked, rejection).await
        }
    }
}

/// A page of the catalogue, audited: the entries on it.
async fn catalog(state: &AppState, caller: Caller, form: Form, page: Option<u64>) -> Response {
    let result = async {
        proven(&caller.who)?;
        catalog_page(state, form, page).await
    }
    .await;
    let asked = Asked {
        action: CATALOG_ACTION,
        ..Asked::default()
    };
    match audited(
        state.datasets.audit(),
        &caller.who,
        asked,
        result,
        |(_, count)| Answered {
            count: *count,
            position: 0,
            ..Answered::default()
        },
    )
    .await
    {
        Ok((body, _)) => ([(header::CONTENT_TYPE, form.content_type())], body).into_response(),
        Err(ApiError::NotFound { .. }) => (
            StatusCode::NOT_FOUND,
            "no such page of the catalogue\n".to_owned(),
        )
            .into_response(),
        Err(err) => error_response(err),
    }
}

/// The catalogue's page `page` (from 1) in `form`, and how many entries it holds.
async fn catalog_page(
    state: &AppState,
    form: Form,
    page: Option<u64>,
) -> Result<(String, u64), ApiError> {
    let entries = state.datasets.catalogue().await?;
    let total = entries.len() as u64;
    let pages = total.div_ceil(CATALOG_PAGE_SIZE).max(1);
    let page = page.unwrap_or(1);
    if page == 0 || page > pages {
        return Err(ApiError::NotFound {
            what: "catalogue page",
        });
    }
    let start = ((page - 1) * CATALOG_PAGE_SIZE) as usize;
    let end = (start + CATALOG_PAGE_SIZE as usize).min(entries.len());
    let view = dcat::Page {
        entries: &entries[start..end],
        base_url: &state.base_url,
        page,
        page_size: CATALOG_PAGE_SIZE,
        total,
        publisher: &state.publisher,
        modified: Some(jiff::Timestamp::now()),
    };
    let body = match form {
        Form::Turtle => dcat::turtle(&view),
        Form::JsonLd => dcat::jsonld(&view),
    };
    Ok((body, (end - start) as u64))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RowParams {
    #[serde(default)]
    min_position: u64,
    #[serde(default)]
    page_size: u32,
    #[serde(default)]
    page_token: String,
    #[serde(default)]
    department: String,
    #[serde(default)]
    district_code: String,
    #[serde(default)]
    grid_code: String,
    #[serde(default)]
    time_from: String,
    #[serde(default)]
    time_to: String,
}

async fn dataset_rows(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    params: QueryResult<RowParams>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
) -> Response {
    let caller = Caller::of(&state, &headers, &extensions);
    let p = match params {
        Ok(Query(p)) => p,
        // An unknown parameter (a misspelt filter) is refused, not ignored; serde names it.
        Err(rejection) => {
            let asked = Asked {
                action: ROWS_ACTION,
                dataset: state.datasets.audit_name(&id),
                ..Asked::default()
            };
            return refuse_query(&state, &caller, asked, rejection).await;
        }
    };
    let request = v1::ReadDatasetRequest {
        dataset_id: id,
        min_position: p.min_position,
        page_size: p.page_size,
        page_token: p.page_token,
        department: p.department,
        district_code: p.district_code,
        grid_code: p.grid_code,
        time_from: p.time_from,
        time_to: p.time_to,
    };
    let result = async {
        let who = proven(&caller.who)?;
        let wait = state.datasets.max_wait();
        state.datasets.read(who, &request, wait).await
    }
    .await;
    let asked = Asked {
        action: ROWS_ACTION,
        dataset: state.datasets.audit_name(&request.dataset_id),
        ..Asked::default()
    };
    match audited(state.datasets.audit(), &caller.who, asked, result, |rows| {
        Answered {
            count: rows.rows.len() as u64,
            position: rows.position,
            grants: rows.grants.clone(),
            persons: rows.persons.clone(),
            clear_fields: rows.clear_fields.clone(),
        }
    })
    .await
    {
        Ok(rows) => axum::Json(rows).into_response(),
        Err(err) => error_response(err),
    }
}

/// An error as HTTP: the status the gRPC code maps to, and the same text and field
/// violations as JSON.
fn error_response(err: ApiError) -> Response {
    let status: tonic::Status = err.into();
    let http = match status.code() {
        tonic::Code::InvalidArgument => StatusCode::BAD_REQUEST,
        tonic::Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        tonic::Code::PermissionDenied => StatusCode::FORBIDDEN,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let body = serde_json::json!({
        "code": format!("{:?}", status.code()),
        "message": status.message(),
    });
    (http, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accept_header_picks_the_form() {
        assert_eq!(negotiate(None), Some(Form::JsonLd));
        assert_eq!(negotiate(Some("text/turtle")), Some(Form::Turtle));
        assert_eq!(negotiate(Some("application/ld+json")), Some(Form::JsonLd));
        assert_eq!(
            negotiate(Some("application/ld+json;q=0.5, text/turtle;q=0.9")),
            Some(Form::Turtle)
        );
        assert_eq!(negotiate(Some("*/*")), Some(Form::JsonLd));
        assert_eq!(negotiate(Some("image/png")), None);
        assert_eq!(negotiate(Some("text/turtle;q=0")), None);
        // The most specific range decides: a refusal is not undone by a wildcard.
        assert_eq!(
            negotiate(Some("application/ld+json;q=0, */*")),
            Some(Form::Turtle)
        );
        assert_eq!(negotiate(Some("text/turtle;q=0, text/*")), None);
        assert_eq!(negotiate(Some("text/*")), Some(Form::Turtle));
        assert_eq!(
            negotiate(Some("text/turtle;Q=0.2, application/ld+json;q=0.5")),
            Some(Form::JsonLd)
        );
    }
}
