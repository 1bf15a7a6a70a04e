//! Server-side cost of a benchmark phase, read from `/proc`: CPU seconds
//! (user + system) and context switches of a set of processes between two
//! samples.
//!
//! - CPU: `utime + stime` of `/proc/PID/stat` (fields 14 and 15). The kernel
//!   sums them over the whole thread group, threads that exited included, so
//!   the delta is exact.
//! - Context switches: `voluntary_ctxt_switches + nonvoluntary_ctxt_switches`
//!   of `/proc/PID/task/TID/status`, per thread. Linux keeps no readable
//!   per-process total, so a thread that exits between the two samples takes
//!   its switches with it: the delta is a lower bound, and [`Cost`] reports how
//!   many threads exited so a reader can tell when it matters (tokio's
//!   blocking pool retires idle threads after 10 s).
//!
//! Linux only. Must not start or stop processes.
use std::collections::HashMap;
use std::path::Path;

/// One process at one instant.
#[derive(Debug, Clone, Default)]
pub struct ProcSample {
    /// utime + stime, in clock ticks.
    pub cpu_ticks: u64,
    /// Context switches (voluntary + involuntary) per live thread id.
    pub switches: HashMap<u32, u64>,
}

/// Several processes at one instant, in the order sampled.
#[derive(Debug, Clone, Default)]
pub struct Sample(pub Vec<ProcSample>);

/// What the processes spent between two samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Cost {
    /// CPU seconds, user + system, summed over the processes.
    pub cpu_secs: f64,
    /// Context switches of the threads alive at the second sample.
    pub context_switches: u64,
    /// Threads alive at the first sample and gone at the second (their
    /// switches since the first sample are not counted).
    pub threads_exited: u64,
    /// Threads alive at the second sample.
    pub threads: u64,
}

impl Cost {
    /// CPU milliseconds per operation.
    pub fn cpu_ms_per_op(&self, ops: u64) -> f64 {
        if ops == 0 {
            return 0.0;
        }
        self.cpu_secs * 1000.0 / ops as f64
    }

    /// Context switches per operation.
    pub fn switches_per_op(&self, ops: u64) -> f64 {
        if ops == 0 {
            return 0.0;
        }
        self.context_switches as f64 / ops as f64
    }
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ")": field 3 (state) is index 0, so utime (14) is 11, stime 12.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Voluntary + involuntary context switches from the text of a
/// `/proc/.../status` file.
pub fn parse_status_switches(status: &str) -> Option<u64> {
    let mut total = None;
    for line in status.lines() {
        let value = line
            .strip_prefix("voluntary_ctxt_switches:")
            .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"));
        if let Some(v) = value {
            *total.get_or_insert(0) += v.trim().parse::<u64>().ok()?;
        }
    }
    total
}

/// Reads one process; `None` if it is gone.
pub fn sample_pid(pid: u32) -> Option<ProcSample> {
    let root = Path::new("/proc").join(pid.to_string());
    let cpu_ticks = parse_stat_ticks(&std::fs::read_to_string(root.join("stat")).ok()?)?;
    let mut switches = HashMap::new();
    for entry in std::fs::read_dir(root.join("task")).ok()?.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread may exit between listing and reading: skip it.
        if let Ok(text) = std::fs::read_to_string(entry.path().join("status")) {
            if let Some(n) = parse_status_switches(&text) {
                switches.insert(tid, n);
            }
        }
    }
    Some(ProcSample {
        cpu_ticks,
        switches,
    })
}

/// Reads every process of `pids` (a gone process samples as zero).
pub fn sample(pids: &[u32]) -> Sample {
    Sample(
        pids.iter()
            .map(|&p| sample_pid(p).unwrap_or_default())
            .collect(),
    )
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
pub fn ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// What happened between `before` and `after` (same processes, same order).
pub fn cost_between(before: &Sample, after: &Sample, ticks_per_sec: u64) -> Cost {
    let mut cost = Cost::default();
    let mut ticks = 0u64;
    for (b, a) in before.0.iter().zip(&after.0) {
        ticks += a.cpu_ticks.saturating_sub(b.cpu_ticks);
        for (tid, &n) in &a.switches {
            let start = b.switches.get(tid).copied().unwrap_or(0);
            cost.context_switches += n.saturating_sub(start);
        }
        cost.threads += a.switches.len() as u64;
        cost.threads_exited += b
            .switches
            .keys()
            .filter(|t| !a.switches.contains_key(t))
            .count() as u64;
    }
    cost.cpu_secs = ticks as f64 / ticks_per_sec.max(1) as f64;
    cost
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "4242 (geokv (node) x) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 9 0";
        assert_eq!(parse_stat_ticks(stat), Some(325));
        assert_eq!(parse_stat_ticks("garbage"), None);
    }

    #[test]
    fn status_switches_add_both_kinds() {
        let status =
            "Name:\tgeokv\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_status_switches(status), Some(127));
        assert_eq!(parse_status_switches("Name:\tx\n"), None);
    }

    #[test]
    fn deltas_count_new_threads_and_report_exited_ones() {
        let before = Sample(vec![ProcSample {
            cpu_ticks: 100,
            switches: HashMap::from([(1, 10), (2, 5)]),
        }]);
        let after = Sample(vec![ProcSample {
            cpu_ticks: 350,
            switches: HashMap::from([(1, 30), (3, 4)]),
        }]);
        let c = cost_between(&before, &after, 100);
        assert_eq!(c.cpu_secs, 2.5);
        assert_eq!(c.context_switches, 24, "20 on thread 1, 4 on new thread 3");
        assert_eq!(c.threads_exited, 1);
        assert_eq!(c.threads, 2);
        assert_eq!(c.cpu_ms_per_op(1000), 2.5);
        assert_eq!(c.switches_per_op(8), 3.0);
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = std::process::id();
        let s = sample_pid(me).expect("own /proc entry");
        assert!(!s.switches.is_empty(), "at least the main thread");
        assert!(ticks_per_second() > 0);
    }
}
