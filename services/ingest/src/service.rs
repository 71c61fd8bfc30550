//! The shell every command service shares: who calls, validate at the edge, hash, execute,
//! answer. The gRPC services (`cases`, `care`, `grant`) only name their RPCs.

use std::sync::Arc;

use hub_api::aggregate::Aggregate;
use hub_api::identity::Authenticator;
use hub_api::v1::CommandResult;
use hub_api::{ApiError, ValidCommand, ValidCreation};
use hub_domain::Violations;
use tonic::{Request, Status};

use crate::caller::{Caller, caller};
use crate::execute::{Executor, Submitted};
use crate::hash::CommandHash;
use crate::ids;

/// The command service of one aggregate type.
pub struct Commands<A: Aggregate> {
    executor: Arc<Executor<A>>,
    auth: Authenticator,
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
        traceparent: caller.traceparent.clone(),
        person: caller.person.clone(),
        decided_at: None,
    }
}

impl<A: Aggregate> Commands<A> {
    pub fn new(executor: Arc<Executor<A>>, auth: Authenticator) -> Self {
        Self { executor, auth }
    }

    pub(crate) fn auth(&self) -> &Authenticator {
        &self.auth
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
        request: &Request<R>,
    ) -> Result<(Caller, V, CommandHash), Status>
    where
        R: prost::Message + Clone,
        V: for<'a> TryFrom<&'a R, Error = Violations>,
    {
        let caller = caller(request, &self.auth)?;
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
        let (caller, valid, hash) = self.edge::<R, V>(rpc, &request)?;
        let request_id = valid.request_id().to_owned();
        let id = ids::aggregate_id(A::TYPE, caller.department.as_str(), &request_id);
        let command = valid.into_creation(id.clone(), caller.department.clone());
        self.answer(submitted(&caller, request_id, id, None, command, hash))
            .await
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
        let (caller, valid, hash) = self.edge::<R, V>(rpc, &request)?;
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
        .map(Some)
    }
}
