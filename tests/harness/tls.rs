//! Talking to a hub that serves TLS and knows departments by client certificate: gRPC
//! channels with or without a client certificate, and HTTP/1.1 over TLS for the catalogue
//! and dataset rows.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// The name the development CA's server certificate is made out to.
pub const SERVER_NAME: &str = "localhost";

/// What a client presents and trusts.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// The CA (PEM) the client trusts for the hub's certificate.
    pub ca: Vec<u8>,
    /// The client certificate and key (PEM), if it presents one.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

impl ClientTls {
    /// Trusting `ca`, presenting no certificate.
    pub fn anonymous(ca: &Path) -> Self {
        Self {
            ca: read(ca),
            identity: None,
        }
    }

    /// Trusting `ca`, presenting `cert` with `key`.
    pub fn presenting(ca: &Path, cert: &Path, key: &Path) -> Self {
        Self {
            ca: read(ca),
            identity: Some((read(cert), read(key))),
        }
    }

    /// A gRPC endpoint to the hub at `addr` over this TLS.
    pub fn endpoint(&self, addr: SocketAddr) -> Endpoint {
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .domain_name(SERVER_NAME);
        if let Some((cert, key)) = &self.identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Endpoint::from_shared(format!("https://{addr}"))
            .expect("endpoint")
            .tls_config(tls)
            .expect("client TLS")
            .connect_timeout(Duration::from_secs(5))
    }

    /// A connected channel; `Err` when the handshake or connection fails.
    pub async fn connect(&self, addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
        self.endpoint(addr).connect().await
    }

    fn rustls_config(&self) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&self.ca) {
            roots.add(cert.expect("CA PEM")).expect("CA certificate");
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .expect("certificate PEM");
                let key = PrivateKeyDer::from_pem_slice(key).expect("key PEM");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate")
            }
        };
        // As an HTTP/1.1-only client (a harvester's) names its protocol.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config
    }

    /// An HTTP/1.1 GET of `path` with `headers` over this TLS, offering only `http/1.1` by
    /// ALPN; the status and the body.
    pub async fn get(
        &self,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<(u16, String)> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.rustls_config()));
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::try_from(SERVER_NAME).expect("server name");
        let mut tls = connector.connect(name, tcp).await?;
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {SERVER_NAME}\r\nConnection: close\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        tls.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        tls.read_to_end(&mut response).await?;
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }
}
