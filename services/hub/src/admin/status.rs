//! GetStatus: the streams, every read model, every department's feed, health, alarms and the
//! durability guard's findings, as they stand when asked.

use async_nats::jetstream::stream::{Info, State};
use futures::future::join_all;
use hub_api::ApiError;
use hub_api::v1::{
    Alarm, DurabilityStatus, FeedStatus, GetStatusResponse, ReadModelStatus, ServiceHealth,
    StreamStatus,
};
use hub_log::guard;
use hub_log::names::headers as h;
use hub_log::names::{
    AUDIT_STREAM, EVENTS_STREAM, feed_consumer, feed_stream, live_feed_subjects, parse_feed_subject,
};
use hub_log::stream::{AUDIT, EVENTS, unsafe_settings_of};
use hub_projector::datasets::rows::row_count;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_server::Health;
use tracing::warn;

use super::{Admin, progress};
use crate::health::{ALARMS_HEALTH, COMMANDS, QUERIES};

pub(super) async fn get_status(admin: &Admin) -> Result<GetStatusResponse, ApiError> {
    let js = admin.p.log.context();
    let unavailable = |what: &str, err: &dyn std::fmt::Display| {
        warn!(error = %err, "status: {what} cannot be read");
        ApiError::Unavailable(format!("{what} cannot be read now; retry later"))
    };
    let events = js
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|e| unavailable("the event log", &e))?;
    let events = events.cached_info().clone();
    let audit = js
        .get_stream(AUDIT_STREAM)
        .await
        .map_err(|e| unavailable("the audit log", &e))?;
    let audit = audit.cached_info().clone();
    let last = events.state.last_sequence;

    let feeds = join_all(admin.p.units.iter().map(|unit| feed(admin, unit))).await;
    let mut streams = vec![stream(&events), stream(&audit)];
    let mut feed_statuses = Vec::new();
    for (info, status, _) in feeds.into_iter().flatten() {
        streams.push(stream(&info));
        feed_statuses.push(status);
    }

    let mut read_models = Vec::new();
    for (dataset, managed) in &admin.p.models {
        let state = managed.model.state();
        let store = managed.model.store();
        let rows = match dataset {
            Some(_) => {
                let counted = tokio::task::spawn_blocking(move || row_count(&*store)).await;
                counted.ok().and_then(Result::ok)
            }
            None => None,
        };
        let building = managed.building();
        let state_name = match (&state.halted, &building) {
            (Some(_), _) => "halted",
            (None, Some(_)) => "rebuilding",
            (None, None) => "live",
        };
        read_models.push(ReadModelStatus {
            name: managed.model.name().to_owned(),
            dataset: dataset.map(|d| d.id.to_owned()).unwrap_or_default(),
            position: state.position,
            lag: last.saturating_sub(state.position),
            lag_age: state
                .lag_age(jiff::Timestamp::now())
                .and_then(|age| prost_types::Duration::try_from(age).ok()),
            state: state_name.to_owned(),
            halted: state.halted.clone().unwrap_or_default(),
            rows,
            disk_bytes: managed.model.store().disk_bytes().unwrap_or(0),
            rebuild: building.map(|b| progress(managed.model.name(), &b, last)),
        });
    }

    let mut health = Vec::new();
    let services = std::iter::once("")
        .chain(COMMANDS.iter().copied())
        .chain(QUERIES.iter().copied())
        .chain([ALARMS_HEALTH]);
    for service in services {
        let asked = tonic::Request::new(HealthCheckRequest {
            service: service.to_owned(),
        });
        let status = match admin.p.health.check(asked).await {
            Ok(answer) => answer.into_inner().status().as_str_name().to_owned(),
            Err(_) => "SERVICE_UNKNOWN".to_owned(),
        };
        health.push(ServiceHealth {
            service: if service.is_empty() {
                "(the hub)"
            } else {
                service
            }
            .to_owned(),
            status,
        });
    }

    Ok(GetStatusResponse {
        time: Some(hub_api::timestamp(jiff::Timestamp::now())),
        instance: admin.p.instance.clone(),
        streams,
        read_models,
        feeds: feed_statuses,
        health,
        alarms: admin
            .p
            .alarms
            .list()
            .into_iter()
            .map(|(key, text)| Alarm { key, text })
            .collect(),
        durability: Some(durability(admin, &events, &audit).await),
        log_digest_position: admin.p.digest.head().position,
        duties: duties(&admin.p.leases).await?,
    })
}

