//! The whole matrix: reader × share type × grant state × field gives exactly full, masked,
//! dropped or denied, and no masked answer holds the cleartext.

use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::*;
use crate::datasets::{
    Field, FieldType as T, Filters, Publication, Sensitivity as S, UpdateCycle, field as f,
};

const FIELDS: &[Field] = &[
    f("care_id", T::Text, S::Internal, "编号", "id"),
    f("name", T::Text, S::Personal, "姓名", "name").masked(Mask::Name),
    f(
        "identity_number",
        T::Text,
        S::Sensitive,
        "证件号",
        "id number",
    )
    .masked(Mask::IdentityNumber),
    f("phone", T::Text, S::Personal, "电话", "phone").masked(Mask::Phone),
    f("address", T::Text, S::Personal, "住址", "address").masked(Mask::Community("community")),
    f("community", T::Text, S::Internal, "社区", "community"),
    f("category", T::Text, S::Sensitive, "类别", "category"),
];

fn dataset(share: ShareType, open: OpenType) -> Dataset {
    Dataset {
        id: "roster",
        version: 1,
        title_zh: "名册",
        title_en: "roster",
        description_zh: "",
        description_en: "",
        owner: Owner::Department("civil-affairs"),
        share,
        open,
        cycle: UpdateCycle::Continuous,
        keywords: &[],
        fields: FIELDS,
        filters: Filters::default(),
        parties: &[],
        publication: Publication::Rows,
    }
}

fn stored_row() -> Row {
    let mut row = Row::new();
    for (name, value) in [
        ("care_id", "care-1"),
        ("name", "张三丰"),
        ("identity_number", "11010519491231002X"),
        ("phone", "13812345678"),
        ("address", "徐汇区漕溪北路88号3号楼501室"),
        ("community", "310104001001"),
        ("category", "severe_mental_disorder"),
    ] {
        row.insert(name.into(), Value::from(value));
    }
    // A field the dataset does not declare is never let out.
    row.insert("undeclared".into(), Value::from("secret"));
    row
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrantState {
    None,
    Approved,
    Expired,
    Revoked,
    Rejected,
    Requested,
}

const NOW: i64 = 1_800_000_000;

fn grant(state: GrantState, fields: &[&str]) -> Vec<GrantRow> {
    let now = Timestamp::from_second(NOW).expect("now");
    let (status, expires_at) = match state {
        GrantState::None => return Vec::new(),
        GrantState::Approved => ("approved", now + SignedDuration::from_hours(1)),
        // Approved, but its expiry has come: it acts at once, before the expiry event.
        GrantState::Expired => ("approved", now - SignedDuration::from_secs(1)),
        GrantState::Revoked => ("revoked", now + SignedDuration::from_hours(1)),
        GrantState::Rejected => ("rejected", now + SignedDuration::from_hours(1)),
        GrantState::Requested => ("requested", now + SignedDuration::from_hours(1)),
    };
    vec![GrantRow {
        grant_id: "g-1".into(),
        requester: "public-security".into(),
        dataset: "roster".into(),
        fields: fields.iter().map(|f| f.to_string()).collect(),
        purpose: "排查".into(),
        status: status.into(),
        expires_at: Some(expires_at),
    }]
}

/// What a reader gets of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Denied,
    Full,
    Masked,
    Dropped,
}

/// The policy, stated as a table rather than as the code states it.
fn expected(
    reader: Option<&str>,
    share: ShareType,
    open: OpenType,
    state: GrantState,
    field: &Field,
    named: bool,
) -> Outcome {
    if open == OpenType::Open || reader == Some("civil-affairs") {
        return Outcome::Full;
    }
    // The grant is public security's: no other department reads under it.
    let live = state == GrantState::Approved && reader == Some("public-security");
    let readable = reader.is_some()
        && match share {
            ShareType::Unconditional => true,
            ShareType::Conditional => live,
            ShareType::NotShared => false,
        };
    if !readable {
        return Outcome::Denied;
    }
    if (live && named) || field.sensitivity <= S::Internal {
        return Outcome::Full;
    }
    if field.name == "category" {
        Outcome::Dropped
    } else {
        Outcome::Masked
    }
}

#[test]
fn every_reader_share_type_grant_state_and_field_gives_exactly_its_outcome() {
    let now = Timestamp::from_second(NOW).expect("now");
    let stored = stored_row();
    let mut cases = 0;
    for reader in [
        None,
        Some("civil-affairs"),
        Some("public-security"),
        Some("housing"),
    ] {
        for share in [
            ShareType::Unconditional,
            ShareType::Conditional,
            ShareType::NotShared,
        ] {
            for open in [OpenType::Open, OpenType::NotOpen] {
                let dataset = dataset(share, open);
                for state in [
                    GrantState::None,
                    GrantState::Approved,
                    GrantState::Expired,
                    GrantState::Revoked,
                    GrantState::Rejected,
                    GrantState::Requested,
                ] {
                    // The grant names each field in turn (and once none), so every field is
                    // seen both named and not named.
                    for named_field in FIELDS.iter().map(|f| Some(f.name)).chain([None]) {
                        let grants = grant(state, named_field.as_slice());
                        let answer = access(&dataset, reader, &grants, now);
                        for field in FIELDS {
                            cases += 1;
                            // Only public security asked for the grant.
                            let named = named_field == Some(field.name)
                                && reader == Some("public-security");
                            let want = expected(reader, share, open, state, field, named);
                            let got = match &answer {
                                Err(_) => Outcome::Denied,
                                Ok(access) => {
                                    let out = release(&dataset, access, stored.clone());
                                    assert!(
                                        !out.contains_key("undeclared") || *access == Access::Full
                                    );
                                    match out.get(field.name) {
                                        None => Outcome::Dropped,
                                        Some(v) if v == &stored[field.name] => Outcome::Full,
                                        Some(_) => Outcome::Masked,
                                    }
                                }
                            };
                            assert_eq!(
                                got, want,
                                "{reader:?} {share:?} {open:?} {state:?} field {} named {named}",
                                field.name
                            );
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 4 * 3 * 2 * 6 * 8 * 7);
}

#[test]
fn masked_values_keep_only_what_each_form_allows() {
    let masked = mask_row(
        &dataset(ShareType::Conditional, OpenType::NotOpen),
        &BTreeSet::new(),
        stored_row(),
    );
    assert_eq!(masked["name"], "张*");
    assert_eq!(masked["identity_number"], "110105********002X");
    assert_eq!(masked["phone"], "138****5678");
    assert_eq!(masked["address"], "310104001001");
    assert_eq!(masked["care_id"], "care-1");
    assert!(!masked.contains_key("category"));
    assert!(!masked.contains_key("undeclared"));
    let bytes = serde_json::to_string(&masked).expect("json");
    for cleartext in ["三丰", "19491231", "1234", "漕溪北路", "severe", "secret"] {
        assert!(!bytes.contains(cleartext), "{cleartext} in {bytes}");
    }
}

#[test]
fn every_catalogue_field_generalised_to_a_community_points_at_a_clear_field() {
    for dataset in crate::datasets::catalogue() {
        for field in dataset.fields {
            if let Mask::Community(source) = field.mask {
                let source = dataset.field(source).expect("source field exists");
                assert_eq!(source.mask, Mask::Clear, "{}.{}", dataset.id, field.name);
            }
        }
    }
}
