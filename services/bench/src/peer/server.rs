//! The PostgreSQL server itself: finding (or installing) Debian's binaries, `initdb` into a
//! temp dir, starting and stopping the postmaster, and the CPU its processes used.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::Command;

/// Where Debian puts each major version's server binaries: `/usr/lib/postgresql/<ver>/bin`.
const DEBIAN_ROOT: &str = "/usr/lib/postgresql";

/// The bin dir of the newest PostgreSQL Debian has installed, or none.
pub(super) fn locate() -> Option<PathBuf> {
    let entries = std::fs::read_dir(DEBIAN_ROOT).ok()?;
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let major: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            ["initdb", "postgres", "pg_ctl"]
                .iter()
                .all(|tool| bin.join(tool).is_file())
                .then_some((major, bin))
        })
        .max_by_key(|(major, _)| *major)
        .map(|(_, bin)| bin)
}

/// Installs Debian's `postgresql` package; `apt-get update` first only when the install fails
/// without it. The package's own cluster (if its scripts create and start one on 5432) is
/// never used: the peer runs its own on a random port.
pub(super) async fn install() -> anyhow::Result<PathBuf> {
    if !is_root()? {
        bail!(
            "PostgreSQL is not installed and only root may install it (apt-get install postgresql)"
        );
    }
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null());
        cmd
    };
    let install = ["install", "-y", "-q", "postgresql"];
    if let Err(first) = run(&mut apt(&install), "apt-get install -y postgresql").await {
        eprintln!("peer: {first:#}; running apt-get update and trying again");
        run(&mut apt(&["update", "-q"]), "apt-get update").await?;
        run(&mut apt(&install), "apt-get install -y postgresql").await?;
    }
    locate().with_context(|| {
        format!("apt-get installed postgresql but {DEBIAN_ROOT}/*/bin has no server")
    })
}

/// Whether this process runs as root (the effective uid, from /proc/self/status).
pub(super) fn is_root() -> anyhow::Result<bool> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .context("no Uid line in /proc/self/status")?;
    Ok(euid == "0")
}

/// The uid and gid of a user, from /etc/passwd.
pub(super) fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|fields| fields.first() == Some(&user) && fields.len() > 3)
        .and_then(|fields| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
        .with_context(|| {
            format!("no user {user} in /etc/passwd (Debian's postgresql package creates it)")
        })
}

/// Lets `postgres` reach a temp dir made inside `dir`: `dir` gets the search bit for others
/// (not read) when it lacks it; an ancestor lacking it is an error.
pub(super) fn ensure_traversable(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir.canonicalize()?;
    for path in dir.ancestors() {
        let mut permissions = std::fs::metadata(path)?.permissions();
        let mode = permissions.mode();
        if mode & 0o001 != 0 {
            continue;
        }
        if path == dir {
            permissions.set_mode(mode | 0o001);
            std::fs::set_permissions(path, permissions)?;
        } else {
            bail!(
                "the postgres user cannot reach {} ({} has mode {:o}); use a dir under /tmp",
                dir.display(),
                path.display(),
                mode & 0o7777
            );
        }
    }
    Ok(())
}

/// A command of PostgreSQL's run as `user` (through `runuser`) when there is one.
pub(super) fn pg_command(bin: &Path, tool: &str, user: Option<&str>, cwd: &Path) -> Command {
    let mut cmd = match user {
        Some(user) => {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", user, "--"]).arg(bin.join(tool));
            cmd
        }
        None => Command::new(bin.join(tool)),
    };
    cmd.current_dir(cwd).stdin(Stdio::null());
    cmd
}

