//! The hub's side: real gRPC calls to the hub process over loopback.

use std::time::{Duration, Instant};

use hub_api::v1::{
    self, case_command_service_client::CaseCommandServiceClient,
    dataset_service_client::DatasetServiceClient,
};
use tonic::transport::Channel;

use crate::raw::median;

/// Most cases one ImportCases call takes (`MAX_IMPORT` in services/ingest/src/import.rs,
/// which is private).
pub const MAX_IMPORT: usize = 100_000;
/// Most cases in one streamed chunk of it (`MAX_CHUNK` there).
const MAX_CHUNK: usize = 1000;
/// What the hub's import appends at once: atomic batches of this many events
/// (`IMPORT_BATCH` in services/ingest/src/import.rs; one event per reported case)...
pub const IMPORT_BATCH: usize = 1000;
/// ...this many of them awaiting their acknowledgement at once (`IMPORT_BATCHES_IN_FLIGHT` in
/// services/ingest/src/execute/import.rs, a `buffered` stream of batches; each goes through
/// the group committer, whose default 4 slots let all 4 through, one batch each, since a
/// batch of 1000 fills a group batch).
pub const IMPORT_BATCHES_IN_FLIGHT: usize = 4;

pub struct Hub {
    channels: Vec<Channel>,
}

/// A grid worker's report, of a general category: its deadline to be accepted is a working
/// day away, so the hub's deadline supervision escalates none of the bench's cases while it
/// runs (an urgent one's would come due after 30 minutes, within a long run).
pub fn report(request_id: String, i: usize) -> v1::ReportCaseRequest {
    let grid = if i.is_multiple_of(2) {
        "310104001001001"
    } else {
        "310105001001002"
    };
    v1::ReportCaseRequest {
        request_id,
        kind: Some(v1::report_case_request::Kind::GridIncident(
            v1::GridIncident {
                grid_code: grid.into(),
                category: v1::IncidentCategory::Sanitation as i32,
                location: Some(v1::Location {
                    longitude: 121.44,
                    latitude: 31.2,
                    address: "3号楼北门".into(),
                }),
            },
        )),
        description: "消防通道被电动车堵塞 fire lane blocked".into(),
        reporter: Some(v1::Reporter {
            kind: v1::ReporterKind::GridWorker as i32,
            grid_worker_id: "GW-0107".into(),
        }),
        channel: v1::ReportChannel::GridPatrol as i32,
    }
}

pub fn with_department<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(
        hub_ingest::DEPARTMENT_HEADER,
        tonic::metadata::MetadataValue::from_static("urban-management"),
    );
    metadata.insert(
        hub_api::identity::PERSON_HEADER,
        tonic::metadata::MetadataValue::from_static("bench-0001"),
    );
    metadata.insert(
        hub_api::identity::PURPOSE_HEADER,
        tonic::metadata::MetadataValue::from_static("bench"),
    );
    request
}

