#![allow(clippy::unwrap_used)]

use hub_api::v1::AuditRecord;

use super::*;

const CARE_A: &str = "0b8f3c1e-7a6d-4f2e-9c1b-2d3e4f5a6b7c";
const CARE_B: &str = "1c9a4d2f-8b7e-4a3f-8d2c-3e4f5a6b7c8d";

fn time(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

fn read(department: &str, persons: &[&str], at: i64) -> AuditRecord {
    AuditRecord {
        time: Some(time(at)),
        department: department.to_owned(),
        action: "gov.hub.v1.DatasetService/ReadDataset".to_owned(),
        outcome: OK.to_owned(),
        persons: persons.iter().map(|p| (*p).to_owned()).collect(),
        clear_fields: vec!["name".to_owned()],
        grants: vec!["g-1".to_owned()],
        purpose: "case-7".to_owned(),
        ..Default::default()
    }
}

fn feed(department: &str, person: &str, event_id: &str, at: i64) -> AuditRecord {
    AuditRecord {
        action: format!("{FEED_ACTION_PREFIX}FEED_{department}"),
        event_ids: vec![event_id.to_owned()],
        position: 42,
        ..read(department, &[person], at)
    }
}

fn delivered(sequence: u64, records: Vec<AuditRecord>) -> Delivered {
    Delivered {
        sequence,
        stored_nanos: i64::try_from(sequence).unwrap() * 1_000_000_000,
        batch: Some(AuditBatch {
            instance: "hub-1".to_owned(),
            records,
            ..Default::default()
        }),
    }
}

fn query<'a>() -> LedgerQuery<'a> {
    LedgerQuery {
        care_id: None,
        department: Department::Any,
        from: None,
        to: None,
        after: None,
        limit: 100,
    }
}

fn summary(page: &LedgerPage) -> Vec<(String, String, u64, u32)> {
    page.disclosures
        .iter()
        .map(|d| (d.care_id.clone(), d.department.clone(), d.sequence, d.index))
        .collect()
}

fn entry(care: &str, department: &str, sequence: u64, index: u32) -> (String, String, u64, u32) {
    (care.to_owned(), department.to_owned(), sequence, index)
}

#[test]
fn answered_records_naming_persons_are_entered_and_found_by_each_index() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let refused = AuditRecord {
        outcome: "permission_denied".to_owned(),
        ..read("310000000002", &[CARE_A], 10)
    };
    ledger
        .apply(&[
            // The same person twice in one answer is one disclosure.
            delivered(3, vec![read("310000000001", &[CARE_A, CARE_B, CARE_A], 10)]),
            delivered(4, vec![refused, read("310000000002", &[], 11)]),
            delivered(5, vec![read("310000000002", &[CARE_B], 12)]),
            // A batch that does not decode is passed over, its position still counted.
            Delivered {
                sequence: 6,
                stored_nanos: 6,
                batch: None,
            },
        ])
        .unwrap();
    assert_eq!(ledger.position(), 6);

    let all = ledger.query(&query()).unwrap();
    assert_eq!(
        summary(&all),
        vec![
            entry(CARE_A, "310000000001", 3, 0),
            entry(CARE_B, "310000000001", 3, 0),
            entry(CARE_B, "310000000002", 5, 0),
        ]
    );
    assert_eq!(all.next, None);
    let first = &all.disclosures[0];
    assert_eq!(first.grants, vec!["g-1".to_owned()]);
    assert_eq!(first.clear_fields, vec!["name".to_owned()]);
    assert_eq!(first.purpose, "case-7");
    assert_eq!(first.instance, "hub-1");

    let by_care = ledger
        .query(&LedgerQuery {
            care_id: Some(CARE_B),
            ..query()
        })
        .unwrap();
    assert_eq!(
        summary(&by_care),
        vec![
            entry(CARE_B, "310000000001", 3, 0),
            entry(CARE_B, "310000000002", 5, 0)
        ]
    );
    let by_department = ledger
        .query(&LedgerQuery {
            department: Department::Code("310000000002"),
            ..query()
        })
        .unwrap();
    assert_eq!(
        summary(&by_department),
        vec![entry(CARE_B, "310000000002", 5, 0)]
    );
    let both = ledger
        .query(&LedgerQuery {
            care_id: Some(CARE_A),
            department: Department::Code("310000000002"),
            ..query()
        })
        .unwrap();
    assert!(both.disclosures.is_empty(), "the refusal disclosed nothing");
    let public = ledger
        .query(&LedgerQuery {
            department: Department::Public,
            ..query()
        })
        .unwrap();
    assert!(public.disclosures.is_empty());

    // Reopened, it stands where it stood.
    drop(ledger);
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(ledger.position(), 6);
    assert_eq!(ledger.query(&query()).unwrap(), all);
}

