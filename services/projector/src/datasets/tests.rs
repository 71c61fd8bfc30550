//! The case datasets against random logs: each equals a fold over its log, and the rows (so
//! the digest) are the same whatever the batches the log was applied in.

use std::collections::BTreeMap;

use hub_api::encode_case_event;
use hub_domain::case::*;
use hub_domain::codes::{CreditCode, DepartmentCode, DivisionCode, GridCode};
use hub_log::{Classification, Entry, Envelope, StoredEvent};
use hub_store::{MemStore, ReadModelStore, digest};
use jiff::tz::{TimeZone, offset};
use jiff::{Span, Timestamp};
use proptest::prelude::*;
use serde_json::Value;

use super::case_model::{CaseModel, CaseRows};
use super::case_timeline::CaseTimeline;
use super::common::{day, month};
use super::complaint_stats::ComplaintStats;
use super::incident_stats::IncidentStats;
use super::read::{Query, read_page};
use super::response_efficiency::ResponseEfficiency;
use super::transfer_ledger::TransferLedger;
use crate::alarm::Alarms;
use crate::projection::Projection;
use crate::runner::apply_and_commit;

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department code")
}

fn tz() -> TimeZone {
    TimeZone::fixed(offset(8))
}

/// What one case does after it is reported.
#[derive(Debug, Clone)]
struct Story {
    incident: bool,
    grid: usize,
    category: usize,
    /// dispatch, accept, transfer (None / rejected / accepted), escalate, resolve, rating,
    /// close: each step happens only if the ones it needs did.
    dispatched: bool,
    accepted: bool,
    transfer: Option<bool>,
    escalated: bool,
    resolved: bool,
    rating: Option<u8>,
    closed: bool,
    /// Minutes between steps.
    gap: i64,
}

fn story() -> impl Strategy<Value = Story> {
    (
        any::<bool>(),
        0..2usize,
        0..3usize,
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(any::<bool>()),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(1..=5u8),
            any::<bool>(),
        ),
        30..900i64,
    )
        .prop_map(
            |(incident, grid, category, (d, a, t), (e, r, rating, c), gap)| Story {
                incident,
                grid,
                category,
                dispatched: d,
                accepted: d && a,
                transfer: if d && a { t } else { None },
                escalated: d && e,
                resolved: d && a && r,
                rating: if d && a && r { rating } else { None },
                closed: d && a && r && rating.is_some_and(|r| r >= 3) && c,
                gap,
            },
        )
}

const GRIDS: [&str; 2] = ["310104001001001", "310104001002001"];
/// A complaint's district, by its story's `grid`.
const DISTRICTS: [&str; 2] = ["310104", "310105"];
const INCIDENTS: [IncidentCategory; 3] = [
    IncidentCategory::Sanitation,
    IncidentCategory::Dispute,
    IncidentCategory::FireHazard,
];
const COMPLAINTS: [ComplaintCategory; 3] = [
    ComplaintCategory::Fees,
    ComplaintCategory::MaintenanceFund,
    ComplaintCategory::ServiceQuality,
];

