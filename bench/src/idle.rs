//! The idle scenario: `igmpd query` alone, on 1 and on 200 interfaces (no kernel side).

use std::time::Duration;

use anyhow::Result;
use igmpd_netns_tests::{Igmpd, Netns};

use crate::metrics::{cpu_ticks, ctx_switches, rss_kib, ticks_per_s};
use crate::opts::Opts;

/// What the idle scenario measured.
#[derive(Debug, Default, Clone)]
pub(crate) struct Idle {
    /// 200 interfaces, default timers: CPU share, wake-ups (context switches) per second.
    pub(crate) cpu_percent: f64,
    pub(crate) wakeups_per_s: f64,
    /// 200 interfaces, 1 s query interval: CPU time per query round.
    pub(crate) cpu_ms_per_round: f64,
    /// Median `igmpd status --json` wall time, 200 interfaces.
    pub(crate) status_ms: f64,
    /// RSS in KiB with 1 and 200 interfaces.
    pub(crate) rss_1: u64,
    pub(crate) rss_200: u64,
    /// Threads of `igmpd query` (200 interfaces).
    pub(crate) threads: u64,
    /// 1 interface: wake-ups per second and median `status --json` wall time.
    pub(crate) wakeups_per_s_1: f64,
    pub(crate) status_ms_1: f64,
}

/// `igmpd query` on 1 and on 200 macvlan uppers (mode private) of a bridge.
pub(crate) fn idle(opts: &Opts) -> Result<Idle> {
    let ns = Netns::new()?;
    ns.disable_dad()?;
    let mut batch = String::from("link add br0 type bridge mcast_snooping 0\nlink set br0 up\n");
    for i in 1..=200 {
        batch += &format!(
            "link add mv{i} link br0 type macvlan mode private\naddr add 10.77.{}.{}/16 dev mv{i}\nlink set mv{i} up\n",
            i / 250,
            i % 250 + 1
        );
    }
    ns.ip_batch(&batch)?;
    let ifaces: Vec<String> = (1..=200).map(|i| format!("mv{i}")).collect();
    let mut out = Idle::default();
    let tps = ticks_per_s();
    let measure = |d: &Igmpd, window: Duration| -> Result<(f64, f64, u64)> {
        let (c0, _) = ctx_switches(d.pid())?;
        let t0 = cpu_ticks(d.pid())?;
        std::thread::sleep(window);
        let (c1, threads) = ctx_switches(d.pid())?;
        let t1 = cpu_ticks(d.pid())?;
        let s = window.as_secs_f64();
        Ok((
            (t1 - t0) as f64 / tps / s * 100.0,
            (c1 - c0) as f64 / s,
            threads,
        ))
    };
    // 1 interface, default timers: RSS and wake-ups after the first startup query.
    {
        let d = Igmpd::spawn(&ns, &opts.igmpd, &["query", "mv1"])?;
        std::thread::sleep(Duration::from_secs(2));
        let (_, w, _) = measure(&d, opts.idle_window.min(Duration::from_secs(5)))?;
        out.wakeups_per_s_1 = w;
        out.rss_1 = rss_kib(d.pid())?;
        out.status_ms_1 = status_median(&d)?;
        d.stop()?;
    }
    // 200 interfaces, default timers (125 s; startup queries 31 s apart): a window with no
    // deadline in it.
    {
        let mut a: Vec<&str> = vec!["query"];
        a.extend(ifaces.iter().map(String::as_str));
        let d = Igmpd::spawn(&ns, &opts.igmpd, &a)?;
        std::thread::sleep(Duration::from_secs(2));
        let (cpu, w, th) = measure(&d, opts.idle_window)?;
        out.cpu_percent = cpu;
        out.wakeups_per_s = w;
        out.threads = th;
        out.rss_200 = rss_kib(d.pid())?;
        out.status_ms = status_median(&d)?;
        d.stop()?;
    }
    // 200 interfaces, 1 s query interval: CPU per round.
    {
        let mut a: Vec<&str> = vec![
            "query",
            "--query-interval",
            "1s",
            "--query-response-interval",
            "500ms",
        ];
        a.extend(ifaces.iter().map(String::as_str));
        let d = Igmpd::spawn(&ns, &opts.igmpd, &a)?;
        std::thread::sleep(Duration::from_millis(1500));
        let window = Duration::from_secs(5);
        let t0 = cpu_ticks(d.pid())?;
        std::thread::sleep(window);
        let t1 = cpu_ticks(d.pid())?;
        out.cpu_ms_per_round = (t1 - t0) as f64 / tps * 1e3 / window.as_secs_f64();
        d.stop()?;
    }
    Ok(out)
}

/// Median wall time of `igmpd status --json` (a new process each time, as a user runs it).
fn status_median(d: &Igmpd) -> Result<f64> {
    let mut st = Vec::new();
    for _ in 0..7 {
        let (took, _) = d.status_timed()?;
        st.push(took.as_secs_f64() * 1e3);
    }
    st.sort_by(f64::total_cmp);
    Ok(st[st.len() / 2])
}
