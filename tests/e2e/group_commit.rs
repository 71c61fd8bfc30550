//! Group commit: commands ready together go out as one atomic batch, each answered alone;
//! a refused batch is retried member by member. The committer is held (failpoint
//! `group-commit-hold`) while the commands gather, so what forms a batch is deterministic.

use std::time::Duration;

use futures::future::join_all;
use hub_log::append::Appended;
use hub_log::stream::{EventsStreamSettings, ensure_events_stream};
use hub_log::{AppendError, Appender, GroupCommit, GroupOptions, NewEvent};
use hub_tests::{Hold, HubBuilder, Nats, wait_until};
use tonic::Code;

use crate::cmd::{accept, dispatch};
use crate::log_reads::event;
use crate::{events_in_log, from, incident};

const LIMIT: Duration = Duration::from_secs(20);

/// `event(subject, n)` expecting the aggregate at `expected` (on its first event).
fn expecting(subject: &str, n: usize, expected: Option<u64>) -> NewEvent {
    NewEvent {
        expected_last_subject_sequence: expected,
        ..event(subject, n)
    }
}

async fn started(nats: &Nats, name: &str) -> (Appender, GroupCommit) {
    let appender = Appender::new(nats.client().await, Duration::from_secs(5));
    ensure_events_stream(appender.context(), &EventsStreamSettings::default())
        .await
        .expect("events stream");
    let group = GroupCommit::start(
        appender.clone(),
        GroupOptions {
            in_flight: 4,
            name: name.into(),
        },
    );
    (appender, group)
}

/// Submits each member in turn while `group` is held (each one queued before the next is
/// sent, so their order is known), releases it, and returns every member's answer in order.
async fn held_then_released(
    group: &GroupCommit,
    hold: Hold,
    members: Vec<Vec<NewEvent>>,
) -> Vec<Result<Vec<Appended>, AppendError>> {
    let mut tasks = Vec::new();
    for (index, events) in members.into_iter().enumerate() {
        let member = group.clone();
        tasks.push(tokio::spawn(async move { member.append_all(events).await }));
        wait_until("the member to be queued", LIMIT, || async {
            (group.waiting() == index + 1).then_some(())
        })
        .await;
    }
    hold.release();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the member's task"));
    }
    answers
}

fn positions(answer: &Result<Vec<Appended>, AppendError>) -> Vec<u64> {
    match answer {
        Ok(appended) => {
            assert!(appended.iter().all(|a| !a.duplicate), "{appended:?}");
            appended.iter().map(|a| a.position).collect()
        }
        Err(err) => panic!("refused: {err}"),
    }
}

