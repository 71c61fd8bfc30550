//! The access log, read from GOV_AUDIT (every chain's records in stream order, filtered), and
//! the disclosure ledger, read from its index over GOV_AUDIT (`hub_audit::ledger`). Both are
//! paged by a cursor that names a record's batch (stream sequence) and its place in the
//! batch, so a page once given is given the same again.

use async_nats::jetstream::{self, consumer};
use futures::StreamExt as _;
use hub_api::ApiError;
use hub_api::v1::{
    AccessEntry, AuditBatch, AuditRecord, ListAccessRequest, ListAccessResponse,
    ListDisclosuresRequest, ListDisclosuresResponse,
};
use hub_audit::ledger::{self, Ledger, LedgerQuery, Place};
use hub_domain::Violations;
use hub_domain::codes::DepartmentCode;
use hub_log::names::{AUDIT_STREAM, AUDIT_SUBJECTS};
use jiff::Timestamp;
use prost::Message as _;

use super::{page_size, parse_aggregate, valid_time};

/// How the anonymous public is named in a query.
const PUBLIC: &str = "public";

/// Batches stored this long after `to` can hold no record made before it.
const STORE_DELAY: jiff::SignedDuration = jiff::SignedDuration::from_secs(60);

/// Most batches one page reads; a page that ends there has a token to go on from, however
/// few entries it holds.
const MAX_SCANNED_BATCHES: usize = 20_000;

/// A page of the access log ends once its entries take this many bytes (a record may name a
/// thousand persons; gRPC refuses messages over 4 MiB).
const MAX_PAGE_BYTES: usize = 2 * 1024 * 1024;

/// Longest wait for the disclosure ledger to hold every batch stored before a query.
const LEDGER_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Longest wait for the next batch of a scan, which knows the batches are stored.
const NEXT_BATCH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A record's place: its batch's stream sequence and its index in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cursor {
    sequence: u64,
    index: u32,
}

/// What a page token is bound to: the call and its filters (not the page size), so a token
/// goes on only with the query that gave it.
fn query_tag(parts: &[&str]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    parts.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

impl Cursor {
    /// The token of a page that goes on after this place, for the query tagged `tag`.
    fn token(self, tag: &str) -> String {
        format!("{}.{}.{tag}", self.sequence, self.index)
    }

    fn parse(violations: &mut Violations, token: &str, tag: &str) -> Option<Self> {
        if token.is_empty() {
            return None;
        }
        let mut parts = token.splitn(3, '.');
        let parsed = (|| {
            let sequence = parts.next()?.parse().ok().filter(|s| *s > 0)?;
            let index = parts.next()?.parse().ok()?;
            (parts.next()? == tag).then_some(Self { sequence, index })
        })();
        if parsed.is_none() {
            violations.push(
                "page_token",
                "is not a token from a previous response to this query (same filters)",
            );
        }
        parsed
    }
}

/// A time bound of a request, `None` when not given.
fn time_bound(
    violations: &mut Violations,
    field: &str,
    value: Option<&prost_types::Timestamp>,
) -> Option<Timestamp> {
    let parsed = valid_time(value?);
    if parsed.is_none() {
        violations.push(field, "is not a valid time");
    }
    parsed
}

/// `from` must come before `to` when both are given.
fn ordered(violations: &mut Violations, from: Option<Timestamp>, to: Option<Timestamp>) {
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        violations.push("to", "must come after from");
    }
}

/// A care id to filter on (empty: any), or a violation of `care_id`.
fn person_filter(violations: &mut Violations, value: &str) -> Option<String> {
    if value.is_empty() {
        return None;
    }
    hub_api::care_id(violations, value).map(|id| id.as_str().to_owned())
}

fn record_time(record: &AuditRecord) -> Option<Timestamp> {
    hub_api::from_timestamp(record.time.as_ref()?)
}

/// A department filter: empty (any), `public`, or a unit code.
fn department_filter(violations: &mut Violations, value: &str) -> Option<String> {
    if value.is_empty() || value == PUBLIC {
        return Some(value.to_owned());
    }
    violations
        .check("department", DepartmentCode::parse(value))
        .map(|code| code.to_string())
}

fn department_matches(filter: &str, record: &AuditRecord) -> bool {
    match filter {
        "" => true,
        PUBLIC => record.department.is_empty(),
        code => record.department == code,
    }
}

/// What a scan looks for.
struct Scan {
    from: Option<Timestamp>,
    to: Option<Timestamp>,
    after: Option<Cursor>,
    /// A page holds at most this many entries.
    limit: usize,
    /// What the query's page tokens are bound to: the call, its filters and its time range.
    tag: String,
}