/// The events of case `n`, in order.
fn events(n: usize, s: &Story, start: Timestamp) -> Vec<CaseEvent> {
    let id = CaseId::new(format!("case-{n}"));
    let mut at = start;
    let mut next = || {
        at += Span::new().minutes(s.gap);
        at
    };
    let reported_at = next();
    let kind = if s.incident {
        CaseKind::GridIncident(GridIncident {
            grid: GridCode::parse(GRIDS[s.grid]).expect("grid"),
            category: INCIDENTS[s.category],
            location: None,
        })
    } else {
        CaseKind::PropertyComplaint(PropertyComplaint {
            company: CreditCode::parse("91350100M000100Y43").expect("credit code"),
            // The same compound name in two districts: two rows, never one.
            compound: "华阳花园".into(),
            category: COMPLAINTS[s.category],
            district: DivisionCode::parse(DISTRICTS[s.grid]).expect("district"),
        })
    };
    let mut out = vec![CaseEvent::Reported(CaseReported {
        case_id: id.clone(),
        kind,
        description: "d".into(),
        reporter: Reporter::Resident,
        channel: hub_domain::case::ReportChannel::Hotline,
        district: DivisionCode::parse(if s.incident {
            "310104"
        } else {
            DISTRICTS[s.grid]
        })
        .expect("district"),
        dispatch_unit: dept("dcc-310104"),
        urgency: Urgency::General,
        reported_at,
        reported_by: dept("urban-management"),
    })];
    let holder = dept("urban-management");
    if s.dispatched {
        let dispatched_at = next();
        out.push(CaseEvent::Dispatched(CaseDispatched {
            case_id: id.clone(),
            department: holder.clone(),
            dispatched_by: dept("dcc-310104"),
            dispatched_at,
            accept_by: dispatched_at + Span::new().hours(2),
            resolve_by: dispatched_at + Span::new().hours(30),
        }));
    }
    if s.escalated {
        out.push(CaseEvent::Escalated(CaseEscalated {
            case_id: id.clone(),
            tier: 1,
            deadline: DeadlineKind::Accept,
            due: reported_at,
            holder: holder.clone(),
            escalated_at: next(),
        }));
    }
    let mut resolver = holder.clone();
    if s.accepted {
        out.push(CaseEvent::Accepted(CaseAccepted {
            case_id: id.clone(),
            department: holder.clone(),
            accepted_at: next(),
        }));
    }
    if let Some(accepted) = s.transfer {
        out.push(CaseEvent::TransferRequested(TransferRequested {
            case_id: id.clone(),
            from: holder.clone(),
            to: dept("housing"),
            reason: "r".into(),
            requested_at: next(),
        }));
        let at = next();
        out.push(if accepted {
            resolver = dept("housing");
            CaseEvent::TransferAccepted(TransferAccepted {
                case_id: id.clone(),
                from: holder.clone(),
                to: dept("housing"),
                accepted_at: at,
                resolve_by: at + Span::new().hours(30),
            })
        } else {
            CaseEvent::TransferRejected(TransferRejected {
                case_id: id.clone(),
                from: holder.clone(),
                to: dept("housing"),
                reason: "no".into(),
                rejected_at: at,
            })
        });
    }
    if s.resolved {
        out.push(CaseEvent::Resolved(CaseResolved {
            case_id: id.clone(),
            department: resolver.clone(),
            outcome: "done".into(),
            resolved_at: next(),
        }));
    }
    if let Some(rating) = s.rating {
        out.push(CaseEvent::Rated(CaseRated {
            case_id: id.clone(),
            rating,
            rated_by: dept("urban-management"),
            rated_at: next(),
        }));
    }
    if s.closed {
        out.push(CaseEvent::Closed(CaseClosed {
            case_id: id.clone(),
            closed_by: dept("dcc-310104"),
            closed_at: next(),
        }));
    }
    out
}

/// The log: the cases' events interleaved by `picks`, each case's in its order.
fn log(stories: &[Story], picks: &[usize]) -> Vec<(u64, CaseEvent)> {
    let start = Timestamp::from_second(1_780_000_000).expect("instant");
    let mut queues: Vec<std::collections::VecDeque<CaseEvent>> = stories
        .iter()
        .enumerate()
        .map(|(n, s)| events(n, s, start + Span::new().hours(n as i64 * 5)).into())
        .collect();
    let mut out = Vec::new();
    let mut pick = picks.iter().cycle();
    while queues.iter().any(|q| !q.is_empty()) {
        let live: Vec<usize> = (0..queues.len())
            .filter(|&i| !queues[i].is_empty())
            .collect();
        let i = live[pick.next().copied().unwrap_or(0) % live.len()];
        let event = queues[i].pop_front().expect("non-empty");
        out.push((out.len() as u64 + 1, event));
    }
    out
}

fn entry(position: u64, event: &CaseEvent) -> Entry {
    let (event_type, body) = encode_case_event(event);
    let id = event.case_id().as_str();
    Entry::Event(StoredEvent {
        position,
        subject: format!("gov.events.case.{id}"),
        stored_at: jiff::Timestamp::UNIX_EPOCH,
        envelope: Envelope {
            id: format!("e{position}"),
            source: "/departments/urban-management".into(),
            event_type: event_type.name.into(),
            subject: format!("case/{id}"),
            time: Timestamp::from_second(1_780_000_000 + position as i64).expect("instant"),
            dataschema: event_type.dataschema.into(),
            department: "urban-management".into(),
            classification: Classification::Internal,
            schema_version: event_type.schema_version,
            correlation_id: String::new(),
            causation_id: String::new(),
            traceparent: String::new(),
            request_id: format!("r{position}"),
            command_hash: String::new(),
            acting_person: String::new(),
        },
        body: body.into(),
        upcast_from: None,
    })
}

