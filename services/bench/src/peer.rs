//! The peer: what a city would pick instead of the hub, an event table on PostgreSQL, run with
//! full durability on this machine and driven with the hub's workloads.
//!
//! The server is Debian's `postgresql` package (installed with apt-get when missing), on a
//! cluster of its own: `initdb` into a temp dir, listening on 127.0.0.1 only at a free port
//! (its unix socket in the temp dir), with `fsync`, `synchronous_commit` and
//! `full_page_writes` on: an append is on disk when its commit returns, as the hub's are
//! with `sync_interval: always`.
//!
//! The table holds what the hub's events stream holds (see [`workload::TABLE`]): a bigserial
//! global position; the stream and its version, UNIQUE together, which is the optimistic
//! concurrency check (an append names the stream and the version it expects, inserts version
//! expected + 1, and a unique violation is a conflict); the body, 211 bytes of bytea like the
//! hub's sample case report; and the metadata as jsonb, the CloudEvents-style attributes the
//! hub carries in headers (id, source, type, subject, time, dataschema, department,
//! classification, correlation and causation ids, traceparent, request id, a 32-hex command
//! hash), 613 bytes of compact JSON per event as sent (638 as jsonb prints it back, 646
//! stored), each event with values of its own.
//!
//! The workloads mirror the hub's: `concurrent` clients (one connection each) each awaiting
//! its commit before its next append, every append a new stream; `sequential`, one append at
//! a time on one connection; and bulk imports on one connection, as multi-row INSERTs or as
//! binary COPY, one transaction per batch. Every statement is prepared before the clock
//! starts (but for a bulk run's last, shorter INSERT when `batch` does not divide `events`). Measured on this kind of machine before: about 8,200 new-stream appends/s from 32
//! clients, a single append's median 0.46 ms, bulk 22,000 events/s with multi-row INSERTs
//! and 29,000/s with COPY.
//!
//! The server is always stopped: by [`Peer::stop`] (fast shutdown), else when the `Peer` is
//! dropped (immediate shutdown, SIGKILL if that hangs), also when `start` fails after the
//! postmaster came up; and should this process die without either (a Ctrl-C or a SIGKILL
//! ends it without unwinding), a watchdog shell of its own process group, which polls for
//! this process twice a second, does the same and removes the temp dir.

mod server;
mod versus;
mod workload;

pub use versus::{HubFigures, rows};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls};

pub use workload::{BODY_BYTES, Event, event};
use workload::{Events, Jsonb, append, body};

/// The user the server runs as when this process is root (PostgreSQL refuses root).
const SERVER_USER: &str = "postgres";

/// A PostgreSQL server on a temp data dir, on loopback at a random free port, with the
/// event table created.
pub struct Peer {
    bin: PathBuf,
    /// Data dir, socket and log; removed when the peer stops. `None` once stopped.
    dir: Option<TempDir>,
    port: u16,
    pid: Option<u32>,
    user: Option<&'static str>,
    version: String,
    ticks_per_second: f64,
    events: Arc<Events>,
    /// Stops the server should this process die without stopping it (see `server::watchdog`).
    watchdog: Option<std::process::Child>,
}

impl Peer {
    /// Finds Debian's PostgreSQL binaries (installing the `postgresql` package when there are
    /// none), `initdb`s a cluster in a temp dir inside `dir`, starts it with full durability
    /// and creates the event table.
    pub async fn start(dir: &Path) -> anyhow::Result<Peer> {
        let bin = match server::locate() {
            Some(bin) => bin,
            None => server::install().await?,
        };
        let user = if server::is_root()? {
            Some(SERVER_USER)
        } else {
            None
        };
        std::fs::create_dir_all(dir)?;
        let temp = tempfile::Builder::new()
            .prefix("peer-pg-")
            .tempdir_in(dir)?;
        if let Some(user) = user {
            server::ensure_traversable(dir)?;
            let (uid, gid) = server::user_ids(user)?;
            std::os::unix::fs::chown(temp.path(), Some(uid), Some(gid))?;
        }
        let root = temp.path().to_owned();
        let data = root.join("data");
        let version = server::run(
            server::pg_command(&bin, "postgres", user, &root).arg("--version"),
            "postgres --version",
        )
        .await?
        .trim()
        .to_owned();

        let mut initdb = server::pg_command(&bin, "initdb", user, &root);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .arg("--no-sync");
        server::run(&mut initdb, "initdb").await?;

        let port = server::free_port()?;
        // A unix socket's path is at most 107 bytes; none at all if the temp dir's is too long.
        let socket_dir = (root.as_os_str().len() + 20 < 108).then_some(root.as_path());
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)?;
        text.push_str(&server::settings(port, socket_dir));
        std::fs::write(&conf, text)?;