/// Who holds each duty's lease now.
async fn duties(
    leases: &async_nats::jetstream::kv::Store,
) -> Result<Vec<hub_api::v1::DutyStatus>, ApiError> {
    let mut duties = Vec::new();
    for duty in hub_log::lease::DUTIES {
        let holder = hub_log::lease::holder(leases, duty).await.map_err(|e| {
            warn!(error = %e, "status: reading a duty's lease");
            ApiError::Unavailable("the duties' leases cannot be read now; try again".into())
        })?;
        duties.push(hub_api::v1::DutyStatus {
            name: (*duty).to_owned(),
            holder: holder.unwrap_or_default(),
        });
    }
    Ok(duties)
}

fn time(t: async_nats::datetime::DateTime) -> Option<prost_types::Timestamp> {
    let nanos = t.unix_timestamp_nanos();
    let seconds = i64::try_from(nanos.div_euclid(1_000_000_000)).ok()?;
    Some(prost_types::Timestamp {
        seconds,
        nanos: nanos.rem_euclid(1_000_000_000) as i32,
    })
}

fn times(
    state: &State,
) -> (
    Option<prost_types::Timestamp>,
    Option<prost_types::Timestamp>,
) {
    if state.messages == 0 {
        return (None, None);
    }
    (time(state.first_timestamp), time(state.last_timestamp))
}

fn stream(info: &Info) -> StreamStatus {
    let state = &info.state;
    let (first_time, last_time) = times(state);
    StreamStatus {
        name: info.config.name.clone(),
        messages: state.messages,
        bytes: state.bytes,
        first_sequence: state.first_sequence,
        last_sequence: state.last_sequence,
        first_time,
        last_time,
        consumers: u32::try_from(state.consumer_count).unwrap_or(u32::MAX),
        replicas: u32::try_from(info.config.num_replicas).unwrap_or(u32::MAX),
    }
}

/// Sets the lag gauges as [`get_status`] would report them, without its costlier parts (row
/// counts, health, durability): each read model's events past its position
/// (`hub_projector_lag_events`), each feed's lag and pending messages
/// (`hub_feed_lag_positions`, `hub_feed_pending_messages`). A stream or consumer that cannot
/// be read leaves its gauges as they were.
pub(super) async fn observe(admin: &Admin) {
    use hub_telemetry::metrics::label;
    let metrics = hub_telemetry::metrics();
    if let Ok(events) = admin.p.log.context().get_stream(EVENTS_STREAM).await {
        let last = events.cached_info().state.last_sequence;
        for managed in admin.p.models.iter().map(|(_, m)| m) {
            let position = managed.model.state().position;
            metrics.projector_lag.record(
                last.saturating_sub(position),
                &[label("read_model", managed.model.name())],
            );
        }
    }
    let feeds = join_all(admin.p.units.iter().map(|unit| feed(admin, unit))).await;
    // A feed whose consumer cannot be read keeps its last values rather than show no lag.
    for (_, status, _) in feeds.into_iter().flatten().filter(|(_, _, read)| *read) {
        let department = [label("department", status.department.clone())];
        metrics.feed_lag.record(status.lag, &department);
        metrics.feed_pending.record(status.pending, &department);
    }
}

