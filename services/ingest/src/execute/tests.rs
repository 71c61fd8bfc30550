//! Every exit of the executor, against an in-memory log and the `command_state` projection
//! over the in-memory store, with the index made to lag, rebuild or catch up at will.

use std::sync::Arc;
use std::time::Duration;

use hub_api::aggregate::{Aggregate, Care, Case, Grant};
use hub_domain::Actor;
use hub_domain::care::{CareCategory, CareCommand, CareId, RegisterCare, RiskLevel};
use hub_domain::case::{
    CaseCommand, CaseId, CaseKind, GridIncident, IncidentCategory, ReportCase, Reporter,
};
use hub_domain::clock::ManualClock;
use hub_domain::codes::{CommunityCode, DepartmentCode, GridCode, IdentityNumber};
use hub_domain::grant::{GrantCommand, GrantId, RequestGrant};
use hub_domain::policy::Policy;
use hub_domain::registry::{Registry, RegistryData};
use hub_log::{Classification, Entry, Envelope, StoredEvent};
use hub_projector::command_state::CommandState;
use hub_projector::{Alarms, Projection, ReadModel};
use hub_store::{Batch, MemStore, ReadModelStore};
use jiff::Timestamp;
use tonic::Code;

use super::memlog::MemLog;
use super::*;
use crate::hash::{CommandHasher, HashKey};
use crate::index::{Freshness, Index};

const DEMO: &str = include_str!("../../../../deploy/reference/demo.toml");
/// The dataset grants in these tests name. The hub adds it to the registry from the read
/// model that builds it; these tests run without the hub, so they list it themselves.
const ROSTER: &str = r#"
[[datasets]]
id = "care_roster"
title = "key-population care roster"
owner = "civil-affairs"
fields = [
  { name = "name", sensitivity = "personal" },
  { name = "community_code", sensitivity = "internal" },
]
"#;
const CIVIL_AFFAIRS: &str = "civil-affairs";
const URBAN: &str = "urban-management";
const STRANGER: &str = "public-security";

fn dept(code: &str) -> DepartmentCode {
    DepartmentCode::parse(code).expect("department code")
}

/// A log, an index over it, and executors; the index applies the log only when told.
struct World {
    log: Arc<MemLog>,
    registry: Arc<Registry>,
    policy: Arc<Policy>,
    clock: Arc<ManualClock>,
    index: (Arc<MemStore>, ReadModel),
}

/// What the projector does: applies `entries` past the checkpoint (up to `upto`) to
/// `command_state` in `store`, and marks the model complete as of now.
fn apply_log(
    entries: &[Entry],
    store: &MemStore,
    model: &ReadModel,
    policy: &Arc<Policy>,
    upto: Option<u64>,
) {
    let projection = CommandState::new(policy.clone(), Alarms::default());
    let checkpoint = store.checkpoint().expect("checkpoint");
    let mut batch = Batch::new(store);
    let mut last = checkpoint;
    for entry in entries {
        let position = entry.position();
        if position <= checkpoint || upto.is_some_and(|u| position > u) {
            continue;
        }
        match entry {
            Entry::Event(e) => projection.apply(e, &mut batch),
            Entry::Unreadable(u) => projection.apply_unreadable(u, &mut batch),
        }
        .expect("apply");
        last = position;
    }
    store.commit(batch.into_writes(), last).expect("commit");
    model.advance(last);
    model.complete_as_of(Timestamp::now());
}

fn index_over(store: Arc<MemStore>) -> ReadModel {
    ReadModel::new("command_state", store, 0)
}

