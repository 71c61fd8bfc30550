//! How soon a report is visible in its department's read model, at a steady rate (open
//! loop: each report is sent at its time, whether or not the ones before were answered).
//!
//! Hub: `ReportCase`, whose answer gives the case id and the log position of its event, then
//! `GetCase` with that `min_position` (the read waits until the case queue has applied that
//! position, then reads the case, and is audited like every read): the time from sending the
//! report until the case is read back. Baseline: a raw publish of an equal event, and an
//! ordered consumer on the same stream: the time from publishing until the ack is back AND
//! the consumer has received the event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull::OrderedConfig};
use futures::StreamExt as _;
use hub_api::v1::{
    self, case_command_service_client::CaseCommandServiceClient,
    case_query_service_client::CaseQueryServiceClient,
};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::raw::{RAW_STREAM, Raw, Sample, next_base, publish_one};
use crate::report::{Hub, report, with_department};

/// What an open-loop run measured.
#[derive(Debug)]
pub struct Visible {
    /// From sending to visible, each.
    pub times: Vec<Duration>,
    /// The rate the sends kept, per second.
    pub achieved: f64,
    /// Reports sent over the time until the last was visible, per second.
    pub completed: f64,
    /// Reads that gave up waiting for their position (DEADLINE_EXCEEDED); their time is
    /// the time until they gave up.
    pub gave_up: usize,
}

/// When the `n`th send is due.
fn due(started: tokio::time::Instant, rate: f64, n: usize) -> tokio::time::Instant {
    started + Duration::from_secs_f64(n as f64 / rate)
}

/// Hub: report, then read the case at the report's position.
pub async fn hub(hub: &Hub, rate: f64, seconds: f64, tag: &str) -> anyhow::Result<Visible> {
    let total = (rate * seconds).round() as usize;
    let started = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for n in 0..total {
        tokio::time::sleep_until(due(started, rate, n)).await;
        let mut commands = CaseCommandServiceClient::new(hub.channel(n));
        let mut queries = CaseQueryServiceClient::new(hub.channel(n));
        let request = with_department(report(format!("{tag}-{n}"), n));
        tasks.spawn(async move {
            let sent = Instant::now();
            let answer = commands.report_case(request).await?.into_inner();
            let read = queries
                .get_case(with_department(v1::GetCaseRequest {
                    case_id: answer.case_id.clone(),
                    min_position: answer.position,
                }))
                .await;
            let elapsed = sent.elapsed();
            let read = match read {
                Ok(read) => read.into_inner(),
                // The read model did not reach the report's position within the hub's longest
                // wait (`query.max_wait_ms`): counted, with the time it took to give up.
                Err(status) if status.code() == tonic::Code::DeadlineExceeded => {
                    return anyhow::Ok((elapsed, true));
                }
                Err(status) => return Err(status.into()),
            };
            anyhow::ensure!(
                read.case
                    .as_ref()
                    .is_some_and(|c| c.case_id == answer.case_id),
                "case {} not in the read model at position {}",
                answer.case_id,
                answer.position
            );
            anyhow::Ok((elapsed, false))
        });
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    let (mut times, mut gave_up) = (Vec::with_capacity(total), 0);
    while let Some(done) = tasks.join_next().await {
        let (time, timed_out) = done??;
        times.push(time);
        gave_up += usize::from(timed_out);
    }
    let completed = total as f64 / started.elapsed().as_secs_f64();
    Ok(Visible {
        times,
        achieved,
        completed,
        gave_up,
    })
}

/// Baseline: publish, and wait for the ack and for an ordered consumer to receive it.
pub async fn raw(raw: &Raw, sample: &Sample, rate: f64, seconds: f64) -> anyhow::Result<Visible> {
    let total = (rate * seconds).round() as usize;
    let base = next_base();
    let js = raw.context().clone();
    let stream = js.get_stream(RAW_STREAM).await?;
    let consumer = stream
        .create_consumer(OrderedConfig {
            filter_subject: "bench.raw.>".into(),
            deliver_policy: DeliverPolicy::New,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    // Who waits for which event to be received.
    let waiting: Arc<Mutex<HashMap<usize, oneshot::Sender<()>>>> = Arc::default();
    let receiver = {
        let waiting = waiting.clone();
        tokio::spawn(async move {
            let mut received = 0;
            while received < total {
                let Some(message) = messages.next().await else {
                    anyhow::bail!("the ordered consumer ended");
                };
                let message = message?;
                let n: Option<usize> = message
                    .subject
                    .strip_prefix("bench.raw.")
                    .and_then(|n| n.parse().ok());
                let Some(n) = n.filter(|n| (base..base + total).contains(n)) else {
                    continue;
                };
                received += 1;
                let sender = waiting
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&n);
                if let Some(sender) = sender {
                    let _ = sender.send(());
                }
            }
            anyhow::Ok(())
        })
    };
    let started = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for n in 0..total {
        tokio::time::sleep_until(due(started, rate, n)).await;
        let (tell, told) = oneshot::channel();
        waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(base + n, tell);
        let (js, sample) = (js.clone(), sample.clone());
        tasks.spawn(async move {
            let sent = Instant::now();
            publish_one(&js, &sample, base + n).await?;
            told.await
                .map_err(|_| anyhow::anyhow!("event {n} never reached the consumer"))?;
            anyhow::Ok(sent.elapsed())
        });
    }
    let achieved = total as f64 / started.elapsed().as_secs_f64();
    let mut times = Vec::with_capacity(total);
    while let Some(done) = tasks.join_next().await {
        times.push(done??);
    }
    let completed = total as f64 / started.elapsed().as_secs_f64();
    receiver.await??;
    Ok(Visible {
        times,
        achieved,
        completed,
        gave_up: 0,
    })
}
