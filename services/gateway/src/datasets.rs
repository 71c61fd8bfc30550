//! Reads of any dataset, shared by `gov.hub.v1.DatasetService` and the HTTP rows endpoint,
//! and the catalogue's live view of every dataset.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hub_api::ApiError;
use hub_api::identity::{Authenticator, Identity};
use hub_api::v1;
use hub_audit::Audit;
use hub_domain::FieldViolation;
use hub_domain::clock::Clock;
use hub_domain::registry::Registry;
use hub_log::Appender;
use hub_projector::ReadModel;
use hub_projector::datasets::access::{Access, Denied, access, release};
use hub_projector::datasets::grant_register::{self, grants_of};
use hub_projector::datasets::read::{Query, TimeBound, read_page};
use hub_projector::datasets::rows::{Row, row_count};
use hub_projector::datasets::{Dataset, Mask, OpenType, Owner, Publication, ShareType};
use jiff::Timestamp;
use tracing::error;

use crate::catalog::{Entry, Status};
use crate::counts::publish_counts;
use crate::model_read::{blocking, reach};
use crate::queue::read_queue;

pub const DEFAULT_PAGE_SIZE: u32 = 100;
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Who reads: a department (with its acting person and purpose), or the anonymous public.
pub type Reader = Identity;

/// How a read's purpose names the grant it is made under: `grant:<grant id>`.
pub const GRANT_PURPOSE_PREFIX: &str = "grant:";

/// A page of a dataset as read.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rows {
    pub rows: Vec<Row>,
    /// Empty when there are no more.
    pub next_page_token: String,
    /// The dataset's position when it answered.
    pub position: u64,
    /// The grants the answer was read under (for its audit record; not sent).
    #[serde(skip)]
    pub grants: Vec<String>,
    /// The care records (by care id) whose personal fields the page carries, and the personal
    /// fields it gave in clear: the disclosure ledger's entries (audit record only; not sent).
    #[serde(skip)]
    pub persons: Vec<String>,
    #[serde(skip)]
    pub clear_fields: Vec<String>,
}

impl From<Rows> for v1::ReadDatasetResponse {
    fn from(rows: Rows) -> Self {
        Self {
            rows: rows.rows.into_iter().map(to_struct).collect(),
            next_page_token: rows.next_page_token,
            position: rows.position,
        }
    }
}

/// Every dataset with its read model.
#[derive(Clone)]
pub struct Datasets {
    inner: Arc<Inner>,
}

struct Inner {
    models: BTreeMap<&'static str, (&'static Dataset, ReadModel)>,
    order: Vec<&'static str>,
    log: Appender,
    auth: Authenticator,
    audit: Audit,
    max_wait: Duration,
    /// Counts below this are withheld from suppressed count tables.
    threshold: u64,
    /// Decides whether a grant is still in force.
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Datasets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Datasets")
            .field("datasets", &self.inner.order)
            .finish_non_exhaustive()
    }
}

