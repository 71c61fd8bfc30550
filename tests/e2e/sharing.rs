//! Sharing on the query path: deny by default, a conditionally shared dataset read only under
//! a grant in force, the fields the grant does not name masked, and the cleartext never in the
//! bytes another department receives (gRPC and HTTP).

use std::sync::Arc;

use hub_api::v1;
use hub_domain::clock::{Clock, ManualClock};
use hub_tests::{Hub, HubBuilder, Nats};
use jiff::SignedDuration;
use prost::Message;
use tonic::Code;

use crate::datasets::{read, rows_as, text};
use crate::from;
use hub_tests::fixtures::from_for;

pub const NAME: &str = "欧阳娜娜";
pub const IDENTITY: &str = "11010519491231002X";
pub const PHONE: &str = "13812345678";
pub const ADDRESS: &str = "徐汇区漕溪北路88号3号楼501室";

async fn rows(
    hub: &Hub,
    by: &str,
    dataset: &str,
    at: u64,
) -> Result<v1::ReadDatasetResponse, tonic::Status> {
    rows_as(hub, Some(by), read(dataset, at)).await
}

/// `rows`, read for the purpose `purpose` (e.g. `grant:<id>`).
async fn rows_for(
    hub: &Hub,
    by: &str,
    purpose: &str,
    dataset: &str,
    at: u64,
) -> Result<v1::ReadDatasetResponse, tonic::Status> {
    hub.datasets()
        .read_dataset(from_for(by, purpose, read(dataset, at)))
        .await
        .map(|r| r.into_inner())
}

/// The roster as `by` reads it under grant `grant`, with proof that the answer's bytes hold
/// neither the cleartext identity number nor (unless `name_in_clear`) the name.
async fn masked_roster(
    hub: &Hub,
    by: &str,
    grant: &str,
    at: u64,
    name_in_clear: bool,
) -> prost_types::Struct {
    let answer = rows_for(hub, by, &format!("grant:{grant}"), "care_roster", at)
        .await
        .expect("under a grant");
    let bytes = answer.encode_to_vec();
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains(IDENTITY), "identity number in the bytes sent");
    assert!(!contains("1949"), "the birth date in the bytes sent");
    assert!(
        !contains(PHONE) && !contains("1234"),
        "phone number in the bytes sent"
    );
    assert!(!contains("漕溪北路"), "address in the bytes sent");
    assert_eq!(contains(NAME), name_in_clear, "name in the bytes sent");
    assert_eq!(answer.rows.len(), 1);
    answer.rows[0].clone()
}

/// Civil affairs registers the same person under request id `rid`; returns the position.
pub async fn register(hub: &Hub, rid: &str) -> u64 {
    hub.care()
        .register_care(from(
            "civil-affairs",
            v1::RegisterCareRequest {
                request_id: rid.into(),
                name: NAME.into(),
                identity_number: IDENTITY.into(),
                category: v1::CareCategory::SevereMentalDisorder as i32,
                community_code: "310104001001".into(),
                risk_level: v1::RiskLevel::High as i32,
                phone: PHONE.into(),
                address: ADDRESS.into(),
            },
        ))
        .await
        .expect("register")
        .into_inner()
        .result
        .expect("result")
        .position
}

/// Civil affairs revokes grant `id`; returns the revocation's position.
pub async fn revoke(hub: &Hub, rid: &str, id: &str) -> u64 {
    let request = v1::RevokeGrantRequest {
        request_id: rid.into(),
        grant_id: id.into(),
        expected_version: None,
        reason: "purpose fulfilled".into(),
    };
    hub.grants()
        .revoke_grant(from("civil-affairs", request))
        .await
        .expect("revoke")
        .into_inner()
        .result
        .expect("result")
        .position
}

/// What `by` (`None`: the anonymous public) is told it may read.
async fn readable(hub: &Hub, by: Option<&str>, at: u64) -> Vec<v1::Readable> {
    let request = v1::ListReadableRequest { min_position: at };
    let request = match by {
        Some(department) => from(department, request),
        None => tonic::Request::new(request),
    };
    hub.datasets()
        .list_readable(request)
        .await
        .expect("list readable")
        .into_inner()
        .datasets
}

pub async fn grant(hub: &Hub, rid: &str, fields: &[&str], expires: jiff::Timestamp) -> String {
    asked(hub, rid, fields, expires).await.id
}

