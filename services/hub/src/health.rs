//! What the hub tells load balancers and operators through gRPC health: each service's
//! status, and `hub.alarms`.

use std::time::Duration;

use hub_ingest::Freshness;
use hub_projector::{Alarms, ReadModel};
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The health service name that reports alarms: NOT_SERVING while any is raised.
pub const ALARMS_HEALTH: &str = "hub.alarms";
/// The command services, which depend on `command_state`.
pub const COMMANDS: &[&str] = &[
    "gov.hub.v1.CaseCommandService",
    "gov.hub.v1.CareCommandService",
    "gov.hub.v1.GrantCommandService",
];
/// The query services, which depend on `case_queue`.
pub const QUERIES: &[&str] = &["gov.hub.v1.CaseQueryService"];

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

/// Watches the read models and alarms until `stop`, keeping health current. The command
/// services start NOT_SERVING and serve once `command_state` is fresh enough for commands.
pub async fn watch(
    health: HealthReporter,
    case_queue: ReadModel,
    command_state: ReadModel,
    freshness: Freshness,
    alarms: Alarms,
    stop: CancellationToken,
) {
    for service in COMMANDS {
        health
            .set_service_status(*service, ServingStatus::NotServing)
            .await;
    }
    tokio::spawn(watch_queries(case_queue, health.clone(), stop.clone()));
    tokio::spawn(watch_alarms(alarms, health.clone(), stop.clone()));
    watch_commands(command_state, freshness, health, stop).await;
}

/// The command services: NOT_SERVING while `command_state` is halted or too far behind the
/// log for new commands (the executor's own rule), as during a rebuild.
async fn watch_commands(
    model: ReadModel,
    freshness: Freshness,
    health: HealthReporter,
    stop: CancellationToken,
) {
    let mut state = model.subscribe();
    // Freshness ages with time alone; look again at least this often.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut last = None;
    loop {
        let serving = freshness.fresh(&state.borrow_and_update());
        if last != Some(serving) {
            for service in COMMANDS {
                health.set_service_status(*service, status(serving)).await;
            }
            last = Some(serving);
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = state.changed() => if changed.is_err() { return },
            _ = tick.tick() => {}
        }
    }
}

/// The query services: NOT_SERVING while `case_queue` is halted.
async fn watch_queries(model: ReadModel, health: HealthReporter, stop: CancellationToken) {
    let mut state = model.subscribe();
    loop {
        let serving = state.borrow_and_update().halted.is_none();
        for service in QUERIES {
            health.set_service_status(*service, status(serving)).await;
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = state.changed() => if changed.is_err() { return },
        }
    }
}

/// `hub.alarms`: NOT_SERVING while any alarm is raised (the log says which).
async fn watch_alarms(alarms: Alarms, health: HealthReporter, stop: CancellationToken) {
    let mut count = alarms.subscribe();
    loop {
        let clear = *count.borrow_and_update() == 0;
        health
            .set_service_status(ALARMS_HEALTH, status(clear))
            .await;
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = count.changed() => if changed.is_err() { return },
        }
    }
}
