//! Stream, subject, consumer and header names. Nothing else in the hub builds them.

/// The event log: the single source of truth.
pub const EVENTS_STREAM: &str = "GOV_EVENTS";
/// All subjects of the event log.
pub const EVENTS_SUBJECTS: &str = "gov.events.>";

/// The audit log's stream: append-only like the events stream.
pub const AUDIT_STREAM: &str = "GOV_AUDIT";
/// Subjects of `GOV_AUDIT`: one chain per hub instance, `gov.audit.<instance>`.
pub const AUDIT_SUBJECTS: &str = "gov.audit.>";

/// The subject of hub instance `instance`'s audit chain.
pub fn audit_subject(instance: &str) -> String {
    format!("gov.audit.{instance}")
}

/// `gov.events.<aggregate_type>.<aggregate_id>`: one subject per aggregate. The aggregate
/// type is a lowercase token (`case`, `care`, `grant`, ...).
pub fn event_subject(aggregate_type: &str, id: &str) -> String {
    format!("gov.events.{aggregate_type}.{id}")
}

/// Every event of one aggregate type.
pub fn aggregate_filter(aggregate_type: &str) -> String {
    format!("gov.events.{aggregate_type}.>")
}

/// The aggregate type and id of an event subject, `None` for a subject outside the log's.
pub fn parse_event_subject(subject: &str) -> Option<(&str, &str)> {
    let rest = subject.strip_prefix("gov.events.")?;
    let (aggregate_type, id) = rest.split_once('.')?;
    (!aggregate_type.is_empty() && !id.is_empty()).then_some((aggregate_type, id))
}

/// Where a direct get of the events stream is asked (JetStream API, default prefix).
pub fn direct_get_subject(stream: &str) -> String {
    format!("$JS.API.DIRECT.GET.{stream}")
}

/// The durable consumer of a read model's projector in one hub instance.
pub fn projector_consumer(read_model: &str, instance: &str) -> String {
    format!("projector-{read_model}-{instance}")
}

/// A department's feed stream, `FEED_<DEPT>`: the code upper-cased, `-` as `_`
/// (`urban-management` -> `FEED_URBAN_MANAGEMENT`).
pub fn feed_stream(department: &str) -> String {
    format!("FEED_{}", department.to_ascii_uppercase().replace('-', "_"))
}

/// Every subject of a department's feed, `gov.feed.<department>.>`.
pub fn feed_subjects(department: &str) -> String {
    format!("gov.feed.{department}.>")
}

/// Where one event of an aggregate lands in a department's feed:
/// `gov.feed.<department>.<aggregate_type>.<aggregate_id>`.
pub fn feed_subject(department: &str, aggregate_type: &str, id: &str) -> String {
    format!("gov.feed.{department}.{aggregate_type}.{id}")
}

/// The department, aggregate type and aggregate id of a feed subject (a re-delivery's too).
pub fn parse_feed_subject(subject: &str) -> Option<(&str, &str, &str)> {
    let rest = subject.strip_prefix("gov.feed.")?;
    let rest = rest.strip_suffix(".redelivered").unwrap_or(rest);
    let mut tokens = rest.splitn(3, '.');
    let (department, kind, id) = (tokens.next()?, tokens.next()?, tokens.next()?);
    let valid = [department, kind, id].iter().all(|t| !t.is_empty()) && !id.contains('.');
    valid.then_some((department, kind, id))
}

/// The feed messages the publisher sends as the log grows, `gov.feed.<department>.*.*`:
/// their positions only grow. Re-deliveries, one token longer, are left out.
pub fn live_feed_subjects(department: &str) -> String {
    format!("gov.feed.{department}.*.*")
}

/// Where an event sent again to a department lands (an operator's re-delivery):
/// `<feed subject>.redelivered`, so `gov.feed.<department>.>` and
/// `gov.feed.<department>.<aggregate_type>.>` still take it, and the publisher's own
/// messages ([`live_feed_subjects`]) keep positions that only grow.
pub fn redelivered_subject(feed_subject: &str) -> String {
    format!("{feed_subject}.redelivered")
}

/// The durable pull consumer the hub creates on a department's feed stream; the department
/// binds to it by name (it may not create consumers or look streams up).
pub fn feed_consumer(department: &str) -> String {
    format!("feed-{department}")
}

/// The JetStream API prefix a department's account reaches the hub's feed API under (its
/// imports map it onto the hub account's `$JS.API`).
pub const DEPARTMENT_JS_API_PREFIX: &str = "$JS.hub.API";

/// The JetStream API prefix in the account whose JetStream it is (the hub's).
pub const JS_API_PREFIX: &str = "$JS.API";

/// Where the next messages of a department's feed consumer are asked for, under the API
/// prefix `api` ([`JS_API_PREFIX`] in the hub's account, [`DEPARTMENT_JS_API_PREFIX`] in the
/// department's): `<api>.CONSUMER.MSG.NEXT.FEED_<DEPT>.feed-<dept>`.
pub fn feed_next_subject(api: &str, department: &str) -> String {
    format!(
        "{api}.CONSUMER.MSG.NEXT.{}.{}",
        feed_stream(department),
        feed_consumer(department)
    )
}

/// Where the state of a department's feed consumer is asked for, under the API prefix `api`:
/// `<api>.CONSUMER.INFO.FEED_<DEPT>.feed-<dept>`.
pub fn feed_info_subject(api: &str, department: &str) -> String {
    format!(
        "{api}.CONSUMER.INFO.{}.{}",
        feed_stream(department),
        feed_consumer(department)
    )
}