/// Public security asks for `fields` of the care roster until `expires`; the request's result.
pub async fn asked(
    hub: &Hub,
    rid: &str,
    fields: &[&str],
    expires: jiff::Timestamp,
) -> v1::CommandResult {
    let request = v1::RequestGrantRequest {
        request_id: rid.into(),
        dataset: "care_roster".into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        purpose: "排查辖区重点人员 checking persons at risk".into(),
        expires_at: Some(prost_types::Timestamp {
            seconds: expires.as_second(),
            nanos: 0,
        }),
    };
    hub.grants()
        .request_grant(from("public-security", request))
        .await
        .expect("request")
        .into_inner()
        .result
        .expect("result")
}

pub async fn approve(hub: &Hub, rid: &str, id: &str) -> u64 {
    let request = v1::ApproveGrantRequest {
        request_id: rid.into(),
        grant_id: id.into(),
        expected_version: None,
    };
    hub.grants()
        .approve_grant(from("civil-affairs", request))
        .await
        .expect("approve")
        .into_inner()
        .result
        .expect("result")
        .position
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_care_roster_is_read_masked_under_a_grant_in_force_and_not_at_all_without() {
    let nats = Nats::start().await;
    let clock = Arc::new(ManualClock::new(jiff::Timestamp::now()));
    let hub = HubBuilder::on(&nats).clock(clock.clone()).start().await;
    let at = register(&hub, "care-1").await;

    // The owner reads its roster whole (the positive control for every refusal below).
    let own = rows(&hub, "civil-affairs", "care_roster", at)
        .await
        .expect("the owner reads");
    assert_eq!(text(&own.rows[0], "name").as_deref(), Some(NAME));
    assert_eq!(
        text(&own.rows[0], "identity_number").as_deref(),
        Some(IDENTITY)
    );
    assert_eq!(text(&own.rows[0], "phone").as_deref(), Some(PHONE));
    assert_eq!(text(&own.rows[0], "address").as_deref(), Some(ADDRESS));

    // No grant, then a grant asked for but not yet approved: refused.
    let refused = rows(&hub, "public-security", "care_roster", at)
        .await
        .expect_err("no grant");
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let in_a_day = clock.now() + SignedDuration::from_hours(24);
    let id = grant(&hub, "g-1", &["name"], in_a_day).await;
    let refused = rows(&hub, "public-security", "care_roster", at)
        .await
        .expect_err("asked for, not approved");
    assert_eq!(refused.code(), Code::PermissionDenied);

    // Approved for the name: the name in clear, the identity number masked, the category and
    // risk level (sensitive, no masking form) left out, the rest as stored.
    let approved = approve(&hub, "ap-1", &id).await;
    // A grant is bound to its purpose: a read that does not name it is refused, and says how.
    for purpose in ["case:test", "grant:some-other-grant"] {
        let refused = rows_for(&hub, "public-security", purpose, "care_roster", approved)
            .await
            .expect_err("the grant not named");
        assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
        assert!(refused.message().contains("x-hub-purpose"), "{refused:?}");
    }
    let row = masked_roster(&hub, "public-security", &id, approved, true).await;
    assert_eq!(text(&row, "name").as_deref(), Some(NAME));
    assert_eq!(
        text(&row, "identity_number").as_deref(),
        Some("110105********002X")
    );
    assert!(!row.fields.contains_key("category"), "{row:?}");
    assert!(!row.fields.contains_key("risk_level"), "{row:?}");
    assert_eq!(
        text(&row, "community_code").as_deref(),
        Some("310104001001")
    );
    assert_eq!(text(&row, "phone").as_deref(), Some("138****5678"));
    assert_eq!(text(&row, "address").as_deref(), Some("310104001001"));
    // Over HTTP the same, and the bytes hold no cleartext identity number.
    let url = format!(
        "{}/datasets/care_roster?min_position={approved}",
        hub.http_url()
    );
    let client = reqwest::Client::new();
    let body = client
        .get(&url)
        .header("x-hub-department", "public-security")
        .header("x-hub-user", "staff-0001")
        .header("x-hub-purpose", format!("grant:{id}"))
        .send()
        .await
        .expect("http")
        .text()
        .await
        .expect("body");
    assert!(body.contains("110105********002X"), "{body}");
    assert!(
        !body.contains(IDENTITY) && !body.contains("severe"),
        "{body}"
    );
    // Asked what it may read and why, public security is told the roster's basis and fields.
    let listed = readable(&hub, Some("public-security"), approved).await;
    let roster = listed
        .iter()
        .find(|r| r.dataset_id == "care_roster")
        .expect("the roster is listed under the grant");
    assert_eq!(roster.basis(), v1::ReadBasis::Grant);
    assert_eq!(roster.grant_ids, vec![id.clone()]);
    assert!(roster.clear_fields.contains(&"name".to_owned()));
    assert_eq!(
        roster.masked_fields,
        vec!["identity_number", "phone", "address"]
    );
    assert_eq!(roster.withheld_fields, vec!["category", "risk_level"]);
    let basis = |listed: &[v1::Readable], id: &str| {
        listed
            .iter()
            .find(|r| r.dataset_id == id)
            .map(v1::Readable::basis)
    };
    assert_eq!(basis(&listed, "grant_register"), Some(v1::ReadBasis::Party));
    assert_eq!(basis(&listed, "incident_stats"), Some(v1::ReadBasis::Open));
    let owner = readable(&hub, Some("civil-affairs"), approved).await;
    assert_eq!(basis(&owner, "care_roster"), Some(v1::ReadBasis::Own));
    let housing = readable(&hub, Some("housing"), approved).await;
    assert_eq!(basis(&housing, "care_roster"), None);
    let feed = hub
        .datasets()
        .list_readable(from("public-security", v1::ListReadableRequest::default()))
        .await
        .expect("list")
        .into_inner()
        .feed
        .expect("a department's feed");
    assert_eq!(
        (
            feed.stream.as_str(),
            feed.consumer.as_str(),
            feed.js_api_prefix.as_str()
        ),
        (
            "FEED_PUBLIC_SECURITY",
            "feed-public-security",
            "$JS.hub.API"
        )
    );
    let public = readable(&hub, None, approved).await;
    assert!(public.iter().all(|r| r.basis() == v1::ReadBasis::Open));
    assert_eq!(basis(&public, "care_counts"), Some(v1::ReadBasis::Open));

    // The grant is public security's alone: housing is still refused.
    let other = rows(&hub, "housing", "care_roster", approved)
        .await
        .expect_err("housing has no grant");
    assert_eq!(other.code(), Code::PermissionDenied);

    // Both parties see the grant in the register; a third department sees none of it.
    for party in ["public-security", "civil-affairs"] {
        let register = rows(&hub, party, "grant_register", approved)
            .await
            .expect("a party reads its grants");
        assert_eq!(register.rows.len(), 1, "{party}");
        assert_eq!(
            text(&register.rows[0], "status").as_deref(),
            Some("approved")
        );
    }
    let stranger = rows(&hub, "housing", "grant_register", approved)
        .await
        .expect("no rows of others");
    assert!(stranger.rows.is_empty());

    // Revoked: refused from the revocation's position on.
    let revoked = revoke(&hub, "rv-1", &id).await;
    let refused = rows_for(
        &hub,
        "public-security",
        &format!("grant:{id}"),
        "care_roster",
        revoked,
    )
    .await
    .expect_err("revoked");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let listed = readable(&hub, Some("public-security"), revoked).await;
    assert_eq!(basis(&listed, "care_roster"), None);
    assert_eq!(basis(&listed, "grant_register"), Some(v1::ReadBasis::Party));

    // A grant naming no personal field: everything personal masked. Then its expiry comes, and it acts
    // at once (before the hub writes the expiry event).
    let in_an_hour = clock.now() + SignedDuration::from_hours(1);
    let id = grant(&hub, "g-2", &["visits"], in_an_hour).await;
    let approved = approve(&hub, "ap-2", &id).await;
    let row = masked_roster(&hub, "public-security", &id, approved, false).await;
    assert_eq!(text(&row, "name").as_deref(), Some("欧*"));
    clock.advance(SignedDuration::from_hours(2));
    let refused = rows_for(
        &hub,
        "public-security",
        &format!("grant:{id}"),
        "care_roster",
        approved,
    )
    .await
    .expect_err("expired");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let own = rows(&hub, "civil-affairs", "care_roster", approved)
        .await
        .expect("the owner still reads");
    assert_eq!(own.rows.len(), 1);
    hub.stop().await.expect("clean stop");
}