impl World {
    fn new() -> Self {
        let data: RegistryData =
            toml::from_str(&format!("{DEMO}\n{ROSTER}")).expect("demo reference data");
        let registry = Registry::new(data).expect("consistent");
        let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(8));
        let policy = Policy::with_defaults(registry.calendar(tz));
        let store = Arc::new(MemStore::new());
        Self {
            log: Arc::new(MemLog::default()),
            registry: Arc::new(registry),
            policy: Arc::new(policy),
            clock: Arc::new(ManualClock::new(
                "2026-03-02T01:00:00Z".parse().expect("instant"),
            )),
            index: (store.clone(), index_over(store)),
        }
    }

    fn executor<A: Aggregate>(&self) -> Executor<A> {
        let freshness = Freshness::new(
            Duration::from_secs(120),
            Duration::from_secs(5),
            Duration::from_millis(20),
        );
        Executor::new(ExecutorContext {
            log: self.log.clone(),
            index: Index::new(self.index.1.clone(), freshness),
            registry: self.registry.clone(),
            policy: self.policy.clone(),
            clock: self.clock.clone(),
            hasher: Arc::new(hasher()),
        })
    }

    /// The index applies the log up to `position` (its end when `None`), as the projector
    /// would, and knows itself complete as of now.
    fn catch_up(&self, upto: Option<u64>) {
        apply_log(
            &self.log.entries(),
            &self.index.0,
            &self.index.1,
            &self.policy,
            upto,
        );
    }

    /// The index is rebuilt from nothing and has not caught up: it knows nothing yet.
    fn rebuild_index(&mut self) {
        let store = Arc::new(MemStore::new());
        self.index = (store.clone(), index_over(store));
    }

    /// The index applied nothing new, but knows itself complete as of now (a lag shorter
    /// than the duplicate window).
    fn index_lags_briefly(&self) {
        self.index.1.complete_as_of(Timestamp::now());
    }
}

fn hasher() -> CommandHasher {
    CommandHasher::new(HashKey::new(&[7; 32]).expect("key"), None)
}

fn submitted<A: Aggregate>(
    by: &str,
    request_id: &str,
    id: &str,
    expected_version: Option<u64>,
    command: A::Command,
) -> Submitted<A> {
    Submitted {
        source: format!("/departments/{by}"),
        actor: Actor::Department(dept(by)),
        owner: by.to_owned(),
        request_id: request_id.to_owned(),
        hash: hasher().hash_parts(&[format!("{}/{id}:{command:?}", A::TYPE).as_bytes()]),
        id: id.to_owned(),
        expected_version,
        command,
        correlation_id: String::new(),
        traceparent: String::new(),
        person: "staff-0001".into(),
        decided_at: None,
    }
}

fn register(rid: &str) -> Submitted<Care> {
    let id = format!("care-{rid}");
    let command = CareCommand::Register(RegisterCare {
        care_id: CareId::new(&id),
        name: "张三".into(),
        identity_number: IdentityNumber::parse("11010519491231002X").expect("id"),
        category: CareCategory::ElderlyInHardship,
        community: CommunityCode::parse("310104001001").expect("community"),
        risk_level: RiskLevel::Medium,
        phone: String::new(),
        address: String::new(),
    });
    submitted(CIVIL_AFFAIRS, rid, &id, None, command)
}

fn visit(by: &str, rid: &str, care: &str, notes: &str) -> Submitted<Care> {
    let command = CareCommand::LogVisit {
        visited_at: "2026-03-01T01:00:00Z".parse().expect("instant"),
        visitor: "CA-017".into(),
        notes: notes.into(),
    };
    submitted(by, rid, care, None, command)
}

fn report(rid: &str) -> Submitted<Case> {
    let id = format!("case-{rid}");
    let command = CaseCommand::Report(ReportCase {
        case_id: CaseId::new(&id),
        kind: CaseKind::GridIncident(GridIncident {
            grid: GridCode::parse("310104001001001").expect("grid"),
            category: IncidentCategory::FireHazard,
            location: None,
        }),
        description: "fire lane blocked".into(),
        reporter: Reporter::Resident,
        channel: hub_domain::case::ReportChannel::Unrecorded,
        reported_by: dept(URBAN),
    });
    submitted(URBAN, rid, &id, None, command)
}

