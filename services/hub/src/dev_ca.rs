//! `hub dev-ca --out DIR`: a development certificate authority and token key for department
//! identity, so a hub can run in production identity mode without an outside PKI.
//!
//! Writes into DIR a CA (`ca.pem`, `ca.key`), the hub's server certificate (`hub.pem`,
//! `hub.key`), per unit of the registry a client certificate whose subject common name is
//! the unit code (`units/<code>.pem`, `units/<code>.key`) and a signed token
//! (`units/<code>.token`), the token signing key (`token-signing.key`,
//! `token-signing.pub.pem`) and `identity.toml`, the `[identity]` lines of the hub's
//! configuration naming these files. Private keys and tokens are readable by the owner
//! alone (mode 0600). Written again, the CA and the token signing key are kept, so the
//! certificates and tokens handed out before stay valid; everything else is written afresh.

#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use hub_api::identity::token::{CLOCK_SKEW, TokenIssuer};
use hub_domain::registry::Registry;
use rcgen::string::Ia5String;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use serde::Serialize;

/// The common name of the development CA.
pub const CA_NAME: &str = "city data-sharing hub development CA";
/// The `iss` of the tokens `hub dev-ca` issues.
pub const TOKEN_ISSUER: &str = "hub dev-ca";
/// The URI subject alternative name of a unit's certificate, before the unit code.
pub const UNIT_URI_PREFIX: &str = "urn:city-data-hub:unit:";

const DAY: u64 = 24 * 60 * 60;
const CA_DAYS: u64 = 5 * 365 + 1;
const LEAF_DAYS: u64 = 365;

/// What `hub dev-ca` is asked for.
#[derive(Debug, Clone)]
pub struct DevCaOptions {
    /// Names and addresses the hub is reached at, beyond localhost, 127.0.0.1 and ::1.
    pub hosts: Vec<String>,
    /// How long the units' tokens are valid, in days (at least 1).
    pub token_days: u32,
    /// The time the certificates and tokens start from.
    pub now: jiff::Timestamp,
}

/// What `hub dev-ca` wrote: absolute paths.
#[derive(Debug, Clone)]
pub struct DevCa {
    /// The folder written into.
    pub dir: PathBuf,
    /// The CA certificate: the hub's `identity.client_ca_file`, and what clients trust.
    pub ca_cert: PathBuf,
    /// The CA's private key (kept for the next run; never handed out).
    pub ca_key: PathBuf,
    /// The hub's server certificate.
    pub server_cert: PathBuf,
    /// The hub's server private key.
    pub server_key: PathBuf,
    /// The token signing key (kept for the next run; never handed out).
    pub token_signing_key: PathBuf,
    /// The token public key: the hub's `identity.token_public_key_file`.
    pub token_public_key: PathBuf,
    /// The `[identity]` configuration lines naming these files.
    pub config: PathBuf,
    /// One identity per unit of the registry, in the registry's order.
    pub units: Vec<UnitIdentity>,
}

/// The files of one unit: hand each unit its own and no one else's.
#[derive(Debug, Clone)]
pub struct UnitIdentity {
    /// The unit code, the certificate's subject common name and the token's `sub`.
    pub code: String,
    /// The unit's client certificate.
    pub cert: PathBuf,
    /// The unit's client private key.
    pub key: PathBuf,
    /// The unit's signed token.
    pub token: PathBuf,
}

/// Writes the development CA, the hub's certificate, every unit's certificate and token and
/// `identity.toml` into `out` (created if missing), keeping a CA and a token signing key
/// already there.
pub fn write(out: &Path, registry: &Registry, options: &DevCaOptions) -> anyhow::Result<DevCa> {
    if options.token_days == 0 {
        bail!("tokens must be valid for at least one day");
    }
    let dir = prepare_dir(out)?;
    let units_dir = dir.join("units");
    std::fs::create_dir_all(&units_dir)
        .with_context(|| format!("creating {}", units_dir.display()))?;

    let ca_cert = dir.join("ca.pem");
    let ca_key = dir.join("ca.key");
    let ca = ensure_ca(&ca_cert, &ca_key, options.now)?;

    let server_cert = dir.join("hub.pem");
    let server_key = dir.join("hub.key");
    let params = server_params(&options.hosts, options.now)?;
    write_leaf(&params, &ca, &server_cert, &server_key)?;

    let token_signing_key = dir.join("token-signing.key");
    let token_public_key = dir.join("token-signing.pub.pem");
    let issuer = ensure_token_key(&token_signing_key, &token_public_key)?;
    let valid_for = Duration::from_secs(u64::from(options.token_days) * DAY);

    let mut units = Vec::new();
    for unit in registry.units() {
        let code = unit.code.as_str().to_owned();
        let identity = UnitIdentity {
            cert: units_dir.join(format!("{code}.pem")),
            key: units_dir.join(format!("{code}.key")),
            token: units_dir.join(format!("{code}.token")),
            code,
        };
        let params = unit_params(&identity.code, options.now)?;
        write_leaf(&params, &ca, &identity.cert, &identity.key)?;
        let token = issuer
            .issue(&identity.code, TOKEN_ISSUER, options.now, valid_for)
            .with_context(|| format!("issuing the token of {}", identity.code))?;
        write_private(&identity.token, token.as_bytes())?;
        units.push(identity);
    }

    let config = dir.join("identity.toml");
    let text = identity_toml(&server_cert, &server_key, &ca_cert, &token_public_key)?;
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;

    Ok(DevCa {
        dir,
        ca_cert,
        ca_key,
        server_cert,
        server_key,
        token_signing_key,
        token_public_key,
        config,
        units,
    })
}

