//! The hub's side: real gRPC calls to an in-process hub over loopback.

use std::path::Path;
use std::time::{Duration, Instant};

use hub_api::v1::{
    self, case_command_service_client::CaseCommandServiceClient,
    dataset_service_client::DatasetServiceClient,
};
use hub_log::server::NatsServer;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use crate::raw::median;

pub struct Hub {
    channels: Vec<Channel>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

fn report(request_id: String, i: usize) -> v1::ReportCaseRequest {
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
                category: v1::IncidentCategory::FireHazard as i32,
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

fn with_department<T>(message: T) -> tonic::Request<T> {
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
    pub async fn start(nats: &NatsServer, data_dir: &Path) -> anyhow::Result<Self> {
        let mut config = hub::Config {
            data_dir: data_dir.to_owned(),
            listen: ([127, 0, 0, 1], 0).into(),
            // A known instance, so the bench finds the hub's audit chain.
            instance: crate::audit::HUB_INSTANCE.to_owned(),
            ..Default::default()
        };
        config.nats.url = Some(nats.client_url().to_owned());
        config.nats.monitor_url = Some(nats.monitor_url().to_owned());
        // The benchmark's own server, without department accounts.
        config.nats.accept_no_isolation = true;
        // Departments named by header, as on a developer's machine.
        config.identity.mode = hub_api::identity::Mode::Development;
        // A hub on an external NATS is given its command hash key.
        std::fs::create_dir_all(data_dir)?;
        let key = data_dir.join("command-hash.key");
        std::fs::write(&key, "a".repeat(64))?;
        config.commands.hash_key_file = Some(key);
        // And its audit signing key.
        let audit_key = data_dir.join("audit-signing.key");
        std::fs::write(
            &audit_key,
            hub_audit::signing::CheckpointSigner::from_bytes(&crate::audit::SIGNING_KEY)
                .to_pkcs8_pem()
                .map_err(anyhow::Error::msg)?,
        )?;
        config.audit.signing_key_file = Some(audit_key);
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(hub::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?;
        let mut channels = Vec::new();
        let started = Instant::now();
        while channels.len() < 4 {
            match endpoint.connect().await {
                Ok(channel) => channels.push(channel),
                Err(_) if started.elapsed() < Duration::from_secs(60) && !task.is_finished() => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(err) => anyhow::bail!("hub did not come up: {err}"),
            }
        }
        // Wait until the hub serves commands (its stream and read models are ready).
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
        Ok(Self {
            channels,
            stop,
            task,
        })
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

    /// Median round trip of one report, one at a time.
    pub async fn sequential(&self, count: usize, tag: &str) -> anyhow::Result<Duration> {
        let mut client = self.client(0);
        let mut times = Vec::with_capacity(count);
        for n in 0..count {
            let started = Instant::now();
            client
                .report_case(with_department(report(format!("{tag}-{n}"), n)))
                .await?;
            times.push(started.elapsed());
        }
        Ok(median(times))
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

    /// Imports `cases` historic cases in chunks of 1000: cases per second.
    pub async fn bulk(&self, cases: usize) -> anyhow::Result<f64> {
        let chunks: Vec<v1::ImportCasesRequest> = (0..cases)
            .collect::<Vec<_>>()
            .chunks(1000)
            .map(|chunk| v1::ImportCasesRequest {
                cases: chunk
                    .iter()
                    .map(|&i| {
                        let r = report(format!("bulk-{i}"), i);
                        v1::HistoricCase {
                            request_id: r.request_id,
                            kind: r.kind.map(Into::into),
                            description: r.description,
                            reporter: r.reporter,
                            channel: r.channel,
                            reported_at: Some(prost_types::Timestamp {
                                seconds: 1_700_000_000,
                                nanos: 0,
                            }),
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
        anyhow::ensure!(
            done.imported as usize == cases,
            "imported {} of {cases}",
            done.imported
        );
        Ok(cases as f64 / started.elapsed().as_secs_f64())
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await?
    }
}