impl Datasets {
    /// `models` in catalogue order.
    pub fn new(
        models: Vec<(&'static Dataset, ReadModel)>,
        log: Appender,
        (auth, audit): (Authenticator, Audit),
        max_wait: Duration,
        threshold: u64,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let order = models.iter().map(|(d, _)| d.id).collect();
        Self {
            inner: Arc::new(Inner {
                models: models.into_iter().map(|(d, m)| (d.id, (d, m))).collect(),
                order,
                log,
                auth,
                audit,
                max_wait,
                threshold,
                clock,
            }),
        }
    }

    pub fn registry(&self) -> &Registry {
        self.inner.auth.registry()
    }

    /// `id` as an audit record names the dataset asked for: itself when the catalogue has it,
    /// else nothing (a request's free text never goes into the audit log).
    pub fn audit_name(&self, id: &str) -> String {
        if self.inner.models.contains_key(id) {
            id.to_owned()
        } else {
            String::new()
        }
    }

    /// The audit log every answer is recorded in before it is given.
    pub fn audit(&self) -> &Audit {
        &self.inner.audit
    }

    /// Who sends a gRPC request.
    pub fn reader_grpc<T>(&self, request: &tonic::Request<T>) -> Result<Reader, ApiError> {
        self.inner.auth.identify_grpc(request)
    }

    /// Who sends an HTTP request.
    pub fn reader_http(
        &self,
        headers: &http::HeaderMap,
        extensions: &http::Extensions,
    ) -> Result<Reader, ApiError> {
        self.inner.auth.identify_http(headers, extensions)
    }

    pub fn max_wait(&self) -> Duration {
        self.inner.max_wait
    }

    fn model(&self, id: &str) -> Result<&(&'static Dataset, ReadModel), ApiError> {
        self.inner
            .models
            .get(id)
            .ok_or(ApiError::NotFound { what: "dataset" })
    }

    /// The catalogue: every dataset with its live state, in catalogue order.
    pub async fn catalogue(&self) -> Result<Vec<Entry>, ApiError> {
        let log_position = self.log_position().await;
        let mut entries = Vec::with_capacity(self.inner.order.len());
        for id in &self.inner.order {
            let (dataset, model) = self.model(id)?;
            entries.push(Entry {
                dataset,
                status: status(dataset, model, log_position).await?,
            });
        }
        Ok(entries)
    }

    /// One dataset with its live state.
    pub async fn entry(&self, id: &str) -> Result<Entry, ApiError> {
        let (dataset, model) = self.model(id)?;
        let log_position = self.log_position().await;
        Ok(Entry {
            dataset,
            status: status(dataset, model, log_position).await?,
        })
    }

    async fn log_position(&self) -> Option<u64> {
        match self.inner.log.last_position().await {
            Ok(position) => Some(position),
            Err(err) => {
                // The catalogue still answers, without the log's position.
                error!(error = %err, "catalogue: the log's position is unknown");
                None
            }
        }
    }

    /// What `reader` may read of `dataset` now, with the grants register at least at
    /// `min_position` (so a read right after an approval sees it). With `bound`, a grant
    /// counts only when the reader's purpose names it (`grant:<id>`): grants are bound to
    /// their purpose. Without, every grant in force counts (to say what could be read).
    pub async fn access(
        &self,
        dataset: &'static Dataset,
        reader: &Reader,
        min_position: u64,
        wait: Duration,
        bound: bool,
    ) -> Result<Access, ApiError> {
        let department = reader.department().map(|d| d.code.as_str().to_owned());
        // Only a department reading another's dataset needs its grants looked up.
        let needs_grants = dataset.open != OpenType::Open
            && matches!((&department, dataset.owner), (Some(d), Owner::Department(o)) if d != o);
        let grants = match (&department, needs_grants) {
            (Some(department), true) => {
                let (_, register) = self.model(grant_register::DATASET.id)?;
                reach(register, min_position, wait).await?;
                let department = department.clone();
                blocking(register, move |store| grants_of(store, &department)).await?
            }
            _ => Vec::new(),
        };
        let now = self.inner.clock.now();
        let named = match reader.department() {
            Some(d) if bound => {
                let purpose = d.purpose.strip_prefix(GRANT_PURPOSE_PREFIX);
                grants
                    .iter()
                    .filter(|g| Some(g.grant_id.as_str()) == purpose)
                    .cloned()
                    .collect()
            }
            _ => grants.clone(),
        };
        access(dataset, department.as_deref(), &named, now).map_err(|denied| match denied {
            Denied::Anonymous => ApiError::Unauthenticated(denied.reason().into()),
            // Grants in force that the purpose does not name: say how to name one.
            Denied::NoGrant if access(dataset, department.as_deref(), &grants, now).is_ok() => {
                ApiError::PermissionDenied(
                    "a grant is bound to its purpose: name the grant this read is made under \
                     in the x-hub-purpose header as grant:<grant id> (ListReadable lists them)"
                        .into(),
                )
            }
            Denied::NotShared | Denied::NoGrant => {
                ApiError::PermissionDenied(denied.reason().into())
            }
        })
    }

    /// Every dataset `reader` may read, with the basis and what it gets of each field, and
    /// the grants register's position.
    pub async fn readable(
        &self,
        reader: &Reader,
        min_position: u64,
        wait: Duration,
    ) -> Result<(Vec<v1::Readable>, u64), ApiError> {
        let (_, register) = self.model(grant_register::DATASET.id)?;
        let position = reach(register, min_position, wait).await?;
        let mut readable = Vec::new();
        for id in &self.inner.order {
            let (dataset, _) = self.model(id)?;
            let access = match self.access(dataset, reader, 0, wait, false).await {
                Ok(access) => access,
                Err(ApiError::PermissionDenied(_) | ApiError::Unauthenticated(_)) => continue,
                Err(err) => return Err(err),
            };
            readable.push(describe(dataset, &access));
        }
        Ok((readable, position))
    }

    /// The grants of `department` in force now, by id.
    pub async fn grants_in_force(
        &self,
        department: &str,
    ) -> Result<std::collections::BTreeSet<String>, ApiError> {
        self.grants_in_force_at(department, 0, Duration::ZERO).await
    }

    /// The grants of `department` in force now, with the register at least at `min_position`.
    pub async fn grants_in_force_at(
        &self,
        department: &str,
        min_position: u64,
        wait: Duration,
    ) -> Result<std::collections::BTreeSet<String>, ApiError> {
        let (_, register) = self.model(grant_register::DATASET.id)?;
        reach(register, min_position, wait).await?;
        let department = department.to_owned();
        let grants = blocking(register, move |store| grants_of(store, &department)).await?;
        let now = self.inner.clock.now();
        Ok(grants
            .into_iter()
            .filter(|g| g.in_force(now))
            .map(|g| g.grant_id)
            .collect())
    }

    /// Changes of the grant register (a new position: a grant may have changed).
    pub fn grant_register_changes(
        &self,
    ) -> Result<tokio::sync::watch::Receiver<hub_projector::ModelState>, ApiError> {
        Ok(self.model(grant_register::DATASET.id)?.1.subscribe())
    }

    /// Reads a page of a dataset for `reader`, masked as its access says.
    pub async fn read(
        &self,
        reader: &Reader,
        request: &v1::ReadDatasetRequest,
        wait: Duration,
    ) -> Result<Rows, ApiError> {
        let (dataset, model) = self.model(&request.dataset_id)?;
        let dataset: &'static Dataset = dataset;
        // Who asks first: a refused reader learns nothing of the request's other fields.
        let access = self
            .access(dataset, reader, request.min_position, wait, true)
            .await?;
        let party = match &access {
            Access::Party(party) => Some(party.clone()),
            _ => None,
        };
        let mut query = parse_query(dataset, request)?;
        // A queue's page token is a key of the reader's own queue.
        if dataset.publication == Publication::CaseQueue
            && let (Some(after), Some(party)) = (&query.after, &party)
            && !after.starts_with(&hub_projector::case_queue::queue_prefix(party))
        {
            return Err(ApiError::InvalidArgument(vec![FieldViolation::new(
                "page_token",
                "is not a token from a previous response",
            )]));
        }
        query.party = party;
        let position = reach(model, request.min_position, wait).await?;
        // A grant may have been revoked, or its expiry come, while the read waited.
        let access = self
            .access(dataset, reader, 0, Duration::ZERO, true)
            .await?;
        let grants = match &access {
            Access::Masked { grants, .. } => grants.clone(),
            _ => Vec::new(),
        };
        let clear_fields = clear_personal_fields(dataset, &access);
        let threshold = self.inner.threshold;
        let page = blocking(model, move |store| {
            let mut page = match dataset.publication {
                Publication::Rows => read_page(store, dataset, &query),
                Publication::SuppressedCounts { .. } => {
                    publish_counts(store, dataset, &query, threshold)
                }
                Publication::CaseQueue => read_queue(store, dataset, &query),
            }?;
            // Masked before the rows leave the read model's thread.
            page.rows = page
                .rows
                .into_iter()
                .map(|row| release(dataset, &access, row))
                .collect();
            Ok(page)
        })
        .await?;
        let persons = match clear_fields {
            Some(_) => persons_in(&page.rows),
            None => Vec::new(),
        };
        Ok(Rows {
            rows: page.rows,
            next_page_token: page.next.map(|k| to_hex(&k)).unwrap_or_default(),
            position,
            grants,
            persons,
            clear_fields: clear_fields.unwrap_or_default(),
        })
    }
}

/// The field of a dataset that names the person a row is about.
const PERSON_FIELD: &str = "care_id";

/// The personal fields of `dataset` that `access` gives in clear; `None` for a dataset whose
/// rows are about no person (no personal fields, or no care id to name the person by).
pub(crate) fn clear_personal_fields(dataset: &Dataset, access: &Access) -> Option<Vec<String>> {
    let personal: Vec<&hub_projector::datasets::Field> = dataset
        .fields
        .iter()
        .filter(|f| f.sensitivity >= hub_domain::registry::Sensitivity::Personal)
        .collect();
    if personal.is_empty() || dataset.field(PERSON_FIELD).is_none() {
        return None;
    }
    let clear = personal
        .into_iter()
        .filter(|field| match access {
            Access::Full | Access::Party(_) => true,
            Access::Masked { granted, .. } => {
                field.mask == Mask::Clear || granted.contains(field.name)
            }
        })
        .map(|field| field.name.to_owned())
        .collect();
    Some(clear)
}

/// The care ids of `rows`: whose personal fields they carry.
pub(crate) fn persons_in(rows: &[Row]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| row.get(PERSON_FIELD)?.as_str().map(str::to_owned))
        .collect()
}

