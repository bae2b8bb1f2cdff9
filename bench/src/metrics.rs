//! Process metrics from /proc: RSS, context switches (wake-ups), CPU time.

use anyhow::{Context, Result};

use crate::sys;

fn proc_field(pid: u32, key: &str) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|r| r.trim_start_matches(':').split_whitespace().next())
        .and_then(|x| x.parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    proc_field(pid, "VmRSS")
}

/// Context switches summed over all threads, and the thread count.
pub(crate) fn ctx_switches(pid: u32) -> Result<(u64, u64)> {
    let mut total = 0;
    let mut threads = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let t = t?.path();
        let s = std::fs::read_to_string(t.join("status"))?;
        for l in s.lines() {
            if let Some(r) = l
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += r.trim().parse::<u64>().unwrap_or(0);
            }
        }
        threads += 1;
    }
    Ok((total, threads))
}

/// utime + stime in clock ticks.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = &s[s.rfind(')').context("stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // fields after ")" start at field 3 (state): utime is field 14, stime 15.
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

pub(crate) fn ticks_per_s() -> f64 {
    let t = sys::clk_tck();
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}