/// A CA of its own, for tests (a certificate from another CA must be refused): writes a new
/// CA (`foreign-ca.pem`, `foreign-ca.key`) and a client certificate for `unit`
/// (`foreign-<unit>.pem`, `foreign-<unit>.key`) into `out`; returns the CA certificate, the
/// unit's certificate and its key.
pub fn write_foreign(out: &Path, unit: &str) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let file_safe = !unit.is_empty()
        && !unit.starts_with('.')
        && unit
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !file_safe {
        bail!("{unit:?} cannot name a file: letters, digits, '-', '_' and '.' only");
    }
    let dir = prepare_dir(out)?;
    let now = jiff::Timestamp::now();
    let ca_cert = dir.join("foreign-ca.pem");
    let ca_key = dir.join("foreign-ca.key");
    let ca = new_ca(&ca_cert, &ca_key, now)?;
    let cert = dir.join(format!("foreign-{unit}.pem"));
    let key = dir.join(format!("foreign-{unit}.key"));
    write_leaf(&unit_params(unit, now)?, &ca, &cert, &key)?;
    Ok((ca_cert, cert, key))
}

/// Creates `out` and returns it as an absolute path.
fn prepare_dir(out: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    std::fs::canonicalize(out).with_context(|| format!("resolving {}", out.display()))
}

/// The CA in `cert` and `key`: read if both are there, generated if neither is.
fn ensure_ca(
    cert: &Path,
    key: &Path,
    now: jiff::Timestamp,
) -> anyhow::Result<Issuer<'static, KeyPair>> {
    match (cert.exists(), key.exists()) {
        (true, true) => read_ca(cert, key),
        (false, false) => new_ca(cert, key, now),
        (true, false) | (false, true) => bail!(
            "{} and {} go together and only one is there: restore the other, or move both \
             aside to start a new CA (every certificate of the old one then stops working)",
            cert.display(),
            key.display()
        ),
    }
}

/// Generates a self-signed CA (ECDSA P-256, 5 years) into `cert` and `key`.
fn new_ca(
    cert: &Path,
    key: &Path,
    now: jiff::Timestamp,
) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let signing_key =
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating the CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, now, CA_DAYS)?;
    let certificate = params
        .self_signed(&signing_key)
        .context("signing the CA certificate")?;
    write_private(key, signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, certificate.pem())
        .with_context(|| format!("writing {}", cert.display()))?;
    Ok(Issuer::new(params, signing_key))
}

/// The CA of an earlier run, checking that its key is the certificate's.
fn read_ca(cert: &Path, key: &Path) -> anyhow::Result<Issuer<'static, KeyPair>> {
    let cert_pem =
        std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
    let key_pem =
        std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let signing_key = KeyPair::from_pem(&key_pem)
        .map_err(|e| anyhow::anyhow!("{} is not a usable private key: {e}", key.display()))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| anyhow::anyhow!("{} is not a PEM certificate: {e}", cert.display()))?;
    let parsed = pem
        .parse_x509()
        .map_err(|e| anyhow::anyhow!("{} is not a certificate: {e}", cert.display()))?;
    if parsed.public_key().subject_public_key.data.as_ref() != signing_key.public_key_raw() {
        bail!("{} is not the key of {}", key.display(), cert.display());
    }
    Issuer::from_ca_cert_pem(&cert_pem, signing_key)
        .map_err(|e| anyhow::anyhow!("reading the CA certificate {}: {e}", cert.display()))
}

