//! The state as of any position, or as of its stored time, is what the read model showed
//! then: a seeded walk of random case commands, each position's state compared with the
//! case as it was read right after.

use std::collections::BTreeMap;

use hub_api::v1::{self, CaseStatus, GetStateAsOfResponse, get_state_as_of_request::AsOf};
use hub_tests::{Hub, HubBuilder};

use crate::audit_history::{all_events, state};
use crate::cmd::*;
use crate::{from, incident, read_case};

/// A small deterministic generator (xorshift64*), so a failing sequence can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

/// What the test knows of a case, to choose a command that is valid next.
#[derive(Debug, Clone)]
struct Model {
    id: String,
    status: CaseStatus,
    holder: &'static str,
    pending: Option<&'static str>,
}

const HOLDERS: [&str; 2] = ["urban-management", "housing"];

fn other_than(department: &str) -> &'static str {
    if department == HOLDERS[0] {
        HOLDERS[1]
    } else {
        HOLDERS[0]
    }
}

/// One valid next command for `case`, chosen by `rng`; runs it and returns its result and
/// how many events it appended. `None` when the case takes no more commands.
async fn step(hub: &Hub, rng: &mut Rng, case: &mut Model, rid: &str) -> Option<(u64, u64)> {
    let id = case.id.clone();
    let id = id.as_str();
    let accepted = |outcome: Outcome| outcome.unwrap_or_else(|s| panic!("{rid}: {s:?}"));
    let (result, events) = match (case.status, case.pending) {
        (CaseStatus::Reported, _) => {
            let to = HOLDERS[rng.below(2)];
            let r = dispatch(hub, "dcc-310104", rid, id, to, None).await;
            (case.status, case.holder) = (CaseStatus::Dispatched, to);
            (accepted(r), 1)
        }
        (CaseStatus::Dispatched | CaseStatus::Accepted, Some(to)) => {
            if rng.below(2) == 0 {
                let r = accept_transfer(hub, to, rid, id).await;
                (case.status, case.holder) = (CaseStatus::Accepted, to);
                case.pending = None;
                (accepted(r), 1)
            } else {
                let r = reject_transfer(hub, to, rid, id).await;
                case.pending = None;
                (accepted(r), 1)
            }
        }
        (CaseStatus::Dispatched, None) => {
            if rng.below(3) == 0 {
                let to = other_than(case.holder);
                let r = transfer(hub, case.holder, rid, id, to).await;
                case.pending = Some(to);
                (accepted(r), 1)
            } else {
                let r = accept(hub, case.holder, rid, id, None).await;
                case.status = CaseStatus::Accepted;
                (accepted(r), 1)
            }
        }
        (CaseStatus::Accepted, None) => {
            if rng.below(3) == 0 {
                let to = other_than(case.holder);
                let r = transfer(hub, case.holder, rid, id, to).await;
                case.pending = Some(to);
                (accepted(r), 1)
            } else {
                let r = resolve(hub, case.holder, rid, id).await;
                case.status = CaseStatus::Resolved;
                (accepted(r), 1)
            }
        }
        (CaseStatus::Resolved, _) => {
            let rating = 1 + rng.below(5) as u32;
            let r = rate(hub, "urban-management", rid, id, rating).await;
            if rating <= 2 {
                case.status = CaseStatus::Accepted;
                (accepted(r), 2)
            } else {
                case.status = CaseStatus::Rated;
                (accepted(r), 1)
            }
        }
        (CaseStatus::Rated, _) => {
            let r = close(hub, "dcc-310104", rid, id).await;
            case.status = CaseStatus::Closed;
            (accepted(r), 1)
        }
        _ => return None,
    };
    Some((result.position, events))
}

/// The domain's status name in a state's JSON, as the proto enum.
fn status_of(json: &serde_json::Value) -> i32 {
    let status = match json["status"].as_str().expect("a status") {
        "Reported" => CaseStatus::Reported,
        "Dispatched" => CaseStatus::Dispatched,
        "Accepted" => CaseStatus::Accepted,
        "Resolved" => CaseStatus::Resolved,
        "Rated" => CaseStatus::Rated,
        "Closed" => CaseStatus::Closed,
        other => panic!("unknown status {other}"),
    };
    status as i32
}