fn dispatch(by: &str, rid: &str, case: &str, expected: Option<u64>) -> Submitted<Case> {
    let command = CaseCommand::Dispatch {
        department: dept(URBAN),
    };
    submitted(by, rid, case, expected, command)
}

fn request_grant(rid: &str) -> Submitted<Grant> {
    let id = format!("grant-{rid}");
    let command = GrantCommand::Request(RequestGrant {
        grant_id: GrantId::new(&id),
        requester: dept(URBAN),
        dataset: "care_roster".into(),
        fields: vec!["community_code".into()],
        purpose: "joint visits".into(),
        expires_at: "2026-06-01T00:00:00Z".parse().expect("instant"),
    });
    submitted(URBAN, rid, &id, None, command)
}

fn status(err: ApiError) -> (Code, String) {
    let status = tonic::Status::from(err);
    (status.code(), status.message().to_owned())
}

/// The refusal of a command, as (code, message).
async fn refusal<A: Aggregate>(executor: &Executor<A>, s: Submitted<A>) -> (Code, String) {
    match executor.execute(s).await {
        Ok(done) => panic!("expected a refusal, got {done:?}"),
        Err(err) => status(err),
    }
}

async fn accepted<A: Aggregate>(executor: &Executor<A>, s: Submitted<A>) -> RequestRecord {
    let done = executor.execute(s).await.expect("accepted");
    assert!(done.appended, "a new command is appended");
    done.record
}

#[tokio::test]
async fn a_retry_is_answered_with_its_first_result_after_the_window_whatever_the_index() {
    let mut world = World::new();
    world.index_lags_briefly();
    let care = world.executor::<Care>();
    let first = accepted(&care, register("r-0")).await;
    let mut visits = Vec::new();
    for i in 1..40 {
        let s = visit(
            CIVIL_AFFAIRS,
            &format!("r-{i}"),
            "care-r-0",
            &format!("visit {i}"),
        );
        visits.push(accepted(&care, s).await);
    }
    assert_eq!((first.position, visits[38].position), (1, 40));
    world.log.forget_ids();
    let appends = world.log.appends();
    let retry_all = async |world: &World| {
        let care = world.executor::<Care>();
        let again = care
            .execute(register("r-0"))
            .await
            .expect("retry of the register");
        assert_eq!(
            (again.record.clone(), again.appended),
            (first.clone(), false)
        );
        for (i, rid) in [(1, "r-1"), (2, "r-2"), (30, "r-30")] {
            let again = care
                .execute(visit(CIVIL_AFFAIRS, rid, "care-r-0", &format!("visit {i}")))
                .await
                .expect("retry of a visit");
            assert_eq!((&again.record, again.appended), (&visits[i - 1], false));
        }
    };

    // The index caught up: its records answer; no append is even tried.
    world.catch_up(None);
    retry_all(&world).await;
    assert_eq!(world.log.appends(), appends);
    // The index rebuilding from nothing: the log is read; no append is even tried.
    world.rebuild_index();
    retry_all(&world).await;
    assert_eq!(world.log.appends(), appends);
    // The index half-way, lagging within the window: an append expecting the index's
    // version may be tried, and the log refuses it.
    world.catch_up(Some(20));
    retry_all(&world).await;
    assert_eq!(world.log.len(), 40, "nothing stored twice");
}

