//! The event table, the events appended to it, and one append with its conflict check.

use std::error::Error;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{BufMut, BytesMut};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Statement};

/// The event table: a global position, the stream and its version (unique together: the
/// optimistic concurrency check), the body and the CloudEvents-style metadata.
pub(super) const TABLE: &str = "CREATE TABLE events (
    position bigserial PRIMARY KEY,
    stream text NOT NULL,
    version bigint NOT NULL,
    body bytea NOT NULL,
    metadata jsonb NOT NULL,
    UNIQUE (stream, version)
)";

/// One append: the stream's next version, the new global position back.
pub(super) const APPEND: &str = "INSERT INTO events (stream, version, body, metadata) \
     VALUES ($1, $2, $3, $4::jsonb) RETURNING position";

/// Bulk loading with COPY, binary format.
pub(super) const COPY: &str =
    "COPY events (stream, version, body, metadata) FROM STDIN (FORMAT binary)";

/// The column types COPY writes, in order.
pub(super) const COPY_TYPES: [Type; 4] = [Type::TEXT, Type::INT8, Type::BYTEA, Type::JSONB];

/// Bind parameters per row of [`APPEND`]; PostgreSQL takes at most 65,535 in a statement.
const PARAMS_PER_ROW: usize = 4;
pub(super) const MAX_INSERT_ROWS: usize = 65_535 / PARAMS_PER_ROW;

/// A multi-row INSERT of `rows` events (no RETURNING: a bulk import wants none back).
pub(super) fn multi_insert(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO events (stream, version, body, metadata) VALUES ");
    for row in 0..rows {
        let p = row * PARAMS_PER_ROW;
        if row > 0 {
            sql.push(',');
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}::jsonb)",
            p + 1,
            p + 2,
            p + 3,
            p + 4
        ));
    }
    sql
}

/// Size of each event's body, as the hub's sample case report encodes.
pub const BODY_BYTES: usize = 211;

/// The body every event carries: 211 bytes standing for a protobuf case report (bytea is not
/// compressed at this size, so its content does not matter).
pub(super) fn body() -> &'static [u8] {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    BODY.get_or_init(|| {
        let mut state = 0x5eed_u64;
        (0..BODY_BYTES)
            .map(|_| {
                state = splitmix(state);
                (state >> 56) as u8
            })
            .collect()
    })
}

/// One event to append, on a stream of its own.
#[derive(Debug, Clone)]
pub struct Event {
    pub stream: String,
    pub metadata: String,
}

/// Numbers the events of one peer: each gets a new stream (`case/<uuid>`), ids and hashes of
/// its own.
#[derive(Debug, Default)]
pub(super) struct Events {
    next: AtomicU64,
}

impl Events {
    pub(super) fn next(&self) -> Event {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        event(n)
    }
}

/// Event `n`: its metadata holds the CloudEvents attributes the hub sets (id, source, type,
/// subject, time, dataschema, department, classification, correlation and causation ids,
/// traceparent, request id, command hash), with values shaped as the hub's are; about 613
/// bytes of compact JSON.
pub fn event(n: u64) -> Event {
    let case = uuid(n, 1);
    let stream = format!("case/{case}");
    let now = jiff::Timestamp::now();
    let seconds = jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    let seconds = seconds.to_string();
    let time = format!(
        "{}.{:09}Z",
        seconds.trim_end_matches('Z'),
        now.subsec_nanosecond()
    );
    let metadata = format!(
        concat!(
            r#"{{"id":"{id}","source":"/departments/urban-management","#,
            r#""type":"gov.hub.case.reported.v2","subject":"{stream}","time":"{time}","#,
            r#""dataschema":"type.googleapis.com/gov.hub.v1.CaseReported","#,
            r#""department":"urban-management","classification":"internal","#,
            r#""correlationid":"{request}","causationid":"{request}","#,
            r#""traceparent":"00-{trace:016x}{trace2:016x}-{span:016x}-01","#,
            r#""requestid":"{request}","commandhash":"{hash:016x}{hash2:016x}"}}"#
        ),
        id = uuid(n, 2),
        stream = stream,
        time = time,
        request = uuid(n, 3),
        trace = splitmix(n ^ 0x7472_6163_6500),
        trace2 = splitmix(n ^ 0x7472_6163_6501),
        span = splitmix(n ^ 0x7370_616e),
        hash = splitmix(n ^ 0x0068_6173_6800),
        hash2 = splitmix(n ^ 0x0068_6173_6801),
    );
    Event { stream, metadata }
}

/// A version-5-shaped UUID for event `n`, distinct for each `(n, kind)`: `n` itself fills the
/// last 48 bits, so no two events share one.
fn uuid(n: u64, kind: u64) -> String {
    let h = splitmix(n.wrapping_mul(31).wrapping_add(kind));
    format!(
        "{:08x}-{:04x}-5{:03x}-{:04x}-{:012x}",
        h >> 32,
        (h >> 16) & 0xffff,
        h & 0xfff,
        0x8000 | (kind & 0x3fff),
        n & 0xffff_ffff_ffff
    )
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// JSON text sent as `jsonb` (in binary: a version byte, then the text).
#[derive(Debug)]
pub(super) struct Jsonb<'a>(pub &'a str);

impl ToSql for Jsonb<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(1);
        }
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }

    to_sql_checked!();
}

/// Appends `event` as version `expected + 1` of its stream: its global position, or `None`
/// when the stream was not at `expected` (a unique violation on (stream, version)).
pub(super) async fn append(
    client: &Client,
    statement: &Statement,
    event: &Event,
    expected: i64,
) -> anyhow::Result<Option<i64>> {
    let version = expected + 1;
    let result = client
        .query_one(
            statement,
            &[&event.stream, &version, &body(), &Jsonb(&event.metadata)],
        )
        .await;
    match result {
        Ok(row) => Ok(Some(row.try_get(0)?)),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
