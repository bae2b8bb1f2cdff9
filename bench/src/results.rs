//! results.json: the medians and ranges of every measure, the sustained scenario's steps.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde_json::{json, Value};

use crate::idle::Idle;
use crate::opts::Opts;
use crate::stats::{j, mmm, r2, Mmm};

/// Everything the scenarios measured, one value per run.
#[derive(Debug)]
pub(crate) struct Measured {
    /// `/proc/sys/kernel/osrelease`.
    pub(crate) kernel_release: String,
    pub(crate) cpus: usize,
    /// When the driver started.
    pub(crate) started: Instant,
    /// Convergence: (groups, igmpd ms, kernel ms).
    pub(crate) conv: Vec<(usize, Vec<f64>, Vec<f64>)>,
    /// igmpd snoop's RSS in KiB (idle, with 10 000 memberships).
    pub(crate) rss_snoop: Vec<(u64, u64)>,
    /// Sustained: best lossless rates, igmpd's capture drops, the steps (JSON).
    pub(crate) s_ig: Vec<f64>,
    pub(crate) s_ke: Vec<f64>,
    pub(crate) s_drops: Vec<f64>,
    pub(crate) s_steps: Vec<Value>,
    /// Join latency percentiles in ms, igmpd (p50, p99) and kernel (kp50, kp99).
    pub(crate) p50: Vec<f64>,
    pub(crate) p99: Vec<f64>,
    pub(crate) kp50: Vec<f64>,
    pub(crate) kp99: Vec<f64>,
    /// Leave latency: (last member interval ms, igmpd ms, kernel ms).
    pub(crate) leaves: Vec<(u64, Vec<f64>, Vec<f64>)>,
    pub(crate) idles: Vec<Idle>,
    /// The flood scenario's `flood` object, and its figures for the summary.
    pub(crate) flood: Option<(Value, FloodFigures)>,
    /// The status scenario's runs.
    pub(crate) status: Option<Vec<crate::status::StatusRun>>,
    /// The restart scenario's runs.
    pub(crate) restart: Option<Vec<crate::restart::RestartRun>>,
    /// The many-ports scenario's runs.
    pub(crate) ports: Option<Vec<crate::ports::PortsRun>>,
}

/// What the summary prints of the flood scenario.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FloodFigures {
    pub(crate) rss_default_mib: f64,
    pub(crate) rss_256_mib: f64,
    pub(crate) victim_p99_ms: Option<f64>,
    pub(crate) status_ms: Option<f64>,
    pub(crate) kernel_p99_ms: Option<f64>,
}