#[tokio::test]
async fn a_request_id_reused_for_other_content_is_refused_wherever_its_record_is() {
    let mut world = World::new();
    world.index_lags_briefly();
    let care = world.executor::<Care>();
    accepted(&care, register("a")).await;
    accepted(&care, register("b")).await;
    accepted(&care, visit(CIVIL_AFFAIRS, "v-1", "care-a", "first")).await;
    let reuse_same_record = || visit(CIVIL_AFFAIRS, "v-1", "care-a", "other notes");
    let reuse_other_record = || visit(CIVIL_AFFAIRS, "v-1", "care-b", "first");
    let refused = |(code, message): (Code, String)| {
        assert_eq!(code, Code::InvalidArgument, "{message}");
        assert!(message.contains("request_id"), "{message}");
    };

    // The index lags, the log's duplicate window still remembers the event ids.
    refused(refusal(&care, reuse_same_record()).await);
    refused(refusal(&care, reuse_other_record()).await);
    // After the window, with the index caught up.
    world.log.forget_ids();
    world.catch_up(None);
    refused(refusal(&care, reuse_same_record()).await);
    refused(refusal(&care, reuse_other_record()).await);
    // After the window, with the index rebuilding: the record's own aggregate is read from
    // the log; on another aggregate nothing can rule the reuse out, so it is not decided.
    world.rebuild_index();
    let care = world.executor::<Care>();
    refused(refusal(&care, reuse_same_record()).await);
    let (code, message) = refusal(&care, reuse_other_record()).await;
    assert_eq!(code, Code::Unavailable, "{message}");
    assert_eq!(world.log.len(), 3, "nothing stored");

    // The same setup takes a new request id.
    world.catch_up(None);
    accepted(&care, visit(CIVIL_AFFAIRS, "v-2", "care-b", "first")).await;
}

#[tokio::test]
async fn a_department_with_no_role_gets_one_answer_whether_the_aggregate_exists_or_not() {
    let world = World::new();
    world.index_lags_briefly();
    let (cases, care, grants) = (
        world.executor::<Case>(),
        world.executor::<Care>(),
        world.executor::<Grant>(),
    );
    let case = accepted(&cases, report("r")).await;
    accepted(&care, register("c")).await;
    let grant = accepted(&grants, request_grant("g")).await;
    assert_eq!((case.position, grant.position), (1, 3));

    for caught_up in [false, true] {
        if caught_up {
            world.catch_up(None);
        }
        let mut answers = Vec::new();
        for (id, expected) in [
            ("case-r", None),
            ("case-r", Some(1)),
            ("case-r", Some(7)),
            ("case-missing", None),
            ("case-missing", Some(1)),
        ] {
            let rid = format!("s-{id}-{expected:?}-{caught_up}");
            let err = cases
                .execute(dispatch(STRANGER, &rid, id, expected))
                .await
                .expect_err("a stranger to the case");
            answers.push(status(err));
        }
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
        assert_eq!(answers[0].0, Code::PermissionDenied);

        let mut answers = Vec::new();
        for (id, expected) in [("care-c", None), ("care-c", Some(2)), ("care-x", Some(9))] {
            let rid = format!("v-{id}-{expected:?}-{caught_up}");
            let mut s = visit(STRANGER, &rid, id, "n");
            s.expected_version = expected;
            answers.push(refusal(&care, s).await);
        }
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
        assert_eq!(answers[0].0, Code::PermissionDenied);

        let mut answers = Vec::new();
        for (id, expected) in [("grant-g", None), ("grant-g", Some(3)), ("grant-x", None)] {
            let rid = format!("a-{id}-{expected:?}-{caught_up}");
            let s = submitted::<Grant>(STRANGER, &rid, id, expected, GrantCommand::Approve);
            answers.push(refusal(&grants, s).await);
        }
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:#?}");
        assert_eq!(answers[0].0, Code::PermissionDenied);
    }
    assert_eq!(world.log.len(), 3, "no refusal stored anything");
    // A stranger reusing a request id of its own is told so, whether the target exists or
    // not: it learns only of its own command.
    let mut own = request_grant("mine");
    own.source = format!("/departments/{STRANGER}");
    own.actor = Actor::Department(dept(STRANGER));
    if let GrantCommand::Request(r) = &mut own.command {
        r.requester = dept(STRANGER);
    }
    accepted(&grants, own).await;
    world.catch_up(None);
    let reused: Vec<_> = [("case-r", None), ("case-missing", Some(1))]
        .into_iter()
        .map(|(id, expected)| dispatch(STRANGER, "mine", id, expected))
        .collect();
    let mut answers = Vec::new();
    for s in reused {
        answers.push(refusal(&cases, s).await);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0, Code::InvalidArgument);
    assert_eq!(world.log.len(), 4);

    // The departments with a role get on in the same setup: the command centre dispatches,
    // civil affairs visits, the dataset's owner approves.
    accepted(&cases, dispatch("dcc-310104", "d-1", "case-r", Some(1))).await;
    accepted(&care, visit(CIVIL_AFFAIRS, "v-ok", "care-c", "n")).await;
    let approve = submitted::<Grant>(
        CIVIL_AFFAIRS,
        "ok",
        "grant-g",
        Some(3),
        GrantCommand::Approve,
    );
    accepted(&grants, approve).await;
    // A department with a role meets the ordinary answers: the version, existence, state.
    let (code, message) = refusal(&cases, dispatch("dcc-310104", "d-2", "case-r", Some(1))).await;
    assert_eq!(code, Code::Aborted, "{message}");
    assert!(message.contains("the case is at version 5"), "{message}");
    let (code, _) = refusal(&care, visit(CIVIL_AFFAIRS, "v-none", "care-none", "n")).await;
    assert_eq!(code, Code::NotFound);
}

