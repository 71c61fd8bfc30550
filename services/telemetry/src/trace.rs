//! W3C trace context across the hub's hops, and the messaging spans that carry it.
//!
//! The context travels as a `traceparent` value (`00-<trace id>-<span id>-<flags>`): from the
//! gRPC metadata into the server span, from the append's producer span into the event's
//! `ce-traceparent` header, and out of that header again wherever an event is consumed.
//! Without an exporter [`traceparent`] answers `None` and the caller keeps the traceparent it
//! was given.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use opentelemetry::Context;

/// The messaging system named on every messaging span.
pub const MESSAGING_SYSTEM: &str = "nats";

/// The W3C header name.
pub const TRACEPARENT: &str = "traceparent";

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: only then do the hub's own span ids go into headers (JSON
/// logs alone record spans for their ids, which nobody could look up).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

pub(crate) fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// The `traceparent` of `span`, when spans are exported; `None` otherwise, and the caller
/// keeps the traceparent it was given.
pub fn traceparent(span: &Span) -> Option<String> {
    if !exporting() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| format(&span_context))
}

/// The OpenTelemetry context of the current span (empty without the layer), to carry a
/// request's context into another task (the audit writer's).
pub fn current() -> Context {
    Span::current().context()
}

/// Whether `value` is a W3C traceparent of version 00: `00-<32 hex>-<16 hex>-<2 hex>`, lower
/// case, neither id all zeros. A malformed one is ignored, as the recommendation asks.
pub fn well_formed(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    matches!(parts.as_slice(), [version, trace, parent, flags]
        if *version == "00"
            && hex(trace, 32)
            && hex(parent, 16)
            && hex(flags, 2)
            && trace.bytes().any(|b| b != b'0')
            && parent.bytes().any(|b| b != b'0'))
}

/// The span context `traceparent` names, if it is well formed.
pub fn remote(traceparent: &str) -> Option<SpanContext> {
    if !well_formed(traceparent) {
        return None;
    }
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then_some(span_context)
}

/// Makes `span` (not yet entered) a child of the remote context `traceparent` names: a
/// server span under its caller's. Nothing when `traceparent` is empty or malformed.
pub fn child_of(span: &Span, traceparent: &str) {
    if let Some(remote) = remote(traceparent) {
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

/// Makes `span` (not yet entered) a child of the remote context `traceparent` names, and
/// links it there too, as the messaging conventions ask of a consumer that continues its
/// producer's trace. Nothing when `traceparent` is empty or malformed.
pub fn continue_from(span: &Span, traceparent: &str) {
    if let Some(remote) = remote(traceparent) {
        let _ = span.set_parent(Context::new().with_remote_span_context(remote.clone()));
        span.add_link(remote);
    }
}

/// The context `traceparent` names, to carry into another task (empty when malformed).
pub fn context_of(traceparent: &str) -> Context {
    match remote(traceparent) {
        Some(remote) => Context::new().with_remote_span_context(remote),
        None => Context::new(),
    }
}

/// Makes `span` (not yet entered) a child of `parent`, a context carried from another task.
pub fn continue_context(span: &Span, parent: &Context) {
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent.clone());
    }
}

/// Links `span` to the context `traceparent` names without continuing it: a replay of old
/// events starts a trace of its own that points back at each original.
pub fn link_to(span: &Span, traceparent: &str) {
    if let Some(remote) = remote(traceparent) {
        span.add_link(remote);
    }
}

/// Links `span` to `context` (a context carried from another task).
pub fn link_context(span: &Span, context: &Context) {
    let span_context = context.span().span_context().clone();
    if span_context.is_valid() {
        span.add_link(span_context);
    }
}

/// The trace id of the current OpenTelemetry context, for log lines.
pub(crate) fn current_ids() -> Option<(String, String)> {
    let context = Context::current();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        (
            span_context.trace_id().to_string(),
            span_context.span_id().to_string(),
        )
    })
}

fn format(span_context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    )
}

/// A producer span for publishing to `subject` (`publish <destination>`): `destination` is
/// the subject's stable part (`gov.events`, `gov.feed.CA`), so span names stay few.
#[macro_export]
macro_rules! producer_span {
    ($destination:expr, $subject:expr) => {
        ::tracing::info_span!(
            "publish",
            otel.name = %::std::format_args!("publish {}", $destination),
            otel.kind = "producer",
            messaging.system = $crate::trace::MESSAGING_SYSTEM,
            messaging.operation.type = "send",
            messaging.operation.name = "publish",
            messaging.destination.name = %$subject,
            messaging.batch.message_count = ::tracing::field::Empty,
            hub.position = ::tracing::field::Empty,
        )
    };
}

/// A consumer span for processing one message from `subject` (`process <destination>`), by
/// the consumer `group` (a read model, a feed publisher).
#[macro_export]
macro_rules! consumer_span {
    ($destination:expr, $subject:expr, $group:expr, $position:expr) => {
        ::tracing::info_span!(
            "process",
            otel.name = %::std::format_args!("process {}", $destination),
            otel.kind = "consumer",
            messaging.system = $crate::trace::MESSAGING_SYSTEM,
            messaging.operation.type = "process",
            messaging.operation.name = "process",
            messaging.destination.name = %$subject,
            messaging.consumer.group.name = %$group,
            hub.position = $position,
            hub.replay = ::tracing::field::Empty,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_read_back_only_when_well_formed() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let read = remote(good).expect("well formed");
        assert_eq!(
            read.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(read.span_id().to_string(), "00f067aa0ba902b7");
        assert!(read.is_sampled());
        assert_eq!(format(&read), good);
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        ] {
            assert!(remote(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn without_the_layer_a_span_has_no_traceparent() {
        let span = tracing::info_span!("no layer");
        assert_eq!(traceparent(&span), None);
    }
}