impl Measured {
    /// Nothing measured yet, on this machine, since `started`.
    pub(crate) fn new(started: Instant) -> Result<Measured> {
        Ok(Measured {
            kernel_release: std::fs::read_to_string("/proc/sys/kernel/osrelease")?
                .trim()
                .to_owned(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            started,
            conv: Vec::new(),
            rss_snoop: Vec::new(),
            s_ig: Vec::new(),
            s_ke: Vec::new(),
            s_drops: Vec::new(),
            s_steps: Vec::new(),
            p50: Vec::new(),
            p99: Vec::new(),
            kp50: Vec::new(),
            kp99: Vec::new(),
            leaves: Vec::new(),
            idles: Vec::new(),
            flood: None,
            status: None,
            restart: None,
            ports: None,
        })
    }

    /// [`Mmm`] of one field of the idle runs.
    pub(crate) fn idle(&self, f: fn(&Idle) -> f64) -> Mmm {
        mmm(&self.idles.iter().map(f).collect::<Vec<_>>())
    }

    /// [`Mmm`] of igmpd snoop's idle RSS and of its RSS with 10 000 memberships.
    pub(crate) fn rss_snoop(&self) -> (Mmm, Mmm) {
        let rss = |f: fn(&(u64, u64)) -> u64| {
            mmm(&self
                .rss_snoop
                .iter()
                .map(|r| f(r) as f64)
                .collect::<Vec<_>>())
        };
        (rss(|r| r.0), rss(|r| r.1))
    }

    /// Convergence per size: (groups, igmpd, kernel).
    pub(crate) fn convergence(&self) -> Vec<(usize, Mmm, Mmm)> {
        self.conv
            .iter()
            .map(|(n, ig, ke)| (*n, mmm(ig), mmm(ke)))
            .collect()
    }
}

/// Writes `results.json` into `opts.out`; returns its path.
pub(crate) fn write(opts: &Opts, r: &Measured) -> Result<PathBuf> {
    let runs = opts.runs;
    let im = |f: fn(&Idle) -> f64| r.idle(f);
    let conv_json: Vec<Value> = r
        .conv
        .iter()
        .map(|(n, ig, ke)| {
            let (i, k) = (mmm(ig), mmm(ke));
            json!({"groups": n, "igmpd_ms": r2(i.med), "kernel_ms": r2(k.med),
                   "ratio": r2(i.med / k.med.max(1e-9)),
                   "igmpd": j(i), "kernel": j(k)})
        })
        .collect();
    let si = mmm(&r.s_ig);
    let sk = mmm(&r.s_ke);
    let (rss_idle, rss_10k) = r.rss_snoop();
    let leave_json: Vec<Value> = r.leaves
        .iter()
        .map(|(lmi, ig, ke)| {
            json!({"last_member_interval_ms": lmi, "igmpd": r2(mmm(ig).med), "kernel": r2(mmm(ke).med),
                   "igmpd_range": j(mmm(ig)), "kernel_range": j(mmm(ke))})
        })
        .collect();
    let results = json!({
        "runs": runs,
        "quick": opts.quick,
        "machine": {"kernel": r.kernel_release, "cpus": r.cpus},
        "convergence": conv_json,
        "sustained": {
            "igmpd_reports_per_s": si.med.round(),
            "kernel_reports_per_s": sk.med.round(),
            "ratio": r2(si.med / sk.med.max(1e-9)),
            "capture_drops": mmm(&r.s_drops).med as u64,
            "seconds_per_rate": opts.sustain.as_secs_f64(),
            "igmpd": j(si), "kernel": j(sk),
            "steps": r.s_steps,
        },
        "join_to_mdb_ms": {"p50": r2(mmm(&r.p50).med * 100.0) / 100.0, "p99": r2(mmm(&r.p99).med * 100.0) / 100.0,
                           "groups": opts.latency_groups, "rate_per_s": 200,
                           "p50_range": j(mmm(&r.p50)), "p99_range": j(mmm(&r.p99)),
                           "kernel_p50": mmm(&r.kp50).med, "kernel_p99": mmm(&r.kp99).med},
        "leave_ms": leave_json,
        "rss_kib": {"snoop_idle": rss_idle.med as u64, "snoop_10k_memberships": rss_10k.med as u64,
                    "query_idle_1_iface": im(|i| i.rss_1 as f64).med as u64,
                    "query_idle_200_ifaces": im(|i| i.rss_200 as f64).med as u64},
        "idle": {"interfaces": 200, "cpu_percent": r2(im(|i| i.cpu_percent).med * 100.0) / 100.0,
                 "wakeups_per_s": r2(im(|i| i.wakeups_per_s).med),
                 "cpu_ms_per_query_round": r2(im(|i| i.cpu_ms_per_round).med),
                 "status_ms": r2(im(|i| i.status_ms).med),
                 "wakeups_per_s_1_iface": r2(im(|i| i.wakeups_per_s_1).med),
                 "status_ms_1_iface": r2(im(|i| i.status_ms_1).med),
                 "threads": r.idles.first().map_or(0, |i| i.threads),
                 "window_s": opts.idle_window.as_secs_f64()},
        "flood": r.flood.as_ref().map(|(v, _)| v.clone()),
        "status": r.status.as_deref().map(crate::status::to_json),
        "query": (!r.idles.is_empty()).then(|| json!({
            "ifaces": 200,
            "rss_kib": im(|i| i.rss_200 as f64).med as u64,
            "cpu_per_round_ms": r2(im(|i| i.cpu_ms_per_round).med),
            "wakeups_per_s": r2(im(|i| i.wakeups_per_s).med),
        })),
        "restart": r.restart.as_deref().map(crate::restart::to_json),
        "ports": r.ports.as_deref().map(crate::ports::to_json),
        "elapsed_s": r.started.elapsed().as_secs(),
    });
    let path = opts.out.join("results.json");
    std::fs::write(&path, serde_json::to_string_pretty(&results)? + "\n")?;
    Ok(path)
}
