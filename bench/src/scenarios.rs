//! The scenarios that compare igmpd with the kernel: convergence, sustained re-joins, join
//! and leave latency.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use igmpd_netns_tests::{in_netns, poll_until};
use serde_json::{json, Value};

use crate::bed::{bed, Bed, Mode};
use crate::join;
use crate::metrics::rss_kib;
use crate::opts::Opts;
use crate::sender::{groups, one_by_one, v2_leave_frame, v2_report_frames, Sender};
use crate::watcher::Watcher;

/// Every wait in here is bounded by this unless a scenario says otherwise.
const WAIT: Duration = Duration::from_secs(30);
/// Sustained scenario: rates tried, in reports per second.
const RATES: &[u64] = &[
    25_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000,
];

/// Time from the first frame until the MDB held `n` entries on the sender's port.
pub(crate) fn convergence(
    opts: &Opts,
    mode: Mode,
    n: usize,
    rss: &mut Option<(u64, u64)>,
) -> Result<f64> {
    let b = bed(opts, mode, Duration::from_secs(1), &[])?;
    let frames = v2_report_frames(b.src_mac, b.src_ip, &groups(n));
    let idle_rss = match &b.daemon {
        Some(d) => Some(rss_kib(d.pid())?),
        None => None,
    };
    let w = Watcher::start(&b.sw_ns())?;
    let host = b.host_ns();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (t0_tx, t0_rx) = mpsc::channel::<Instant>();
    let sender = in_netns(&host, move || {
        let s = Sender::open("eth0")?;
        go_rx.recv_timeout(WAIT)?;
        let t0 = Instant::now();
        let _ = t0_tx.send(t0);
        s.blast(&frames)
    });
    go_tx.send(())?;
    let t0 = t0_rx.recv_timeout(WAIT)?;
    // Read once: the loop below runs per MDB event.
    let trace = std::env::var_os("IGMPD_BENCH_TRACE").is_some();
    let mut seen = std::collections::HashSet::with_capacity(n);
    let deadline = Instant::now() + WAIT;
    let mut done_at = None;
    while Instant::now() < deadline {
        match w.rx.recv_timeout(Duration::from_millis(200)) {
            Ok(e) => {
                if e.added && e.port == b.port_ifindex && seen.insert(e.group) {
                    if trace && seen.len() % (n / 10).max(1) == 1 {
                        eprintln!(
                            "TRACE {} {} at {:.1} ms",
                            mode.name(),
                            seen.len(),
                            (e.at - t0).as_secs_f64() * 1e3
                        );
                    }
                    if seen.len() == n {
                        done_at = Some(e.at);
                        break;
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => bail!("watcher: {e}"),
        }
    }
    join(sender)?;
    let overruns = w.finish()?;
    let count = b.mdb_count()?;
    let done = done_at.with_context(|| {
        format!(
            "{}: MDB events for {} of {n} groups within {WAIT:?} (overruns {overruns}, dump {count})",
            mode.name(),
            seen.len()
        )
    })?;
    ensure!(
        count >= n,
        "{}: events said {n} groups but the dump shows {count}",
        mode.name()
    );
    if let (Some(d), Some(idle)) = (&b.daemon, idle_rss) {
        *rss = Some((idle, rss_kib(d.pid())?));
        let st = b.status()?;
        let refused = st["bridges"][0]["counters"]["groups_refused"].as_u64();
        ensure!(refused == Some(0), "igmpd refused groups: {refused:?}");
    }
    Ok((done - t0).as_secs_f64() * 1e3)
}

/// What the sustained scenario found.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sustained {
    /// The highest rate reached without loss, reports per second.
    pub(crate) best_rate: f64,
    /// Capture drops of the first lossy step (igmpd).
    pub(crate) capture_drops: u64,
    /// One JSON object per rate tried.
    pub(crate) steps: Vec<Value>,
}

/// Re-joins of 1000 groups at rising rates; the highest achieved rate without loss.
///
/// A rate is lossless for the kernel when the bridge's count of IGMPv2 reports received on
/// the port (`mcast_stats_enabled`, `ip link xstats type bridge_slave`) grew by exactly the
/// number of frames sent; for igmpd when its `reports` status counter grew by that number
/// and its `capture_drops` counter did not grow.
pub(crate) fn sustained(opts: &Opts, mode: Mode) -> Result<Sustained> {
    let b = bed(opts, mode, Duration::from_secs(1), &[])?;
    let frames = Arc::new(v2_report_frames(b.src_mac, b.src_ip, &groups(1000)));
    // Join them all first.
    let f = Arc::clone(&frames);
    join(in_netns(&b.host_ns(), move || {
        Sender::open("eth0")?.blast(&f)
    }))?;
    poll_until(WAIT, Duration::from_millis(100), || {
        (b.mdb_count().ok()? >= 1000).then_some(())
    })
    .context("1000 initial joins not in the MDB")?;
    let count = |b: &Bed| -> Result<(u64, u64)> {
        match mode {
            Mode::Kernel => Ok((b.kernel_v2_reports()?, 0)),
            Mode::Igmpd => Ok((b.counter("reports")?, b.counter("capture_drops")?)),
        }
    };
    let mut out = Sustained::default();
    for &rate in RATES {
        let (r0, d0) = count(&b)?;
        let f = Arc::clone(&frames);
        let dur = opts.sustain;
        let (sent, took) = join(in_netns(&b.host_ns(), move || {
            Sender::open("eth0")?.paced(&f, rate, dur)
        }))?;
        // Let the receiver drain what is queued.
        let (r1, d1) = poll_until(Duration::from_secs(3), Duration::from_millis(100), || {
            let (r, d) = count(&b).ok()?;
            (r - r0 >= sent).then_some((r, d))
        })
        .or_else(|_| count(&b))?;
        let got = r1 - r0;
        let drops = d1 - d0;
        let achieved = sent as f64 / took.as_secs_f64();
        let lossless = got == sent && drops == 0;
        out.steps.push(json!({"target_rate": rate, "achieved_rate": achieved.round(), "sent": sent, "counted": got, "capture_drops": drops, "lossless": lossless}));
        eprintln!(
            "  sustained {}: target {rate}/s achieved {:.0}/s sent {sent} counted {got} drops {drops}{}",
            mode.name(),
            achieved,
            if lossless { "" } else { "  LOSS" }
        );
        if !lossless {
            out.capture_drops = drops;
            break;
        }
        // The highest rate reached without loss: a sender-limited step may reach less
        // than the one before it.
        out.best_rate = out.best_rate.max(achieved);
        if achieved < rate as f64 * 0.9 {
            break; // the sender is the limit
        }
    }
    Ok(out)
}

/// Join -> MDB event latency at a low rate (200 new groups per second).
pub(crate) fn join_latency(opts: &Opts, mode: Mode) -> Result<Vec<f64>> {
    let b = bed(opts, mode, Duration::from_secs(1), &[])?;
    let n = opts.latency_groups;
    let gs = groups(n);
    let frames = v2_report_frames(b.src_mac, b.src_ip, &gs);
    let w = Watcher::start(&b.sw_ns())?;
    let (times_tx, times_rx) = mpsc::channel();
    join(one_by_one(
        &b.host_ns(),
        frames,
        Duration::ZERO,
        Duration::from_millis(5),
        times_tx,
    ))?;
    let sent: HashMap<Ipv4Addr, Instant> = times_rx.try_iter().map(|(i, t)| (gs[i], t)).collect();
    let mut lat = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while lat.len() < n && Instant::now() < deadline {
        if let Ok(e) = w.rx.recv_timeout(Duration::from_millis(100)) {
            if e.added && e.port == b.port_ifindex {
                if let Some(t) = sent.get(&e.group) {
                    lat.entry(e.group)
                        .or_insert_with(|| e.at.saturating_duration_since(*t).as_secs_f64() * 1e3);
                }
            }
        }
    }
    w.finish()?;
    ensure!(
        lat.len() == n,
        "{}: only {} of {n} joins reached the MDB",
        mode.name(),
        lat.len()
    );
    let mut v: Vec<f64> = lat.into_values().collect();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// Leave latency: a joined group, then a v2 leave; time until the MDB deletion event.
pub(crate) fn leave_latency(opts: &Opts, mode: Mode, lmi: Duration) -> Result<f64> {
    let b = bed(opts, mode, lmi, &[])?;
    let g = Ipv4Addr::new(239, 20, 0, 1);
    let join_f = v2_report_frames(b.src_mac, b.src_ip, &[g]);
    let leave_f = vec![v2_leave_frame(b.src_mac, b.src_ip, g)];
    // The kernel's querier sends group-specific queries only once it is the querier: give
    // both a moment after start.
    std::thread::sleep(Duration::from_millis(500));
    join(in_netns(&b.host_ns(), move || {
        Sender::open("eth0")?.blast(&join_f)
    }))?;
    poll_until(Duration::from_secs(5), Duration::from_millis(20), || {
        (b.mdb_count().ok()? >= 1).then_some(())
    })
    .context("join not in the MDB")?;
    let w = Watcher::start(&b.sw_ns())?;
    let t0 = join(in_netns(&b.host_ns(), move || {
        let s = Sender::open("eth0")?;
        let t = Instant::now();
        s.blast(&leave_f)?;
        Ok(t)
    }))?;
    let limit = lmi * 6 + Duration::from_secs(5);
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(e) = w.rx.recv_timeout(Duration::from_millis(100)) {
            if !e.added && e.group == g && e.port == b.port_ifindex {
                return Ok((e.at - t0).as_secs_f64() * 1e3);
            }
        }
    }
    bail!("{}: leave of {g} not seen within {limit:?}", mode.name())
}
