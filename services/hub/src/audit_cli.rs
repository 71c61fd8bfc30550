//! `hub audit export` and `hub audit verify`: an auditor's export of the audit log from a
//! running hub, and its verification offline with the hub's public key alone.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hub_api::v1::audit_service_client::AuditServiceClient;
use hub_api::v1::{ExportAuditRequest, ExportHistoryRequest};
use hub_audit::export::{EXPORT_FORMAT, Tampered, Verified, verify as verify_bytes};
use hub_audit::history_proof::{HISTORY_FORMAT, VerifiedHistory};
use hub_audit::signing::{CheckpointVerifier, hex};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// Who the export is asked as, and of which hub.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The hub's gRPC address, `http://…` or `https://…`.
    pub hub: String,
    /// The auditor's unit code, sent as `x-hub-department` (a hub in development mode only).
    pub department: Option<String>,
    /// A signed token, sent as `authorization: Bearer`.
    pub token_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mTLS.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The CA (PEM) the hub's certificate is checked against.
    pub ca_file: Option<PathBuf>,
    /// The acting person (`x-hub-user`) and the purpose (`x-hub-purpose`).
    pub user: String,
    pub purpose: String,
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub items: u64,
    pub bytes: u64,
}

pub async fn channel(caller: &Caller) -> anyhow::Result<Channel> {
    let mut endpoint = Channel::from_shared(caller.hub.clone())
        .with_context(|| format!("the hub address {:?}", caller.hub))?;
    if caller.hub.starts_with("https://") {
        let mut tls = ClientTlsConfig::new();
        if let Some(ca) = &caller.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let (Some(cert), Some(key)) = (&caller.cert_file, &caller.key_file) {
            let cert =
                std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
            let key = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls)?;
    }
    endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to the hub at {}", caller.hub))
}

fn header(name: &str, value: &str) -> anyhow::Result<MetadataValue<tonic::metadata::Ascii>> {
    value
        .parse()
        .with_context(|| format!("{name} must be plain ASCII"))
}

/// `message` as a request of `caller`: the acting person, the purpose and the proof.
pub fn request<T>(caller: &Caller, message: T) -> anyhow::Result<tonic::Request<T>> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert("x-hub-user", header("--user", &caller.user)?);
    metadata.insert("x-hub-purpose", header("--purpose", &caller.purpose)?);
    if let Some(department) = &caller.department {
        metadata.insert("x-hub-department", header("--department", department)?);
    }
    if let Some(file) = &caller.token_file {
        let token = std::fs::read_to_string(file)
            .with_context(|| format!("reading the token {}", file.display()))?;
        metadata.insert(
            "authorization",
            header("the token", &format!("Bearer {}", token.trim()))?,
        );
    }
    Ok(request)
}

