//! What `/proc` says of a process (CPU time, memory) and of the machine.

use std::time::Duration;

/// Clock ticks per second, the unit of `/proc/<pid>/stat`'s CPU times: `getconf CLK_TCK`
/// (the workspace denies `unsafe_code`, so no `sysconf` call), else Linux's usual 100.
pub fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// User plus system CPU time the process `pid` (`None`: this one) has used so far.
pub fn cpu_time(pid: Option<u32>) -> anyhow::Result<Duration> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    let text = std::fs::read_to_string(&path)?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let rest = text
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow::anyhow!("{path}: no command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' come fields 3 (state) onwards: utime is field 14, stime field 15.
    let field = |n: usize| -> anyhow::Result<u64> {
        fields
            .get(n - 3)
            .ok_or_else(|| anyhow::anyhow!("{path}: no field {n}"))?
            .parse()
            .map_err(|e| anyhow::anyhow!("{path}: field {n}: {e}"))
    };
    let ticks = field(14)? + field(15)?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// CPU time of several processes, read together.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pub hub: Duration,
    pub nats: Duration,
    pub client: Duration,
}

impl CpuSample {
    pub fn take(hub: u32, nats: u32) -> anyhow::Result<Self> {
        Ok(Self {
            hub: cpu_time(Some(hub))?,
            nats: cpu_time(Some(nats))?,
            client: cpu_time(None)?,
        })
    }

    /// CPU seconds each used since `earlier`, per 1000 of `count`.
    pub fn per_thousand_since(&self, earlier: &Self, count: usize) -> CpuSample {
        let per = |now: Duration, then: Duration| {
            now.saturating_sub(then)
                .mul_f64(1000.0 / count.max(1) as f64)
        };
        CpuSample {
            hub: per(self.hub, earlier.hub),
            nats: per(self.nats, earlier.nats),
            client: per(self.client, earlier.client),
        }
    }
}

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// VmHWM: the peak resident set, in bytes.
    pub peak: u64,
    /// VmRSS: the resident set now, in bytes.
    pub now: u64,
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path)?;
    let kib = |name: &str| -> anyhow::Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|k| k * 1024)
            .ok_or_else(|| anyhow::anyhow!("{path}: no {name}"))
    };
    Ok(Memory {
        peak: kib("VmHWM:")?,
        now: kib("VmRSS:")?,
    })
}

/// Bytes free for this user on the filesystem holding `dir` (`df -Pk`), if `df` answers.
pub fn free_disk(dir: &std::path::Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(kib * 1024)
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The machine, for the results: CPU model, cores, memory, kernel, nats-server version.
pub fn machine(nats_binary: &std::path::Path) -> Vec<(&'static str, String)> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|k| format!("{:.1} GiB", k as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into());
    let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
    let nats = std::process::Command::new(nats_binary)
        .arg("--version")
        .output()
        .ok()
        .map(|out| {
            let text = String::from_utf8_lossy(&out.stdout);
            let text = text.trim();
            text.strip_prefix("nats-server: ")
                .unwrap_or(text)
                .to_owned()
        })
        .unwrap_or_else(|| "unknown".into());
    vec![
        ("CPU", cpu),
        ("cores", cores.to_string()),
        ("memory", memory),
        ("kernel", kernel),
        ("nats-server", nats),
        ("clock ticks/s", clock_ticks().to_string()),
    ]
}

/// Bytes the files under `dir` take.
pub fn disk_usage(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => disk_usage(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}