impl Scan {
    /// A query's time range (`from` inclusive, `to` exclusive), page token and page size,
    /// each checked into `violations`; the token must come from the same call with the same
    /// `filters` (its name first) and time range.
    fn of(
        violations: &mut Violations,
        (from, to): (
            Option<&prost_types::Timestamp>,
            Option<&prost_types::Timestamp>,
        ),
        (page_token, filters): (&str, &[&str]),
        size: u32,
    ) -> Self {
        let range = format!("{:?}", (from, to));
        let tag = query_tag(&[filters, &[range.as_str()]].concat());
        let from = time_bound(violations, "from", from);
        let to = time_bound(violations, "to", to);
        ordered(violations, from, to);
        Self {
            from,
            to,
            after: Cursor::parse(violations, page_token, &tag),
            limit: page_size(size),
            tag,
        }
    }
}

/// Walks GOV_AUDIT from `scan`'s start to its end as it is now, giving each record (with its
/// chain and place) made within the time range to `take`, which says whether the page is
/// full; `Some(cursor)` of the last record given when the page filled before the end.
async fn scan(
    js: &jetstream::Context,
    scan: &Scan,
    mut take: impl FnMut(&str, Cursor, &AuditRecord) -> bool,
) -> Result<Option<Cursor>, ApiError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        ApiError::Unavailable(format!("the audit log cannot be read now: {e}"))
    };
    let mut stream = js
        .get_stream(AUDIT_STREAM)
        .await
        .map_err(|e| unavailable(&e))?;
    let last = stream
        .info()
        .await
        .map_err(|e| unavailable(&e))?
        .state
        .last_sequence;
    let deliver_policy = match (scan.after, scan.from) {
        (Some(after), _) => consumer::DeliverPolicy::ByStartSequence {
            start_sequence: after.sequence,
        },
        // A record is stored after it is made: no batch stored before `from` holds one
        // made at or after it.
        // The stored time is the server's clock, the record's time the hub's: starting a
        // while before `from` keeps a hub clock running ahead from hiding records.
        (None, Some(from)) => consumer::DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                from.saturating_sub(STORE_DELAY)
                    .unwrap_or(from)
                    .as_nanosecond(),
            )
            .map_err(|_| ApiError::Internal)?,
        },
        (None, None) => consumer::DeliverPolicy::All,
    };
    if last == 0 || scan.after.is_some_and(|a| a.sequence > last) {
        return Ok(None);
    }
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: AUDIT_SUBJECTS.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|e| unavailable(&e))?;
    // Nothing stored at or after the start (a time range in the future, say): no wait for
    // messages that will not come.
    let mut consumer = consumer;
    if consumer
        .info()
        .await
        .map_err(|e| unavailable(&e))?
        .num_pending
        == 0
    {
        return Ok(None);
    }
    let mut messages = consumer.messages().await.map_err(|e| unavailable(&e))?;
    let mut scanned = 0;
    loop {
        let next = tokio::time::timeout(NEXT_BATCH_WAIT, messages.next())
            .await
            .map_err(|_| unavailable(&"no batch delivered in time"))?;
        let Some(message) = next else {
            return Err(unavailable(&"the audit log's messages ended early"));
        };
        let message = message.map_err(|e| unavailable(&e))?;
        let info = message.info().map_err(|e| unavailable(&e))?;
        let sequence = info.stream_sequence;
        if sequence > last {
            return Ok(None);
        }
        let stored = Timestamp::from_nanosecond(info.published.unix_timestamp_nanos()).ok();
        if let (Some(to), Some(stored)) = (scan.to, stored)
            && stored > to.saturating_add(STORE_DELAY).unwrap_or(to)
        {
            return Ok(None);
        }
        let batch = AuditBatch::decode(message.payload.as_ref()).map_err(|e| {
            tracing::error!(sequence, error = %e, "an audit batch does not decode");
            ApiError::Internal
        })?;
        for (index, record) in batch.records.iter().enumerate() {
            let cursor = Cursor {
                sequence,
                index: index as u32,
            };
            if scan.after.is_some_and(|after| cursor <= after) {
                continue;
            }
            let made = record_time(record);
            if scan.from.is_some_and(|from| made.is_none_or(|t| t < from))
                || scan.to.is_some_and(|to| made.is_none_or(|t| t >= to))
            {
                continue;
            }
            if take(&batch.instance, cursor, record) {
                return Ok((sequence < last || index + 1 < batch.records.len()).then_some(cursor));
            }
        }
        if sequence == last {
            return Ok(None);
        }
        // A page that found little in a long stretch ends here with a cursor past this
        // batch, so no call reads the whole log.
        scanned += 1;
        if scanned >= MAX_SCANNED_BATCHES {
            return Ok(Some(Cursor {
                sequence,
                index: u32::MAX,
            }));
        }
    }
}