#[tokio::test]
async fn an_event_this_version_cannot_read_blocks_its_aggregate_and_no_other() {
    let world = World::new();
    world.index_lags_briefly();
    let cases = world.executor::<Case>();
    accepted(&cases, report("a")).await;
    accepted(&cases, report("b")).await;
    // A newer hub version (or a raw client) appends a type this version does not know.
    let position = world.log.push(|position| {
        Entry::Event(StoredEvent {
            position,
            subject: "gov.events.case.case-a".into(),
            stored_at: jiff::Timestamp::UNIX_EPOCH,
            envelope: Envelope {
                id: "newer-1".into(),
                source: "/departments/dcc-310104".into(),
                event_type: "gov.hub.case.frobnicated.v9".into(),
                subject: "case/case-a".into(),
                time: Timestamp::UNIX_EPOCH,
                dataschema: String::new(),
                department: URBAN.into(),
                classification: Classification::Internal,
                schema_version: 9,
                correlation_id: String::new(),
                causation_id: String::new(),
                traceparent: String::new(),
                request_id: "newer".into(),
                command_hash: String::new(),
                acting_person: String::new(),
            },
            body: bytes::Bytes::from_static(b"\x0a\x01x"),
            upcast_from: None,
        })
    });
    assert_eq!(position, 3);

    for caught_up in [false, true] {
        if caught_up {
            world.catch_up(None);
        }
        let rid = format!("d-a-{caught_up}");
        let (code, message) = refusal(&cases, dispatch("dcc-310104", &rid, "case-a", None)).await;
        assert_eq!(code, Code::Unavailable, "{message}");
        assert!(
            message.contains("gov.hub.case.frobnicated.v9 at position 3"),
            "{message}"
        );
        // A stranger still learns nothing: the role comes first.
        let rid = format!("s-a-{caught_up}");
        let (code, _) = refusal(&cases, dispatch(STRANGER, &rid, "case-a", None)).await;
        assert_eq!(code, Code::PermissionDenied);
    }
    // Every other case goes on.
    let done = accepted(&cases, dispatch("dcc-310104", "d-b", "case-b", Some(2))).await;
    assert_eq!(done.position, 4);
}

#[tokio::test]
async fn a_view_behind_the_log_is_brought_up_by_reading_it_before_any_refusal() {
    let world = World::new();
    world.index_lags_briefly();
    let cases = world.executor::<Case>();
    accepted(&cases, report("a")).await;
    // The index has not applied the report: the centre's dispatch meets an empty view, which
    // would deny it; the log is read first and the dispatch goes through.
    let done = accepted(&cases, dispatch("dcc-310104", "d-1", "case-a", None)).await;
    assert_eq!(done.position, 2);
    // A stale index and a named version: the log's version decides.
    world.catch_up(Some(1));
    let s = submitted::<Case>(URBAN, "acc", "case-a", Some(2), CaseCommand::Accept);
    assert_eq!(accepted(&cases, s).await.position, 3);
    let s = submitted::<Case>(URBAN, "acc-2", "case-a", Some(2), CaseCommand::Accept);
    let (code, message) = refusal(&cases, s).await;
    assert_eq!(code, Code::Aborted, "{message}");
    assert!(message.contains("version 3"), "{message}");
    // Without a named version, a stale view is decided again on the log's state.
    let s = submitted::<Case>(
        URBAN,
        "res",
        "case-a",
        None,
        CaseCommand::Resolve {
            outcome: "cleared".into(),
        },
    );
    assert_eq!(accepted(&cases, s).await.position, 4);
}