/// What the read model showed of a case at one position, and how many of its events it had.
struct Seen {
    case_id: String,
    position: u64,
    events: u64,
    view: v1::CaseView,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_as_of_any_position_or_its_stored_time_is_what_the_read_model_showed_then() {
    let hub = HubBuilder::dev().start().await;
    for seed in [0x5eed_0001_u64, 0x5eed_0002] {
        let mut rng = Rng(seed);
        let mut cases = Vec::new();
        let mut seen = Vec::new();
        for n in 0..3 {
            let rid = format!("prop-{seed:x}-{n}");
            let reported = hub
                .commands()
                .report_case(from("urban-management", incident(&rid)))
                .await
                .expect("report")
                .into_inner();
            let view = read_case(&hub, &reported.case_id, reported.position).await;
            seen.push(Seen {
                case_id: reported.case_id.clone(),
                position: reported.position,
                events: 1,
                view,
            });
            cases.push(Model {
                id: reported.case_id,
                status: CaseStatus::Reported,
                holder: "dcc-310104",
                pending: None,
            });
        }
        let mut counts: BTreeMap<String, u64> = cases.iter().map(|c| (c.id.clone(), 1)).collect();
        let commands = 12 + rng.below(9);
        let mut ran = 0;
        for n in 0..commands {
            let open: Vec<usize> = (0..cases.len())
                .filter(|i| cases[*i].status != CaseStatus::Closed)
                .collect();
            let Some(&pick) = open.get(rng.below(open.len().max(1))) else {
                break;
            };
            let case = &mut cases[pick];
            let rid = format!("prop-{seed:x}-c{n}");
            let Some((position, events)) = step(&hub, &mut rng, case, &rid).await else {
                continue;
            };
            ran += 1;
            let count = counts.get_mut(&case.id).expect("a known case");
            *count += events;
            let view = read_case(&hub, &case.id, position).await;
            assert_eq!(
                view.last_position, position,
                "{rid}: nothing happened since"
            );
            seen.push(Seen {
                case_id: case.id.clone(),
                position,
                events: *count,
                view,
            });
        }
        assert!(
            ran == commands || cases.iter().all(|c| c.status == CaseStatus::Closed),
            "{seed:x}: {ran} of {commands} commands ran"
        );
        assert_eq!(seen.len(), 3 + ran);

        // The stored time of every event of each case, from its history.
        let mut stored_at = BTreeMap::new();
        for case in &cases {
            for event in all_events(&hub, &format!("case/{}", case.id)).await {
                stored_at.insert(event.position, event.stored_at.expect("stored_at"));
            }
        }
        for s in &seen {
            let aggregate = format!("case/{}", s.case_id);
            let then = state(&hub, &aggregate, AsOf::Position(s.position)).await;
            assert!(then.exists);
            assert_eq!(
                (then.position, then.events),
                (s.view.last_position, s.events),
                "{aggregate} at {}",
                s.position
            );
            let json: serde_json::Value = serde_json::from_str(&then.state_json).expect("json");
            // Status, holder, pending transfer, rating, reopenings and escalation tier: what both
            // the view and the state expose; the version is the position compared above.
            assert_eq!(
                status_of(&json),
                s.view.status,
                "{aggregate} at {}",
                s.position
            );
            assert_eq!(json["holder"], s.view.holder.as_str());
            assert_eq!(
                json["pending_transfer"].as_str().unwrap_or_default(),
                s.view.pending_transfer_to
            );
            assert_eq!(
                json["rating"].as_u64().unwrap_or_default(),
                u64::from(s.view.rating)
            );
            assert_eq!(json["reopened"].as_u64(), Some(u64::from(s.view.reopened)));
            assert_eq!(
                json["escalation_tier"].as_u64(),
                Some(u64::from(s.view.escalation_tier))
            );
            assert_eq!(json["events"].as_u64(), Some(s.events));

            // As of the time the log stored the event at p: the same state.
            let time = stored_at[&s.position];
            let by_time = state(&hub, &aggregate, AsOf::Time(time)).await;
            assert_eq!(
                by_time, then,
                "{aggregate} by the stored time of {}",
                s.position
            );
        }

        // Before a case's first event, by position and by time, it did not exist.
        for case in &cases {
            let aggregate = format!("case/{}", case.id);
            let first = seen
                .iter()
                .find(|s| s.case_id == case.id)
                .expect("its report");
            let before = state(&hub, &aggregate, AsOf::Position(first.position - 1)).await;
            assert_eq!(before, GetStateAsOfResponse::default(), "{aggregate}");
            let reported_at = stored_at[&first.position];
            let earlier = jiff::Timestamp::new(reported_at.seconds, reported_at.nanos)
                .expect("a timestamp")
                - jiff::SignedDuration::from_nanos(1);
            let before = state(&hub, &aggregate, AsOf::Time(hub_api::timestamp(earlier))).await;
            assert_eq!(before, GetStateAsOfResponse::default(), "{aggregate}");
        }
    }
    hub.stop().await.expect("clean stop");
}