/// Runs a command to completion; a failure carries the end of its output.
pub(super) async fn run(cmd: &mut Command, what: &str) -> anyhow::Result<String> {
    let output = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .with_context(|| format!("cannot run {what}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("{what} failed ({}): {}", output.status, tail(&text, 1500));
    }
    Ok(text)
}

pub(super) fn tail(text: &str, chars: usize) -> &str {
    let start = text.len().saturating_sub(chars);
    let start = (start..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    text[start..].trim()
}

/// A free TCP port on loopback (free when asked; the server binds it right after).
pub(super) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The settings appended to `postgresql.conf`: loopback only, the socket in the temp dir (or
/// none if that path is too long for a socket), and full durability, spelled out although
/// they are the defaults.
pub(super) fn settings(port: u16, socket_dir: Option<&Path>) -> String {
    let socket_dir = socket_dir.map_or(String::new(), |d| d.display().to_string());
    format!(
        "\n# hub-bench peer\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = '{socket_dir}'\n\
         fsync = on\n\
         synchronous_commit = on\n\
         full_page_writes = on\n\
         wal_sync_method = fdatasync\n\
         max_connections = 100\n"
    )
}

/// The postmaster's pid, from the first line of `postmaster.pid`.
pub(super) fn read_postmaster_pid(data: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Whether a postgres process runs as `pid`: a zombie does not (the daemonized postmaster's
/// parent is init, which may reap it late), nor another program that got the pid since.
pub(super) fn alive(pid: u32) -> bool {
    let postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == "postgres");
    postgres && stat_fields(pid).is_some_and(|fields| fields.first().is_some_and(|s| *s != "Z"))
}

/// Kills a postmaster the peer did not get to stop: SIGQUIT (immediate shutdown, which also
/// ends every backend), then SIGKILL if it is still there after 5 s. Blocking: for `Drop`.
pub(super) fn kill_blocking(pid: u32) {
    let signal = |name: &str| {
        let _ = std::process::Command::new("kill")
            .args([format!("-{name}"), pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    signal("QUIT");
    let started = Instant::now();
    while alive(pid) && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive(pid) {
        signal("KILL");
    }
}

/// What the watchdog runs: once this process (`$1`) is gone without stopping the peer (a
/// SIGKILL, or a Ctrl-C, which ends a process without unwinding), it shuts the postmaster
/// (`$2`) down as `Drop` would and removes the temp dir (`$3`).
const WATCHDOG: &str = r#"
trap '' INT TERM HUP QUIT
pg() { [ "$(cat /proc/$1/comm 2>/dev/null)" = postgres ] && ! grep -qs '^State:[[:space:]]*Z' /proc/$1/status; }
while [ -d /proc/$1 ]; do sleep 0.5; done
if pg $2; then
  kill -QUIT $2
  i=0
  while pg $2 && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  if pg $2; then kill -KILL $2; sleep 0.5; fi
fi
rm -rf "$3"
"#;

/// A shell process of its own process group (so a Ctrl-C meant for this process does not
/// reach it) that stops the postmaster `pid` and removes `dir` if this process dies without
/// doing so. The peer kills it when it stops the server itself.
pub(super) fn watchdog(pid: u32, dir: &Path) -> anyhow::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    std::process::Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("peer-watchdog")
        .arg(std::process::id().to_string())
        .arg(pid.to_string())
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .context("cannot start the peer's watchdog")
}

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, ... (the command
/// name, in parentheses, may hold spaces).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Clock ticks per second of `/proc/*/stat` times.
pub(super) fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

/// CPU ticks of `pid` and of every process whose parent it is: utime + stime + cutime + cstime
/// of each (cutime/cstime: its children that have exited and been reaped).
pub(super) fn tree_ticks(pid: u32) -> anyhow::Result<u64> {
    let ticks = |fields: &[String]| -> u64 {
        // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
        (11..=14)
            .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
            .sum()
    };
    let mut total = ticks(&stat_fields(pid).context("the postmaster is gone")?);
    for entry in std::fs::read_dir("/proc")? {
        let Some(child) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(fields) = stat_fields(child)
            && fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(pid)
        {
            total += ticks(&fields);
        }
    }
    Ok(total)
}

/// CPU seconds this process (the benchmark's clients) used so far.
pub(super) fn own_cpu_ticks() -> u64 {
    stat_fields(std::process::id())
        .map(|fields| {
            (11..=12)
                .filter_map(|i| fields.get(i)?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}
