//! Field rules and happy paths of the care conversions.
use super::*;

/// A published example number (GB 11643), valid check character `X`.
const ID: &str = "11010519491231002X";
const NAME: &str = "张三丰";

fn fields(violations: &Violations) -> Vec<&str> {
    violations
        .as_slice()
        .iter()
        .map(|v| v.field.as_str())
        .collect()
}

fn register() -> v1::RegisterCareRequest {
    v1::RegisterCareRequest {
        request_id: "r-1".into(),
        name: format!(" {NAME} "),
        identity_number: ID.into(),
        category: v1::CareCategory::ElderlyInHardship as i32,
        community_code: "310104001002".into(),
        risk_level: v1::RiskLevel::Medium as i32,
        phone: "13812345678".into(),
        address: " 徐汇区漕溪北路88号 ".into(),
    }
}

fn register_err(change: impl FnOnce(&mut v1::RegisterCareRequest)) -> Violations {
    let mut request = register();
    change(&mut request);
    ValidRegisterCare::try_from(&request).expect_err("refused")
}

fn visit() -> v1::LogCareVisitRequest {
    v1::LogCareVisitRequest {
        request_id: "r-2".into(),
        care_id: "c-1".into(),
        expected_version: Some(3),
        visited_at: Some(prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 5,
        }),
        visitor: "SW-0042".into(),
        notes: "独居，身体尚可".into(),
    }
}

fn visit_err(change: impl FnOnce(&mut v1::LogCareVisitRequest)) -> Violations {
    let mut request = visit();
    change(&mut request);
    ValidCareCommand::try_from(&request).expect_err("refused")
}

fn change_risk() -> v1::ChangeCareRiskLevelRequest {
    v1::ChangeCareRiskLevelRequest {
        request_id: "r-3".into(),
        care_id: "c-1".into(),
        expected_version: None,
        risk_level: v1::RiskLevel::High as i32,
        reason: "relapse reported".into(),
    }
}

fn close() -> v1::CloseCareRequest {
    v1::CloseCareRequest {
        request_id: "r-4".into(),
        care_id: "c-1".into(),
        expected_version: None,
        reason: "moved away".into(),
    }
}

#[test]
fn a_good_registration_becomes_the_domain_command() {
    let valid = ValidRegisterCare::try_from(&register()).expect("valid");
    assert_eq!(valid.request_id, "r-1");
    assert_eq!(valid.name, NAME, "trimmed");
    let command = valid.into_command(CareId::new("care-1"));
    assert_eq!(
        command,
        RegisterCare {
            care_id: CareId::new("care-1"),
            name: NAME.into(),
            identity_number: IdentityNumber::parse(ID).expect("id"),
            category: CareCategory::ElderlyInHardship,
            community: CommunityCode::parse("310104001002").expect("community"),
            risk_level: RiskLevel::Medium,
            phone: "13812345678".into(),
            address: "徐汇区漕溪北路88号".into(),
        }
    );
    // A lowercase check character is normalised.
    let mut lower = register();
    lower.identity_number = ID.to_lowercase();
    let valid = ValidRegisterCare::try_from(&lower).expect("valid");
    assert_eq!(valid.identity_number.expose(), ID);
}

#[test]
fn every_problem_of_a_registration_is_named() {
    let violations = ValidRegisterCare::try_from(&v1::RegisterCareRequest::default())
        .expect_err("empty request");
    assert_eq!(
        fields(&violations),
        [
            "request_id",
            "name",
            "identity_number",
            "category",
            "community_code",
            "risk_level"
        ]
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
        let v = register_err(|r| r.request_id = bad.into());
        assert_eq!(fields(&v), ["request_id"], "{bad:?}");
    }
    for good in ["tour-1", "a.b:c_d-9", &"r".repeat(64)] {
        let mut ok = register();
        ok.request_id = good.into();
        assert!(ValidRegisterCare::try_from(&ok).is_ok(), "{good:?}");
    }
}

#[test]
fn names_are_1_to_50_characters() {
    for bad in [
        String::new(),
        "  ".into(),
        "名".repeat(51),
        "a\u{7}b".into(),
    ] {
        let v = register_err(|r| r.name = bad.clone());
        assert_eq!(fields(&v), ["name"], "{bad:?}");
    }
    let mut ok = register();
    ok.name = "名".repeat(50);
    assert!(ValidRegisterCare::try_from(&ok).is_ok());
}