#[test]
fn a_feed_delivery_recorded_twice_is_entered_once() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger
        .apply(&[
            delivered(1, vec![feed("310000000001", CARE_A, "ev-1", 10)]),
            // Sent again after a crash, in the same run and in a later one.
            delivered(2, vec![feed("310000000001", CARE_A, "ev-1", 11)]),
        ])
        .unwrap();
    ledger
        .apply(&[delivered(
            3,
            vec![
                feed("310000000001", CARE_A, "ev-1", 12),
                // Another event, and the same event to another department, are entries.
                feed("310000000001", CARE_A, "ev-2", 12),
                feed("310000000002", CARE_A, "ev-1", 12),
            ],
        )])
        .unwrap();
    let page = ledger.query(&query()).unwrap();
    assert_eq!(
        summary(&page),
        vec![
            entry(CARE_A, "310000000001", 1, 0),
            entry(CARE_A, "310000000001", 3, 1),
            entry(CARE_A, "310000000002", 3, 2),
        ]
    );
    assert_eq!(page.disclosures[0].event_id, "ev-1");
    assert_eq!(page.disclosures[0].position, 42);
    assert_eq!(page.disclosures[1].event_id, "ev-2");
}

#[test]
fn pages_end_at_a_record_and_go_on_from_their_token() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger
        .apply(&[
            delivered(1, vec![read("310000000001", &[CARE_A, CARE_B], 10)]),
            delivered(
                2,
                vec![
                    read("310000000002", &[CARE_A], 11),
                    read("310000000003", &[CARE_B], 12),
                ],
            ),
        ])
        .unwrap();
    let one = LedgerQuery {
        limit: 1,
        ..query()
    };
    // A record's persons are never split between pages.
    let first = ledger.query(&one).unwrap();
    assert_eq!(
        summary(&first),
        vec![
            entry(CARE_A, "310000000001", 1, 0),
            entry(CARE_B, "310000000001", 1, 0)
        ]
    );
    let token = first.next.expect("more to come");
    assert_eq!(
        token,
        Place {
            sequence: 1,
            index: 0
        }
    );
    let second = ledger
        .query(&LedgerQuery {
            after: Some(token),
            ..one.clone()
        })
        .unwrap();
    assert_eq!(summary(&second), vec![entry(CARE_A, "310000000002", 2, 0)]);
    let third = ledger
        .query(&LedgerQuery {
            after: second.next,
            ..one.clone()
        })
        .unwrap();
    assert_eq!(summary(&third), vec![entry(CARE_B, "310000000003", 2, 1)]);
    assert_eq!(third.next, None, "the last record ends the ledger");
    // The same token gives the same page, also once the ledger has grown.
    ledger
        .apply(&[delivered(3, vec![read("310000000004", &[CARE_A], 13)])])
        .unwrap();
    let again = ledger
        .query(&LedgerQuery {
            after: Some(token),
            ..one.clone()
        })
        .unwrap();
    assert_eq!(again, second);
}

#[test]
fn a_time_range_keeps_what_was_made_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    ledger
        .apply(&[
            delivered(100, vec![read("310000000001", &[CARE_A], 100)]),
            delivered(200, vec![read("310000000002", &[CARE_A], 200)]),
            delivered(300, vec![read("310000000003", &[CARE_A], 300)]),
        ])
        .unwrap();
    let at = |s| Timestamp::from_second(s).unwrap();
    let page = ledger
        .query(&LedgerQuery {
            from: Some(at(150)),
            to: Some(at(300)),
            ..query()
        })
        .unwrap();
    assert_eq!(summary(&page), vec![entry(CARE_A, "310000000002", 200, 0)]);
}

#[test]
fn a_log_created_again_or_shorter_than_the_ledger_is_refused_and_the_ledger_kept() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    assert_eq!(
        ledger.check_log("created-1", 0).unwrap(),
        Ok(()),
        "a first start"
    );
    ledger
        .apply(&[delivered(5, vec![read("310000000001", &[CARE_A], 10)])])
        .unwrap();
    assert_eq!(
        ledger.check_log("created-1", 5).unwrap(),
        Ok(()),
        "the same log"
    );
    assert_eq!(ledger.check_log("created-1", 9).unwrap(), Ok(()), "grown");
    let shorter = ledger.check_log("created-1", 4).unwrap().unwrap_err();
    assert!(shorter.contains("ends at sequence 4"), "{shorter}");
    let again = ledger.check_log("created-2", 9).unwrap().unwrap_err();
    assert!(again.contains("created again"), "{again}");
    // Nothing was cleared: the ledger stands as it was for an operator to look at.
    assert_eq!(ledger.position(), 5);
    assert_eq!(ledger.query(&query()).unwrap().disclosures.len(), 1);
}

#[test]
fn feed_deliveries_without_an_event_id_are_each_entered() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path()).unwrap();
    let without = || AuditRecord {
        event_ids: Vec::new(),
        ..feed("310000000001", CARE_A, "", 10)
    };
    ledger
        .apply(&[delivered(1, vec![without()]), delivered(2, vec![without()])])
        .unwrap();
    assert_eq!(ledger.query(&query()).unwrap().disclosures.len(), 2);
}