/// Each message's subject, by position.
async fn subjects(js: &async_nats::jetstream::Context) -> Vec<String> {
    let stream = js.get_stream("GOV_EVENTS").await.expect("stream");
    let last = stream.get_info().await.expect("info").state.last_sequence;
    let mut subjects = Vec::new();
    for position in 1..=last {
        let message = stream.get_raw_message(position).await.expect("message");
        subjects.push(message.subject.to_string());
    }
    subjects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_ready_together_go_out_as_one_batch_each_answered_alone() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let (_, group) = started(&nats, "gc-together").await;

    // A lone command goes out at once, alone.
    let lone = group
        .append_all(vec![expecting("gov.events.case.lone", 0, Some(0))])
        .await;
    assert_eq!(positions(&lone), [1]);
    assert_eq!(group.grouped_batches(), 0);

    // Five single events on five aggregates, one command of three events, and a second
    // command on the first aggregate expecting it empty too, gathered while held.
    let mut members: Vec<Vec<NewEvent>> = (0..5)
        .map(|i| vec![expecting(&format!("gov.events.case.a{i}"), 1, Some(0))])
        .collect();
    members.push(vec![
        expecting("gov.events.case.multi", 1, Some(0)),
        expecting("gov.events.case.multi", 2, None),
        expecting("gov.events.case.multi", 3, None),
    ]);
    members.push(vec![expecting("gov.events.case.a0", 2, Some(0))]);
    let hold = Hold::commands("gc-together");
    let answers = held_then_released(&group, hold, members).await;

    // The first six went out as one batch: eight events at 2..=9, in the order they came,
    // the three-event command's together; each caller got its own positions.
    let stored: Vec<Vec<u64>> = answers[..6].iter().map(positions).collect();
    assert_eq!(
        stored,
        [vec![2], vec![3], vec![4], vec![5], vec![6], vec![7, 8, 9]]
    );
    assert_eq!(group.grouped_batches(), 1, "one batch of several commands");
    // The second command on a0 could not share that batch (the server checks an aggregate's
    // expected sequence on its first message in a batch only), nor overtake it: it went
    // once that batch was answered, and its expectation was refused.
    assert!(
        matches!(answers[6], Err(AppendError::Conflict)),
        "{:?}",
        answers[6]
    );
    assert_eq!(group.split_batches(), 0);
    let subjects = subjects(&js).await;
    assert_eq!(subjects.len(), 9, "{subjects:?}");
    assert_eq!(
        subjects
            .iter()
            .filter(|s| *s == "gov.events.case.a0")
            .count(),
        1
    );
    assert_eq!(group.waiting(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_is_retried_member_by_member() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let (appender, group) = started(&nats, "gc-refused").await;
    let first = expecting("gov.events.case.s", 0, Some(0));
    let stored = appender
        .append(first.clone())
        .await
        .expect("the first event");
    // The same event again, expecting nothing: a retry the server knows by its id.
    let again = expecting("gov.events.case.s", 0, None);
    assert_eq!(stored.position, 1);

    // One member is stale (it expects `s` empty), one is a retry of the stored event (its id
    // is in the duplicate window): the server refuses the whole batch without saying which.
    let members = vec![
        vec![expecting("gov.events.case.b1", 1, Some(0))],
        vec![expecting("gov.events.case.s", 1, Some(0))],
        vec![
            expecting("gov.events.case.b2", 1, Some(0)),
            expecting("gov.events.case.b2", 2, None),
        ],
        vec![again],
        vec![expecting("gov.events.case.b3", 1, Some(0))],
    ];
    let hold = Hold::commands("gc-refused");
    let answers = held_then_released(&group, hold, members).await;

    assert_eq!(group.split_batches(), 1, "the batch was refused and split");
    assert_eq!(group.grouped_batches(), 0, "no batch of several was stored");
    // Each member got its own answer: the stale one a conflict, the retry where its event is.
    assert!(
        matches!(answers[1], Err(AppendError::Conflict)),
        "{:?}",
        answers[1]
    );
    match &answers[3] {
        Ok(appended) => assert_eq!(
            appended.as_slice(),
            [Appended {
                position: 1,
                duplicate: true
            }]
        ),
        other => panic!("the retry: {other:?}"),
    }
    let mut new: Vec<u64> = [0, 2, 4]
        .iter()
        .flat_map(|&i| positions(&answers[i]))
        .collect();
    let two = positions(&answers[2]);
    assert_eq!(two[1], two[0] + 1, "one command's events together: {two:?}");
    new.sort_unstable();
    assert_eq!(new, [2, 3, 4, 5], "four new events stored, each once");
    let subjects = subjects(&js).await;
    assert_eq!(subjects.len(), 5, "{subjects:?}");
    assert_eq!(
        subjects
            .iter()
            .filter(|s| *s == "gov.events.case.s")
            .count(),
        1,
        "the stale member stored nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commands_on_one_case_and_on_many_through_the_hub() {
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let hub = HubBuilder::on(&nats).start().await;
    let reported = hub
        .commands()
        .report_case(from("urban-management", incident("gc-case")))
        .await
        .expect("report")
        .into_inner();
    let version = dispatch(
        &hub,
        "dcc-310104",
        "gc-dispatch",
        &reported.case_id,
        "urban-management",
        None,
    )
    .await
    .expect("dispatch")
    .position;
    let before = events_in_log(&js).await;
    let grouped = hub.group_commit().grouped_batches();

    // Six accepts of one case naming the same version and six new reports, all decided
    // while the committer is held, so they meet in it.
    let hold = Hold::commands(hub.instance());
    let accepts = (0..6).map(|i| {
        let (hub, id) = (&hub, reported.case_id.clone());
        async move {
            accept(
                hub,
                "urban-management",
                &format!("gc-acc-{i}"),
                &id,
                Some(version),
            )
            .await
        }
    });
    let reports = (0..6).map(|i| {
        let hub = &hub;
        async move {
            hub.commands()
                .report_case(from("urban-management", incident(&format!("gc-new-{i}"))))
                .await
                .map(|r| r.into_inner())
        }
    });
    let release = async {
        wait_until("twelve commands at the committer", LIMIT, || async {
            (hub.group_commit().waiting() == 12).then_some(())
        })
        .await;
        hold.release();
    };
    let (accepted, reported_new, ()) = tokio::join!(join_all(accepts), join_all(reports), release);

    // One accept won; the others learnt the case had moved on.
    let won: Vec<_> = accepted.iter().filter_map(|o| o.as_ref().ok()).collect();
    assert_eq!(won.len(), 1, "{accepted:?}");
    for lost in accepted.iter().filter_map(|o| o.as_ref().err()) {
        assert_eq!(lost.code(), Code::Aborted, "{lost:?}");
    }
    // Every report is stored, each at a position of its own.
    let mut at: Vec<u64> = reported_new
        .iter()
        .map(|r| r.as_ref().expect("report").position)
        .collect();
    at.push(won[0].position);
    at.sort_unstable();
    at.dedup();
    assert_eq!(at.len(), 7, "{at:?}");
    assert_eq!(events_in_log(&js).await, before + 7);
    assert!(
        hub.group_commit().grouped_batches() > grouped,
        "the held commands shared a batch"
    );
}