/// Applies the log to a fresh store in batches of the given sizes (cycled), each batch also
/// carrying the last two events of the one before, as a redelivery after a lost ack would:
/// they are at or below the checkpoint and must change nothing.
fn build(projection: &dyn Projection, log: &[(u64, CaseEvent)], sizes: &[usize]) -> MemStore {
    let store = MemStore::new();
    let entries: Vec<Entry> = log.iter().map(|(p, e)| entry(*p, e)).collect();
    let mut start = 0;
    let mut size = sizes.iter().cycle();
    while start < entries.len() {
        let n = (*size.next().unwrap_or(&1)).clamp(1, entries.len() - start);
        let redelivered = start.saturating_sub(2);
        apply_and_commit(&store, projection, &entries[redelivered..start + n]).expect("applies");
        start += n;
    }
    store
}

fn all_rows(
    store: &MemStore,
    projection: &CaseModel<impl CaseRows>,
) -> Vec<serde_json::Map<String, Value>> {
    let query = Query {
        limit: usize::MAX,
        ..Query::default()
    };
    read_page(store, projection_dataset(projection), &query)
        .expect("reads")
        .rows
}

fn projection_dataset<M: CaseRows>(projection: &CaseModel<M>) -> &'static super::Dataset {
    super::catalogue()
        .into_iter()
        .find(|d| d.id == projection.name())
        .expect("in the catalogue")
}