/// The hub's server certificate: localhost, 127.0.0.1, ::1 and `hosts` (IP literals as
/// addresses, the rest as DNS names), server authentication, 1 year.
fn server_params(hosts: &[String], now: jiff::Timestamp) -> anyhow::Result<CertificateParams> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    for host in hosts {
        let host = host.trim();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            bail!("an empty --host");
        }
        if !names.iter().any(|n| n == host) {
            names.push(host.to_owned());
        }
    }
    let mut params = CertificateParams::new(names)
        .map_err(|e| anyhow::anyhow!("the hub's host names: {e} (ASCII names only)"))?;
    params.distinguished_name = common_name("city data-sharing hub");
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, LEAF_DAYS)?;
    Ok(params)
}

/// A unit's client certificate: subject common name the unit code (what the hub reads),
/// URI name `urn:city-data-hub:unit:<code>`, client authentication, 1 year.
fn unit_params(code: &str, now: jiff::Timestamp) -> anyhow::Result<CertificateParams> {
    let uri = Ia5String::try_from(format!("{UNIT_URI_PREFIX}{code}"))
        .map_err(|e| anyhow::anyhow!("the unit code {code:?}: {e}"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(code);
    params.subject_alt_names = vec![SanType::URI(uri)];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, now, LEAF_DAYS)?;
    Ok(params)
}

fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// Valid from [`CLOCK_SKEW`] before `now` (a peer whose clock runs a little behind still
/// takes it) until `days` after `now`.
fn set_validity(
    params: &mut CertificateParams,
    now: jiff::Timestamp,
    days: u64,
) -> anyhow::Result<()> {
    let since_epoch = u64::try_from(now.as_second())
        .ok()
        .and_then(|s| s.checked_sub(CLOCK_SKEW.as_secs()))
        .context("a time before 1970")?;
    let out_of_range = || anyhow::anyhow!("{now} plus {days} days is out of range");
    params.not_before = rcgen::date_time_ymd(1970, 1, 1)
        .checked_add(Duration::from_secs(since_epoch).try_into()?)
        .ok_or_else(out_of_range)?;
    params.not_after = params
        .not_before
        .checked_add(Duration::from_secs(days * DAY + CLOCK_SKEW.as_secs()).try_into()?)
        .ok_or_else(out_of_range)?;
    Ok(())
}

/// Generates a key (ECDSA P-256), signs `params` with `ca`, writes certificate and key.
fn write_leaf(
    params: &CertificateParams,
    ca: &Issuer<'_, KeyPair>,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<()> {
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .context("generating a certificate key")?;
    let certificate = params
        .signed_by(&leaf_key, ca)
        .with_context(|| format!("signing {}", cert.display()))?;
    write_private(key, leaf_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, certificate.pem()).with_context(|| format!("writing {}", cert.display()))
}

/// The token issuer of the signing key in `key` (generated with its public half
/// `public` if there is none); `public` is written from the key each time.
fn ensure_token_key(key: &Path, public: &Path) -> anyhow::Result<TokenIssuer> {
    let pair = if key.exists() {
        let pem =
            std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
        KeyPair::from_pem(&pem)
            .map_err(|e| anyhow::anyhow!("{} is not a usable private key: {e}", key.display()))?
    } else {
        let pair = KeyPair::generate_for(&rcgen::PKCS_ED25519)
            .context("generating the token signing key")?;
        write_private(key, pair.serialize_pem().as_bytes())?;
        pair
    };
    let issuer = TokenIssuer::from_pkcs8_pem(pair.serialize_pem().as_bytes())
        .with_context(|| format!("the token signing key {}", key.display()))?;
    std::fs::write(public, pair.public_key_pem())
        .with_context(|| format!("writing {}", public.display()))?;
    Ok(issuer)
}

/// The `[identity]` section of the hub's configuration for these files.
fn identity_toml(cert: &Path, key: &Path, ca: &Path, token_key: &Path) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct File<'a> {
        identity: Section<'a>,
    }
    #[derive(Serialize)]
    struct Section<'a> {
        mode: &'a str,
        tls_cert_file: &'a Path,
        tls_key_file: &'a Path,
        client_ca_file: &'a Path,
        token_public_key_file: &'a Path,
    }
    let section = Section {
        mode: "production",
        tls_cert_file: cert,
        tls_key_file: key,
        client_ca_file: ca,
        token_public_key_file: token_key,
    };
    let body = toml::to_string(&File { identity: section })
        .context("writing identity.toml (are the paths UTF-8?)")?;
    Ok(format!(
        "# Written by `hub dev-ca`: the identity section of the hub's configuration for the\n\
         # development CA beside this file. Departments present units/<code>.pem and .key,\n\
         # or send units/<code>.token where they cannot use a client certificate.\n{body}"
    ))
}

/// Writes `bytes` to `path` readable by the owner alone, replacing any file there whole.
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    match std::fs::remove_file(&temporary) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", temporary.display()));
        }
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}
