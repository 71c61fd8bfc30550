//! Who calls, in production mode: departments by client certificate (mTLS, the development
//! CA of `hub dev-ca`) or signed token, the anonymous public by neither; the development
//! header refused; a certificate from another CA refused at the handshake.

use hub::dev_ca::{self, DevCa, DevCaOptions};
use hub_api::v1;
use hub_api::v1::case_command_service_client::CaseCommandServiceClient;
use hub_api::v1::dataset_service_client::DatasetServiceClient;
use hub_tests::fixtures::{PURPOSE, acting};
use hub_tests::tls::ClientTls;
use hub_tests::{HubBuilder, Nats};
use tonic::Code;
use tonic::transport::Channel;

use crate::datasets::read;
use crate::{events_in_log, from, incident};

fn development_ca(dir: &std::path::Path) -> DevCa {
    let registry = hub::load_registry(None).expect("demo registry");
    dev_ca::write(
        dir,
        &registry,
        &DevCaOptions {
            hosts: Vec::new(),
            token_days: 1,
            now: jiff::Timestamp::now(),
        },
    )
    .expect("dev CA")
}

fn unit<'a>(ca: &'a DevCa, code: &str) -> &'a dev_ca::UnitIdentity {
    ca.units.iter().find(|u| u.code == code).expect("unit")
}

fn as_unit(ca: &DevCa, code: &str) -> ClientTls {
    let unit = unit(ca, code);
    ClientTls::presenting(&ca.ca_cert, &unit.cert, &unit.key)
}