/// The acknowledgements of a department's feed consumer, `$JS.ACK.FEED_<DEPT>.feed-<dept>.>`
/// (the reply subject of every message it delivers is one of them).
pub fn feed_ack_subjects(department: &str) -> String {
    format!(
        "$JS.ACK.{}.{}.>",
        feed_stream(department),
        feed_consumer(department)
    )
}

/// The inbox prefix a department's users subscribe under (their replies come there).
pub fn department_inbox_prefix(department: &str) -> String {
    format!("_INBOX_{department}")
}

/// Header names: NATS's own and the CloudEvents binary-mode attributes.
pub mod headers {
    pub const MSG_ID: &str = "Nats-Msg-Id";
    pub const EXPECTED_LAST_SUBJECT_SEQUENCE: &str = "Nats-Expected-Last-Subject-Sequence";

    pub const CE_ID: &str = "ce-id";
    pub const CE_SOURCE: &str = "ce-source";
    pub const CE_SPECVERSION: &str = "ce-specversion";
    pub const CE_TYPE: &str = "ce-type";
    pub const CE_SUBJECT: &str = "ce-subject";
    pub const CE_TIME: &str = "ce-time";
    pub const CE_DATACONTENTTYPE: &str = "ce-datacontenttype";
    pub const CE_DATASCHEMA: &str = "ce-dataschema";
    // The hub's extension attributes (CloudEvents names: lowercase letters and digits only).
    pub const CE_DEPARTMENT: &str = "ce-department";
    pub const CE_CLASSIFICATION: &str = "ce-classification";
    pub const CE_SCHEMAVERSION: &str = "ce-schemaversion";
    pub const CE_CORRELATIONID: &str = "ce-correlationid";
    pub const CE_CAUSATIONID: &str = "ce-causationid";
    pub const CE_TRACEPARENT: &str = "ce-traceparent";
    pub const CE_REQUESTID: &str = "ce-requestid";
    pub const CE_COMMANDHASH: &str = "ce-commandhash";
    /// The person who acted for the issuing department (CloudEvents extension `actingperson`).
    pub const CE_ACTINGPERSON: &str = "ce-actingperson";

    /// Set by the server on a direct get's answers.
    pub const NUM_PENDING: &str = "Nats-Num-Pending";
    /// On an event imported from a backup of the log (hubctl import): when the log it came
    /// from stored it, Unix nanoseconds. Read as the event's stored time everywhere (the log's
    /// digest included), so an imported log reads and digests as the one it was exported from.
    /// Only the import writes it.
    pub const HUB_STORED_AT: &str = "hub-stored-at";
    /// A direct get answer's stream sequence.
    pub const SEQUENCE: &str = "Nats-Sequence";

    /// On a feed message: the event's position in GOV_EVENTS (its stream sequence). Feed
    /// cursors, lag and resumption speak in it, never in the feed stream's own sequence.
    pub const HUB_POSITION: &str = "hub-position";

    pub const BATCH_ID: &str = "Nats-Batch-Id";
    pub const BATCH_SEQUENCE: &str = "Nats-Batch-Sequence";
    pub const BATCH_COMMIT: &str = "Nats-Batch-Commit";
}

/// `source` of events issued on behalf of a department.
pub fn department_source(department: &str) -> String {
    format!("/departments/{department}")
}

/// `source` of events the hub issues itself (deadline supervision, expiry).
pub const SYSTEM_SOURCE: &str = "/hub/supervision";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_follow_the_design() {
        assert_eq!(event_subject("case", "c-1"), "gov.events.case.c-1");
        assert_eq!(aggregate_filter("case"), "gov.events.case.>");
        assert_eq!(
            parse_event_subject("gov.events.care.x-1"),
            Some(("care", "x-1"))
        );
        assert_eq!(parse_event_subject("gov.feed.care.x-1"), None);
        assert_eq!(parse_event_subject("gov.events.care"), None);
        assert!(EVENTS_SUBJECTS.starts_with("gov.events."));
        assert_eq!(feed_stream("urban-management"), "FEED_URBAN_MANAGEMENT");
        assert_eq!(feed_subjects("civil-affairs"), "gov.feed.civil-affairs.>");
        assert_eq!(
            redelivered_subject(&feed_subject("housing", "case", "c-1")),
            "gov.feed.housing.case.c-1.redelivered"
        );
        assert_eq!(live_feed_subjects("housing"), "gov.feed.housing.*.*");
        for subject in [
            "gov.feed.housing.case.c-1",
            "gov.feed.housing.case.c-1.redelivered",
        ] {
            assert_eq!(
                parse_feed_subject(subject),
                Some(("housing", "case", "c-1"))
            );
        }
        assert_eq!(parse_feed_subject("gov.feed.housing.case"), None);
        assert_eq!(parse_feed_subject("gov.events.case.c-1"), None);
        assert_eq!(
            feed_subject("civil-affairs", "care", "c-1"),
            "gov.feed.civil-affairs.care.c-1"
        );
        assert_eq!(feed_consumer("public-security"), "feed-public-security");
        assert_eq!(
            feed_next_subject(DEPARTMENT_JS_API_PREFIX, "dcc-310104"),
            "$JS.hub.API.CONSUMER.MSG.NEXT.FEED_DCC_310104.feed-dcc-310104"
        );
        assert_eq!(
            feed_info_subject(JS_API_PREFIX, "housing"),
            "$JS.API.CONSUMER.INFO.FEED_HOUSING.feed-housing"
        );
        assert_eq!(
            feed_ack_subjects("housing"),
            "$JS.ACK.FEED_HOUSING.feed-housing.>"
        );
        assert_eq!(department_inbox_prefix("housing"), "_INBOX_housing");
    }
}
