//! End-to-end tests: real nats-server processes, real sled files, real gRPC over loopback.

mod audit;
mod audit_access;
mod audit_as_of;
mod audit_export;
mod audit_history;
mod audit_row_as_of;
mod bad_input;
mod care;
mod cluster;
mod cluster_faults;
mod command_hash;
mod commands;
mod console;
mod datasets;
mod due;
mod feed_takeover;
mod feeds;
mod gaps;
mod grants;
mod group_commit;
mod guard;
mod idempotency;
mod identity;
mod import;
mod leases;
mod lifecycle;
mod log_digest;
mod log_reads;
mod nats_accounts;
mod rebuild;
mod report;
mod restart;
mod serving;
mod sharing;
mod supervision;
mod unreadable;
mod upcasting;
mod who_asks;

use hub_api::v1;

pub use hub_tests::fixtures::{complaint, from, incident};

/// Number of events in GOV_EVENTS.
pub async fn events_in_log(js: &async_nats::jetstream::Context) -> u64 {
    let mut stream = js
        .get_stream("GOV_EVENTS")
        .await
        .expect("GOV_EVENTS exists");
    stream.info().await.expect("stream info").state.messages
}

/// Reports the demo grid incident as urban management; returns the report's position.
pub async fn report_incident(hub: &hub_tests::Hub, rid: &str) -> u64 {
    hub.commands()
        .report_case(from("urban-management", incident(rid)))
        .await
        .expect("report")
        .into_inner()
        .position
}

/// The field the first violation of an INVALID_ARGUMENT status names.
pub fn violated_field(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("bad request details")
        .field_violations[0]
        .field
        .clone()
}

/// Reads one case at `min_position` as the command centre of its district (which has a
/// role on every case there), trying the demo data's two; panics with the status if neither
/// can read it.
pub async fn read_case(hub: &hub_tests::Hub, case_id: &str, min_position: u64) -> v1::CaseView {
    let mut refusal = None;
    for centre in ["dcc-310104", "dcc-310105"] {
        let request = v1::GetCaseRequest {
            case_id: case_id.into(),
            min_position,
        };
        match hub.queries().get_case(from(centre, request)).await {
            Ok(found) => {
                return found
                    .into_inner()
                    .r#case
                    .expect("a found case comes with its view");
            }
            Err(status) if status.code() == tonic::Code::PermissionDenied => {
                refusal = Some(status);
            }
            Err(status) => panic!("case {case_id} at {min_position}: {status:?}"),
        }
    }
    panic!("case {case_id} at {min_position}: {refusal:?}")
}

/// The ids of the cases `holder` holds, in queue order, read by `holder` at `min_position`.
pub async fn queue_ids(hub: &hub_tests::Hub, holder: &str, min_position: u64) -> Vec<String> {
    hub.queries()
        .list_cases(from(
            holder,
            v1::ListCasesRequest {
                holder: holder.into(),
                min_position,
                ..Default::default()
            },
        ))
        .await
        .unwrap_or_else(|s| panic!("queue of {holder} at {min_position}: {s:?}"))
        .into_inner()
        .cases
        .into_iter()
        .map(|c| c.case_id)
        .collect()
}

/// Case commands as a department sends them, each with its own request id.
pub mod cmd {
    use hub_api::v1::{self, CommandResult};
    use tonic::Status;

    use super::from;

    pub type Outcome = Result<CommandResult, Status>;

    fn unwrap(result: Option<CommandResult>) -> CommandResult {
        result.expect("an accepted command returns its result")
    }

    pub async fn dispatch(
        hub: &hub_tests::Hub,
        by: &str,
        rid: &str,
        case_id: &str,
        to: &str,
        expected: Option<u64>,
    ) -> Outcome {
        let request = v1::DispatchCaseRequest {
            request_id: rid.into(),
            case_id: case_id.into(),
            expected_version: expected,
            department: to.into(),
        };
        hub.commands()
            .dispatch_case(from(by, request))
            .await
            .map(|r| unwrap(r.into_inner().result))
    }

    pub async fn accept(
        hub: &hub_tests::Hub,
        by: &str,
        rid: &str,
        case_id: &str,
        expected: Option<u64>,
    ) -> Outcome {
        let request = v1::AcceptCaseRequest {
            request_id: rid.into(),
            case_id: case_id.into(),
            expected_version: expected,
        };
        hub.commands()
            .accept_case(from(by, request))
            .await
            .map(|r| unwrap(r.into_inner().result))
    }

    pub async fn transfer(
        hub: &hub_tests::Hub,
        by: &str,
        rid: &str,
        case_id: &str,
        to: &str,
    ) -> Outcome {
        let request = v1::RequestCaseTransferRequest {
            request_id: rid.into(),
            case_id: case_id.into(),
            expected_version: None,
            to_department: to.into(),
            reason: "涉及物业维修资金 a property matter".into(),
        };
        hub.commands()
            .request_case_transfer(from(by, request))
            .await
            .map(|r| unwrap(r.into_inner().result))
    }

    pub async fn accept_transfer(
        hub: &hub_tests::Hub,
        by: &str,
        rid: &str,
        case_id: &str,
    ) -> Outcome {
        let request = v1::AcceptCaseTransferRequest {
            request_id: rid.into(),
            case_id: case_id.into(),
            expected_version: None,
        };
        hub.commands()
            .accept_case_transfer(from(by, request))
            .await
            .map(|r| unwrap(r.into_inner().result))
    }

    pub async fn reject_transfer(
        hub: &hub_tests::Hub,
        by: &str,
        rid: &str,
        case_id: &str,
    ) -> Outcome {
        let request = v1::RejectCaseTransferRequest {
            request_id: rid.into(),
            case_id: case_id.into(),
            expected_version: None,
            reason: "not within our remit".into(),
        };
        hub.commands()
            .reject_case_transfer(from(by, request))
            .await
            .map(|r| unwrap(r.into_inner().result))
    }

    pub async fn resolve(hub: &hub_tests::Hub, by: &str, rid: &str, case_id: &str) -> Outcome {
        let request = v1::ResolveCaseRequest {
            request_id: rid.into(),
            case_id: case_id.into(),
            expected_version: None,
            outcome: "通道已清理 cleared".into(),
        };
        hub.commands()
            .resolve_case(from(by, request))
            .await
            .map(|r| unwrap(r.into_inner().result))
    }

    pub async fn rate(
        hub: &hub_tests::Hub,
        by: &str,
        rid: &str,
        case_id: &str,
        rating: u32,
    ) -> Outcome {
        let request = v1::RateCaseRequest {
            request_id: rid.into(),
            case_id: case_id.into(),
            expected_version: None,
            rating,
        };
        hub.commands()
            .rate_case(from(by, request))
            .await
            .map(|r| unwrap(r.into_inner().result))
    }

    pub async fn close(hub: &hub_tests::Hub, by: &str, rid: &str, case_id: &str) -> Outcome {
        let request = v1::CloseCaseRequest {
            request_id: rid.into(),
            case_id: case_id.into(),
            expected_version: None,
        };
        hub.commands()
            .close_case(from(by, request))
            .await
            .map(|r| unwrap(r.into_inner().result))
    }
}
