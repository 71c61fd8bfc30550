//! Health and reflection: what operators and gRPC tools rely on.

use std::time::Duration;

use hub_tests::{HubBuilder, Nats, wait_until};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_each_service_and_reflection_lists_them() {
    let nats = Nats::start().await;
    let hub = HubBuilder::on(&nats).start().await;

    let mut health = HealthClient::new(hub.channel());
    // The command services serve once the command state index knows itself complete, which
    // its projector asks the log for as it starts.
    for service in [
        "",
        "gov.hub.v1.CaseCommandService",
        "gov.hub.v1.CareCommandService",
        "gov.hub.v1.GrantCommandService",
        "gov.hub.v1.CaseQueryService",
        "hub.alarms",
    ] {
        let health = health.clone();
        wait_until(service, Duration::from_secs(10), || {
            let mut health = health.clone();
            async move {
                let answer = health
                    .check(HealthCheckRequest {
                        service: service.into(),
                    })
                    .await
                    .expect("health check");
                (answer.into_inner().status == ServingStatus::Serving as i32).then_some(())
            }
        })
        .await;
    }
    let status = health
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(status.code(), tonic::Code::NotFound);

    let mut reflection = ServerReflectionClient::new(hub.channel());
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(futures::stream::iter([request]))
        .await
        .expect("reflection")
        .into_inner();
    let answer = answers
        .message()
        .await
        .expect("answer")
        .expect("one answer");
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("unexpected {answer:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "gov.hub.v1.CaseCommandService",
        "gov.hub.v1.CaseQueryService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    hub.stop().await.expect("clean stop");
}
