//! Field rules and happy paths of the grant conversions.
use super::*;

fn names(violations: &Violations) -> Vec<&str> {
    violations
        .as_slice()
        .iter()
        .map(|v| v.field.as_str())
        .collect()
}

fn expiry() -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: 1_800_000_000,
        nanos: 0,
    }
}

fn request() -> v1::RequestGrantRequest {
    v1::RequestGrantRequest {
        request_id: "g-1".into(),
        dataset: "care_roster".into(),
        fields: vec!["community_code".into(), "risk_level".into()],
        purpose: "排查独居老人 fire safety visits".into(),
        expires_at: Some(expiry()),
    }
}

fn request_err(change: impl FnOnce(&mut v1::RequestGrantRequest)) -> Violations {
    let mut r = request();
    change(&mut r);
    ValidRequestGrant::try_from(&r).expect_err("refused")
}

fn reject() -> v1::RejectGrantRequest {
    v1::RejectGrantRequest {
        request_id: "g-2".into(),
        grant_id: "grant-1".into(),
        expected_version: Some(9),
        reason: "not the minimum necessary".into(),
    }
}

fn revoke() -> v1::RevokeGrantRequest {
    v1::RevokeGrantRequest {
        request_id: "g-3".into(),
        grant_id: "grant-1".into(),
        expected_version: None,
        reason: "purpose fulfilled".into(),
    }
}

fn approve() -> v1::ApproveGrantRequest {
    v1::ApproveGrantRequest {
        request_id: "g-4".into(),
        grant_id: "grant-1".into(),
        expected_version: Some(2),
    }
}

#[test]
fn a_good_request_becomes_the_domain_command() {
    let valid = ValidRequestGrant::try_from(&request()).expect("valid");
    assert_eq!(valid.request_id, "g-1");
    let requester = DepartmentCode::parse("public-security").expect("department");
    let command = valid.into_command(GrantId::new("grant-1"), requester.clone());
    assert_eq!(
        command,
        RequestGrant {
            grant_id: GrantId::new("grant-1"),
            requester,
            dataset: "care_roster".into(),
            fields: vec!["community_code".into(), "risk_level".into()],
            purpose: "排查独居老人 fire safety visits".into(),
            expires_at: jiff::Timestamp::from_second(1_800_000_000).expect("time"),
        }
    );
}

#[test]
fn every_problem_of_a_request_is_named() {
    let v = ValidRequestGrant::try_from(&v1::RequestGrantRequest::default())
        .expect_err("empty request");
    assert_eq!(
        names(&v),
        ["request_id", "dataset", "fields", "purpose", "expires_at"]
    );
}

#[test]
fn request_ids_are_safe_ids_up_to_64() {
    for bad in [
        "",
        "has space",
        "请求",
        "r/1",
        "50%",
        "a\"b",
        "x\\y",
        &"r".repeat(65),
    ] {
        let v = request_err(|r| r.request_id = bad.into());
        assert_eq!(names(&v), ["request_id"], "{bad:?}");
    }
    for good in ["tour-1", "a.b:c_d-9", &"r".repeat(64)] {
        let mut r = request();
        r.request_id = good.into();
        assert!(ValidRequestGrant::try_from(&r).is_ok(), "{good:?}");
    }
}

#[test]
fn datasets_are_catalogue_slugs() {
    for bad in [
        "",
        "Care_Roster",
        "care roster",
        "care/roster",
        "名册",
        &"d".repeat(65),
    ] {
        let v = request_err(|r| r.dataset = bad.into());
        assert_eq!(names(&v), ["dataset"], "{bad:?}");
    }
    for good in ["d", "property_complaint_stats", "a-1_b", &"d".repeat(64)] {
        let mut r = request();
        r.dataset = good.into();
        assert!(ValidRequestGrant::try_from(&r).is_ok(), "{good:?}");
    }
}

#[test]
fn fields_are_1_to_50_names_of_1_to_64_characters() {
    let v = request_err(|r| r.fields.clear());
    assert_eq!(names(&v), ["fields"]);
    let v = request_err(|r| r.fields = (0..51).map(|i| format!("f{i}")).collect());
    assert_eq!(names(&v), ["fields"]);
    let mut ok = request();
    ok.fields = (0..50).map(|i| format!("f{i}")).collect();
    assert!(ValidRequestGrant::try_from(&ok).is_ok());
    ok.fields = vec!["字".repeat(64)];
    assert!(ValidRequestGrant::try_from(&ok).is_ok());

    let v = request_err(|r| {
        r.fields = vec![
            "name".into(),
            String::new(),
            "f".repeat(65),
            " ".into(),
            "ok".into(),
        ]
    });
    assert_eq!(names(&v), ["fields[1]", "fields[2]", "fields[3]"]);
}