/// Audit records by actor, dataset, aggregate and time range, oldest first.
pub(super) async fn list_access(
    js: &jetstream::Context,
    request: &ListAccessRequest,
) -> Result<ListAccessResponse, ApiError> {
    let mut violations = Violations::new();
    let department = department_filter(&mut violations, &request.department);
    if request.acting_person.len() > 64 {
        violations.push("acting_person", "must be at most 64 characters");
    }
    if request.dataset.len() > 64 {
        violations.push("dataset", "must be at most 64 characters");
    }
    let aggregate = (!request.aggregate.is_empty())
        .then(|| parse_aggregate(&mut violations, "aggregate", &request.aggregate))
        .flatten()
        .map(|(kind, id)| format!("{kind}/{id}"));
    let range = Scan::of(
        &mut violations,
        (request.from.as_ref(), request.to.as_ref()),
        (
            &request.page_token,
            &[
                "ListAccess",
                &request.department,
                &request.acting_person,
                &request.dataset,
                &request.aggregate,
                &request.care_id,
            ],
        ),
        request.page_size,
    );
    let care_id = person_filter(&mut violations, &request.care_id);
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations.into_vec()));
    }
    let department = department.unwrap_or_default();
    let mut entries = Vec::new();
    let mut bytes = 0;
    let next = scan(js, &range, |instance, cursor, record| {
        let wanted = department_matches(&department, record)
            && (request.acting_person.is_empty() || record.acting_person == request.acting_person)
            && (request.dataset.is_empty() || record.dataset == request.dataset)
            && aggregate.as_ref().is_none_or(|a| &record.aggregate == a)
            && care_id.as_ref().is_none_or(|id| {
                record.aggregate.strip_prefix("care/") == Some(id.as_str())
                    || record.persons.contains(id)
            });
        if wanted {
            let entry = AccessEntry {
                instance: instance.to_owned(),
                sequence: cursor.sequence,
                index: cursor.index,
                record: Some(record.clone()),
            };
            bytes += entry.encoded_len();
            entries.push(entry);
        }
        entries.len() >= range.limit || bytes >= MAX_PAGE_BYTES
    })
    .await?;
    Ok(ListAccessResponse {
        entries,
        next_page_token: next.map(|c| c.token(&range.tag)).unwrap_or_default(),
    })
}

/// Which department received which care record (by care id), oldest first: read from the
/// disclosure ledger once it holds every audit batch stored before the query.
pub(super) async fn list_disclosures(
    (js, ledger): (&jetstream::Context, &Ledger),
    request: &ListDisclosuresRequest,
) -> Result<ListDisclosuresResponse, ApiError> {
    let mut violations = Violations::new();
    let care_id = person_filter(&mut violations, &request.care_id);
    let department = department_filter(&mut violations, &request.department);
    let range = Scan::of(
        &mut violations,
        (request.from.as_ref(), request.to.as_ref()),
        (
            &request.page_token,
            &["ListDisclosures", &request.care_id, &request.department],
        ),
        request.page_size,
    );
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations.into_vec()));
    }
    let department = department.unwrap_or_default();
    ledger.caught_up(js, LEDGER_WAIT).await?;
    let ledger = ledger.clone();
    let page = tokio::task::spawn_blocking(move || {
        ledger.query(&LedgerQuery {
            care_id: care_id.as_deref(),
            department: match department.as_str() {
                "" => ledger::Department::Any,
                PUBLIC => ledger::Department::Public,
                code => ledger::Department::Code(code),
            },
            from: range.from,
            to: range.to,
            after: range.after.map(|c| Place {
                sequence: c.sequence,
                index: c.index,
            }),
            limit: range.limit,
        })
    })
    .await
    .map_err(|_| ApiError::Internal)??;
    Ok(ListDisclosuresResponse {
        disclosures: page.disclosures,
        next_page_token: page
            .next
            .map(|p| {
                Cursor {
                    sequence: p.sequence,
                    index: p.index,
                }
                .token(&range.tag)
            })
            .unwrap_or_default(),
    })
}