/// A department's feed stream and where its receiver stands, and whether its consumer could
/// be read (else those figures are 0); `None` when the stream cannot be read (logged).
async fn feed(admin: &Admin, unit: &str) -> Option<(Info, FeedStatus, bool)> {
    let js = admin.p.log.context();
    let mut stream = match js.get_stream(feed_stream(unit)).await {
        Ok(stream) => stream,
        Err(err) => {
            warn!(department = unit, error = %err, "status: a feed stream cannot be read");
            return None;
        }
    };
    let info = stream.info().await.ok()?.clone();
    // The log position a feed message carries.
    let position_at = async |sequence: u64| -> u64 {
        if sequence == 0 {
            return 0;
        }
        match stream.get_raw_message(sequence).await {
            Ok(message) => carried_position(&message),
            Err(_) => 0,
        }
    };
    // The publisher's last message: a re-delivery's position may be lower.
    let position: u64 = match stream
        .get_last_raw_message_by_subject(&live_feed_subjects(unit))
        .await
    {
        Ok(message) => carried_position(&message),
        Err(_) => 0,
    };
    let consumer = stream
        .get_consumer::<async_nats::jetstream::consumer::pull::Config>(&feed_consumer(unit))
        .await;
    // Up to where the department has the publisher's own messages: a re-delivery's, lower,
    // would move it back. At the ack floor, or else just before the first of the
    // publisher's after it (all of them when there is none).
    let acknowledged_at = async |floor: u64| -> u64 {
        if floor == 0 {
            return 0;
        }
        let at_floor = stream.get_raw_message(floor).await;
        if let Ok(message) = &at_floor
            && parse_feed_subject(&message.subject).is_some()
            && !message.subject.ends_with(".redelivered")
        {
            return position_at(floor).await;
        }
        match stream
            .get_first_raw_message_by_subject(&live_feed_subjects(unit), floor + 1)
            .await
        {
            Ok(next) => carried_position(&next).saturating_sub(1),
            Err(_) => position,
        }
    };
    let (acknowledged_position, pending, waiting, read) = match consumer {
        Ok(mut consumer) => match consumer.info().await {
            Ok(c) => (
                acknowledged_at(c.ack_floor.stream_sequence).await,
                c.num_pending + c.num_ack_pending as u64,
                u32::try_from(c.num_waiting).unwrap_or(u32::MAX),
                true,
            ),
            Err(_) => (0, 0, 0, false),
        },
        Err(_) => (0, 0, 0, false),
    };
    // In log positions, as feeds speak: from the last one the department acknowledged to
    // the feed's last; nothing when it has acknowledged everything.
    let lag = match pending {
        0 => 0,
        _ => position.saturating_sub(acknowledged_position),
    };
    let status = FeedStatus {
        department: unit.to_owned(),
        stream: info.config.name.clone(),
        messages: info.state.messages,
        bytes: info.state.bytes,
        position,
        acknowledged_position,
        lag,
        pending,
        consumers: u32::try_from(info.state.consumer_count).unwrap_or(u32::MAX),
        waiting,
    };
    Some((info, status, read))
}

/// The log position a feed message carries (`hub-position`; 0 when it carries none).
fn carried_position(message: &async_nats::jetstream::message::StreamMessage) -> u64 {
    message
        .headers
        .get(h::HUB_POSITION)
        .and_then(|v| v.as_str().parse().ok())
        .unwrap_or(0)
}

/// The durability guard's findings now: the server (through its monitoring endpoint) and
/// the append-only settings of GOV_EVENTS and GOV_AUDIT.
async fn durability(admin: &Admin, events: &Info, audit: &Info) -> DurabilityStatus {
    let settings = &admin.p.durability.settings;
    let mut problems: Vec<String> = unsafe_settings_of(EVENTS, &events.config, settings)
        .into_iter()
        .map(|p| format!("{EVENTS_STREAM}: {p}"))
        .chain(
            unsafe_settings_of(AUDIT, &audit.config, settings)
                .into_iter()
                .map(|p| format!("{AUDIT_STREAM}: {p}")),
        )
        .collect();
    let (server_name, version) = match &admin.p.durability.monitor_url {
        Some(url) => match guard::check_cluster(
            &guard::url_list(url),
            Some(&admin.p.durability.client.server_info().server_id),
        )
        .await
        {
            Ok(check) => {
                problems.extend(
                    check
                        .unreachable
                        .iter()
                        .map(|(url, why)| format!("not checked: {url} does not answer ({why})")),
                );
                let names: Vec<&str> = check
                    .members
                    .iter()
                    .map(|m| guard::display_name(&m.server_name, &m.server_id))
                    .collect();
                let mut versions: Vec<&str> =
                    check.members.iter().map(|m| m.version.as_str()).collect();
                versions.sort_unstable();
                versions.dedup();
                (names.join(", "), versions.join(", "))
            }
            Err(err) => {
                problems.insert(0, err.to_string());
                (String::new(), String::new())
            }
        },
        None => {
            problems.insert(
                0,
                "not checked: no monitoring URL, and the operator accepted the risk \
                 (nats.accept_durability_risk)"
                    .to_owned(),
            );
            (String::new(), String::new())
        }
    };
    let safe = problems.is_empty();
    DurabilityStatus {
        safe,
        server_name,
        version,
        finding: if safe {
            "sync_interval always; GOV_EVENTS and GOV_AUDIT append-only".to_owned()
        } else {
            problems.join("; ")
        },
    }
}
