//! The restart scenario: `igmpd snoop` holding `n` memberships is SIGKILLed and started
//! again. Measured: the time from the new process's start until it has adopted every entry
//! and a new join is in the MDB; what a data-plane probe to a real joined host (host b,
//! its kernel answering the queries) loses over the restart; and the entries left one
//! membership interval later whose (made-up) host no longer reports.

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::{in_netns, poll_until, Igmpd};
use serde_json::{json, Value};

use crate::bed::{bed, Mode};
use crate::join;
use crate::opts::Opts;
use crate::sender::{groups, v2_report_frames, Sender};

/// Short timers, so that "one membership interval later" is seconds away: GMI = 2 x 4 s
/// + 1 s.
const TIMERS: &[&str] = &["--query-interval", "4s", "--query-response-interval", "1s"];
const GMI: Duration = Duration::from_secs(9);
/// The probe's group and port, and its pace.
const PROBE: Ipv4Addr = Ipv4Addr::new(239, 99, 0, 1);
const PROBE_PORT: u16 = 5099;
const PROBE_EVERY: Duration = Duration::from_millis(5);

/// What one run found.
#[derive(Debug, Clone)]
pub(crate) struct RestartRun {
    pub(crate) memberships: usize,
    /// From the new process's start until every entry was adopted and a new join was in
    /// the MDB.
    pub(crate) adopt_ms: f64,
    /// Of those, until its control socket answered.
    pub(crate) start_ms: f64,
    /// Probe datagrams sent while igmpd was down and starting, and lost.
    pub(crate) probe_sent: u64,
    pub(crate) probe_lost: u64,
    /// Entries of the made-up host's port one membership interval after the restart.
    pub(crate) stale: usize,
}

