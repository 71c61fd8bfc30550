//! A server span and metrics for every request the hub's port serves.
//!
//! A gRPC call's span is named `<package.Service>/<Method>` with `rpc.system = grpc`,
//! `rpc.service`, `rpc.method` and `rpc.grpc.status_code` (OpenTelemetry's RPC conventions),
//! continues the caller's `traceparent`, and holds the handler, so whatever the handler does
//! (appends, audit records) is part of the caller's trace. A plain HTTP request (catalogue,
//! dataset rows, console) gets an `http.request.method` and `url.path` span, its query left
//! out. The status is the one in the response headers: a refusal comes back trailers-only,
//! with `grpc-status` there; a success has it in the trailers (0). A streaming call's span
//! ends when its response starts. A call the hub does not serve (UNIMPLEMENTED) is named
//! `_OTHER`, so no client can mint span names or metric series.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::codegen::http::{self, HeaderMap, Request, Response};
use tower_layer::Layer;
use tower_service::Service;
use tracing::Instrument;
use tracing::field::Empty;

use crate::metrics::{label, metrics};

/// The services whose calls are commands (`hub_commands_total`).
const COMMAND_SERVICES: [&str; 3] = [
    "gov.hub.v1.CaseCommandService",
    "gov.hub.v1.CareCommandService",
    "gov.hub.v1.GrantCommandService",
];

/// The gRPC code of a call to a service or method the hub does not serve.
const UNIMPLEMENTED: i32 = 12;
const OTHER: &str = "_OTHER";

/// The layer; add it to the server builder.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerSpans;

impl<S> Layer<S> for ServerSpans {
    type Service = Spans<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Spans { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Spans<S> {
    inner: S,
}

/// What kind of request, read from its path and content type.
enum Call {
    Grpc { service: String, method: String },
    Http,
}

fn call_of<B>(request: &Request<B>) -> Call {
    let grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let path = request.uri().path().trim_start_matches('/');
    match (grpc, path.split_once('/')) {
        (true, Some((service, method))) if !method.contains('/') => Call::Grpc {
            service: service.to_owned(),
            method: method.to_owned(),
        },
        _ => Call::Http,
    }
}

/// The W3C `traceparent` of a request, when it sends one.
fn traceparent(headers: &HeaderMap) -> &str {
    headers
        .get(crate::trace::TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// The gRPC status a response carries in its headers (a trailers-only refusal), else 0.
fn grpc_status(headers: &HeaderMap) -> i32 {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The name of a gRPC code, lower case (`invalid_argument`).
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "ok",
        1 => "cancelled",
        2 => "unknown",
        3 => "invalid_argument",
        4 => "deadline_exceeded",
        5 => "not_found",
        6 => "already_exists",
        7 => "permission_denied",
        8 => "resource_exhausted",
        9 => "failed_precondition",
        10 => "aborted",
        11 => "out_of_range",
        12 => "unimplemented",
        13 => "internal",
        14 => "unavailable",
        15 => "data_loss",
        16 => "unauthenticated",
        _ => "unknown",
    }
}

/// A code that refuses the request as asked (the caller must change something), rather
/// than a failure of the hub.
fn refusal(code: i32) -> bool {
    matches!(code, 3 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 16)
}

/// A code that counts as an error on the server side (OpenTelemetry's RPC conventions).
fn server_error(code: i32) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}

impl<S, B, R> Service<Request<B>> for Spans<S>
where
    S: Service<Request<B>, Response = Response<R>> + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let call = call_of(&request);
        let span = match &call {
            Call::Grpc { service, method } => tracing::info_span!(
                "rpc",
                otel.name = %format_args!("{service}/{method}"),
                otel.kind = "server",
                otel.status_code = Empty,
                rpc.system = "grpc",
                rpc.service = %service,
                rpc.method = %method,
                rpc.grpc.status_code = Empty,
            ),
            Call::Http => tracing::info_span!(
                "http",
                otel.name = %request.method(),
                otel.kind = "server",
                otel.status_code = Empty,
                http.request.method = %request.method(),
                url.path = %request.uri().path(),
                http.response.status_code = Empty,
            ),
        };
        crate::trace::child_of(&span, traceparent(request.headers()));
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(
            async move {
                let response = future.await?;
                let span = tracing::Span::current();
                match call {
                    Call::Grpc {
                        mut service,
                        mut method,
                    } => {
                        let code = grpc_status(response.headers());
                        span.record("rpc.grpc.status_code", code);
                        if code == UNIMPLEMENTED {
                            // A path the hub does not serve: any client could mint these, so
                            // they are one name in spans and metrics (the conventions' _OTHER).
                            (service, method) = (OTHER.to_owned(), OTHER.to_owned());
                            span.record("otel.name", OTHER);
                            span.record("rpc.service", OTHER);
                            span.record("rpc.method", OTHER);
                        }
                        if server_error(code) {
                            span.record("otel.status_code", "ERROR");
                        }
                        observe(&service, &method, code, started);
                    }
                    Call::Http => {
                        let status = response.status().as_u16();
                        span.record("http.response.status_code", status);
                        if status >= 500 {
                            span.record("otel.status_code", "ERROR");
                        }
                    }
                }
                Ok(response)
            }
            .instrument(span),
        )
    }
}

/// The call's metrics.
fn observe(service: &str, method: &str, code: i32, started: Instant) {
    let metrics = metrics();
    let name = code_name(code);
    metrics.rpc_duration.record(
        started.elapsed().as_secs_f64(),
        &[
            label("rpc.system", "grpc"),
            label("rpc.service", service.to_owned()),
            label("rpc.method", method.to_owned()),
            label("rpc.grpc.status_code", i64::from(code)),
        ],
    );
    if COMMAND_SERVICES.contains(&service) {
        let short = service.rsplit('.').next().unwrap_or(service);
        metrics.commands.add(
            1,
            &[
                label("rpc", format!("{short}/{method}")),
                label("outcome", name),
            ],
        );
    }
    if refusal(code) {
        metrics.refused.add(
            1,
            &[
                label("rpc.service", service.to_owned()),
                label("reason", name),
            ],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grpc_call_is_told_from_a_page_by_content_type_and_path() {
        let grpc = Request::builder()
            .uri("/gov.hub.v1.CaseCommandService/ReportIncident")
            .header("content-type", "application/grpc+proto")
            .body(())
            .expect("request");
        assert!(matches!(
            call_of(&grpc),
            Call::Grpc { ref service, ref method }
                if service == "gov.hub.v1.CaseCommandService" && method == "ReportIncident"
        ));
        let page = Request::builder()
            .uri("/gov.hub.v1.CaseCommandService/ReportIncident")
            .body(())
            .expect("request");
        assert!(matches!(call_of(&page), Call::Http));
        let deep = Request::builder()
            .uri("/datasets/x/rows")
            .header("content-type", "application/grpc")
            .body(())
            .expect("request");
        assert!(matches!(call_of(&deep), Call::Http));
    }

    #[test]
    fn refusals_and_server_errors_are_apart() {
        assert_eq!(code_name(3), "invalid_argument");
        assert!(refusal(3) && refusal(7) && refusal(10) && !refusal(0) && !refusal(14));
        assert!(server_error(13) && server_error(14) && !server_error(3) && !server_error(0));
    }
}