#[test]
fn identity_numbers_are_checked_and_never_echoed() {
    for bad in [
        "",
        "110105194912310021",
        "11010519490230002X",
        "1101051949",
        "1101051949123100AX",
    ] {
        let v = register_err(|r| r.identity_number = bad.into());
        assert_eq!(fields(&v), ["identity_number"], "{bad:?}");
        let shown = format!("{v} {v:?}");
        assert!(bad.is_empty() || !shown.contains(bad), "{shown}");
        assert!(!shown.contains("110105"), "{shown}");
    }
}

#[test]
fn phone_numbers_and_addresses_are_optional_but_checked_and_never_echoed() {
    for good in ["", "13812345678", "021-64870000", "0571-8765432"] {
        let mut request = register();
        request.phone = good.into();
        let valid = ValidRegisterCare::try_from(&request).expect(good);
        assert_eq!(valid.phone, good);
    }
    for bad in [
        "1381234567",
        "23812345678",
        "138-1234-5678",
        "21-64870000",
        "021-648700001",
        "+8613812345678",
    ] {
        let v = register_err(|r| r.phone = bad.into());
        assert_eq!(fields(&v), ["phone"], "{bad:?}");
        let shown = format!("{v} {v:?}");
        assert!(!shown.contains(bad), "{shown}");
    }
    let mut request = register();
    request.address = "  ".into();
    assert_eq!(
        ValidRegisterCare::try_from(&request).expect("none").address,
        ""
    );
    let v = register_err(|r| r.address = "路".repeat(101));
    assert_eq!(fields(&v), ["address"]);
    let v = register_err(|r| r.address = "漕溪北路\u{7}88号".into());
    assert_eq!(fields(&v), ["address"]);
    let shown = format!(
        "{:?}",
        ValidRegisterCare::try_from(&register()).expect("valid")
    );
    assert!(
        !shown.contains("5678") && !shown.contains("漕溪"),
        "{shown}"
    );
}

#[test]
fn community_codes_are_12_digits() {
    for bad in ["", "31010400100", "31010400100x", "310104001002003"] {
        let v = register_err(|r| r.community_code = bad.into());
        assert_eq!(fields(&v), ["community_code"], "{bad:?}");
    }
}

#[test]
fn categories_and_risk_levels_must_be_known() {
    for bad in [0, 5, -1, 99] {
        let v = register_err(|r| r.category = bad);
        assert_eq!(fields(&v), ["category"], "{bad}");
    }
    for bad in [0, 4, -1, 99] {
        let v = register_err(|r| r.risk_level = bad);
        assert_eq!(fields(&v), ["risk_level"], "{bad}");
    }
    let mut request = change_risk();
    request.risk_level = 0;
    let v = ValidCareCommand::try_from(&request).expect_err("unspecified");
    assert_eq!(fields(&v), ["risk_level"]);
}

#[test]
fn nothing_shown_of_a_registration_names_the_person() {
    let valid = ValidRegisterCare::try_from(&register()).expect("valid");
    let command = ValidCareCommand {
        request_id: valid.request_id.clone(),
        care_id: CareId::new("care-1"),
        expected_version: None,
        command: CareCommand::Register(valid.clone().into_command(CareId::new("care-1"))),
    };
    for shown in [format!("{valid:?}"), format!("{command:?}")] {
        assert!(!shown.contains(NAME), "{shown}");
        assert!(!shown.contains("19491231"), "{shown}");
        assert!(shown.contains("ElderlyInHardship"), "{shown}");
    }
    let other = ValidCareCommand::try_from(&close()).expect("valid");
    assert!(format!("{other:?}").contains("moved away"));
}

#[test]
fn a_good_visit_becomes_the_domain_command() {
    let valid = ValidCareCommand::try_from(&visit()).expect("valid");
    assert_eq!(valid.request_id, "r-2");
    assert_eq!(valid.care_id, CareId::new("c-1"));
    assert_eq!(valid.expected_version, Some(3));
    assert_eq!(
        valid.command,
        CareCommand::LogVisit {
            visited_at: jiff::Timestamp::new(1_790_000_000, 5).expect("time"),
            visitor: "SW-0042".into(),
            notes: "独居，身体尚可".into(),
        }
    );
}

#[test]
fn every_problem_of_a_visit_is_named() {
    let request = v1::LogCareVisitRequest {
        expected_version: Some(0),
        notes: "x".repeat(MAX_DESCRIPTION_CHARS + 1),
        ..Default::default()
    };
    let v = ValidCareCommand::try_from(&request).expect_err("refused");
    assert_eq!(
        fields(&v),
        [
            "request_id",
            "care_id",
            "expected_version",
            "visited_at",
            "visitor",
            "notes"
        ]
    );
}

