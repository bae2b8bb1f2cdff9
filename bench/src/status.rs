//! The status scenario: `igmpd status --json` and `igmpd status` (the tables) while
//! `igmpd snoop` holds many groups, each a new process as a user runs it; and a second
//! port's join -> MDB latency while a client reads status in a loop (the protocol loop must
//! not wait for the status readers).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::{in_netns, poll_until, Igmpd};
use serde_json::{json, Value};

use crate::bed::{bed, Bed, Mode};
use crate::join;
use crate::opts::Opts;
use crate::sender::{groups, one_by_one, v2_report_frames, Sender};
use crate::stats::{pct, r2};
use crate::watcher::Watcher;

/// Timed reads of each form.
const READS: usize = 15;
/// Joins of the second port while status is read in a loop, one each 20 ms.
const VICTIM_JOINS: usize = 50;

/// What one run found.
#[derive(Debug, Clone)]
pub(crate) struct StatusRun {
    pub(crate) groups: usize,
    /// Medians of the timed reads, ms.
    pub(crate) json_ms: f64,
    pub(crate) plain_ms: f64,
    /// Size of the `--json` document, bytes.
    pub(crate) json_bytes: usize,
    /// The second port's join -> MDB p50/p99 while status is read in a loop, ms.
    pub(crate) join_p50_ms: f64,
    pub(crate) join_p99_ms: f64,
    /// The same with nobody reading status, ms.
    pub(crate) quiet_join_p99_ms: f64,
    /// Status reads completed during those joins.
    pub(crate) reads_during_joins: usize,
}

/// `n` groups joined on port a; status timed; then port b joins while status is read.
pub(crate) fn status(opts: &Opts, n: usize) -> Result<StatusRun> {
    let b = bed(opts, Mode::Igmpd, Duration::from_secs(1), &[])?;
    let d = b.daemon.as_ref().context("no igmpd")?;
    let frames = v2_report_frames(b.src_mac, b.src_ip, &groups(n));
    join(in_netns(&b.host_ns(), move || {
        Sender::open("eth0")?.blast(&frames)
    }))?;
    poll_until(Duration::from_secs(30), Duration::from_millis(100), || {
        (b.mdb_count().ok()? >= n).then_some(())
    })
    .with_context(|| format!("{n} joins not in the MDB"))?;
    let (mut js, mut ps) = (Vec::new(), Vec::new());
    let mut json_bytes = 0;
    for _ in 0..READS {
        let (t, v) = d.status_timed()?;
        js.push(t.as_secs_f64() * 1e3);
        json_bytes = serde_json::to_string(&v).map_or(0, |s| s.len());
        let (t, text) = d.status_plain_timed()?;
        ensure!(
            text.lines().count() > n,
            "the plain status shows {} lines for {n} groups",
            text.lines().count()
        );
        ps.push(t.as_secs_f64() * 1e3);
    }
    js.sort_by(f64::total_cmp);
    ps.sort_by(f64::total_cmp);

    // Port b joins, once with nobody reading status, then while a client reads status
    // (alternating forms) in a loop.
    let quiet = victim_joins(&b, 0, None)?;
    let reading = AtomicUsize::new(0);
    let lat = victim_joins(&b, 1, Some((d, &reading)))?;
    let out = StatusRun {
        groups: n,
        json_ms: pct(&js, 0.5),
        plain_ms: pct(&ps, 0.5),
        json_bytes,
        join_p50_ms: pct(&lat, 0.5),
        join_p99_ms: pct(&lat, 0.99),
        quiet_join_p99_ms: pct(&quiet, 0.99),
        reads_during_joins: reading.load(Ordering::Relaxed),
    };
    eprintln!("status {n} groups: {out:?}");
    Ok(out)
}

/// results.json's `status` object: medians over the runs.
pub(crate) fn to_json(runs: &[StatusRun]) -> Value {
    let med = |f: fn(&StatusRun) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        r2(pct(&v, 0.5))
    };
    json!({
        "groups": runs.first().map_or(0, |r| r.groups),
        "json_ms": med(|r| r.json_ms),
        "plain_ms": med(|r| r.plain_ms),
        "json_bytes": runs.first().map_or(0, |r| r.json_bytes),
        "join_p50_ms_while_reading": med(|r| r.join_p50_ms),
        "join_p99_ms_while_reading": med(|r| r.join_p99_ms),
        "join_p99_ms_quiet": med(|r| r.quiet_join_p99_ms),
        "reads_during_joins": med(|r| r.reads_during_joins as f64),
    })
}

/// [`VICTIM_JOINS`] new groups joined from port b (set `set` of them), one each 20 ms,
/// while `reader`'s daemon is asked for status in a loop (counted in its counter) if
/// given; the join -> MDB latencies, sorted, ms.
fn victim_joins(b: &Bed, set: u32, reader: Option<(&Igmpd, &AtomicUsize)>) -> Result<Vec<f64>> {
    let (victim_port, victim_mac, victim_ip) = b.victim();
    let victim_groups: Vec<Ipv4Addr> = (0..VICTIM_JOINS as u32)
        .map(|k| Ipv4Addr::new(239, 78, set as u8, 1 + k as u8))
        .collect();
    let frames = v2_report_frames(victim_mac, victim_ip, &victim_groups);
    let w = Watcher::start(&b.sw_ns())?;
    let stop = AtomicBool::new(false);
    let (sent_tx, sent_rx) = mpsc::channel();
    std::thread::scope(|sc| -> Result<()> {
        let looping = reader.map(|(d, count)| {
            let stop = &stop;
            sc.spawn(move || {
                let mut k = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let ok = if k % 2 == 0 {
                        d.status_timed().is_ok()
                    } else {
                        d.status_plain_timed().is_ok()
                    };
                    k += 1;
                    count.fetch_add(usize::from(ok), Ordering::Relaxed);
                }
            })
        });
        let r = join(one_by_one(
            &b.victim_ns(),
            frames,
            Duration::from_millis(200),
            Duration::from_millis(20),
            sent_tx,
        ));
        // Let the last joins land while the reader still runs.
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        if let Some(h) = looping {
            let _ = h.join();
        }
        r
    })?;
    let mut added = std::collections::HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while added.len() < VICTIM_JOINS && Instant::now() < deadline {
        if let Ok(e) = w.rx.recv_timeout(Duration::from_millis(50)) {
            if e.added && e.port == victim_port {
                added.entry(e.group).or_insert(e.at);
            }
        }
    }
    let _ = w.finish();
    let mut lat: Vec<f64> = sent_rx
        .try_iter()
        .filter_map(|(k, t)| {
            added
                .get(&victim_groups[k])
                .map(|at: &Instant| at.saturating_duration_since(t).as_secs_f64() * 1e3)
        })
        .collect();
    ensure!(
        lat.len() == VICTIM_JOINS,
        "only {} of {VICTIM_JOINS} joins of the second port reached the MDB{}",
        lat.len(),
        if reader.is_some() {
            " while status was read"
        } else {
            ""
        }
    );
    lat.sort_by(f64::total_cmp);
    Ok(lat)
}