/// Writes the items of a streamed export to `out` (replaced only once the whole export
/// arrived, and synced).
async fn write_export<T: prost::Message>(
    mut items: tonic::Streaming<T>,
    out: &Path,
) -> anyhow::Result<Exported> {
    let mut bytes = Vec::new();
    let mut count = 0;
    while let Some(item) = items
        .message()
        .await
        .map_err(|status| anyhow::anyhow!("the export broke off: {}", status.message()))?
    {
        // Encoding into a Vec cannot run out of room.
        let _ = item.encode_length_delimited(&mut bytes);
        count += 1;
    }
    let partial = out.with_extension("partial");
    {
        use std::io::Write as _;
        let mut file = std::fs::File::create(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", partial.display()))?;
    }
    std::fs::rename(&partial, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(Exported {
        items: count,
        bytes: bytes.len() as u64,
    })
}

/// Asks the hub for an export of its audit log and writes it to `out`.
pub async fn export(caller: &Caller, out: &Path) -> anyhow::Result<Exported> {
    let request = request(caller, ExportAuditRequest {})?;
    let items = AuditServiceClient::new(channel(caller).await?)
        .export_audit(request)
        .await
        .map_err(|status| anyhow::anyhow!("the hub refused the export: {}", status.message()))?
        .into_inner();
    write_export(items, out).await
}

/// Asks the hub for one aggregate's history with its proof and writes it to `out`.
pub async fn export_history(
    caller: &Caller,
    aggregate: &str,
    out: &Path,
) -> anyhow::Result<Exported> {
    let request = request(
        caller,
        ExportHistoryRequest {
            aggregate: aggregate.to_owned(),
        },
    )?;
    let items = AuditServiceClient::new(channel(caller).await?)
        .export_history(request)
        .await
        .map_err(|status| anyhow::anyhow!("the hub refused the export: {}", status.message()))?
        .into_inner();
    write_export(items, out).await
}

/// Why an export file does not verify.
#[derive(Debug, thiserror::Error)]
pub enum NotVerified {
    /// The file or the key cannot be read.
    #[error("{0:#}")]
    Unreadable(anyhow::Error),
    /// The file is not what the hub stored and signed.
    #[error("TAMPERED: {0}")]
    Tampered(Tampered),
}

/// Verifies the export file `file` with the public keys (SPKI PEM) `public_keys` (every key
/// that signed any of its checkpoints), and against the earlier exports `previous`, each
/// verified first: every chain head an earlier export signed must be in this one, unchanged.
pub fn verify(
    file: &Path,
    public_keys: &[PathBuf],
    previous: &[PathBuf],
) -> Result<Verified, NotVerified> {
    let unreadable = |e: anyhow::Error| NotVerified::Unreadable(e);
    let key = verifier(public_keys)?;
    let read = |path: &Path| {
        std::fs::read(path)
            .with_context(|| format!("reading the export {}", path.display()))
            .map_err(unreadable)
    };
    let mut earlier = Vec::new();
    for path in previous {
        let verified = verify_bytes(&read(path)?, &key, &[]).map_err(|t| {
            NotVerified::Unreadable(anyhow::anyhow!(
                "the earlier export {} does not verify itself: {t}",
                path.display()
            ))
        })?;
        earlier.push(verified.manifest);
    }
    let bytes = read(file)?;
    if format_of(&bytes).as_deref() == Some(HISTORY_FORMAT) {
        return Err(NotVerified::Unreadable(anyhow::anyhow!(
            "{} is an aggregate's history: verify it with `hub audit verify-history`",
            file.display()
        )));
    }
    verify_bytes(&bytes, &key, &earlier).map_err(NotVerified::Tampered)
}

/// The format string of an export file's header (both kinds put it in the same place).
fn format_of(bytes: &[u8]) -> Option<String> {
    use prost::Message as _;
    let mut rest = bytes;
    let first = hub_api::v1::ExportAuditResponse::decode_length_delimited(&mut rest).ok()?;
    match first.item? {
        hub_api::v1::export_audit_response::Item::Header(h) => Some(h.format),
        hub_api::v1::export_audit_response::Item::Batch(_) => None,
    }
}

/// Verifies the history export `file` with the public keys `public_keys`.
pub fn verify_history(
    file: &Path,
    public_keys: &[PathBuf],
) -> Result<VerifiedHistory, NotVerified> {
    let key = verifier(public_keys)?;
    let bytes = std::fs::read(file)
        .with_context(|| format!("reading the export {}", file.display()))
        .map_err(NotVerified::Unreadable)?;
    if format_of(&bytes).as_deref() == Some(EXPORT_FORMAT) {
        return Err(NotVerified::Unreadable(anyhow::anyhow!(
            "{} is an audit log export: verify it with `hub audit verify`",
            file.display()
        )));
    }
    hub_audit::history_proof::verify(&bytes, &key).map_err(NotVerified::Tampered)
}

/// What a verified history export says, for a person.
pub fn describe_history(verified: &VerifiedHistory) -> String {
    let claim = &verified.claim;
    let positions: Vec<String> = claim.positions.iter().map(u64::to_string).collect();
    format!(
        "verified: the history of {} ({} events, at positions {}), as the event log holds it: \
         its digest folds over them and {} other messages to the head the hub signed at \
         position {}: {}",
        claim.aggregate,
        claim.positions.len(),
        positions.join(", "),
        verified.others,
        verified.head.position,
        hex(&verified.head.digest)
    )
}

/// A verifier holding the public keys (SPKI PEM) in `paths`.
fn verifier(paths: &[PathBuf]) -> Result<CheckpointVerifier, NotVerified> {
    let mut pems = Vec::new();
    for path in paths {
        pems.push(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the public key {}", path.display()))
                .map_err(NotVerified::Unreadable)?,
        );
    }
    let pems: Vec<&str> = pems.iter().map(String::as_str).collect();
    CheckpointVerifier::from_public_pems(&pems)
        .map_err(|e| NotVerified::Unreadable(anyhow::anyhow!("the public keys given: {e}")))
}

/// What a verified export says, for a person.
pub fn describe(verified: &Verified) -> String {
    let manifest = &verified.manifest;
    let when = manifest
        .time
        .as_ref()
        .and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map(|t| t.to_string())
        .unwrap_or_default();
    let mut lines = vec![format!(
        "verified: an export made by hub instance {} at {when}, signed with key {}",
        manifest.instance,
        hex(&verified.signed_by)
    )];
    for head in &manifest.chains {
        lines.push(format!(
            "  chain {}: batches 1 to {} (last at stream sequence {}), whole",
            head.instance, head.number, head.sequence
        ));
    }
    lines.push(format!(
        "  {} batches, {} records; checkpoints stored in the chains, each verified: {}",
        verified.batches, verified.records, verified.checkpoints
    ));
    lines.push(format!(
        "  event log digest signed at position {}: {}",
        verified.events.position,
        hex(&verified.events.digest)
    ));
    lines.join("\n")
}
