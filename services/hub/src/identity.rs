//! Who may call the hub, as configured: the TLS the gRPC/HTTP port serves, the CA whose
//! client certificates name departments, the key that verifies departments' signed tokens,
//! and development mode (the unproven `x-hub-department` header), which the hub announces
//! at start-up and allows on a loopback address only.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use hub_api::identity::token::TokenVerifier;
use hub_api::identity::{Authenticator, Mode};
use hub_domain::clock::Clock;
use hub_domain::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio_rustls::rustls::ServerConfig;
use tracing::{info, warn};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// `production`: departments prove who they are by client certificate or signed token;
    /// `development`: the `x-hub-department` header is also believed (loopback only).
    pub mode: Mode,
    /// The hub's TLS certificate chain (PEM); with `tls_key_file`, the port serves TLS only.
    pub tls_cert_file: Option<PathBuf>,
    /// The private key of `tls_cert_file` (PEM).
    pub tls_key_file: Option<PathBuf>,
    /// The CA (PEM) whose client certificates identify departments: the subject's common
    /// name is the department's code.
    pub client_ca_file: Option<PathBuf>,
    /// Refuse connections without a client certificate. Off by default, because the
    /// anonymous public reads open datasets and the catalogue without one.
    pub require_client_certificate: bool,
    /// The Ed25519 public key (PEM) that verifies departments' signed tokens
    /// (`authorization: Bearer …`); unset: no tokens are accepted.
    pub token_public_key_file: Option<PathBuf>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Production,
            tls_cert_file: None,
            tls_key_file: None,
            client_ca_file: None,
            require_client_certificate: false,
            token_public_key_file: None,
        }
    }
}

/// What the configuration makes of identity: the authenticator every service asks, and the
/// TLS the port serves (`None`: plain TCP).
#[derive(Debug)]
pub struct Identities {
    pub auth: Authenticator,
    pub tls: Option<Arc<ServerConfig>>,
}

impl IdentityConfig {
    /// Checks the settings against each other and the listen address, reads the files, and
    /// says at start-up how callers are identified.
    pub fn load(
        &self,
        listen: SocketAddr,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Identities> {
        let tls = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => bail!("identity.tls_cert_file and identity.tls_key_file go together"),
        };
        if tls.is_none() && self.client_ca_file.is_some() {
            bail!("identity.client_ca_file needs TLS: set identity.tls_cert_file and tls_key_file");
        }
        if self.require_client_certificate && self.client_ca_file.is_none() {
            bail!("identity.require_client_certificate needs identity.client_ca_file");
        }
        match self.mode {
            Mode::Production if tls.is_none() => bail!(
                "production identity needs TLS: set identity.tls_cert_file and \
                 identity.tls_key_file (`hub dev-ca` makes a development set), or run in \
                 development mode (--dev) on a loopback address"
            ),
            Mode::Production
                if self.client_ca_file.is_none() && self.token_public_key_file.is_none() =>
            {
                bail!(
                    "no department could prove who it is: set identity.client_ca_file (client \
                     certificates) or identity.token_public_key_file (signed tokens), or both"
                )
            }
            Mode::Development if !listen.ip().is_loopback() => bail!(
                "development mode believes the x-hub-department header unproven, so it \
                 listens on a loopback address only, not {listen}"
            ),
            _ => {}
        }
        let tokens = self
            .token_public_key_file
            .as_deref()
            .map(|path| {
                TokenVerifier::from_public_pem(&read(path, "identity.token_public_key_file")?)
                    .map_err(|e| {
                        anyhow::anyhow!("identity.token_public_key_file {}: {e}", path.display())
                    })
            })
            .transpose()?;
        let tls = match tls {
            None => None,
            Some((cert, key)) => {
                let ca = self
                    .client_ca_file
                    .as_deref()
                    .map(|ca| read(ca, "identity.client_ca_file"))
                    .transpose()?;
                Some(crate::tls::server_config(
                    &read(cert, "identity.tls_cert_file")?,
                    &read(key, "identity.tls_key_file")?,
                    ca.as_deref(),
                    self.require_client_certificate,
                )?)
            }
        };
        if self.mode == Mode::Development {
            warn!(
                "DEVELOPMENT MODE: a request's x-hub-department header names its department \
                 unproven; never run this way with real data or beyond this machine"
            );
        }
        info!(
            mode = ?self.mode,
            tls = tls.is_some(),
            client_certificates = self.client_ca_file.is_some(),
            client_certificate_required = self.require_client_certificate,
            tokens = tokens.is_some(),
            "caller identity"
        );
        Ok(Identities {
            auth: Authenticator::new(self.mode, tokens, registry, clock),
            tls,
        })
    }
}