fn int(row: &serde_json::Map<String, Value>, field: &str) -> i64 {
    row[field]
        .as_i64()
        .unwrap_or_else(|| panic!("{field} in {row:?}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn the_case_datasets_are_folds_over_their_log_whatever_the_batches(
        stories in prop::collection::vec(story(), 1..12),
        picks in prop::collection::vec(0..12usize, 1..40),
        sizes in prop::collection::vec(1..9usize, 1..6),
    ) {
        let log = log(&stories, &picks);
        let alarms = Alarms::default();
        fn model<M: CaseRows>(rows: M, alarms: &Alarms) -> CaseModel<M> {
            CaseModel::new(rows, tz(), alarms.clone())
        }

        // incident_stats: one row per (day, grid, category), each counter a plain count.
        let stats = model(IncidentStats, &alarms);
        let store = build(&stats, &log, &sizes);
        let mut folded: BTreeMap<(String, String, String), [i64; 3]> = BTreeMap::new();
        let mut facts: BTreeMap<String, (String, String)> = BTreeMap::new();
        for (_, event) in &log {
            let (at, i) = match event {
                CaseEvent::Reported(e) => {
                    if let CaseKind::GridIncident(g) = &e.kind {
                        facts.insert(e.case_id.to_string(), (g.grid.to_string(), super::common::incident_category(g.category).into()));
                    }
                    (e.reported_at, 0)
                }
                CaseEvent::Resolved(e) => (e.resolved_at, 1),
                CaseEvent::Closed(e) => (e.closed_at, 2),
                _ => continue,
            };
            if let Some((grid, category)) = facts.get(event.case_id().as_str()) {
                folded.entry((day(&tz(), at), grid.clone(), category.clone())).or_default()[i] += 1;
            }
        }
        let rows = all_rows(&store, &stats);
        let got: BTreeMap<(String, String, String), [i64; 3]> = rows
            .iter()
            .map(|r| {
                let key = (r["day"].as_str().unwrap_or_default().to_owned(), r["grid_code"].as_str().unwrap_or_default().to_owned(), r["category"].as_str().unwrap_or_default().to_owned());
                (key, [int(r, "reported"), int(r, "resolved"), int(r, "closed")])
            })
            .collect();
        prop_assert_eq!(got, folded);

        // property_complaint_stats: complaints and ratings per month, company, compound, category.
        let complaints = model(ComplaintStats, &alarms);
        let store = build(&complaints, &log, &sizes);
        let complained = stories.iter().filter(|s| !s.incident).count() as i64;
        let ratings: i64 = stories.iter().filter(|s| !s.incident).filter_map(|s| s.rating).map(i64::from).sum();
        let rows = all_rows(&store, &complaints);
        prop_assert_eq!(rows.iter().map(|r| int(r, "complaints")).sum::<i64>(), complained);
        prop_assert_eq!(rows.iter().map(|r| int(r, "rating_sum")).sum::<i64>(), ratings);
        for district in DISTRICTS {
            let here = |r: &&serde_json::Map<String, Value>| r["district_code"] == district;
            let expected = stories.iter().filter(|s| !s.incident && DISTRICTS[s.grid] == district).count() as i64;
            prop_assert_eq!(rows.iter().filter(here).map(|r| int(r, "complaints")).sum::<i64>(), expected, "{}", district);
        }
        for r in &rows {
            let months: Vec<String> = log.iter().filter_map(|(_, e)| match e {
                CaseEvent::Reported(e) => Some(month(&tz(), e.reported_at)),
                _ => None,
            }).collect();
            prop_assert!(months.iter().any(|m| r["month"] == m.as_str()) || int(r, "complaints") == 0);
        }

        // transfer_ledger: one row per request, with its outcome.
        let ledger = model(TransferLedger, &alarms);
        let store = build(&ledger, &log, &sizes);
        let rows = all_rows(&store, &ledger);
        let mut outcomes: Vec<&str> = rows.iter().map(|r| r["outcome"].as_str().unwrap_or_default()).collect();
        outcomes.sort_unstable();
        let mut expected: Vec<&str> = stories
            .iter()
            .filter_map(|s| s.transfer.map(|a| if a { "accepted" } else { "rejected" }))
            .collect();
        expected.sort_unstable();
        prop_assert_eq!(outcomes, expected);

        // response_efficiency: dispatches, resolutions and ratings each counted once.
        let efficiency = model(ResponseEfficiency, &alarms);
        let store = build(&efficiency, &log, &sizes);
        let rows = all_rows(&store, &efficiency);
        let sum = |f: &str| rows.iter().map(|r| int(r, f)).sum::<i64>();
        prop_assert_eq!(sum("dispatched"), stories.iter().filter(|s| s.dispatched).count() as i64);
        prop_assert_eq!(sum("resolved"), stories.iter().filter(|s| s.resolved).count() as i64);
        prop_assert_eq!(sum("escalated"), stories.iter().filter(|s| s.escalated).count() as i64);
        prop_assert_eq!(sum("rated"), stories.iter().filter(|s| s.rating.is_some()).count() as i64);
        // Complaints are resolved in their own district's rows.
        let resolved_in = |district: &str| rows.iter().filter(|r| r["district_code"] == district).map(|r| int(r, "resolved")).sum::<i64>();
        let complaints_resolved = |district: &str| stories.iter().filter(|s| s.resolved && !s.incident && DISTRICTS[s.grid] == district).count() as i64;
        prop_assert_eq!(resolved_in("310105"), complaints_resolved("310105"));

        // case_timeline: every event once.
        let timeline = model(CaseTimeline, &alarms);
        let store = build(&timeline, &log, &sizes);
        prop_assert_eq!(all_rows(&store, &timeline).len(), log.len());

        // Every model: the same rows, so the same digest, applied one event at a time.
        prop_assert_eq!(digest(&build(&stats, &log, &sizes)).expect("d"), digest(&build(&stats, &log, &[1])).expect("d"));
        prop_assert_eq!(digest(&build(&efficiency, &log, &sizes)).expect("d"), digest(&build(&efficiency, &log, &[1])).expect("d"));
        prop_assert_eq!(digest(&build(&ledger, &log, &sizes)).expect("d"), digest(&build(&ledger, &log, &[1])).expect("d"));
        prop_assert_eq!(digest(&store).expect("d"), digest(&build(&timeline, &log, &[1000])).expect("d"));
        prop_assert!(alarms.list().is_empty(), "{:?}", alarms.list());
    }
}

#[test]
fn a_digest_differs_when_one_row_differs() {
    let (a, b) = (MemStore::new(), MemStore::new());
    let put = |k: &str, v: &str| hub_store::Write::Put {
        key: k.as_bytes().to_vec(),
        value: v.as_bytes().to_vec(),
    };
    a.commit(vec![put("d/x", "1"), put("d/y", "2")], 2)
        .expect("commit");
    b.commit(vec![put("d/x", "1")], 1).expect("commit");
    b.commit(vec![put("d/y", "2")], 2).expect("commit");
    assert_eq!(digest(&a).expect("digest"), digest(&b).expect("digest"));
    b.commit(vec![put("d/y", "3")], 3).expect("commit");
    assert_ne!(
        digest(&a).expect("digest").sha256,
        digest(&b).expect("digest").sha256
    );
}