#[test]
fn purposes_are_1_to_500_characters() {
    for bad in [String::new(), " ".into(), "p".repeat(MAX_REASON_CHARS + 1)] {
        let v = request_err(|r| r.purpose = bad.clone());
        assert_eq!(names(&v), ["purpose"], "{bad:?}");
    }
    let mut ok = request();
    ok.purpose = "p".repeat(MAX_REASON_CHARS);
    assert!(ValidRequestGrant::try_from(&ok).is_ok());
}

#[test]
fn expiries_must_be_given_and_valid() {
    let v = request_err(|r| r.expires_at = None);
    assert_eq!(names(&v), ["expires_at"]);
    assert_eq!(v.as_slice()[0].reason, "must be given");
    for (seconds, nanos) in [(0, 1_000_000_000), (0, -1_000_000_000), (i64::MIN, 0)] {
        let v = request_err(|r| r.expires_at = Some(prost_types::Timestamp { seconds, nanos }));
        assert_eq!(names(&v), ["expires_at"], "{seconds} {nanos}");
        assert_eq!(v.as_slice()[0].reason, "must be a valid timestamp");
    }
}

#[test]
fn good_answers_become_domain_commands() {
    let approve = ValidGrantCommand::try_from(&approve()).expect("valid");
    assert_eq!(
        approve,
        ValidGrantCommand {
            request_id: "g-4".into(),
            grant_id: GrantId::new("grant-1"),
            expected_version: Some(2),
            command: GrantCommand::Approve,
        }
    );
    let reject = ValidGrantCommand::try_from(&reject()).expect("valid");
    assert_eq!(reject.expected_version, Some(9));
    assert_eq!(
        reject.command,
        GrantCommand::Reject {
            reason: "not the minimum necessary".into()
        }
    );
    let revoke = ValidGrantCommand::try_from(&revoke()).expect("valid");
    assert_eq!(revoke.expected_version, None);
    assert_eq!(
        revoke.command,
        GrantCommand::Revoke {
            reason: "purpose fulfilled".into()
        }
    );
}

#[test]
fn every_problem_of_an_answer_is_named() {
    let v = ValidGrantCommand::try_from(&v1::RejectGrantRequest {
        expected_version: Some(0),
        ..Default::default()
    })
    .expect_err("refused");
    assert_eq!(
        names(&v),
        ["request_id", "grant_id", "expected_version", "reason"]
    );
    let v = ValidGrantCommand::try_from(&v1::ApproveGrantRequest::default()).expect_err("refused");
    assert_eq!(names(&v), ["request_id", "grant_id"]);
}

#[test]
fn grant_ids_are_hub_ids() {
    for bad in ["", "a/b", "g 1", &"g".repeat(65)] {
        let mut r = approve();
        r.grant_id = bad.into();
        let v = ValidGrantCommand::try_from(&r).expect_err("refused");
        assert_eq!(names(&v), ["grant_id"], "{bad:?}");
    }
}

#[test]
fn expected_version_zero_is_refused() {
    let mut r = approve();
    r.expected_version = Some(0);
    let v = ValidGrantCommand::try_from(&r).expect_err("refused");
    assert_eq!(names(&v), ["expected_version"]);
}

#[test]
fn reasons_are_1_to_500_characters() {
    for bad in [String::new(), " ".into(), "r".repeat(MAX_REASON_CHARS + 1)] {
        let mut r = reject();
        r.reason = bad.clone();
        let v = ValidGrantCommand::try_from(&r).expect_err("refused");
        assert_eq!(names(&v), ["reason"], "{bad:?}");
        let mut r = revoke();
        r.reason = bad.clone();
        let v = ValidGrantCommand::try_from(&r).expect_err("refused");
        assert_eq!(names(&v), ["reason"], "{bad:?}");
    }
    let mut ok = revoke();
    ok.reason = "理".repeat(MAX_REASON_CHARS);
    assert!(ValidGrantCommand::try_from(&ok).is_ok());
}