#[test]
fn care_ids_are_hub_ids() {
    for bad in ["", "a/b", "c 1", &"c".repeat(65)] {
        let v = visit_err(|r| r.care_id = bad.into());
        assert_eq!(fields(&v), ["care_id"], "{bad:?}");
    }
    let mut ok = visit();
    ok.care_id = "8c1f6a2e-4b7d-5f0a-9e35-2d6b1c0f7a41".into();
    assert!(ValidCareCommand::try_from(&ok).is_ok());
}

#[test]
fn expected_version_zero_is_refused() {
    let v = visit_err(|r| r.expected_version = Some(0));
    assert_eq!(fields(&v), ["expected_version"]);
    let mut none = visit();
    none.expected_version = None;
    assert_eq!(
        ValidCareCommand::try_from(&none)
            .expect("valid")
            .expected_version,
        None
    );
}

#[test]
fn visits_need_a_valid_time() {
    let v = visit_err(|r| r.visited_at = None);
    assert_eq!(fields(&v), ["visited_at"]);
    assert_eq!(v.as_slice()[0].reason, "must be given");
    for (seconds, nanos) in [(0, 1_000_000_000), (0, -1_000_000_000), (i64::MAX, 0)] {
        let v = visit_err(|r| r.visited_at = Some(prost_types::Timestamp { seconds, nanos }));
        assert_eq!(fields(&v), ["visited_at"], "{seconds} {nanos}");
        assert_eq!(v.as_slice()[0].reason, "must be a valid timestamp");
    }
}

#[test]
fn visitors_are_1_to_32_characters() {
    for bad in [String::new(), " ".into(), "v".repeat(33)] {
        let v = visit_err(|r| r.visitor = bad.clone());
        assert_eq!(fields(&v), ["visitor"], "{bad:?}");
    }
    let mut ok = visit();
    ok.visitor = "v".repeat(32);
    assert!(ValidCareCommand::try_from(&ok).is_ok());
}

#[test]
fn notes_may_be_empty_up_to_2000_characters() {
    for (notes, kept) in [("", ""), ("  ", ""), (" fine ", "fine")] {
        let mut request = visit();
        request.notes = notes.into();
        let valid = ValidCareCommand::try_from(&request).expect("valid");
        assert!(
            matches!(&valid.command, CareCommand::LogVisit { notes, .. } if notes == kept),
            "{notes:?}"
        );
    }
    let mut ok = visit();
    ok.notes = "记".repeat(MAX_DESCRIPTION_CHARS);
    assert!(ValidCareCommand::try_from(&ok).is_ok());
    for bad in ["记".repeat(MAX_DESCRIPTION_CHARS + 1), "a\u{0}b".into()] {
        let v = visit_err(|r| r.notes = bad.clone());
        assert_eq!(fields(&v), ["notes"]);
    }
}

#[test]
fn a_good_risk_level_change_becomes_the_domain_command() {
    let valid = ValidCareCommand::try_from(&change_risk()).expect("valid");
    assert_eq!(
        valid.command,
        CareCommand::ChangeRiskLevel {
            to: RiskLevel::High,
            reason: "relapse reported".into(),
        }
    );
}

#[test]
fn a_good_closing_becomes_the_domain_command() {
    let valid = ValidCareCommand::try_from(&close()).expect("valid");
    assert_eq!(
        valid.command,
        CareCommand::Close {
            reason: "moved away".into()
        }
    );
}

#[test]
fn reasons_are_1_to_500_characters() {
    for bad in [String::new(), " ".into(), "r".repeat(MAX_REASON_CHARS + 1)] {
        let mut change = change_risk();
        change.reason = bad.clone();
        let v = ValidCareCommand::try_from(&change).expect_err("refused");
        assert_eq!(fields(&v), ["reason"], "{bad:?}");
        let mut request = close();
        request.reason = bad.clone();
        let v = ValidCareCommand::try_from(&request).expect_err("refused");
        assert_eq!(fields(&v), ["reason"], "{bad:?}");
    }
    let mut ok = close();
    ok.reason = "r".repeat(MAX_REASON_CHARS);
    assert!(ValidCareCommand::try_from(&ok).is_ok());
}

#[test]
fn enums_map_both_ways() {
    for category in [
        CareCategory::DrugRehabilitation,
        CareCategory::SevereMentalDisorder,
        CareCategory::ElderlyInHardship,
        CareCategory::LeftBehindChild,
    ] {
        let wire = care_category_to_proto(category) as i32;
        assert_eq!(care_category_from_proto(wire), Some(category));
    }
    for level in [RiskLevel::Low, RiskLevel::Medium, RiskLevel::High] {
        let wire = risk_level_to_proto(level) as i32;
        assert_eq!(risk_level_from_proto(wire), Some(level));
    }
    assert_eq!(care_category_from_proto(0), None);
    assert_eq!(risk_level_from_proto(0), None);
}