#[tokio::test]
async fn a_new_command_waits_for_an_index_too_far_behind_and_is_unavailable_past_the_wait() {
    let world = World::new();
    let cases = world.executor::<Case>();
    // The index has never known itself complete (just started, or rebuilding).
    let (code, message) = refusal(&cases, report("a")).await;
    assert_eq!(code, Code::Unavailable, "{message}");
    assert!(message.contains("duplicate window"), "{message}");
    assert_eq!(world.log.appends(), 0, "nothing even tried");
    world.catch_up(None);
    accepted(&cases, report("a")).await;
}

#[tokio::test]
async fn a_command_whose_aggregate_moves_under_it_is_decided_again_or_aborted() {
    let world = World::new();
    world.index_lags_briefly();
    let cases = world.executor::<Case>();
    accepted(&cases, report("a")).await;
    accepted(&cases, dispatch("dcc-310104", "d", "case-a", None)).await;
    world.catch_up(None);
    // Another instance accepts the case after this index applied the log.
    let other = world.executor::<Case>();
    accepted(
        &other,
        submitted::<Case>(URBAN, "acc", "case-a", None, CaseCommand::Accept),
    )
    .await;
    // Decided on the index's view (dispatched), refused by the log, read, decided again.
    let s = submitted::<Case>(
        URBAN,
        "res",
        "case-a",
        None,
        CaseCommand::Resolve {
            outcome: "done".into(),
        },
    );
    assert_eq!(accepted(&cases, s).await.position, 4);
    assert_eq!(world.log.len(), 4);
}

#[tokio::test]
async fn a_command_beaten_every_time_is_aborted_and_a_log_that_does_not_answer_is_unavailable() {
    let world = World::new();
    world.index_lags_briefly();
    let care = world.executor::<Care>();
    accepted(&care, register("a")).await;
    // The log does not confirm: UNAVAILABLE, and the same request id may be sent again.
    world
        .log
        .fail_next(AppendError::Unavailable("no answer in time".into()));
    let (code, message) = refusal(&care, visit(CIVIL_AFFAIRS, "v-1", "care-a", "n")).await;
    assert_eq!(code, Code::Unavailable, "{message}");
    assert!(message.contains("same request_id"), "{message}");
    accepted(&care, visit(CIVIL_AFFAIRS, "v-1", "care-a", "n")).await;
    // Another writer beats every append onto the record: decided again, then ABORTED.
    world.log.race_on("gov.events.care.care-a");
    let (code, message) = refusal(&care, visit(CIVIL_AFFAIRS, "v-2", "care-a", "n")).await;
    assert_eq!(code, Code::Aborted, "{message}");
    assert!(message.contains("changed 3 times"), "{message}");
    let ours = world
        .log
        .entries()
        .iter()
        .filter(|e| matches!(e, Entry::Event(ev) if ev.envelope.request_id == "v-2"))
        .count();
    assert_eq!(ours, 0, "nothing of the aborted command is stored");
}

