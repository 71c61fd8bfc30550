//! Department feed streams, `FEED_<DEPT>`, and the durable pull consumer the hub makes on each
//! for its department.
//!
//! A feed is derived data: each department's permitted, masked view of the log, rebuilt from
//! GOV_EVENTS whenever needed. So unlike GOV_EVENTS it keeps a bounded age (the oldest go
//! first) and may be purged: on a revocation or expiry the hub purges what the department may
//! no longer read. Each message carries the event id as `Nats-Msg-Id` (a re-publish inside the
//! duplicate window is not stored twice; beyond it the receiver de-duplicates by `ce-id`) and
//! the event's GOV_EVENTS position as `hub-position`.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};

use crate::names::{feed_consumer, feed_stream, feed_subjects};

/// What the operator may choose about feed streams.
#[derive(Debug, Clone)]
pub struct FeedSettings {
    /// How long a feed keeps an event; a department that is away longer is re-fed by replay.
    pub max_age: Duration,
    /// Window in which a re-published event id is recognised as a duplicate.
    pub duplicate_window: Duration,
    /// 1 on a single node; 3 on a production cluster.
    pub replicas: usize,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(30 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            replicas: 1,
        }
    }
}

/// The configuration of a department's feed stream.
pub fn feed_stream_config(department: &str, settings: &FeedSettings) -> stream::Config {
    stream::Config {
        name: feed_stream(department),
        description: Some(format!(
            "the events {department} may read, masked to its grants (derived from GOV_EVENTS)"
        )),
        subjects: vec![feed_subjects(department)],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: settings.max_age,
        duplicate_window: settings.duplicate_window,
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

/// The durable pull consumer the department binds to: every message from the start of what
/// the feed holds, acknowledged one by one, redelivered after `ack_wait` if not.
pub fn feed_consumer_config(department: &str) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(feed_consumer(department)),
        description: Some(format!("{department}'s system reads its feed through this")),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: 10_000,
        ..Default::default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("feed stream {stream} could not be created or updated: {reason}")]
    Stream { stream: String, reason: String },
    #[error("feed consumer {consumer} on {stream} could not be created or updated: {reason}")]
    Consumer {
        stream: String,
        consumer: String,
        reason: String,
    },
}

/// Creates, or updates to the current settings, the feed stream of every department in
/// `departments` and the durable pull consumer on it that the department binds to. Running it
/// again changes nothing; the messages and the consumers' positions are kept.
pub async fn ensure_feeds(
    js: &jetstream::Context,
    departments: impl IntoIterator<Item = impl AsRef<str>>,
    settings: &FeedSettings,
) -> Result<(), FeedError> {
    for department in departments {
        let department = department.as_ref();
        let config = feed_stream_config(department, settings);
        let stream = config.name.clone();
        js.create_or_update_stream(config)
            .await
            .map_err(|e| FeedError::Stream {
                stream: stream.clone(),
                reason: e.to_string(),
            })?;
        let consumer = feed_consumer_config(department);
        js.create_consumer_on_stream(consumer, stream.as_str())
            .await
            .map_err(|e| FeedError::Consumer {
                stream: stream.clone(),
                consumer: feed_consumer(department),
                reason: e.to_string(),
            })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feed_is_bounded_purgeable_and_named_for_its_department() {
        let config = feed_stream_config("public-security", &FeedSettings::default());
        assert_eq!(config.name, "FEED_PUBLIC_SECURITY");
        assert_eq!(config.subjects, vec!["gov.feed.public-security.>"]);
        assert_eq!(config.discard, stream::DiscardPolicy::Old);
        assert!(config.max_age > Duration::ZERO);
        assert!(!config.deny_purge);
        let consumer = feed_consumer_config("public-security");
        assert_eq!(
            consumer.durable_name.as_deref(),
            Some("feed-public-security")
        );
        assert_eq!(consumer.ack_policy, consumer::AckPolicy::Explicit);
    }
}
