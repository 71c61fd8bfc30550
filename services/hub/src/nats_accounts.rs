//! The NATS accounts of the hub and of every unit of the registry (see `hub_log::accounts`):
//! in development mode the hub generates their keys under `data_dir/secrets/nats/` (once;
//! reused after) and runs its nats-server child with them; for operators running their own
//! nats-server, `hub nats-accounts --out DIR` writes the same configuration and keys.

use std::path::{Path, PathBuf};

use anyhow::Context;
use hub_domain::registry::Registry;
use hub_log::accounts;
use hub_log::credentials::{self, Credentials};
use hub_log::names::{
    DEPARTMENT_JS_API_PREFIX, department_inbox_prefix, feed_consumer, feed_stream,
};
use tracing::info;

/// The accounts configuration `hub nats-accounts` writes, for `include` in a server's config.
pub const ACCOUNTS_FILE: &str = "accounts.conf";

/// Where a hub running its own nats-server keeps the NATS users' seeds.
pub fn secrets_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("secrets").join("nats")
}

/// The seeds of the hub and of every unit in `registry`, kept in `dir` (generated for those
/// that have none yet), and the `accounts { ... }` block naming their public keys.
pub fn prepare(dir: &Path, registry: &Registry) -> anyhow::Result<(Credentials, String)> {
    let units = registry.units().map(|u| u.code.as_str().to_owned());
    let (credentials, generated) = credentials::ensure(dir, units)
        .with_context(|| format!("preparing the NATS users' keys in {}", dir.display()))?;
    for path in &generated {
        info!(path = %path.display(), "generated a NATS user key (seed)");
    }
    let block = accounts::render(&credentials.spec()).context("rendering the NATS accounts")?;
    Ok((credentials, block))
}

/// Logs, per unit, how its system connects to its feed: never a seed, only where it lies.
pub fn announce(url: &str, credentials: &Credentials) {
    info!(
        url,
        js_api_prefix = DEPARTMENT_JS_API_PREFIX,
        "department feeds over NATS: each unit is an account of its own; hand each its seed file alone"
    );
    for (code, seed) in &credentials.units {
        info!(
            unit = %code,
            url,
            seed_file = %seed.path().display(),
            stream = %feed_stream(code),
            consumer = %feed_consumer(code),
            js_api_prefix = DEPARTMENT_JS_API_PREFIX,
            inbox_prefix = %department_inbox_prefix(code),
            "department feed access"
        );
    }
}

/// `hub nats-accounts --out DIR`: writes [`ACCOUNTS_FILE`] and the seeds (`hub.nk`,
/// `<unit>.nk`, kept if present) into `out`; returns the accounts file and the credentials.
pub fn write(out: &Path, registry: &Registry) -> anyhow::Result<(PathBuf, Credentials)> {
    let (credentials, block) = prepare(out, registry)?;
    let path = out.join(ACCOUNTS_FILE);
    let text = format!(
        "# The NATS accounts of the city data-sharing hub, written by `hub nats-accounts`.\n\
         # Include it in the server's configuration (`include {ACCOUNTS_FILE}`) beside a\n\
         # jetstream block with `sync_interval: always`; give the hub {hub} and each unit\n\
         # its own <unit>.nk, and no one else's. Written again, the keys in this folder are kept.\n{block}",
        hub = credentials::HUB_SEED_FILE,
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok((path, credentials))
}

/// The hub's own nats-server keeps its streams in the hub's account. A data dir written before
/// the accounts holds GOV_EVENTS in the server's global account (`$G`), where the hub would no
/// longer see it: it would start on an empty log beside the old one. Refuse, saying what to do.
pub fn refuse_a_log_from_before_accounts(nats_dir: &std::path::Path) -> anyhow::Result<()> {
    for store in [
        nats_dir.join("jetstream"),
        nats_dir.join("jetstream/jetstream"),
    ] {
        let old = store.join("$G/streams").join(hub_log::names::EVENTS_STREAM);
        if old.exists() {
            anyhow::bail!(
                "refusing to start: {} holds an event log from before the hub ran its nats-server \
                 with department accounts (in the global account, where the hub no longer \
                 looks); move that data dir aside to start afresh, or replay its log into a new \
                 hub",
                old.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_from_before_the_accounts_is_refused_and_none_is_fine() {
        let dir = tempfile::tempdir().expect("dir");
        refuse_a_log_from_before_accounts(dir.path()).expect("nothing there yet");
        std::fs::create_dir_all(
            dir.path()
                .join("jetstream/jetstream/HUB/streams/GOV_EVENTS"),
        )
        .expect("dir");
        refuse_a_log_from_before_accounts(dir.path()).expect("the hub's own account");
        std::fs::create_dir_all(dir.path().join("jetstream/jetstream/$G/streams/GOV_EVENTS"))
            .expect("dir");
        let err = refuse_a_log_from_before_accounts(dir.path()).expect_err("the old log");
        assert!(err.to_string().contains("before the hub ran"), "{err}");
    }

    #[test]
    fn the_child_keys_are_generated_once_and_reused() {
        let registry = crate::reference::load_registry(None).expect("demo data");
        let data_dir = std::env::temp_dir().join(format!(
            "hub-nats-accounts-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let dir = secrets_dir(&data_dir);
        let (first, block) = prepare(&dir, &registry).expect("first start");
        assert_eq!(first.units.len(), registry.units().count());
        assert!(block.contains(first.hub.public_key()));
        let seed_file = dir.join("dcc-310104.nk");
        let seed_text = std::fs::read_to_string(&seed_file).expect("a seed per unit");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&seed_file)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            !block.contains(&seed_text),
            "the configuration names public keys only"
        );

        let (second, again) = prepare(&dir, &registry).expect("second start");
        assert_eq!(again, block, "the same keys, the same accounts");
        assert_eq!(second.hub.public_key(), first.hub.public_key());
        assert_eq!(
            std::fs::read_to_string(&seed_file).expect("seed"),
            seed_text
        );
        let _ = std::fs::remove_dir_all(&data_dir);
    }
}
