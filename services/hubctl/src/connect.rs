//! Which hub, and who asks: the operator unit's proof and the person acting.

use std::path::PathBuf;

use anyhow::anyhow;
use hub::audit_cli::Caller;
use hub_api::v1::admin_service_client::AdminServiceClient;
use tonic::transport::Channel;

/// The demo reference data's operator unit, which a development hub accepts by header.
const DEMO_OPERATOR: &str = "big-data-centre";

#[derive(Debug, Clone, clap::Args)]
pub struct Connection {
    /// The hub's gRPC address (https:// with TLS).
    #[arg(
        long,
        global = true,
        env = "HUBCTL_HUB",
        value_name = "URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub hub: String,
    /// The operator unit, as x-hub-department (a hub in development mode only; ignored
    /// with --token-file or --cert).
    #[arg(long, global = true, env = "HUBCTL_DEPARTMENT", value_name = "CODE", default_value = DEMO_OPERATOR)]
    pub department: String,
    /// A signed token of the operator unit (as `hub dev-ca` writes them).
    #[arg(long, global = true, env = "HUBCTL_TOKEN_FILE", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The operator unit's client certificate (PEM), with --key.
    #[arg(long, global = true, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The CA (PEM) the hub's certificate is checked against.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// The person acting (x-hub-user); by default the login name.
    #[arg(long, global = true, env = "HUBCTL_USER", value_name = "ID")]
    pub user: Option<String>,
    /// Why (x-hub-purpose): a ticket, a change, a drill.
    #[arg(
        long,
        global = true,
        env = "HUBCTL_PURPOSE",
        default_value = "operations"
    )]
    pub purpose: String,
}

impl Connection {
    pub fn caller(&self) -> Caller {
        let proven = self.token_file.is_some() || self.cert.is_some();
        Caller {
            hub: self.hub.clone(),
            department: (!proven).then(|| self.department.clone()),
            token_file: self.token_file.clone(),
            cert_file: self.cert.clone(),
            key_file: self.key.clone(),
            ca_file: self.ca.clone(),
            user: self.user.clone().unwrap_or_else(login_name),
            purpose: self.purpose.clone(),
        }
    }

    /// A client of the hub's AdminService.
    pub async fn admin(&self) -> anyhow::Result<(AdminServiceClient<Channel>, Caller)> {
        let caller = self.caller();
        let channel = hub::audit_cli::channel(&caller).await?;
        // Replays and exports may be long messages.
        let client = AdminServiceClient::new(channel).max_decoding_message_size(64 << 20);
        Ok((client, caller))
    }
}

fn login_name() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u.is_ascii())
        .unwrap_or_else(|| "operator".to_owned())
}

/// A refusal of the hub as an error: its gRPC code and its message.
pub fn refused(what: &str, status: tonic::Status) -> anyhow::Error {
    anyhow!("{what}: {:?}: {}", status.code(), status.message())
}

/// `message` as a request of `caller`.
pub fn request<T>(caller: &Caller, message: T) -> anyhow::Result<tonic::Request<T>> {
    hub::audit_cli::request(caller, message)
}
