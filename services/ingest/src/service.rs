//! The shell every command service shares: who calls, validate at the edge, hash, execute,
//! answer. The gRPC services (`cases`, `care`, `grant`) only name their RPCs.

use std::sync::Arc;

use hub_api::aggregate::Aggregate;
use hub_api::identity::{Authenticator, Identity};
use hub_api::v1::CommandResult;
use hub_api::{ApiError, ValidCommand, ValidCreation};
use hub_audit::Audit;
use hub_domain::Violations;
use tonic::{Request, Status};

use crate::caller::{Caller, caller_of};
use crate::execute::{Executor, Submitted};
use crate::hash::CommandHash;
use crate::ids;

/// The command service of one aggregate type.
pub struct Commands<A: Aggregate> {
    executor: Arc<Executor<A>>,
    auth: Authenticator,
    audit: Audit,
}

/// Builds the executor's view of a department's command.
pub fn submitted<A: Aggregate>(
    caller: &Caller,
    request_id: String,
    id: String,
    expected_version: Option<u64>,
    command: A::Command,
    hash: CommandHash,
) -> Submitted<A> {
    Submitted {
        source: caller.source(),
        actor: caller.actor(),
        owner: caller.department.to_string(),
        request_id,
        hash,
        id,
        expected_version,
        command,
        correlation_id: caller.correlation_id.clone(),
        // The hub's own server span when traces are exported (a batch of several commands
        // links each), else what the caller sent.
        traceparent: hub_telemetry::trace::traceparent(&tracing::Span::current())
            .unwrap_or_else(|| caller.traceparent.clone()),
        person: caller.person.clone(),
        decided_at: None,
    }
}

impl<A: Aggregate> Commands<A> {
    pub fn new(executor: Arc<Executor<A>>, (auth, audit): (Authenticator, Audit)) -> Self {
        Self {
            executor,
            auth,
            audit,
        }
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.auth
    }

    pub(crate) fn audit(&self) -> &Audit {
        &self.audit
    }

    pub(crate) fn executor(&self) -> &Executor<A> {
        &self.executor
    }

    /// Executes a command and answers with its (first) result.
    async fn answer(&self, submitted: Submitted<A>) -> Result<CommandResult, Status> {
        let id = submitted.id.clone();
        let record = self.executor.execute(submitted).await?.record;
        Ok(CommandResult {
            id,
            event_ids: record.event_ids,
            position: record.position,
        })
    }

    /// At the edge: who calls, the request validated, its content hashed (with the caller and
    /// the request id, so only a retry of the very command hashes alike).
    fn edge<R, V>(
        &self,
        rpc: &str,
        who: &Result<Identity, ApiError>,
        request: &Request<R>,
    ) -> Result<(Caller, V, CommandHash), Status>
    where
        R: prost::Message + Clone,
        V: for<'a> TryFrom<&'a R, Error = Violations>,
    {
        let caller = caller_of(who.clone(), request.metadata())?;
        let valid = V::try_from(request.get_ref()).map_err(ApiError::from)?;
        let hash = self
            .executor
            .hasher()
            .hash(rpc, &caller.source(), request.get_ref());
        Ok((caller, valid, hash))
    }

    /// An RPC creating an aggregate, whose id derives from the department and request id.
    pub(crate) async fn create<R, V>(
        &self,
        rpc: &str,
        request: Request<R>,
    ) -> Result<CommandResult, Status>
    where
        R: prost::Message + Clone,
        V: ValidCreation<Command = A::Command> + for<'a> TryFrom<&'a R, Error = Violations>,
    {
        let who = self.auth.identify_grpc(&request);
        let outcome = async {
            let (caller, valid, hash) = self.edge::<R, V>(rpc, &who, &request)?;
            let request_id = valid.request_id().to_owned();
            let id = ids::aggregate_id(A::TYPE, caller.department.as_str(), &request_id);
            let command = valid.into_creation(id.clone(), caller.department.clone());
            self.answer(submitted(&caller, request_id, id, None, command, hash))
                .await
        }
        .await;
        self.audited(rpc, &who, outcome).await
    }

    /// Records a refused command, and any grant request or decision, in the audit log before
    /// answering (an accepted command is on the event log already). UNAVAILABLE when the
    /// record cannot be stored.
    async fn audited(
        &self,
        rpc: &str,
        who: &Result<Identity, ApiError>,
        outcome: Result<CommandResult, Status>,
    ) -> Result<CommandResult, Status> {
        let decision = A::TYPE == "grant";
        if outcome.is_ok() && !decision {
            return outcome;
        }
        let service = match A::TYPE {
            "case" => "CaseCommandService",
            "care" => "CareCommandService",
            "grant" => "GrantCommandService",
            other => other,
        };
        let action = format!("gov.hub.v1.{service}/{rpc}");
        let mut record =
            hub_audit::record_status(who.as_ref().ok(), &action, outcome.as_ref().err());
        if let Ok(result) = &outcome {
            record.aggregate = format!("{}/{}", A::TYPE, result.id);
            record.position = result.position;
            record.count = result.event_ids.len() as u64;
        }
        self.audit.record(record).await.map_err(ApiError::from)?;
        outcome
    }

    /// An RPC on an existing aggregate.
    pub(crate) async fn on_existing<R, V>(
        &self,
        rpc: &str,
        request: Request<R>,
    ) -> Result<Option<CommandResult>, Status>
    where
        R: prost::Message + Clone,
        V: ValidCommand<Command = A::Command> + for<'a> TryFrom<&'a R, Error = Violations>,
    {
        let who = self.auth.identify_grpc(&request);
        let outcome = async {
            let (caller, valid, hash) = self.edge::<R, V>(rpc, &who, &request)?;
            let (request_id, id, expected_version, command) = valid.into_parts();
            self.answer(submitted(
                &caller,
                request_id,
                id,
                expected_version,
                command,
                hash,
            ))
            .await
        }
        .await;
        self.audited(rpc, &who, outcome).await.map(Some)
    }
}
