//! Kills at random instants (SIGKILL, as a power cut), rather than at named crash points:
//! while the read models project a bulk import, and under concurrent reports.

use super::*;

/// `name` from the environment, or `default`.
fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_points_while_projecting_a_bulk_import() {
    let events = setting("CRASH_SCALE_EVENTS", 100_000);
    let kills = setting("CRASH_SCALE_KILLS", 20);
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    let cases: Vec<v1::HistoricCase> = (0..events)
        .map(|i| historic(&format!("bulk-{i}"), 1_700_000_000 + i as i64 * 60))
        .collect();
    // The import runs with every read model held (the failpoint names their consumers, so
    // the instance name is fixed beforehand): the projection of all of it is still ahead
    // when the kills begin.
    std::fs::write(dir.path().join("instance-id"), "bulk").expect("instance id");
    let mut models: Vec<&str> = vec!["case_queue", "command_state"];
    models.extend(hub_projector::datasets::catalogue().iter().map(|d| d.id));
    let held: Vec<String> = models
        .iter()
        .map(|m| hub_log::names::projector_consumer(m, "bulk"))
        .collect();
    let hold = format!("projector-hold=return({})", held.join(","));
    let importing = std::time::Instant::now();
    let mut hub = process(dir.path(), &nats).failpoints(&hold).start().await;
    let imported = hub
        .commands()
        .import_cases(import_chunks(&cases, 1000))
        .await
        .expect("the import")
        .into_inner();
    assert_eq!(imported.imported as usize, events);
    let last = stored(&js).await.len() as u64;
    eprintln!("imported {events} events in {:?}", importing.elapsed());
    hub.kill();
    let projecting = std::time::Instant::now();
    let mut hub = process(dir.path(), &nats).start().await;

    // The read models project the import; kill the hub at random moments while they do, and
    // start it again each time.
    let mut behind_at_a_kill = 0;
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(jitter(50..700))).await;
        let mut datasets = DatasetServiceClient::new(hub.channel());
        let mut probe = tonic::Request::new(v1::ReadDatasetRequest {
            dataset_id: "incident_stats".into(),
            min_position: last,
            ..Default::default()
        });
        probe.set_timeout(Duration::from_millis(200));
        if datasets.read_dataset(probe).await.is_err() {
            behind_at_a_kill += 1;
        }
        hub.kill();
        hub = process(dir.path(), &nats).start().await;
    }
    assert!(
        behind_at_a_kill > 0,
        "some kills landed while the models were still projecting"
    );

    // Let the last run finish projecting, then compare every model with a fresh build.
    let mut datasets = DatasetServiceClient::new(hub.channel());
    hub_tests::wait_until("incident_stats caught up", Duration::from_secs(600), || {
        let mut datasets = datasets.clone();
        async move {
            datasets
                .read_dataset(v1::ReadDatasetRequest {
                    dataset_id: "incident_stats".into(),
                    min_position: last,
                    ..Default::default()
                })
                .await
                .ok()
        }
    })
    .await;
    let rows = datasets
        .read_dataset(v1::ReadDatasetRequest {
            dataset_id: "incident_stats".into(),
            min_position: last,
            page_size: 1000,
            ..Default::default()
        })
        .await
        .expect("read")
        .into_inner()
        .rows;
    let counted: f64 = rows
        .iter()
        .filter_map(|r| match r.fields["reported"].kind {
            Some(prost_types::value::Kind::NumberValue(n)) => Some(n),
            _ => None,
        })
        .sum();
    hub.stop().await;
    eprintln!(
        "{kills} kills over {events} imported events, {behind_at_a_kill} while behind; \
         incident_stats complete {:?} after the import",
        projecting.elapsed()
    );
    let comparing = std::time::Instant::now();
    let checkpoints = assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
    eprintln!(
        "every model equals a rebuild at its checkpoint ({:?}): {checkpoints:?}",
        comparing.elapsed()
    );
    assert!(rows.len() < 1000, "one page holds every day's row");
    assert_eq!(counted as usize, events, "each event counted once");
}

/// A number from the clock, for kill times: which instant is hit must not matter.
fn jitter(range: std::ops::Range<u64>) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    range.start + u64::from(nanos) % (range.end - range.start)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_under_concurrent_reports() {
    let rounds: usize = std::env::var("CRASH_SOAK_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let nats = Nats::start().await;
    let js = nats.jetstream().await;
    let dir = tempfile::tempdir().expect("data dir");
    // Every request id sent, and the answers that came back.
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let answered: Arc<Mutex<BTreeMap<String, v1::ReportCaseResponse>>> = Arc::default();

    for round in 0..rounds {
        let mut hub = process(dir.path(), &nats).start().await;
        let mut clients = Vec::new();
        for client in 0..4 {
            let (commands, sent, answered) = (hub.commands(), sent.clone(), answered.clone());
            clients.push(tokio::spawn(async move {
                for i in 0.. {
                    let rid = format!("k-{round}-{client}-{i}");
                    sent.lock().expect("sent").push(rid.clone());
                    let mut commands = commands.clone();
                    match commands
                        .report_case(from("urban-management", incident(&rid)))
                        .await
                    {
                        Ok(answer) => {
                            answered
                                .lock()
                                .expect("answered")
                                .insert(rid, answer.into_inner());
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        // Kill at a random moment once reports are going through.
        let answered_before = answered.lock().expect("answered").len();
        hub_tests::wait_until("a report answered", Duration::from_secs(30), || async {
            (answered.lock().expect("answered").len() > answered_before).then_some(())
        })
        .await;
        tokio::time::sleep(Duration::from_millis(jitter(0..300))).await;
        hub.kill();
        for client in clients {
            client.await.expect("client task");
        }
    }

    // After the last kill: every report sent is retried; those answered before get their
    // first result, the rest are stored now; none is stored twice.
    let hub = process(dir.path(), &nats).start_serving_commands().await;
    let sent = sent.lock().expect("sent").clone();
    let answered = answered.lock().expect("answered").clone();
    assert!(
        !answered.is_empty(),
        "reports went through between the kills"
    );
    let last = retry_all(&hub, &sent, |rid| answered.get(rid).cloned()).await;
    let events = stored(&js).await;
    assert_once_each(&events);
    assert_eq!(events.len(), sent.len(), "each report stored exactly once");
    eprintln!(
        "{rounds} kills: {} reports sent, {} answered before a kill",
        sent.len(),
        answered.len()
    );
    queue_at(&hub, last).await;
    feed_holds_each_report_once(&js).await;
    hub.stop().await;
    assert_read_models_equal_a_rebuild(dir.path(), &js, default_policy()).await;
}
