use std::sync::Arc;

use hub_domain::clock::ManualClock;
use hub_domain::registry::{Registry, RegistryData};
use tonic::codegen::http::HeaderMap;

use super::*;

fn registry() -> Arc<Registry> {
    let data: RegistryData = toml::from_str(
        r#"
        [[units]]
        code = "dcc-310104"
        name = "xuhui command centre"
        kind = "dispatch_unit"
        [[units]]
        code = "public-security"
        name = "public security"
        kind = "department"
        [[units]]
        code = "housing"
        name = "housing"
        kind = "department"
        [[districts]]
        code = "310104"
        name = "xuhui"
        command_centre = "dcc-310104"
        "#,
    )
    .expect("fixture parses");
    Arc::new(Registry::new(data).expect("consistent"))
}

fn authenticator(mode: Mode) -> Authenticator {
    let clock = ManualClock::new("2026-12-01T00:00:00Z".parse().expect("time"));
    Authenticator::new(mode, None, registry(), Arc::new(clock))
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(*name, value.parse().expect("header value"));
    }
    headers
}

/// A self-signed certificate whose subject has these common names (DER).
fn certificate(common_names: &[&str]) -> Vec<u8> {
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    for name in common_names {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, *name);
    }
    let key = rcgen::KeyPair::generate().expect("key");
    params
        .self_signed(&key)
        .expect("certificate")
        .der()
        .to_vec()
}

const ACTING: [(&str, &str); 2] = [(PERSON_HEADER, "ps-0042"), (PURPOSE_HEADER, "case:C1")];

fn unauthenticated_reason(result: Result<Identity, ApiError>) -> String {
    match result {
        Err(ApiError::Unauthenticated(reason)) => reason,
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
}

fn violated(result: Result<Identity, ApiError>) -> String {
    match result {
        Err(ApiError::InvalidArgument(v)) => v[0].field.clone(),
        other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
    }
}

#[test]
fn nothing_proven_is_the_public_and_acting_headers_alone_prove_nothing() {
    let auth = authenticator(Mode::Production);
    assert_eq!(
        auth.identify(&HeaderMap::new(), None).expect("public"),
        Identity::Public
    );
    assert_eq!(
        auth.identify(&headers(&ACTING), None).expect("public"),
        Identity::Public
    );
}

#[test]
fn a_certificate_names_its_department_by_common_name() {
    let auth = authenticator(Mode::Production);
    let cert = certificate(&["public-security"]);
    let identity = auth
        .identify(&headers(&ACTING), Some(&cert))
        .expect("proven");
    assert_eq!(
        identity,
        Identity::Department(Department {
            code: DepartmentCode::parse("public-security").expect("code"),
            proof: Proof::Certificate,
            person: "ps-0042".into(),
            purpose: "case:C1".into(),
        })
    );
    // (rcgen keeps one value per attribute, so two common names are not tried here.)
    for names in [&["water-board"][..], &["Public Security"], &[]] {
        let reason =
            unauthenticated_reason(auth.identify(&headers(&ACTING), Some(&certificate(names))));
        assert!(reason.contains("common name"), "{names:?}: {reason}");
    }
    let reason = unauthenticated_reason(auth.identify(&headers(&ACTING), Some(b"not der")));
    assert!(reason.contains("common name"), "{reason}");
}

#[test]
fn the_department_header_is_honoured_in_development_mode_only() {
    let named = headers(&[(DEPARTMENT_HEADER, "housing"), ACTING[0], ACTING[1]]);
    let development = authenticator(Mode::Development)
        .identify(&named, None)
        .expect("development");
    assert!(matches!(
        development,
        Identity::Department(Department { proof: Proof::Header, ref code, .. }) if code.as_str() == "housing"
    ));
    let reason = unauthenticated_reason(authenticator(Mode::Production).identify(&named, None));
    assert!(reason.contains("development mode"), "{reason}");
    // Not even beside a certificate for the same department.
    let cert = certificate(&["housing"]);
    let reason =
        unauthenticated_reason(authenticator(Mode::Production).identify(&named, Some(&cert)));
    assert!(reason.contains("development mode"), "{reason}");
}

#[test]
fn proofs_naming_different_departments_are_refused() {
    let auth = authenticator(Mode::Development);
    let cert = certificate(&["housing"]);
    let same = headers(&[(DEPARTMENT_HEADER, "housing"), ACTING[0], ACTING[1]]);
    assert!(matches!(
        auth.identify(&same, Some(&cert)).expect("agree"),
        Identity::Department(Department {
            proof: Proof::Certificate,
            ..
        })
    ));
    let other = headers(&[(DEPARTMENT_HEADER, "public-security"), ACTING[0], ACTING[1]]);
    let reason = unauthenticated_reason(auth.identify(&other, Some(&cert)));
    assert!(reason.contains("different departments"), "{reason}");
}

#[test]
fn a_token_needs_a_hub_that_accepts_tokens_and_the_bearer_form() {
    let auth = authenticator(Mode::Production);
    let with = |value: &str| headers(&[("authorization", value), ACTING[0], ACTING[1]]);
    let reason = unauthenticated_reason(auth.identify(&with("Bearer abc.def.ghi"), None));
    assert!(reason.contains("accepts no tokens"), "{reason}");
    let reason = unauthenticated_reason(auth.identify(&with("Basic dXNlcjpwdw=="), None));
    assert!(reason.contains("Bearer"), "{reason}");
}

#[test]
fn a_department_names_its_acting_person_and_purpose_without_personal_numbers() {
    let auth = authenticator(Mode::Development);
    let ask = |person: Option<&str>, purpose: Option<&str>| {
        let mut pairs = vec![(DEPARTMENT_HEADER, "housing")];
        pairs.extend(person.map(|p| (PERSON_HEADER, p)));
        pairs.extend(purpose.map(|p| (PURPOSE_HEADER, p)));
        auth.identify(&headers(&pairs), None)
    };
    assert!(ask(Some("hs-7"), Some("grant:g-1")).is_ok());
    assert_eq!(violated(ask(None, Some("grant:g-1"))), PERSON_HEADER);
    assert_eq!(violated(ask(Some("hs-7"), None)), PURPOSE_HEADER);
    assert_eq!(violated(ask(Some("has space"), Some("p"))), PERSON_HEADER);
    assert_eq!(
        violated(ask(Some(&"a".repeat(65)), Some("p"))),
        PERSON_HEADER
    );
    assert_eq!(
        violated(ask(Some("hs-7"), Some(&"a".repeat(129)))),
        PURPOSE_HEADER
    );
    // A mobile number or an identity number in either header is refused, and not echoed.
    for (person, purpose, field) in [
        ("13812345678", "p", PERSON_HEADER),
        ("hs-7", "visit-11010519491231002X", PURPOSE_HEADER),
    ] {
        let err = ask(Some(person), Some(purpose)).expect_err(field);
        assert!(!format!("{err:?}").contains("12345678"), "{err:?}");
        assert!(!format!("{err:?}").contains("1949"), "{err:?}");
        assert_eq!(violated(Err(err)), field);
    }
    // Ten digits in a row (a date, a short reference) are allowed, and so is a hub id whose
    // hex happens to hold a long run of digits.
    assert!(ask(Some("hs-7"), Some("case:2026120100")).is_ok());
    assert!(
        ask(
            Some("hs-7"),
            Some("grant:5f0c1e2a-0b1c-5d2e-8f3a-138123456789")
        )
        .is_ok()
    );
    // Not a UUID, so checked: refused.
    assert_eq!(
        violated(ask(Some("hs-7"), Some("grant:x-138123456789"))),
        PURPOSE_HEADER
    );
}

/// A token issuer and an authenticator that verifies its tokens, on a clock at `now`.
fn with_tokens(mode: Mode) -> (token::TokenIssuer, Authenticator, jiff::Timestamp) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("ed25519 key");
    let issuer =
        token::TokenIssuer::from_pkcs8_pem(key.serialize_pem().as_bytes()).expect("issuer");
    let verifier =
        token::TokenVerifier::from_public_pem(key.public_key_pem().as_bytes()).expect("verifier");
    let now: jiff::Timestamp = "2026-12-01T00:00:00Z".parse().expect("time");
    let auth = Authenticator::new(
        mode,
        Some(verifier),
        registry(),
        Arc::new(ManualClock::new(now)),
    );
    (issuer, auth, now)
}