/// A request carrying `token` as its bearer, with the acting person and purpose.
fn bearing<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = acting(PURPOSE, message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

async fn report(
    channel: Channel,
    request: tonic::Request<v1::ReportCaseRequest>,
) -> Result<v1::ReportCaseResponse, tonic::Status> {
    CaseCommandServiceClient::new(channel)
        .report_case(request)
        .await
        .map(tonic::Response::into_inner)
}

/// How a call failed: the connection, or an RPC's status.
#[derive(Debug)]
enum Refusal {
    Connect,
    Status(tonic::Status),
}

/// The TLS layer refused the connection: the call failed as a transport failure (the client
/// sees the handshake or the first request cut off), never with a status the hub's services
/// answer with (UNAUTHENTICATED, PERMISSION_DENIED, ...).
fn refused_at_handshake(outcome: Result<(), Refusal>) {
    match outcome.expect_err("refused") {
        Refusal::Connect => {}
        Refusal::Status(status) => assert!(
            matches!(
                status.code(),
                Code::Unknown | Code::Unavailable | Code::Cancelled
            ),
            "refused at the handshake, not by an RPC: {status:?}"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn departments_are_known_by_certificate_or_token_and_the_public_by_neither() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = development_ca(dir.path());
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let hub = HubBuilder::on(&nats)
        .production(&ca, "urban-management")
        .start()
        .await;
    let addr = hub.addr();

    // Urban management's certificate: its report is accepted, as urban management's.
    let reported = report(hub.channel(), acting(PURPOSE, incident("id-1")))
        .await
        .expect("a department by certificate");
    assert_eq!(events_in_log(&js).await, 1);

    // No certificate: the anonymous public, which reads open data and issues no command.
    let public = ClientTls::anonymous(&ca.ca_cert)
        .connect(addr)
        .await
        .expect("TLS without a client certificate");
    let refused = report(public.clone(), acting(PURPOSE, incident("id-2")))
        .await
        .expect_err("the public issues no command");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    let open = DatasetServiceClient::new(public.clone())
        .read_dataset(read("incident_stats", reported.position))
        .await
        .expect("the public reads open data");
    assert!(!open.into_inner().rows.is_empty());
    let closed = DatasetServiceClient::new(public.clone())
        .read_dataset(read("care_roster", 0))
        .await
        .expect_err("not open");
    assert_eq!(closed.code(), Code::Unauthenticated);

    // The development header proves nothing in production, with or without a certificate.
    for channel in [public.clone(), hub.channel()] {
        let refused = report(channel, from("urban-management", incident("id-3")))
            .await
            .expect_err("header in production");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
        assert!(
            refused.message().contains("development mode"),
            "{refused:?}"
        );
    }

    // A signed token where mTLS cannot be used: housing reports a complaint over a connection
    // without a certificate. A token with its payload changed is refused.
    let token = std::fs::read_to_string(&unit(&ca, "housing").token).expect("token");
    let complaint = report(public.clone(), bearing(&token, crate::complaint("tk-1")))
        .await
        .expect("a department by token");
    assert_ne!(complaint.case_id, reported.case_id);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = parts[1].chars().rev().collect();
    let tampered = parts.join(".");
    let refused = report(public.clone(), bearing(&tampered, crate::complaint("tk-2")))
        .await
        .expect_err("tampered");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(!refused.message().contains(&parts[1][..16]), "{refused:?}");
    // A token naming another department than the certificate: refused.
    let refused = report(hub.channel(), bearing(&token, crate::complaint("tk-3")))
        .await
        .expect_err("certificate and token disagree");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert_eq!(events_in_log(&js).await, 2, "nothing refused was stored");

    // A certificate from another CA is refused at the handshake: no call gets through
    // (beside it, the genuine certificate above was served).
    let foreign = tempfile::tempdir().expect("temp dir");
    let (_, cert, key) =
        dev_ca::write_foreign(foreign.path(), "urban-management").expect("foreign");
    let impostor = ClientTls::presenting(&ca.ca_cert, &cert, &key);
    let outcome = match impostor.connect(addr).await {
        Err(_) => Err(Refusal::Connect),
        Ok(channel) => report(channel, acting(PURPOSE, incident("id-4")))
            .await
            .map(|_| ())
            .map_err(Refusal::Status),
    };
    refused_at_handshake(outcome);
    // Plain TCP to a TLS port is not served either.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(std::time::Duration::from_secs(5));
    let plain_outcome = match plain.connect().await {
        Err(err) => Err(err.to_string()),
        Ok(channel) => report(channel, from("urban-management", incident("id-5")))
            .await
            .map_err(|s| format!("{:?}", s.code())),
    };
    assert!(plain_outcome.is_err());
    assert_eq!(events_in_log(&js).await, 2, "nothing refused was stored");

    // HTTP over the same TLS: the public reads open rows and is refused the roster; civil
    // affairs, by its certificate, reads its roster.
    let headers = [("x-hub-user", "staff-0001"), ("x-hub-purpose", "case:test")];
    let (status, _) = ClientTls::anonymous(&ca.ca_cert)
        .get(addr, "/datasets/care_roster", &[])
        .await
        .expect("https");
    assert_eq!(status, 401);
    let (status, body) = ClientTls::anonymous(&ca.ca_cert)
        .get(addr, "/datasets/incident_stats", &[])
        .await
        .expect("https");
    assert_eq!(status, 200, "{body}");
    let (status, body) = as_unit(&ca, "civil-affairs")
        .get(addr, "/datasets/care_roster", &headers)
        .await
        .expect("https");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"rows\""), "{body}");
    hub.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_requires_client_certificates_refuses_a_connection_without_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = development_ca(dir.path());
    let nats = Nats::start().await;
    let mut builder = HubBuilder::on(&nats).production(&ca, "urban-management");
    builder.config_mut().identity.require_client_certificate = true;
    let hub = builder.start().await;

    // With its certificate a department is served (the harness's own channel).
    report(hub.channel(), acting(PURPOSE, incident("rq-1")))
        .await
        .expect("served with a certificate");
    // Without one, not even the open data.
    let outcome = match ClientTls::anonymous(&ca.ca_cert).connect(hub.addr()).await {
        Err(_) => Err(Refusal::Connect),
        Ok(channel) => DatasetServiceClient::new(channel)
            .read_dataset(read("incident_stats", 0))
            .await
            .map(|_| ())
            .map_err(Refusal::Status),
    };
    refused_at_handshake(outcome);
    hub.stop().await.expect("clean stop");
}