        // From here on the peer exists, so a failure stops the server (see Drop).
        let mut peer = Peer {
            bin,
            dir: Some(temp),
            port,
            pid: None,
            user,
            version,
            ticks_per_second: server::clock_ticks(),
            events: Arc::default(),
            watchdog: None,
        };
        let log = root.join("postgres.log");
        let mut pg_ctl = server::pg_command(&peer.bin, "pg_ctl", user, &root);
        pg_ctl
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"]);
        if let Err(e) = server::run(&mut pg_ctl, "pg_ctl start").await {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("{e:#}\npostgres.log: {}", server::tail(&log, 1500));
        }
        peer.pid = server::read_postmaster_pid(&data);
        let Some(pid) = peer.pid else {
            bail!(
                "postgres started but {} has no pid",
                data.join("postmaster.pid").display()
            );
        };
        peer.watchdog = Some(server::watchdog(pid, &root)?);
        let client = peer.connect().await?;
        client.batch_execute(workload::TABLE).await?;
        Ok(peer)
    }

    /// `postgres --version`, e.g. "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)".
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A new connection over TCP on loopback, as a city's application would have.
    pub async fn connect(&self) -> anyhow::Result<Client> {
        let (client, connection) = Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .application_name("hub-bench-peer")
            .connect(NoTls)
            .await
            .context("connecting to the peer's PostgreSQL")?;
        tokio::spawn(async move {
            // Ends when the client is dropped; an error then is the client's to see.
            let _ = connection.await;
        });
        Ok(client)
    }

    /// `concurrency` clients, one connection each, each awaiting its commit before its next
    /// append; every append a new stream (version 1): events per second.
    pub async fn concurrent(&self, events: usize, concurrency: usize) -> anyhow::Result<f64> {
        let concurrency = concurrency.max(1);
        let mut clients = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            let client = self.connect().await?;
            let statement = client.prepare(workload::APPEND).await?;
            clients.push((client, statement));
        }
        let started = Instant::now();
        let workers: Vec<_> = clients
            .into_iter()
            .enumerate()
            .map(|(w, (client, statement))| {
                let generator = self.events.clone();
                tokio::spawn(async move {
                    let mut n = w;
                    while n < events {
                        let event = generator.next();
                        append(&client, &statement, &event, 0)
                            .await?
                            .with_context(|| format!("conflict on new stream {}", event.stream))?;
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

    /// One client, one append at a time, each a new stream: each append's time to commit.
    pub async fn sequential(&self, count: usize) -> anyhow::Result<Vec<Duration>> {
        let client = self.connect().await?;
        let statement = client.prepare(workload::APPEND).await?;
        let mut times = Vec::with_capacity(count);
        for _ in 0..count {
            let event = self.events.next();
            let started = Instant::now();
            append(&client, &statement, &event, 0)
                .await?
                .with_context(|| format!("conflict on new stream {}", event.stream))?;
            times.push(started.elapsed());
        }
        Ok(times)
    }

    /// Appends `event` as version `expected + 1` of its stream on a new connection: its global
    /// position, or `None` for a conflict (the stream was not at `expected`).
    pub async fn append_one(&self, event: &Event, expected: i64) -> anyhow::Result<Option<i64>> {
        let client = self.connect().await?;
        let statement = client.prepare(workload::APPEND).await?;
        append(&client, &statement, event, expected).await
    }

    /// One client, multi-row INSERTs of `batch` events, each its own transaction: events per
    /// second.
    pub async fn bulk_insert(&self, events: usize, batch: usize) -> anyhow::Result<f64> {
        let batch = batch.clamp(1, workload::MAX_INSERT_ROWS);
        let client = self.connect().await?;
        let full = client.prepare(&workload::multi_insert(batch)).await?;
        let version = 1_i64;
        let started = Instant::now();
        let mut done = 0;
        while done < events {
            let size = batch.min(events - done);
            let chunk: Vec<Event> = (0..size).map(|_| self.events.next()).collect();
            let metadata: Vec<Jsonb<'_>> = chunk.iter().map(|e| Jsonb(&e.metadata)).collect();
            let body = body();
            let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(size * 4);
            for (event, metadata) in chunk.iter().zip(&metadata) {
                params.extend::<[&(dyn ToSql + Sync); 4]>([
                    &event.stream as _,
                    &version as _,
                    &body as _,
                    metadata as _,
                ]);
            }
            let inserted = if size == batch {
                client.execute(&full, &params).await?
            } else {
                let last = client.prepare(&workload::multi_insert(size)).await?;
                client.execute(&last, &params).await?
            };
            if inserted != size as u64 {
                bail!("a multi-row INSERT of {size} events inserted {inserted}");
            }
            done += size;
        }
        Ok(events as f64 / started.elapsed().as_secs_f64())
    }

    /// One client, binary COPY of `batch` events per transaction: events per second.
    pub async fn bulk_copy(&self, events: usize, batch: usize) -> anyhow::Result<f64> {
        let batch = batch.max(1);
        let mut client = self.connect().await?;
        let copy = client.prepare(workload::COPY).await?;
        let version = 1_i64;
        let body = body();
        let started = Instant::now();
        let mut done = 0;
        while done < events {
            let size = batch.min(events - done);
            let transaction = client.transaction().await?;
            let sink = transaction.copy_in(&copy).await?;
            let writer = BinaryCopyInWriter::new(sink, &workload::COPY_TYPES);
            let mut writer = std::pin::pin!(writer);
            for _ in 0..size {
                let event = self.events.next();
                writer
                    .as_mut()
                    .write(&[&event.stream, &version, &body, &Jsonb(&event.metadata)])
                    .await?;
            }
            let copied = writer.finish().await?;
            transaction.commit().await?;
            if copied != size as u64 {
                bail!("a COPY of {size} events copied {copied}");
            }
            done += size;
        }
        Ok(events as f64 / started.elapsed().as_secs_f64())
    }

    /// CPU seconds the server's processes used so far: utime + stime of the postmaster and of
    /// each process whose parent it is (its backends and auxiliary processes: checkpointer,
    /// background writer, WAL writer, ...), plus the cutime + cstime of each, which holds the
    /// backends that have exited (the postmaster reaps them), from `/proc/<pid>/stat`.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        let pid = self.pid.context("the peer is not running")?;
        Ok(server::tree_ticks(pid)? as f64 / self.ticks_per_second)
    }

    /// CPU seconds this process (the clients) used so far, all threads.
    pub fn client_cpu_seconds(&self) -> f64 {
        server::own_cpu_ticks() as f64 / self.ticks_per_second
    }

    fn end_watchdog(&mut self) {
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// Fast shutdown (the postmaster ends every connection and checkpoints), then the temp
    /// dir is removed.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let Some(dir) = self.dir.take() else {
            return Ok(());
        };
        let data = dir.path().join("data");
        let mut pg_ctl = server::pg_command(&self.bin, "pg_ctl", self.user, dir.path());
        pg_ctl
            .arg("-D")
            .arg(&data)
            .args(["-m", "fast", "-w", "-t", "60", "stop"]);
        let stopped = server::run(&mut pg_ctl, "pg_ctl stop").await;
        if let Some(pid) = self.pid.or_else(|| server::read_postmaster_pid(&data))
            && server::alive(pid)
        {
            tokio::task::spawn_blocking(move || server::kill_blocking(pid)).await?;
        }
        self.end_watchdog();
        dir.close()?;
        stopped.map(drop)
    }
}

impl Drop for Peer {
    /// A peer not stopped is killed: immediate shutdown, SIGKILL if that hangs; the temp dir
    /// goes after it (the field is dropped after this).
    fn drop(&mut self) {
        let Some(dir) = &self.dir else {
            return;
        };
        if let Some(pid) = self
            .pid
            .or_else(|| server::read_postmaster_pid(&dir.path().join("data")))
            && server::alive(pid)
        {
            server::kill_blocking(pid);
        }
        self.end_watchdog();
    }
}
