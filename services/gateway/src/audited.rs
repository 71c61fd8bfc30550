//! Every answer of the query services goes out only once its audit record is stored.

use hub_api::ApiError;
use hub_api::identity::Identity;
use hub_audit::Audit;

/// What a request asked for, as its audit record names it.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// `<service>/<method>` or `GET <route>`.
    pub action: &'static str,
    pub dataset: String,
    /// The aggregate's subject, e.g. `case/<id>`.
    pub aggregate: String,
}

/// What an answer carried: rows or events, the position it stood at, the grants it was
/// read under.
#[derive(Debug, Clone, Default)]
pub struct Answered {
    pub count: u64,
    pub position: u64,
    pub grants: Vec<String>,
    /// The care records whose personal fields the answer carried, and the personal fields it
    /// gave in clear (the disclosure ledger).
    pub persons: Vec<String>,
    pub clear_fields: Vec<String>,
}

/// The caller, when its proof held: what a handler reads for before [`audited`] records the
/// outcome (and the failed proof, if that is the outcome).
pub fn proven(who: &Result<Identity, ApiError>) -> Result<&Identity, ApiError> {
    who.as_ref().map_err(Clone::clone)
}

/// Records `result` of the request `asked` by `who` (an `Err`: its proof failed) and returns
/// it; when the record cannot be stored, the answer is UNAVAILABLE instead.
pub async fn audited<T>(
    audit: &Audit,
    who: &Result<Identity, ApiError>,
    asked: Asked,
    result: Result<T, ApiError>,
    answered: impl FnOnce(&T) -> Answered,
) -> Result<T, ApiError> {
    // A failed proof is the refusal itself.
    let result = match who {
        Err(err) => Err(err.clone()),
        Ok(_) => result,
    };
    let mut record = hub_audit::record(who.as_ref().ok(), asked.action, &result);
    record.dataset = asked.dataset;
    record.aggregate = asked.aggregate;
    if let Ok(value) = &result {
        let Answered {
            count,
            position,
            grants,
            persons,
            clear_fields,
        } = answered(value);
        record.count = count;
        record.position = position;
        record.grants = grants;
        record.persons = persons;
        record.clear_fields = clear_fields;
    }
    audit.record(record).await?;
    result
}
