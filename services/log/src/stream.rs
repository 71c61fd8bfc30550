//! The append-only streams, `GOV_EVENTS` (the event log) and `GOV_AUDIT` (the audit log),
//! and the settings they must keep.
//!
//! Durability is configured, not assumed: file storage, limits retention, deny delete, deny
//! purge, discard new and a duplicate window. A stream that lacks any of them after
//! create-or-update is refused, with every reason listed.

use std::time::Duration;

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode, stream};

use crate::names::{AUDIT_STREAM, AUDIT_SUBJECTS, EVENTS_STREAM, EVENTS_SUBJECTS};

/// One of the hub's append-only streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendOnly {
    pub name: &'static str,
    pub subjects: &'static str,
    description: &'static str,
}

/// The event log.
pub const EVENTS: AppendOnly = AppendOnly {
    name: EVENTS_STREAM,
    subjects: EVENTS_SUBJECTS,
    description: "governance events: the hub's single source of truth",
};

/// The audit log: who read what, why, and what was refused; one hash chain per hub instance.
pub const AUDIT: AppendOnly = AppendOnly {
    name: AUDIT_STREAM,
    subjects: AUDIT_SUBJECTS,
    description: "audit records: every read, feed subscription and refusal, hash-chained",
};

/// What the operator may choose about the events stream.
#[derive(Debug, Clone)]
pub struct EventsStreamSettings {
    /// Window in which a re-published `Nats-Msg-Id` is recognised as a duplicate.
    pub duplicate_window: Duration,
    /// 1 on a single node; 3 on a production cluster.
    pub replicas: usize,
}

impl Default for EventsStreamSettings {
    fn default() -> Self {
        Self {
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("stream {0} could not be created or updated: {1}")]
    Setup(&'static str, String),
    #[error("stream {0} has settings that could lose or rewrite what it holds: {problems}", problems = .1.join("; "))]
    Unsafe(&'static str, Vec<String>),
}

/// The configuration the hub creates `GOV_EVENTS` with.
pub fn events_stream_config(settings: &EventsStreamSettings) -> stream::Config {
    stream_config(EVENTS, settings)
}

/// The configuration the hub creates `log` with.
pub fn stream_config(log: AppendOnly, settings: &EventsStreamSettings) -> stream::Config {
    stream::Config {
        name: log.name.to_owned(),
        description: Some(log.description.to_owned()),
        subjects: vec![log.subjects.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::New,
        deny_delete: true,
        deny_purge: true,
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        allow_direct: true,
        allow_atomic_publish: true,
        ..Default::default()
    }
}

/// Every way `config` falls short of what the hub requires of `GOV_EVENTS`.
pub fn unsafe_settings(config: &stream::Config, settings: &EventsStreamSettings) -> Vec<String> {
    unsafe_settings_of(EVENTS, config, settings)
}

/// Every way `config` falls short of what the hub requires of `log`.
pub fn unsafe_settings_of(
    log: AppendOnly,
    config: &stream::Config,
    settings: &EventsStreamSettings,
) -> Vec<String> {
    let mut problems = Vec::new();
    if config.storage != stream::StorageType::File {
        problems.push("storage is not file".to_owned());
    }
    if config.retention != stream::RetentionPolicy::Limits {
        problems.push("retention is not limits".to_owned());
    }
    if config.discard != stream::DiscardPolicy::New {
        problems.push(
            "discard policy is not new (old messages would be dropped at a limit)".to_owned(),
        );
    }
    if !config.deny_delete {
        problems.push("deny_delete is off".to_owned());
    }
    if !config.deny_purge {
        problems.push("deny_purge is off".to_owned());
    }
    if config.duplicate_window.is_zero() {
        problems.push("duplicate window is zero".to_owned());
    }
    if config.max_age != Duration::ZERO
        || config.max_messages > 0
        || config.max_bytes > 0
        || config.max_messages_per_subject > 0
    {
        problems.push(
            "a size, age or per-subject limit is set; the log keeps every message".to_owned(),
        );
    }
    if config.allow_message_ttl || config.subject_delete_marker_ttl.is_some() {
        problems.push("per-message ttl is allowed; messages could expire".to_owned());
    }
    if !config.allow_atomic_publish {
        problems.push(
            "atomic batch publish is off (imports and multi-event commands need it)".to_owned(),
        );
    }
    if !config.allow_direct {
        problems.push(
            "direct get is off (command handling reads aggregates' events with it)".to_owned(),
        );
    }
    if config.num_replicas < settings.replicas {
        problems.push(format!(
            "replicas {} is below the required {}",
            config.num_replicas, settings.replicas
        ));
    }
    if !config.subjects.iter().any(|s| s == log.subjects) {
        problems.push(format!("subjects do not include {}", log.subjects));
    }
    problems
}

/// Creates `GOV_EVENTS`, or updates it to the required settings, and checks the result.
pub async fn ensure_events_stream(
    js: &jetstream::Context,
    settings: &EventsStreamSettings,
) -> Result<stream::Info, StreamError> {
    ensure_stream(js, EVENTS, settings).await
}

/// Creates `log`, or updates it to the required settings, and checks the result.
pub async fn ensure_stream(
    js: &jetstream::Context,
    log: AppendOnly,
    settings: &EventsStreamSettings,
) -> Result<stream::Info, StreamError> {
    let setup = |e: &dyn std::fmt::Display| StreamError::Setup(log.name, e.to_string());
    let wanted = stream_config(log, settings);
    let info = match js.get_stream(log.name).await {
        Ok(mut existing) => {
            let current = existing.info().await.map_err(|e| setup(&e))?.config.clone();
            if unsafe_settings_of(log, &current, settings).is_empty() {
                existing.cached_info().clone()
            } else {
                // Keep what an operator added (other subjects, metadata); fix the rest.
                let mut update = wanted.clone();
                update.subjects = current.subjects.clone();
                if !update.subjects.iter().any(|s| s == log.subjects) {
                    update.subjects.push(log.subjects.to_owned());
                }
                update.metadata = current.metadata.clone();
                js.update_stream(update).await.map_err(|e| setup(&e))?
            }
        }
        Err(err)
            if matches!(
                err.kind(),
                GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND
            ) =>
        {
            js.create_stream(wanted)
                .await
                .map_err(|e| setup(&e))?
                .cached_info()
                .clone()
        }
        Err(err) => return Err(setup(&err)),
    };
    let problems = unsafe_settings_of(log, &info.config, settings);
    if problems.is_empty() {
        Ok(info)
    } else {
        Err(StreamError::Unsafe(log.name, problems))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hubs_own_config_is_safe_and_each_weakening_is_named() {
        let settings = EventsStreamSettings::default();
        let good = events_stream_config(&settings);
        assert!(unsafe_settings(&good, &settings).is_empty());

        let weakened = [
            stream::Config {
                storage: stream::StorageType::Memory,
                ..good.clone()
            },
            stream::Config {
                discard: stream::DiscardPolicy::Old,
                ..good.clone()
            },
            stream::Config {
                deny_delete: false,
                ..good.clone()
            },
            stream::Config {
                deny_purge: false,
                ..good.clone()
            },
            stream::Config {
                duplicate_window: Duration::ZERO,
                ..good.clone()
            },
            stream::Config {
                max_age: Duration::from_secs(3600),
                ..good.clone()
            },
            stream::Config {
                retention: stream::RetentionPolicy::WorkQueue,
                ..good.clone()
            },
        ];
        for config in weakened {
            assert_eq!(unsafe_settings(&config, &settings).len(), 1, "{config:?}");
        }
    }
}
