//! `ImportCases`: historic cases from a departmental system, streamed in chunks.
//!
//! Every case is validated and decided before anything is stored, so one bad case refuses
//! the whole import and nothing is appended. The cases then go to the log in atomic batches
//! (one fsync per batch under `sync_interval: always`), which is what makes an import many
//! times faster per case than single reports.

use hub_api::aggregate::Case;
use hub_api::identity::Identity;
use hub_api::v1::{HistoricCase, ImportCasesRequest, ImportCasesResponse, ReportCaseRequest};
use hub_api::{ApiError, ValidReport, from_timestamp};
use hub_domain::case::{CaseCommand, CaseId};
use hub_domain::{FieldViolation, Refusal, Violations};
use hub_log::StoredEvent;
use tonic::{Request, Status, Streaming};
use tracing::info;

use crate::caller::{Caller, caller_of};
use crate::cases::CaseCommands;
use crate::execute::{Executed, ImportError, Submitted};
use crate::ids;
use crate::service::submitted;

/// Most cases in one streamed chunk.
pub const MAX_CHUNK: usize = 1000;
/// Most cases in one import.
pub const MAX_IMPORT: usize = 100_000;
/// Events per atomic batch (the server takes at most 1000).
const IMPORT_BATCH: usize = 1000;
/// An import with this many problems stops reading and reports them.
const MAX_VIOLATIONS: usize = 100;

fn prefixed(
    index: usize,
    violations: impl IntoIterator<Item = FieldViolation>,
) -> impl Iterator<Item = FieldViolation> {
    violations
        .into_iter()
        .map(move |v| FieldViolation::new(format!("cases[{index}].{}", v.field), v.reason))
}

impl CaseCommands {
    /// Validates and decides one historic case.
    fn prepare(
        &self,
        caller: &Caller,
        historic: &HistoricCase,
        now: jiff::Timestamp,
    ) -> Result<(Submitted<Case>, Vec<StoredEvent>), Vec<FieldViolation>> {
        let report = ReportCaseRequest {
            request_id: historic.request_id.clone(),
            kind: historic.kind.clone().map(Into::into),
            description: historic.description.clone(),
            reporter: historic.reporter.clone(),
            channel: historic.channel,
        };
        let mut violations = Violations::new();
        let reported_at = match historic.reported_at.as_ref().map(from_timestamp) {
            None => {
                violations.push("reported_at", "must be given");
                None
            }
            Some(None) => {
                violations.push("reported_at", "is not a valid instant");
                None
            }
            Some(Some(at)) if at > now => {
                violations.push("reported_at", "must not be in the future");
                None
            }
            Some(Some(at)) => Some(at),
        };
        let valid = ValidReport::try_from(&report);
        let (valid, reported_at) = match (valid, reported_at) {
            (Ok(valid), Some(at)) if violations.is_empty() => (valid, at),
            (valid, _) => {
                let mut all = valid.err().map(Violations::into_vec).unwrap_or_default();
                all.extend(violations.into_vec());
                return Err(all);
            }
        };
        let case_id = CaseId::new(ids::case_id(caller.department.as_str(), &valid.request_id));
        let hash = self
            .executor()
            .hasher()
            .hash("ImportCases", &caller.source(), historic);
        let request_id = valid.request_id.clone();
        let command =
            CaseCommand::Report(valid.into_command(case_id.clone(), caller.department.clone()));
        let mut submitted =
            submitted::<Case>(caller, request_id, case_id.to_string(), None, command, hash);
        submitted.decided_at = Some(reported_at);
        match self.executor().prepare_new(&submitted) {
            Ok(events) => Ok((submitted, events)),
            Err(Refusal::Invalid(violations)) => Err(violations.into_vec()),
            Err(other) => Err(vec![FieldViolation::new("request_id", other.to_string())]),
        }
    }

    /// Imports the cases `request` streams, sent by `who`.
    pub(crate) async fn import(
        &self,
        who: &Result<Identity, ApiError>,
        request: Request<Streaming<ImportCasesRequest>>,
    ) -> Result<ImportCasesResponse, Status> {
        let caller = caller_of(who.clone(), request.metadata())?;
        let now = self.executor().now();
        let mut stream = request.into_inner();
        let mut prepared = Vec::new();
        let mut violations = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut index = 0;
        'reading: while let Some(chunk) = stream.message().await? {
            if chunk.cases.len() > MAX_CHUNK {
                violations.push(FieldViolation::new(
                    "cases",
                    format!("at most {MAX_CHUNK} cases per chunk"),
                ));
                break;
            }
            for historic in &chunk.cases {
                if index == MAX_IMPORT {
                    violations.push(FieldViolation::new(
                        "cases",
                        format!("at most {MAX_IMPORT} cases per import"),
                    ));
                    break 'reading;
                }
                if !seen.insert(historic.request_id.clone()) {
                    violations.push(FieldViolation::new(
                        format!("cases[{index}].request_id"),
                        "appears more than once in this import",
                    ));
                }
                match self.prepare(&caller, historic, now) {
                    Ok(item) => prepared.push((index, item)),
                    Err(found) => violations.extend(prefixed(index, found)),
                }
                index += 1;
                if violations.len() >= MAX_VIOLATIONS {
                    break 'reading;
                }
            }
        }
        if !violations.is_empty() {
            return Err(ApiError::InvalidArgument(violations).into());
        }
        // Cases an earlier import stored are answered from their records; a request id the
        // department used for another command, however recently, refuses the import before
        // anything is stored: the records are read once the index has applied the whole log.
        let request_ids = prepared
            .iter()
            .map(|(_, (s, _))| s.request_id.clone())
            .collect();
        let records = self
            .executor()
            .requests_now(&caller.source(), request_ids)
            .await?;
        let reused = |index: usize| {
            FieldViolation::new(
                format!("cases[{index}].request_id"),
                "was used before by this department for a different command",
            )
        };
        let mut fresh = Vec::new();
        let mut fresh_index = Vec::new();
        let mut executed = Vec::new();
        for ((index, (submitted, events)), record) in prepared.into_iter().zip(records) {
            match record {
                Some(record) if submitted.hash.matches(&record.hash) => executed.push(Executed {
                    record,
                    appended: false,
                }),
                Some(_) => violations.push(reused(index)),
                None => {
                    fresh.push((submitted, events));
                    fresh_index.push(index);
                }
            }
        }
        if !violations.is_empty() {
            return Err(ApiError::InvalidArgument(violations).into());
        }
        match self.executor().import(fresh, IMPORT_BATCH).await {
            Ok(done) => executed.extend(done),
            // A request id used meanwhile, by a command that raced this import: the batches
            // before it may be stored (sent again, the import answers them as imported).
            Err(ImportError::Reused(items)) => {
                let violations = items.into_iter().map(|i| reused(fresh_index[i])).collect();
                return Err(ApiError::InvalidArgument(violations).into());
            }
            Err(ImportError::Api(err)) => return Err(err.into()),
        }
        let imported = executed.iter().filter(|e| e.appended).count();
        let position = executed
            .iter()
            .map(|e| e.record.position)
            .max()
            .unwrap_or_default();
        info!(department = %caller.department, imported, cases = executed.len(), "cases imported");
        Ok(ImportCasesResponse {
            imported: imported as u32,
            already_imported: (executed.len() - imported) as u32,
            position,
        })
    }
}