fn read(path: &Path, key: &str) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{key}: reading {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hub_domain::clock::ManualClock;

    fn registry() -> Arc<Registry> {
        Arc::new(crate::load_registry(None).expect("demo registry"))
    }

    fn load(config: &IdentityConfig, listen: &str) -> anyhow::Result<Identities> {
        let clock = Arc::new(ManualClock::new(jiff::Timestamp::UNIX_EPOCH));
        config.load(listen.parse().expect("address"), registry(), clock)
    }

    /// A self-signed server certificate and key in `dir`.
    fn tls_files(dir: &Path) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let (cert_file, key_file) = (dir.join("hub.pem"), dir.join("hub.key"));
        std::fs::write(&cert_file, cert.pem()).expect("write");
        std::fs::write(&key_file, key.serialize_pem()).expect("write");
        (cert_file, key_file)
    }

    fn refusal(config: &IdentityConfig, listen: &str) -> String {
        format!("{:#}", load(config, listen).expect_err("refused"))
    }

    #[test]
    fn production_needs_tls_and_a_way_for_departments_to_prove_who_they_are() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (cert, key) = tls_files(dir.path());
        let bare = IdentityConfig::default();
        assert_eq!(
            bare.mode,
            Mode::Production,
            "production unless asked otherwise"
        );
        assert!(refusal(&bare, "127.0.0.1:0").contains("identity.tls_cert_file"));
        let tls_only = IdentityConfig {
            tls_cert_file: Some(cert.clone()),
            tls_key_file: Some(key.clone()),
            ..IdentityConfig::default()
        };
        assert!(refusal(&tls_only, "127.0.0.1:0").contains("no department could prove"));
        let half = IdentityConfig {
            tls_cert_file: Some(cert.clone()),
            ..IdentityConfig::default()
        };
        assert!(refusal(&half, "127.0.0.1:0").contains("go together"));
        // With the CA of client certificates: served, over TLS, on any address.
        let with_ca = IdentityConfig {
            client_ca_file: Some(cert.clone()),
            ..tls_only.clone()
        };
        let loaded = load(&with_ca, "0.0.0.0:0").expect("production");
        assert!(loaded.tls.is_some());
        assert_eq!(loaded.auth.mode(), Mode::Production);
        // A required client certificate needs the CA.
        let required = IdentityConfig {
            require_client_certificate: true,
            ..tls_only
        };
        assert!(refusal(&required, "127.0.0.1:0").contains("client_ca_file"));
        let missing = IdentityConfig {
            client_ca_file: Some(dir.path().join("no-such-ca.pem")),
            ..with_ca
        };
        assert!(refusal(&missing, "127.0.0.1:0").contains("identity.client_ca_file"));
    }

    #[test]
    fn development_mode_listens_on_loopback_only() {
        let development = IdentityConfig {
            mode: Mode::Development,
            ..IdentityConfig::default()
        };
        let loaded = load(&development, "127.0.0.1:0").expect("loopback");
        assert!(loaded.tls.is_none());
        assert_eq!(loaded.auth.mode(), Mode::Development);
        load(&development, "[::1]:0").expect("loopback v6");
        assert!(refusal(&development, "0.0.0.0:50051").contains("loopback"));
        assert!(refusal(&development, "192.168.1.10:50051").contains("loopback"));
    }
}
