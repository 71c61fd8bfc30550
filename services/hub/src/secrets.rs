//! The hub's secrets: the key of command hashes (see `hub_ingest::CommandHasher`) and the
//! key audit checkpoints are signed with.
//!
//! The command hash key:
//!
//! Configured as a file (`commands.hash_key_file`); a hub running its own nats-server (the
//! development mode) generates one under its data dir when none is configured, readable by
//! the hub's user alone. Every hub instance on one log must use the same key: another key
//! makes every retry that reaches another instance look like a reused id, which is why a hub
//! on an external NATS refuses to start without a configured one.
//! To rotate, configure the new file and name the old one `commands.previous_hash_key_file`
//! until no retry of a command hashed under it can come any more.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use hub_audit::signing::CheckpointSigner;
use hub_ingest::{CommandHasher, HashKey, ShortKey};
use tracing::info;

use crate::config::Config;

/// Where the generated key lives under the data dir.
pub fn generated_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("command-hash.key")
}

fn read_key(path: &Path) -> anyhow::Result<HashKey> {
    let text = std::fs::read(path)
        .with_context(|| format!("reading the command hash key {}", path.display()))?;
    let secret = text.trim_ascii();
    HashKey::new(secret).map_err(|ShortKey| {
        anyhow::anyhow!(
            "the command hash key {} is too short: it must hold at least {} bytes, e.g. 64 hex \
             digits from `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`",
            path.display(),
            hub_ingest::hash_key_min()
        )
    })
}

/// Writes a new random key to `path`, readable by the owner alone.
fn generate(path: &Path) -> anyhow::Result<()> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
    let text: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, text.as_bytes())
}

/// Writes `contents` to a new file at `path`, readable by the owner alone: written whole
/// beside it and renamed into place, so a crash never leaves a half-written key behind.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = path.with_extension("partial");
    // Left by a crash before the rename: never handed out, so it goes.
    let _ = std::fs::remove_file(&partial);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

/// The command hasher of this configuration (file reads off the async threads).
pub async fn command_hasher(config: &Config) -> anyhow::Result<CommandHasher> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || hasher_of(&config)).await?
}

fn hasher_of(config: &Config) -> anyhow::Result<CommandHasher> {
    let current = match &config.commands.hash_key_file {
        Some(path) => read_key(path)?,
        // A hub on a NATS of its own may keep its key under its data dir; on a shared NATS,
        // other instances need the very same key, and wiping a data dir would lose it.
        None if config.nats.url.is_some() => bail!(
            "refusing to start: on an external NATS the command hash key must be configured \
             (commands.hash_key_file, HUB_COMMANDS__HASH_KEY_FILE), the same file for every hub \
             instance on that NATS; create one with \
             `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > command-hash.key` \
             and keep it safe: without it, retries of earlier commands are refused"
        ),
        None => {
            let path = generated_key_path(&config.data_dir);
            if !path.exists() {
                generate(&path)?;
                info!(path = %path.display(), "generated the command hash key");
            }
            read_key(&path)?
        }
    };
    let previous = match &config.commands.previous_hash_key_file {
        Some(path) => Some(read_key(path)?),
        None => None,
    };
    if previous.as_ref().is_some_and(|p| p.id() == current.id()) {
        bail!("commands.previous_hash_key_file holds the same key as the current one");
    }
    Ok(CommandHasher::new(current, previous))
}

/// Where the generated audit signing key lives under the data dir; its public key is beside
/// it, [`audit_public_key_path`].
pub fn generated_audit_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("audit-signing.key")
}

/// The public key of an audit signing key at `key`: the same path with `.pub`.
pub fn audit_public_key_path(key: &Path) -> PathBuf {
    key.with_extension("pub")
}

/// The key audit checkpoints are signed with, and where its public key is: the configured
/// file (whose public key the operator keeps beside it or hands out), else one generated once
/// under the data dir with its public key written beside it. On an external NATS the key must
/// be configured: every instance on one log signs with it, and a wiped data dir must not
/// make a new one (earlier checkpoints would then verify under a key nobody has).
pub async fn audit_signer(config: &Config) -> anyhow::Result<(CheckpointSigner, Option<PathBuf>)> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || audit_signer_of(&config)).await?
}

fn audit_signer_of(config: &Config) -> anyhow::Result<(CheckpointSigner, Option<PathBuf>)> {
    let read = |path: &Path| -> anyhow::Result<CheckpointSigner> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading the audit signing key {}", path.display()))?;
        CheckpointSigner::from_pkcs8_pem(&pem)
            .map_err(|e| anyhow::anyhow!("the audit signing key {}: {e}", path.display()))
    };
    match &config.audit.signing_key_file {
        Some(path) => Ok((read(path)?, None)),
        None if config.nats.url.is_some() => bail!(
            "refusing to start: on an external NATS the audit signing key must be configured \
             (audit.signing_key_file, HUB_AUDIT__SIGNING_KEY_FILE), the same file for every hub \
             instance on that NATS; create one with \
             `openssl genpkey -algorithm ed25519 -out audit-signing.key` and its public key \
             with `openssl pkey -in audit-signing.key -pubout -out audit-signing.pub`, which \
             is what verifiers of exports need"
        ),
        None => {
            let path = generated_audit_key_path(&config.data_dir);
            if !path.exists() {
                let mut secret = [0u8; 32];
                getrandom::fill(&mut secret)
                    .map_err(|e| anyhow::anyhow!("no randomness for a key: {e}"))?;
                let pem = CheckpointSigner::from_bytes(&secret)
                    .to_pkcs8_pem()
                    .map_err(anyhow::Error::msg)?;
                write_private(&path, pem.as_bytes())?;
                info!(path = %path.display(), "generated the audit signing key");
            }
            let signer = read(&path)?;
            let public = audit_public_key_path(&path);
            let public_pem = signer.public_key_pem().map_err(anyhow::Error::msg)?;
            if std::fs::read_to_string(&public).ok().as_deref() != Some(public_pem.as_str()) {
                std::fs::write(&public, &public_pem)
                    .with_context(|| format!("writing {}", public.display()))?;
            }
            Ok((signer, Some(public)))
        }
    }
}