impl Hub {
    /// Connects to the hub at `addr` (four HTTP/2 connections) and waits until it serves
    /// commands (its stream and read models are ready).
    pub async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
        let mut channels = Vec::new();
        let started = Instant::now();
        while channels.len() < 4 {
            match endpoint.connect().await {
                Ok(channel) => channels.push(channel),
                Err(_) if started.elapsed() < Duration::from_secs(60) => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => anyhow::bail!("hub did not come up: {err}"),
            }
        }
        let mut client = CaseCommandServiceClient::new(channels[0].clone());
        while client
            .report_case(with_department(report("bench-ready".into(), 0)))
            .await
            .is_err()
        {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(60),
                "hub did not accept a report"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self { channels })
    }

    pub fn channel(&self, i: usize) -> Channel {
        self.channels[i % self.channels.len()].clone()
    }

    fn client(&self, i: usize) -> CaseCommandServiceClient<Channel> {
        CaseCommandServiceClient::new(self.channels[i % self.channels.len()].clone())
    }

    /// `concurrency` clients, each awaiting its answer before the next call: reports per second.
    pub async fn concurrent(
        &self,
        events: usize,
        concurrency: usize,
        tag: &str,
    ) -> anyhow::Result<f64> {
        let started = Instant::now();
        // Each client is a task of its own, so the runtime's threads share the client work.
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let mut client = self.client(w);
                let tag = tag.to_owned();
                tokio::spawn(async move {
                    let mut n = w;
                    while n < events {
                        client
                            .report_case(with_department(report(format!("{tag}-{n}"), n)))
                            .await?;
                        n += concurrency;
                    }
                    anyhow::Ok(())
                })
            })
            .collect();
        for worker in workers {
            worker.await??;
        }
        Ok(events as f64 / started.elapsed().as_secs_f64())
    }

    /// Round trips of one report, one at a time.
    pub async fn sequential(&self, count: usize, tag: &str) -> anyhow::Result<Vec<Duration>> {
        let mut client = self.client(0);
        let mut times = Vec::with_capacity(count);
        for n in 0..count {
            let started = Instant::now();
            client
                .report_case(with_department(report(format!("{tag}-{n}"), n)))
                .await?;
            times.push(started.elapsed());
        }
        Ok(times)
    }

    /// `concurrency` clients, each awaiting its answer before the next call, reading a page of
    /// `page_size` rows of `dataset` as a department that may read it (each read waits for
    /// its audit record to be stored before it is answered): queries per second, and the
    /// median round trip.
    pub async fn queries(
        &self,
        dataset: &str,
        page_size: u32,
        queries: usize,
        concurrency: usize,
    ) -> anyhow::Result<(f64, Duration)> {
        let started = Instant::now();
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let mut client =
                    DatasetServiceClient::new(self.channels[w % self.channels.len()].clone());
                let request = v1::ReadDatasetRequest {
                    dataset_id: dataset.to_owned(),
                    page_size,
                    ..Default::default()
                };
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    let mut n = w;
                    while n < queries {
                        let asked = Instant::now();
                        let page = client
                            .read_dataset(with_department(request.clone()))
                            .await?
                            .into_inner();
                        times.push(asked.elapsed());
                        anyhow::ensure!(
                            !page.rows.is_empty(),
                            "an empty page of {}",
                            request.dataset_id
                        );
                        n += concurrency;
                    }
                    anyhow::Ok(times)
                })
            })
            .collect();
        let mut times = Vec::with_capacity(queries);
        for worker in workers {
            times.extend(worker.await??);
        }
        let rate = queries as f64 / started.elapsed().as_secs_f64();
        Ok((rate, median(times)))
    }

    /// Imports `cases` historic cases (request ids `<tag>-<n>`) in one ImportCases call,
    /// streamed in chunks of 1000: cases per second. Fails unless every case is imported.
    pub async fn import(&self, cases: usize, tag: &str) -> anyhow::Result<f64> {
        anyhow::ensure!(
            cases <= MAX_IMPORT,
            "at most {} cases per import",
            MAX_IMPORT
        );
        // Reported a minute ago: historic cases from years ago would all be past their
        // deadlines, and the hub's deadline supervision would escalate every one of them
        // while the bench measures other things.
        let now = jiff::Timestamp::now().as_second() - 60;
        let reported_at = prost_types::Timestamp {
            seconds: now,
            nanos: 0,
        };
        let chunks: Vec<v1::ImportCasesRequest> = (0..cases)
            .collect::<Vec<_>>()
            .chunks(MAX_CHUNK)
            .map(|chunk| v1::ImportCasesRequest {
                cases: chunk
                    .iter()
                    .map(|&i| {
                        let r = report(format!("{tag}-{i}"), i);
                        v1::HistoricCase {
                            request_id: r.request_id,
                            kind: r.kind.map(Into::into),
                            description: r.description,
                            reporter: r.reporter,
                            channel: r.channel,
                            reported_at: Some(reported_at),
                        }
                    })
                    .collect(),
            })
            .collect();
        let started = Instant::now();
        let done = self
            .client(0)
            .import_cases(with_department(futures::stream::iter(chunks)))
            .await?
            .into_inner();
        let elapsed = started.elapsed();
        anyhow::ensure!(
            done.imported as usize == cases && done.already_imported == 0,
            "imported {} of {cases} ({} already imported)",
            done.imported,
            done.already_imported
        );
        Ok(cases as f64 / elapsed.as_secs_f64())
    }
}
