//! The NKeys of the hub's NATS users: one for the hub, one per unit of the registry.
//!
//! A seed (`SU...`) is the credential; the server's configuration names only the public key
//! (`U...`). Seeds live one per file, `hub.nk` and `<unit>.nk`, readable by their owner alone
//! (mode 0600, in a folder of mode 0700), the seed alone in the file (what `nats --nkey` and
//! nats-py's `nkeys_seed` read). A file that exists is kept: keys are generated once, so a
//! department's seed stays valid across restarts and new units get keys of their own.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::accounts::{AccountsSpec, UnitAccount};

/// The hub user's seed file in a credentials folder.
pub const HUB_SEED_FILE: &str = "hub.nk";

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("cannot {doing} {path}: {source}")]
    Io {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} does not hold a NATS user's seed (one line starting SU)")]
    NotASeed { path: PathBuf },
    #[error("unit {0:?} would share the hub's seed file {HUB_SEED_FILE}")]
    ReservedName(String),
}

/// A user's seed, read from its file. Shows its public key and file, never the seed.
#[derive(Clone)]
pub struct Seed {
    path: PathBuf,
    seed: String,
    public_key: String,
}

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seed")
            .field("path", &self.path)
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

impl Seed {
    /// Reads and checks the seed in `path`.
    pub fn read(path: &Path) -> Result<Self, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Io {
            doing: "read",
            path: path.to_owned(),
            source,
        })?;
        let seed = text.trim().to_owned();
        let not_a_seed = || CredentialsError::NotASeed {
            path: path.to_owned(),
        };
        if !seed.starts_with("SU") {
            return Err(not_a_seed());
        }
        let pair = nkeys::KeyPair::from_seed(&seed).map_err(|_| not_a_seed())?;
        Ok(Self {
            path: path.to_owned(),
            seed,
            public_key: pair.public_key(),
        })
    }

    /// The secret itself, for [`async_nats::ConnectOptions::nkey`]. Never log it.
    pub fn seed(&self) -> &str {
        &self.seed
    }

    /// The public key (`U...`) the server's configuration names.
    pub fn public_key(&self) -> &str {
        &self.public_key
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The seed of the hub's user and of every unit's.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub hub: Seed,
    /// (unit code, its seed), in the order the units were given.
    pub units: Vec<(String, Seed)>,
}

impl Credentials {
    /// The seed of unit `code`.
    pub fn unit(&self, code: &str) -> Option<&Seed> {
        self.units.iter().find(|(c, _)| c == code).map(|(_, s)| s)
    }

    /// What [`crate::accounts::render`] renders the accounts from.
    pub fn spec(&self) -> AccountsSpec {
        AccountsSpec {
            hub_user: self.hub.public_key().to_owned(),
            units: self
                .units
                .iter()
                .map(|(code, seed)| UnitAccount {
                    code: code.clone(),
                    user: seed.public_key().to_owned(),
                })
                .collect(),
        }
    }
}

/// The seed file of unit `code` in a credentials folder.
pub fn unit_seed_file(dir: &Path, code: &str) -> PathBuf {
    dir.join(format!("{code}.nk"))
}

/// Writes a new user seed to `path` (which must not exist), readable by the owner alone.
fn generate(path: &Path) -> Result<(), CredentialsError> {
    let io = |doing| {
        move |source| CredentialsError::Io {
            doing,
            path: path.to_owned(),
            source,
        }
    };
    let seed = nkeys::KeyPair::new_user()
        .seed()
        .map_err(|e| io("generate a seed for")(std::io::Error::other(e.to_string())))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io("create"))?;
    file.write_all(seed.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("write"))
}

/// Reads the seed in `path`, generating it first if there is none. `true` if generated.
pub fn read_or_generate(path: &Path) -> Result<(Seed, bool), CredentialsError> {
    let generated = match generate(path) {
        Ok(()) => true,
        Err(CredentialsError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            false
        }
        Err(err) => return Err(err),
    };
    Ok((Seed::read(path)?, generated))
}