/// One run with `n` memberships.
pub(crate) fn restart(opts: &Opts, n: usize) -> Result<RestartRun> {
    let mut b = bed(opts, Mode::Igmpd, Duration::from_secs(1), TIMERS)?;
    // The probe's receiver: a real host (its kernel reports and answers queries).
    let b_ip = b.lab().host("b").ipv4();
    let stop = Arc::new(AtomicBool::new(false));
    let got = Arc::new(AtomicU64::new(0));
    let (stop_r, got_r) = (Arc::clone(&stop), Arc::clone(&got));
    let receiver = in_netns(&b.victim_ns(), move || -> Result<()> {
        let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PROBE_PORT))?;
        s.join_multicast_v4(&PROBE, &b_ip)?;
        s.set_read_timeout(Some(Duration::from_millis(50)))?;
        let mut buf = [0u8; 64];
        while !stop_r.load(Ordering::Relaxed) {
            if s.recv(&mut buf).is_ok() {
                got_r.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(())
    });
    let port_b = b.lab().host("b").port().to_owned();
    let probe_entry = |b: &crate::bed::Bed| {
        b.lab()
            .mdb()
            .map(|m| m.iter().any(|e| e.port == port_b && e.group == PROBE))
            .unwrap_or(false)
    };
    poll_until(Duration::from_secs(10), Duration::from_millis(20), || {
        probe_entry(&b).then_some(())
    })
    .context("host b's probe group never reached the MDB")?;
    // n made-up memberships on port a.
    let frames = v2_report_frames(b.src_mac, b.src_ip, &groups(n));
    join(in_netns(&b.host_ns(), move || {
        Sender::open("eth0")?.blast(&frames)
    }))?;
    poll_until(Duration::from_secs(30), Duration::from_millis(50), || {
        (b.mdb_count().ok()? >= n).then_some(())
    })
    .with_context(|| format!("{n} joins not in the MDB"))?;
    // The probe: host a sends to host b's group all through the restart.
    b.lab()
        .host("a")
        .netns()
        .ip(&["route", "add", "224.0.0.0/4", "dev", "eth0"])?;
    let sending = Arc::new(AtomicBool::new(true));
    let sent = Arc::new(AtomicU64::new(0));
    let (sending_s, sent_s) = (Arc::clone(&sending), Arc::clone(&sent));
    let prober = in_netns(&b.host_ns(), move || -> Result<()> {
        let s = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        s.set_multicast_ttl_v4(1)?;
        let to = SocketAddrV4::new(PROBE, PROBE_PORT);
        while sending_s.load(Ordering::Relaxed) {
            if s.send_to(b"probe", to).is_ok() {
                sent_s.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(PROBE_EVERY);
        }
        Ok(())
    });
    std::thread::sleep(Duration::from_millis(100));
    let (sent0, got0) = (sent.load(Ordering::Relaxed), got.load(Ordering::Relaxed));
    b.daemon.take().context("no igmpd")?.kill()?;
    let args: Vec<&str> = b.args.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    let d = Igmpd::spawn(b.lab().switch().netns(), &opts.igmpd, &args)?;
    let start_ms = t0.elapsed().as_secs_f64() * 1e3;
    let adopted = |d: &Igmpd| -> Option<u64> {
        d.status().ok()?["bridges"][0]["counters"]["adopted"].as_u64()
    };
    poll_until(Duration::from_secs(30), Duration::from_millis(2), || {
        adopted(&d).filter(|a| *a as usize > n)
    })
    .with_context(|| format!("igmpd adopted {:?} of {} entries", adopted(&d), n + 1))?;
    // A new join is taken: a group no one had.
    let fresh = Ipv4Addr::new(239, 98, 0, 1);
    let frame = v2_report_frames(b.src_mac, b.src_ip, &[fresh]);
    join(in_netns(&b.host_ns(), move || {
        Sender::open("eth0")?.blast(&frame)
    }))?;
    let port_a = b.lab().host("a").port().to_owned();
    poll_until(Duration::from_secs(30), Duration::from_millis(2), || {
        b.lab()
            .mdb()
            .ok()?
            .iter()
            .any(|e| e.port == port_a && e.group == fresh)
            .then_some(())
    })
    .context("a join after the restart never reached the MDB")?;
    let adopt_ms = t0.elapsed().as_secs_f64() * 1e3;
    std::thread::sleep(Duration::from_millis(200));
    sending.store(false, Ordering::Relaxed);
    join(prober)?;
    // Datagrams in flight arrive within the receiver's next read.
    std::thread::sleep(Duration::from_millis(150));
    let probe_sent = sent.load(Ordering::Relaxed) - sent0;
    let probe_lost = probe_sent.saturating_sub(got.load(Ordering::Relaxed) - got0);
    // One membership interval later: the made-up host never reported again, so none of
    // its entries may be left; host b's stays.
    std::thread::sleep(GMI + Duration::from_secs(2));
    let stale = b.mdb_count()?;
    ensure!(
        probe_entry(&b),
        "host b's entry went although b still reports"
    );
    stop.store(true, Ordering::Relaxed);
    join(receiver)?;
    drop(d);
    eprintln!(
        "restart n={n}: adopted and joined in {adopt_ms:.0} ms (control socket after {start_ms:.0} ms), probe lost {probe_lost} of {probe_sent}, stale {stale}"
    );
    Ok(RestartRun {
        memberships: n,
        adopt_ms,
        start_ms,
        probe_sent,
        probe_lost,
        stale,
    })
}

/// results.json's `"restart"`: medians over the runs.
pub(crate) fn to_json(runs: &[RestartRun]) -> Value {
    let m = |f: fn(&RestartRun) -> f64| {
        crate::stats::r2(crate::stats::mmm(&runs.iter().map(f).collect::<Vec<_>>()).med)
    };
    json!({
        "memberships": runs.first().map_or(0, |r| r.memberships),
        "adopt_ms": m(|r| r.adopt_ms),
        "start_ms": m(|r| r.start_ms),
        "probe_lost": m(|r| r.probe_lost as f64),
        "probe_sent": m(|r| r.probe_sent as f64),
        "stale": m(|r| r.stale as f64),
        "runs": runs.len(),
    })
}