#[tokio::test]
async fn an_index_that_catches_up_during_a_command_is_looked_at_again_before_any_append() {
    let mut world = World::new();
    world.index_lags_briefly();
    let care = world.executor::<Care>();
    accepted(&care, register("x")).await;
    accepted(&care, register("y")).await;
    accepted(&care, visit(CIVIL_AFFAIRS, "r", "care-y", "on y")).await;
    world.log.forget_ids();
    // The index rebuilds: it has none of this yet, and is not fresh.
    world.rebuild_index();
    let care = world.executor::<Care>();
    // While the command reads care record x's events, the index catches up with the log,
    // the use of "r" on y included.
    let (store, model, policy, entries) = (
        world.index.0.clone(),
        world.index.1.clone(),
        world.policy.clone(),
        world.log.entries(),
    );
    world
        .log
        .after_next_read(move || apply_log(&entries, &store, &model, &policy, None));
    let (code, message) = refusal(&care, visit(CIVIL_AFFAIRS, "r", "care-x", "on x")).await;
    assert_eq!(code, Code::InvalidArgument, "{message}");
    assert_eq!(world.log.len(), 3, "nothing stored");
}

#[tokio::test]
async fn a_record_the_index_holds_in_part_is_completed_from_the_log() {
    let world = World::new();
    world.index_lags_briefly();
    let cases = world.executor::<Case>();
    accepted(&cases, report("a")).await;
    accepted(&cases, dispatch("dcc-310104", "d", "case-a", None)).await;
    let accept = submitted::<Case>(URBAN, "acc", "case-a", None, CaseCommand::Accept);
    accepted(&cases, accept).await;
    let resolve = || {
        submitted::<Case>(
            URBAN,
            "res",
            "case-a",
            None,
            CaseCommand::Resolve {
                outcome: "done".into(),
            },
        )
    };
    accepted(&cases, resolve()).await;
    // A poor rating: rated and reopened, one command, two events.
    let rate = || {
        submitted::<Case>(
            URBAN,
            "rate",
            "case-a",
            None,
            CaseCommand::Rate { rating: 1 },
        )
    };
    let first = accepted(&cases, rate()).await;
    assert_eq!((first.event_ids.len(), first.position), (2, 6));
    // The index's last batch ended between the two.
    world.catch_up(Some(5));
    let again = cases.execute(rate()).await.expect("retry");
    assert_eq!((again.record, again.appended), (first, false));
    assert_eq!(world.log.len(), 6);
}

#[tokio::test]
async fn a_retry_inside_the_window_is_told_from_the_duplicate_the_log_reports() {
    let world = World::new();
    world.index_lags_briefly();
    let cases = world.executor::<Case>();
    let first = accepted(&cases, report("a")).await;
    let dispatched = accepted(&cases, dispatch("dcc-310104", "d", "case-a", None)).await;
    // The index has applied the report only: the retried dispatch is decided on a view
    // before it, the log answers with a duplicate, and the stored event says it is this one.
    world.catch_up(Some(first.position));
    let again = cases
        .execute(dispatch("dcc-310104", "d", "case-a", None))
        .await
        .expect("retry");
    assert_eq!((again.record, again.appended), (dispatched, false));
    assert_eq!(world.log.len(), 2);
}

#[tokio::test]
async fn an_import_batch_refused_for_a_request_id_used_meanwhile_names_the_item_and_stores_none() {
    let world = World::new();
    world.index_lags_briefly();
    let care = world.executor::<Care>();
    accepted(&care, register("base")).await;
    // Checked before it: "i-2" free. Then a command racing the import uses "i-2" elsewhere.
    let items: Vec<_> = ["i-1", "i-2", "i-3"]
        .into_iter()
        .map(|rid| {
            let s = register(rid);
            let events = care.prepare_new(&s).expect("a valid registration");
            (s, events)
        })
        .collect();
    accepted(&care, visit(CIVIL_AFFAIRS, "i-2", "care-base", "racing")).await;
    world.catch_up(None);
    let stored = world.log.len();
    match care.import(items, 1000).await {
        Err(ImportError::Reused(positions)) => assert_eq!(positions, [1]),
        other => panic!("expected the reuse of item 1: {other:?}"),
    }
    assert_eq!(world.log.len(), stored, "nothing of the batch stored");
}