/// What `access` gives of `dataset`, field by field.
fn describe(dataset: &Dataset, access: &Access) -> v1::Readable {
    use v1::ReadBasis as B;
    let mut readable = v1::Readable {
        dataset_id: dataset.id.to_owned(),
        ..Default::default()
    };
    let granted = match access {
        Access::Full if dataset.open == OpenType::Open => {
            readable.set_basis(B::Open);
            None
        }
        Access::Full => {
            readable.set_basis(B::Own);
            None
        }
        Access::Party(_) => {
            readable.set_basis(B::Party);
            None
        }
        Access::Masked { granted, grants } => {
            readable.set_basis(match dataset.share {
                ShareType::Unconditional => B::Unconditional,
                _ => B::Grant,
            });
            readable.grant_ids = grants.clone();
            Some(granted)
        }
    };
    for field in dataset.fields {
        let name = field.name.to_owned();
        match (granted, field.mask) {
            (None, _) | (_, Mask::Clear) => readable.clear_fields.push(name),
            (Some(granted), _) if granted.contains(field.name) => readable.clear_fields.push(name),
            (Some(_), Mask::Drop) => readable.withheld_fields.push(name),
            (Some(_), _) => readable.masked_fields.push(name),
        }
    }
    readable
}

fn parse_query(dataset: &Dataset, request: &v1::ReadDatasetRequest) -> Result<Query, ApiError> {
    let mut violations = Vec::new();
    let mut dimension = |name: &'static str, field: Option<&str>, value: &str| {
        if value.is_empty() {
            return None;
        }
        if field.is_none() {
            violations.push(FieldViolation::new(
                name,
                "this dataset has no such dimension to filter on",
            ));
        } else if value.len() > 64 {
            violations.push(FieldViolation::new(name, "must be at most 64 characters"));
        }
        Some(value.to_owned())
    };
    let filters = &dataset.filters;
    let department = dimension("department", filters.department, &request.department);
    let district = dimension("district_code", filters.district, &request.district_code);
    let grid = dimension("grid_code", filters.grid, &request.grid_code);
    let time_kind = filters.time.and_then(|f| dataset.field(f)).map(|f| f.kind);
    let mut bound = |name: &'static str, value: &str| {
        if value.is_empty() {
            return None;
        }
        let Some(kind) = time_kind else {
            violations.push(FieldViolation::new(
                name,
                "this dataset has no time to filter on",
            ));
            return None;
        };
        let parsed = TimeBound::parse(kind, value);
        if parsed.is_none() {
            violations.push(FieldViolation::new(
                name,
                "must be in the form of the dataset's time field (an RFC 3339 instant, YYYY-MM-DD or YYYY-MM)",
            ));
        }
        parsed
    };
    let time_from = bound("time_from", &request.time_from);
    let time_to = bound("time_to", &request.time_to);
    let after = if request.page_token.is_empty() {
        None
    } else {
        let key = from_hex(&request.page_token);
        if key.is_none() {
            violations.push(FieldViolation::new(
                "page_token",
                "is not a token from a previous response",
            ));
        }
        key
    };
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    // AIP-158: a page size above the maximum is lowered to it, not refused.
    let limit = match request.page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    } as usize;
    Ok(Query {
        department,
        district,
        grid,
        time_from,
        time_to,
        party: None,
        after,
        limit,
    })
}

async fn status(
    dataset: &Dataset,
    model: &ReadModel,
    log_position: Option<u64>,
) -> Result<Status, ApiError> {
    let state = model.state();
    let open = dataset.open == OpenType::Open;
    let rows = if open {
        Some(blocking(model, row_count).await?)
    } else {
        None
    };
    Ok(Status {
        position: open.then_some(state.position),
        log_position: log_position.map(|p| p.max(state.position)),
        lag_seconds: state.lag_age(Timestamp::now()).map(|age| age.as_secs_f64()),
        rows,
        halted: state.halted,
    })
}

fn to_hex(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(token: &str) -> Option<Vec<u8>> {
    if !token.len().is_multiple_of(2) || token.len() > 1024 {
        return None;
    }
    (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A JSON row as a protobuf Struct.
pub fn to_struct(row: Row) -> prost_types::Struct {
    prost_types::Struct {
        fields: row.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
    }
}

fn to_value(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value as J;
    let kind = match value {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        J::String(s) => Kind::StringValue(s),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        J::Object(map) => Kind::StructValue(to_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let key = b"2026-12/310104001001001/urban-management".to_vec();
        assert_eq!(from_hex(&to_hex(&key)), Some(key));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(""), Some(Vec::new()));
    }
}