/// The seeds of the hub and of every unit in `units`, under `dir`: read, or generated (mode
/// 0600) for those that have none yet. Also returns the files generated now.
pub fn ensure(
    dir: &Path,
    units: impl IntoIterator<Item = impl Into<String>>,
) -> Result<(Credentials, Vec<PathBuf>), CredentialsError> {
    let units: Vec<String> = units.into_iter().map(Into::into).collect();
    if let Some(code) = units
        .iter()
        .find(|c| unit_seed_file(dir, c) == dir.join(HUB_SEED_FILE))
    {
        return Err(CredentialsError::ReservedName(code.clone()));
    }
    std::fs::create_dir_all(dir).map_err(|source| CredentialsError::Io {
        doing: "create",
        path: dir.to_owned(),
        source,
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(
            |source| CredentialsError::Io {
                doing: "restrict",
                path: dir.to_owned(),
                source,
            },
        )?;
    }
    let mut generated = Vec::new();
    let mut read = |path: PathBuf| -> Result<Seed, CredentialsError> {
        let (seed, new) = read_or_generate(&path)?;
        if new {
            generated.push(path);
        }
        Ok(seed)
    };
    let hub = read(dir.join(HUB_SEED_FILE))?;
    let units = units
        .into_iter()
        .map(|code| {
            let seed = read(unit_seed_file(dir, &code))?;
            Ok((code, seed))
        })
        .collect::<Result<Vec<_>, CredentialsError>>()?;
    Ok((Credentials { hub, units }, generated))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "hub-log-credentials-{name}-{}-{}",
            std::process::id(),
            nuid::next()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn seeds_are_generated_once_private_and_kept() {
        let dir = temp_dir("once").join("secrets").join("nats");
        let (first, generated) = ensure(&dir, ["civil-affairs", "dcc-310104"]).expect("ensure");
        assert_eq!(generated.len(), 3, "{generated:?}");
        assert!(dir.join("hub.nk").is_file());
        assert!(dir.join("dcc-310104.nk").is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in &generated {
                let mode = std::fs::metadata(path).expect("meta").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", path.display());
            }
            let mode = std::fs::metadata(&dir).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        let text = std::fs::read_to_string(dir.join("hub.nk")).expect("read");
        assert!(
            text.starts_with("SU") && !text.contains('\n'),
            "the seed alone"
        );

        // Again, with one more unit: the same keys, and one new.
        let (again, generated) =
            ensure(&dir, ["civil-affairs", "dcc-310104", "housing"]).expect("ensure again");
        assert_eq!(generated, vec![dir.join("housing.nk")]);
        assert_eq!(again.hub.public_key(), first.hub.public_key());
        assert_eq!(
            again.unit("dcc-310104").map(Seed::public_key),
            first.unit("dcc-310104").map(Seed::public_key)
        );
        assert_ne!(
            again.unit("housing").map(Seed::public_key),
            Some(first.hub.public_key())
        );
        let spec = again.spec();
        assert_eq!(spec.units.len(), 3);
        assert!(spec.hub_user.starts_with('U'));
        assert!(
            !format!("{again:?}").contains(again.hub.seed()),
            "Debug hides seeds"
        );
        let _ = std::fs::remove_dir_all(dir.parent().and_then(Path::parent).unwrap_or(&dir));
    }

    #[test]
    fn a_file_that_is_not_a_seed_is_refused_and_hub_is_reserved() {
        let dir = temp_dir("bad");
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("hub.nk"), "not a seed").expect("write");
        assert!(matches!(
            ensure(&dir, ["housing"]),
            Err(CredentialsError::NotASeed { .. })
        ));
        assert!(matches!(
            ensure(&dir, ["hub"]),
            Err(CredentialsError::ReservedName(code)) if code == "hub"
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
