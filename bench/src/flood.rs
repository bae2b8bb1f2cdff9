//! The flood scenario (untrusted ports): host "a" floods distinct new groups as fast as
//! its socket takes them (IGMPv2 from spoofed hosts, IGMPv3 INCLUDE joins with many
//! sources, MLDv2 joins) while host "b" joins one new group a second. Measured: igmpd's
//! peak RSS, b's join -> MDB latency, `igmpd status --json` latency during the flood; the
//! same flood against the kernel's own snooping (what its MDB holds at the end, and
//! whether it still snoops: reaching `mcast_hash_max` turns snooping off for the bridge).
//! The bridge has the kernel's default `mcast_hash_max` (4096), igmpd its defaults.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::Result;
use igmpd_netns_tests::in_netns;
use igmpd_wire::frame::{Frame, Ipv4Header, Ipv6Header};
use igmpd_wire::{GroupRecord, IgmpRepr, MldRepr, RecordType};
use serde_json::{json, Value};

use crate::bed::{bed_with, Mode, DEFAULT_HASH_MAX};
use crate::join;
use crate::metrics::rss_kib;
use crate::opts::Opts;
use crate::sender::{one_by_one, v2_report_frames, Sender};
use crate::stats::pct;
use crate::watcher::Watcher;

/// MLDv2 reports go to all MLDv2-capable routers (RFC 9777 §5.2.14).
const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

/// Frame number `i` of the flood: a new group each time, from a spoofed host; one in
/// three IGMPv2, IGMPv3 INCLUDE with 16 sources, MLDv2 EXCLUDE({}).
fn flood_frame(src_mac: [u8; 6], i: u32) -> Vec<u8> {
    let host = Ipv4Addr::from(0x0a80_0000 | (i & 0x007f_ffff));
    match i % 3 {
        0 => {
            let group = Ipv4Addr::from(0xef80_0000 | (i & 0x007f_ffff));
            Frame::igmp(
                src_mac,
                None,
                Ipv4Header::igmp(host, group),
                IgmpRepr::V2Report { group },
            )
            .to_bytes()
        }
        1 => {
            let group = Ipv4Addr::from(0xe800_0000 | (i & 0x00ff_ffff));
            let sources = (0..16u32)
                .map(|s| Ipv4Addr::from(0x0b00_0000 | (i << 4) | s))
                .collect();
            let records = vec![GroupRecord {
                record_type: RecordType::ModeIsInclude,
                group,
                sources,
                aux_data: vec![],
            }];
            Frame::igmp(
                src_mac,
                None,
                Ipv4Header::igmp(host, Ipv4Addr::new(224, 0, 0, 22)),
                IgmpRepr::V3Report { records },
            )
            .to_bytes()
        }
        _ => {
            let group = Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16);
            let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, (i >> 16) as u16, i as u16);
            let records = vec![GroupRecord {
                record_type: RecordType::ChangeToExclude,
                group,
                sources: vec![],
                aux_data: vec![],
            }];
            Frame::mld(
                src_mac,
                None,
                Ipv6Header::mld(src, ALL_MLDV2_ROUTERS),
                MldRepr::V2Report { records },
            )
            .to_bytes()
        }
    }
}

/// One flood run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flood {
    pub(crate) seconds: f64,
    pub(crate) offered_per_s: f64,
    /// igmpd's peak RSS (None: the kernel run).
    pub(crate) rss_peak_kib: Option<u64>,
    /// b's join -> MDB latencies, ms, sorted; joins that never reached the MDB are missing.
    pub(crate) victim_ms: Vec<f64>,
    pub(crate) victim_joins: usize,
    /// The slowest `igmpd status --json` during the flood, ms.
    pub(crate) status_ms: Option<f64>,
    /// The same right after the flood (the same state, a quiet loop), ms, and the
    /// document's size in bytes.
    pub(crate) status_quiet_ms: Option<f64>,
    pub(crate) status_bytes: usize,
    /// Entries in the MDB at the end, and whether the bridge still snoops.
    pub(crate) mdb_entries: usize,
    pub(crate) snooping: bool,
}

