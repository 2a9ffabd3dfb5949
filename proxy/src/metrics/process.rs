//! The standard `process_*` metrics, read from /proc/self at each scrape (Linux; elsewhere they
//! are left out).

/// Clock ticks per second of /proc's CPU times: USER_HZ, fixed at 100 on Linux for user space
/// (the Prometheus client libraries assume the same).
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
    pub cpu_seconds: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub threads: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

pub fn read() -> ProcessStats {
    let mut s = ProcessStats::default();
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The command name (field 2) may hold spaces and parentheses: fields are counted after its last ')'.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest[0] is field 3 (state); field n is f[n - 3].
            let num = |n: usize| f.get(n - 3).and_then(|v| v.parse::<f64>().ok());
            s.cpu_seconds = num(14).zip(num(15)).map(|(u, k)| (u + k) / TICKS_PER_SECOND);
            s.threads = num(20);
            s.virtual_bytes = num(23);
            s.start_time_seconds = num(22).zip(boot_time()).map(|(ticks, boot)| boot + ticks / TICKS_PER_SECOND);
        }
    }
    s.resident_bytes = resident_bytes();
    // Less the descriptor read_dir itself holds open.
    s.open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count().saturating_sub(1) as f64);
    s.max_fds = rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft as f64);
    s
}

/// Appends the Prometheus text of `s` (written here: the recorder's counters are whole numbers,
/// and CPU seconds are not).
pub fn render(s: &ProcessStats, out: &mut String) {
    use std::fmt::Write;
    let rows = [
        ("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", s.cpu_seconds),
        ("process_open_fds", "gauge", "Open file descriptors.", s.open_fds),
        ("process_max_fds", "gauge", "The soft limit of open file descriptors.", s.max_fds),
        ("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", s.resident_bytes),
        ("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", s.virtual_bytes),
        ("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.", s.start_time_seconds),
        ("process_threads", "gauge", "Threads of the process.", s.threads),
    ];
    for (name, kind, help, value) in rows {
        if let Some(v) = value {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n\n");
        }
    }
}

/// Seconds since the epoch at boot (`btime` in /proc/stat).
fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse().ok())
}

/// `VmRSS` of /proc/self/status, which is in kB whatever the page size.
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim();
    kb.parse::<f64>().ok().map(|k| k * 1024.0)
}