fn bearer(token: &str) -> HeaderMap {
    let value = format!("Bearer {token}");
    headers(&[("authorization", &value), ACTING[0], ACTING[1]])
}

#[test]
fn a_signed_token_proves_its_department_until_it_expires() {
    let (issuer, auth, now) = with_tokens(Mode::Production);
    let day = std::time::Duration::from_secs(86_400);
    let good = issuer
        .issue("public-security", "test", now, day)
        .expect("token");
    assert!(matches!(
        auth.identify(&bearer(&good), None).expect("proven"),
        Identity::Department(Department { proof: Proof::Token, ref code, .. }) if code.as_str() == "public-security"
    ));
    // Expired by the hub's clock (issued two days back for one day): refused, and the
    // refusal never repeats the token.
    let old = issuer
        .issue(
            "public-security",
            "test",
            now - jiff::SignedDuration::from_hours(48),
            day,
        )
        .expect("token");
    let reason = unauthenticated_reason(auth.identify(&bearer(&old), None));
    assert!(reason.contains("token refused"), "{reason}");
    assert!(!reason.contains(&old[..20]), "{reason}");
    // A token for a unit the registry does not know proves nothing.
    let stranger = issuer
        .issue("water-board", "test", now, day)
        .expect("token");
    let reason = unauthenticated_reason(auth.identify(&bearer(&stranger), None));
    assert!(
        reason.contains("not a department of the registry"),
        "{reason}"
    );
    // A token and a certificate must name the same department.
    let cert = certificate(&["housing"]);
    let reason = unauthenticated_reason(auth.identify(&bearer(&good), Some(&cert)));
    assert!(reason.contains("different departments"), "{reason}");
    let cert = certificate(&["public-security"]);
    auth.identify(&bearer(&good), Some(&cert))
        .expect("both name public security");
}