/// Floods from host a for `opts.flood` while host b joins a new group every second.
pub(crate) fn flood(opts: &Opts, mode: Mode, extra: &[&str]) -> Result<Flood> {
    // Everything at its defaults, the bridge's mcast_hash_max too.
    let b = bed_with(
        opts,
        mode,
        Duration::from_secs(1),
        extra,
        true,
        DEFAULT_HASH_MAX,
    )?;
    let (victim_port, victim_mac, victim_ip) = b.victim();
    let w = Watcher::start(&b.sw_ns())?;
    let dur = opts.flood;
    let stop = Arc::new(AtomicBool::new(false));
    let src_mac = b.src_mac;
    let st = Arc::clone(&stop);
    let flooder = in_netns(&b.host_ns(), move || -> Result<u64> {
        let s = Sender::open("eth0")?;
        let mut i: u32 = 0;
        let mut sent = 0u64;
        let mut batch = Vec::with_capacity(64);
        while !st.load(Ordering::Relaxed) {
            batch.clear();
            for _ in 0..64 {
                batch.push(flood_frame(src_mac, i));
                i = i.wrapping_add(1);
            }
            sent += s.send_batch(&batch, 0, batch.len())? as u64;
        }
        Ok(sent)
    });
    // The victim: one new group a second, the send time of each.
    let n_victim = dur.as_secs().max(1) as usize;
    let victim_groups: Vec<Ipv4Addr> = (0..n_victim as u32)
        .map(|k| Ipv4Addr::from(u32::from(Ipv4Addr::new(239, 77, 0, 1)) + k))
        .collect();
    let frames = v2_report_frames(victim_mac, victim_ip, &victim_groups);
    let (sent_tx, sent_rx) = mpsc::channel();
    let victim = one_by_one(
        &b.victim_ns(),
        frames,
        Duration::from_millis(500),
        Duration::from_secs(1),
        sent_tx,
    );
    let t0 = Instant::now();
    let mut out = Flood {
        seconds: dur.as_secs_f64(),
        victim_joins: n_victim,
        ..Flood::default()
    };
    let mut added = std::collections::HashMap::new();
    let (mut next_rss, mut next_status) = (t0, t0 + Duration::from_millis(700));
    let mut worst_status: Option<f64> = None;
    let mut peak = None::<u64>;
    while t0.elapsed() < dur + Duration::from_millis(600) {
        if let Ok(e) = w.rx.recv_timeout(Duration::from_millis(20)) {
            if e.added && e.port == victim_port {
                added.entry(e.group).or_insert(e.at);
            }
        }
        let now = Instant::now();
        if let Some(d) = b.daemon.as_ref() {
            if now >= next_rss {
                if let Ok(r) = rss_kib(d.pid()) {
                    peak = Some(peak.map_or(r, |p| p.max(r)));
                }
                next_rss = now + Duration::from_millis(100);
            }
            if now >= next_status && t0.elapsed() < dur {
                if let Ok((took, _)) = d.status_timed() {
                    let ms = took.as_secs_f64() * 1e3;
                    worst_status = Some(worst_status.map_or(ms, |w: f64| w.max(ms)));
                }
                next_status = now + Duration::from_secs(1);
            }
        }
        if t0.elapsed() >= dur {
            stop.store(true, Ordering::Relaxed);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let sent = join(flooder)?;
    join(victim)?;
    if let Some(d) = b.daemon.as_ref() {
        if let Ok((took, v)) = d.status_timed() {
            out.status_quiet_ms = Some(took.as_secs_f64() * 1e3);
            out.status_bytes = serde_json::to_string(&v).map_or(0, |s| s.len());
        }
    }
    // Late events of the last joins.
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && added.len() < n_victim {
        if let Ok(e) = w.rx.recv_timeout(Duration::from_millis(50)) {
            if e.added && e.port == victim_port {
                added.entry(e.group).or_insert(e.at);
            }
        }
    }
    let _ = w.finish();
    for (k, t) in sent_rx.try_iter() {
        if let Some(at) = added.get(&victim_groups[k]) {
            out.victim_ms
                .push(at.saturating_duration_since(t).as_secs_f64() * 1e3);
        }
    }
    out.victim_ms.sort_by(f64::total_cmp);
    out.offered_per_s = sent as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    out.rss_peak_kib = peak;
    out.status_ms = worst_status;
    out.mdb_entries = b.mdb_total()?;
    out.snooping = b.snooping_on()?;
    eprintln!(
        "flood {} {extra:?}: offered {:.0}/s, victim joins {}/{} p99 {:?} ms, rss peak {:?} KiB, status {:?} ms (quiet {:?} ms, {} bytes), mdb {} entries, snooping {}",
        mode.name(),
        out.offered_per_s,
        out.victim_ms.len(),
        n_victim,
        p99(&out),
        out.rss_peak_kib,
        out.status_ms,
        out.status_quiet_ms,
        out.status_bytes,
        out.mdb_entries,
        out.snooping
    );
    Ok(out)
}

fn p99(f: &Flood) -> Option<f64> {
    (!f.victim_ms.is_empty()).then(|| pct(&f.victim_ms, 0.99))
}

/// results.json's `flood` (a contract): the default run's figures, the 256-group run's
/// peak RSS, the kernel's victim latency. A victim join that never reached the MDB makes
/// the percentiles null.
pub(crate) fn to_json(default: &Flood, limited: &Flood, kernel: &Flood) -> Value {
    let complete = |f: &Flood| f.victim_ms.len() == f.victim_joins;
    let p = |f: &Flood, q: f64| complete(f).then(|| (pct(&f.victim_ms, q) * 100.0).round() / 100.0);
    json!({
        "seconds": default.seconds,
        "offered_per_s": default.offered_per_s.round(),
        "rss_peak_kib": {"default": default.rss_peak_kib, "max_groups_256": limited.rss_peak_kib},
        "victim_join_p50_ms": p(default, 0.5),
        "victim_join_p99_ms": p(default, 0.99),
        "victim_joins": {"sent": default.victim_joins, "in_mdb": default.victim_ms.len()},
        "status_ms": default.status_ms.map(|s| (s * 100.0).round() / 100.0),
        "status_quiet_ms": default.status_quiet_ms.map(|s| (s * 100.0).round() / 100.0),
        "status_bytes": default.status_bytes,
        "mdb_entries": default.mdb_entries,
        "max_groups_256": {"victim_join_p99_ms": p(limited, 0.99), "mdb_entries": limited.mdb_entries},
        "kernel": {"victim_join_p99_ms": p(kernel, 0.99),
                   "victim_joins_in_mdb": kernel.victim_ms.len(),
                   "mdb_entries": kernel.mdb_entries,
                   "snooping_after": kernel.snooping,
                   "offered_per_s": kernel.offered_per_s.round()},
    })
}
