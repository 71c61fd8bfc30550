//! A span processor that never holds the hub: ended spans go into a bounded queue without
//! waiting, a task exports them in batches with a deadline, and a span that finds the queue
//! full, or whose batch the collector refuses or does not answer in time, is dropped and
//! counted (`hub_telemetry_spans_dropped_total{reason}`).
//!
//! The SDK's batch processor bounds its queue too, but only logs what it drops; an operator
//! needs the count as a metric. Bounds come from the standard variables:
//! `OTEL_BSP_MAX_QUEUE_SIZE` (2048), `OTEL_BSP_SCHEDULE_DELAY` (ms, 5000),
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (512) and `OTEL_BSP_EXPORT_TIMEOUT` (ms, 30000).

use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{label, metrics};

/// The processor's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub queue: usize,
    pub delay: Duration,
    pub batch: usize,
    pub timeout: Duration,
}

impl Bounds {
    /// From the `OTEL_BSP_*` variables, or the specification's defaults.
    pub fn from_env() -> Self {
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        let queue = number("OTEL_BSP_MAX_QUEUE_SIZE", 2048) as usize;
        Self {
            queue,
            delay: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 5000)),
            batch: (number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512) as usize).min(queue),
            timeout: Duration::from_millis(number("OTEL_BSP_EXPORT_TIMEOUT", 30_000)),
        }
    }
}

enum Control {
    /// Export everything queued, then answer.
    Flush(oneshot::Sender<()>),
    /// Export everything queued, shut the exporter down, answer and stop.
    Shutdown(oneshot::Sender<()>),
}

/// The processor; [`Bounded::start`] spawns its exporting task on the current runtime.
#[derive(Debug)]
pub struct Bounded {
    spans: mpsc::Sender<SpanData>,
    control: mpsc::UnboundedSender<Control>,
}

/// Waits for the exporting task: [`Flusher::shutdown`] exports what is queued first.
#[derive(Debug)]
pub struct Flusher {
    control: mpsc::UnboundedSender<Control>,
    task: tokio::task::JoinHandle<()>,
}

impl Bounded {
    pub fn start<E: SpanExporter + 'static>(exporter: E, bounds: Bounds) -> (Self, Flusher) {
        let (spans, rx) = mpsc::channel(bounds.queue.max(1));
        let (control, control_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(work(exporter, bounds, rx, control_rx));
        (
            Self {
                spans,
                control: control.clone(),
            },
            Flusher { control, task },
        )
    }
}

impl SpanProcessor for Bounded {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.spans.try_send(span).is_err() {
            metrics()
                .spans_dropped
                .add(1, &[label("reason", "queue_full")]);
        }
    }

    /// Asks for a flush without waiting: this is called on the runtime's threads, which the
    /// exporting task needs. [`Flusher::flush`] waits.
    fn force_flush(&self) -> OTelSdkResult {
        let (tx, _rx) = oneshot::channel();
        let _ = self.control.send(Control::Flush(tx));
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let (tx, _rx) = oneshot::channel();
        let _ = self.control.send(Control::Shutdown(tx));
        Ok(())
    }
}

impl Flusher {
    /// Exports everything queued so far, within `limit`.
    pub async fn flush(&self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Flush(tx)).is_ok() {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }

    /// Exports everything queued and stops, within `limit`.
    pub async fn shutdown(self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.control.send(Control::Shutdown(tx)).is_ok() {
            let _ = tokio::time::timeout(limit, rx).await;
        }
        self.task.abort();
    }
}

async fn work<E: SpanExporter>(
    exporter: E,
    bounds: Bounds,
    mut spans: mpsc::Receiver<SpanData>,
    mut control: mpsc::UnboundedReceiver<Control>,
) {
    let mut batch: Vec<SpanData> = Vec::with_capacity(bounds.batch);
    let mut tick = tokio::time::interval(bounds.delay);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Below the batch size here: a full batch is exported as soon as it is full.
        let room = bounds.batch - batch.len();
        tokio::select! {
            received = spans.recv_many(&mut batch, room) => {
                if received == 0 {
                    // Every sender is gone: the provider was dropped.
                    export(&exporter, &mut batch, bounds.timeout).await;
                    break;
                }
                if batch.len() >= bounds.batch {
                    export(&exporter, &mut batch, bounds.timeout).await;
                }
            }
            _ = tick.tick() => export(&exporter, &mut batch, bounds.timeout).await,
            asked = control.recv() => {
                let Some(asked) = asked else { break };
                // Everything queued before the question goes out first.
                while let Ok(span) = spans.try_recv() {
                    batch.push(span);
                    if batch.len() >= bounds.batch {
                        export(&exporter, &mut batch, bounds.timeout).await;
                    }
                }
                export(&exporter, &mut batch, bounds.timeout).await;
                match asked {
                    Control::Flush(reply) => {
                        let _ = reply.send(());
                    }
                    Control::Shutdown(reply) => {
                        let _ = exporter.shutdown();
                        let _ = reply.send(());
                        break;
                    }
                }
            }
        }
    }
}

/// Exports `batch` (emptying it) within `timeout`; a refusal or no answer drops it, counted.
async fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, timeout: Duration) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let count = spans.len() as u64;
    let reason = match tokio::time::timeout(timeout, exporter.export(spans)).await {
        Ok(Ok(())) => return,
        Ok(Err(_)) => "export_failed",
        Err(_) => "export_timeout",
    };
    metrics()
        .spans_dropped
        .add(count, &[label("reason", reason)]);
}
