//! A real 3-node nats-server cluster on loopback, as production runs the log (and as the
//! nats.rs test crate runs one): JetStream on every node, routes between them, each node's
//! store and monitoring of its own. A node can be killed and started again on the same ports
//! and store, with the same or other settings.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::jetstream;
use hub_log::server::{ClusterOptions, NatsServer, ServerOptions, locate_binary};
use tempfile::TempDir;

use crate::nats::{audit_key_file, hash_key_file, write_keys};

/// The nodes, each running or killed, and the dir under which each has its own.
pub struct Cluster {
    nodes: Vec<Node>,
    dir: TempDir,
}

struct Node {
    options: ServerOptions,
    server: Option<NatsServer>,
    client_url: String,
    monitor_url: String,
}

/// A free loopback port, for the route ports every member must know before any starts. The
/// port is released at once, so another process could take it first: nats-server then fails
/// to start, and says so in the panic.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}

impl Cluster {
    /// `size` nodes as the hub requires them (`sync_interval: always` on each), ready to
    /// place a stream with a replica on every node.
    pub async fn start(size: usize) -> Self {
        Self::start_with(&vec![true; size]).await
    }

    /// One node per entry, with `sync_interval: always` where it is `true`.
    pub async fn start_with(sync_always: &[bool]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("hub-test-cluster-")
            .tempdir()
            .expect("temp dir");
        write_keys(dir.path());
        let routes: Vec<u16> = sync_always.iter().map(|_| free_port()).collect();
        let mut nodes = Vec::new();
        for (i, (&sync, &port)) in sync_always.iter().zip(&routes).enumerate() {
            let mut options = ServerOptions::new(dir.path().join(format!("n{i}")), format!("n{i}"));
            options.sync_always = sync;
            options.cluster = Some(ClusterOptions {
                name: "hub-test".into(),
                port,
                peers: routes.clone(),
            });
            nodes.push(Node {
                options,
                server: None,
                client_url: String::new(),
                monitor_url: String::new(),
            });
        }
        let mut cluster = Self { nodes, dir };
        for i in 0..cluster.nodes.len() {
            cluster.launch(i).await;
        }
        cluster.wait_for_jetstream().await;
        cluster
    }

    async fn launch(&mut self, i: usize) {
        let binary = locate_binary().unwrap_or_else(|e| panic!("{e}"));
        let node = &mut self.nodes[i];
        std::fs::create_dir_all(&node.options.dir).expect("node dir");
        let server = NatsServer::start(&binary, node.options.clone())
            .await
            .unwrap_or_else(|e| panic!("starting cluster node n{i}: {e}"));
        node.client_url = server.client_url().to_owned();
        node.monitor_url = server.monitor_url().to_owned();
        // Started again, it keeps its ports, so the hub's URL lists stay right.
        node.options.client_port = Some(port_of(&node.client_url));
        node.options.monitor_port = Some(port_of(&node.monitor_url));
        node.server = Some(server);
    }

    /// Waits until the cluster can place a stream with a replica on every node (a meta leader
    /// elected and every peer known to it), as the hub's first start needs: a probe stream is
    /// created, then deleted.
    pub async fn wait_for_jetstream(&self) {
        let js = jetstream::new(self.client().await);
        let replicas = self.nodes.len();
        crate::wait_until(
            "the cluster to place a stream on every node",
            Duration::from_secs(30),
            || {
                let js = js.clone();
                async move {
                    js.create_stream(jetstream::stream::Config {
                        name: "HARNESS_PROBE".into(),
                        subjects: vec!["harness.probe".into()],
                        storage: jetstream::stream::StorageType::Memory,
                        num_replicas: replicas,
                        ..Default::default()
                    })
                    .await
                    .ok()
                }
            },
        )
        .await;
        js.delete_stream("HARNESS_PROBE")
            .await
            .expect("delete the probe stream");
    }

    /// Kills node `i` (SIGKILL): its store stays for a restart.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut server) = self.nodes[i].server.take() {
            server.kill();
        }
    }

    /// Starts node `i` again on its ports and store, with `sync_interval: always` or not.
    pub async fn restart(&mut self, i: usize, sync_always: bool) {
        self.kill(i);
        self.nodes[i].options.sync_always = sync_always;
        self.launch(i).await;
    }

    /// Every node's client URL, comma-separated (as `nats.url` takes them).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.client_url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every node's monitoring URL, comma-separated (as `nats.monitor_url` takes them).
    pub fn monitor_urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| n.monitor_url.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Node `i`'s client URL.
    pub fn url(&self, i: usize) -> &str {
        &self.nodes[i].client_url
    }

    /// Node `i`'s monitoring URL.
    pub fn monitor_url(&self, i: usize) -> &str {
        &self.nodes[i].monitor_url
    }

    /// A client of the cluster, through any node that answers.
    pub async fn client(&self) -> async_nats::Client {
        let urls: Vec<&str> = self.nodes.iter().map(|n| n.client_url.as_str()).collect();
        async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connect(urls)
            .await
            .expect("connect to the test cluster")
    }

    pub async fn jetstream(&self) -> jetstream::Context {
        jetstream::new(self.client().await)
    }

    /// The command hash key every hub on this cluster shares.
    pub fn hash_key_file(&self) -> PathBuf {
        hash_key_file(self.dir.path())
    }

    /// The audit signing key every hub on this cluster is given.
    pub fn audit_key_file(&self) -> PathBuf {
        audit_key_file(self.dir.path())
    }
}
