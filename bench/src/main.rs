//! `igmpd-bench`: igmpd's snooping against the kernel's own, side by side, driven by
//! `scripts/bench.sh`. What it measures and how to read the figures: README.md,
//! "Performance".
//!
//! Every scenario builds its own namespaces with the lab library (igmpd-netns-tests; never
//! the root namespace's interfaces). The comparing ones run on the same topology once with
//! the kernel's snooping and once with `igmpd snoop --querier`; the idle one runs `igmpd
//! query` alone. Results go to `--out`: results.json, summary.txt, convergence.svg.
//!
//! Usage: `igmpd-bench --igmpd PATH [--out DIR] [--quick] [--runs N] [--sizes N,N]
//! [--sustain-secs S] [--flood-secs S] [--only convergence|sustained|flood|status|restart|ports]`.
//!
//! - [`opts`]: the command line
//! - [`bed`]: the topology for either side; [`sender`]: the AF_PACKET frame sender;
//!   [`watcher`]: MDB notifications; [`metrics`]: /proc process metrics; [`sys`]: the
//!   system calls std lacks (the only `unsafe`)
//! - [`scenarios`], [`flood`](mod@flood), [`status`](mod@status),
//!   [`restart`](mod@restart), [`ports`](mod@ports) and [`idle`](mod@idle): the
//!   measurements
//! - [`stats`], [`results`] (results.json), [`summary`] (summary.txt), [`chart`]
//!   (convergence.svg)

mod bed;
mod chart;
mod flood;
mod idle;
mod metrics;
mod opts;
mod ports;
mod restart;
mod results;
mod scenarios;
mod sender;
mod stats;
mod status;
mod summary;
mod sys;
mod watcher;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use serde_json::json;

use crate::bed::Mode;
use crate::idle::idle;
use crate::results::Measured;
use crate::scenarios::{convergence, join_latency, leave_latency, sustained};
use crate::stats::pct;

/// Waits for a thread started with [`igmpd_netns_tests::in_netns`]; a panic in it becomes
/// an error.
fn join<T>(h: std::thread::JoinHandle<Result<T>>) -> Result<T> {
    h.join()
        .map_err(|_| anyhow::anyhow!("bench thread panicked"))?
}

fn main() -> Result<()> {
    let opts = opts::parse_args()?;
    ensure!(
        opts.igmpd.is_file(),
        "no igmpd binary at {}",
        opts.igmpd.display()
    );
    std::fs::create_dir_all(&opts.out)?;
    let mut r = Measured::new(Instant::now())?;
    let runs = opts.runs;

    let only = opts.only.as_deref();
    if only == Some("flood") {
        r.flood = Some(run_flood(&opts)?);
        let path = results::write(&opts, &r)?;
        return summary::write(&opts, &r, &path);
    }
    if only == Some("status") {
        r.status = Some(run_status(&opts)?);
        let path = results::write(&opts, &r)?;
        return summary::write(&opts, &r, &path);
    }
    if only == Some("ports") {
        r.ports = Some(run_ports(&opts)?);
        let path = results::write(&opts, &r)?;
        return summary::write(&opts, &r, &path);
    }
    if only == Some("restart") {
        r.restart = Some(run_restart(&opts)?);
        let path = results::write(&opts, &r)?;
        return summary::write(&opts, &r, &path);
    }

    // convergence
    let sizes: &[usize] = if only == Some("sustained") {
        &[]
    } else {
        &opts.sizes
    };
    for &n in sizes {
        let (mut ig, mut ke) = (Vec::new(), Vec::new());
        for run in 0..runs {
            let k = convergence(&opts, Mode::Kernel, n, &mut None)?;
            let mut rss = None;
            let i = convergence(&opts, Mode::Igmpd, n, &mut rss)?;
            if n == 10_000 {
                r.rss_snoop.extend(rss);
            }
            eprintln!("convergence n={n} run {run}: igmpd {i:.1} ms, kernel {k:.1} ms");
            ig.push(i);
            ke.push(k);
        }
        r.conv.push((n, ig, ke));
    }
    if only == Some("convergence") {
        return Ok(());
    }
    // RSS at 10k memberships even in --quick (where the largest size is smaller).
    if only.is_none() && !opts.sizes.contains(&10_000) {
        let mut rss = None;
        convergence(&opts, Mode::Igmpd, 10_000, &mut rss)?;
        r.rss_snoop.extend(rss);
    }

    // sustained
    for _ in 0..runs {
        let k = sustained(&opts, Mode::Kernel)?;
        let i = sustained(&opts, Mode::Igmpd)?;
        r.s_ig.push(i.best_rate);
        r.s_ke.push(k.best_rate);
        r.s_drops.push(i.capture_drops as f64);
        r.s_steps.push(json!({"igmpd": i.steps, "kernel": k.steps}));
    }
    if only == Some("sustained") {
        return Ok(());
    }

    // join latency
    for _ in 0..runs {
        let i = join_latency(&opts, Mode::Igmpd)?;
        let k = join_latency(&opts, Mode::Kernel)?;
        r.p50.push(pct(&i, 0.5));
        r.p99.push(pct(&i, 0.99));
        r.kp50.push(pct(&k, 0.5));
        r.kp99.push(pct(&k, 0.99));
        eprintln!(
            "join latency: igmpd p50 {:.3} p99 {:.3} ms; kernel p50 {:.3} p99 {:.3} ms",
            pct(&i, 0.5),
            pct(&i, 0.99),
            pct(&k, 0.5),
            pct(&k, 0.99)
        );
    }

    // leave latency
    let lmis = [Duration::from_secs(1), Duration::from_millis(100)];
    for lmi in lmis {
        let (mut ig, mut ke) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            ig.push(leave_latency(&opts, Mode::Igmpd, lmi)?);
            ke.push(leave_latency(&opts, Mode::Kernel, lmi)?);
        }
        eprintln!(
            "leave lmi {} ms: igmpd {:?} kernel {:?}",
            lmi.as_millis(),
            ig,
            ke
        );
        r.leaves.push((lmi.as_millis() as u64, ig, ke));
    }

    // flood (untrusted ports)
    r.flood = Some(run_flood(&opts)?);

    // status at scale
    r.status = Some(run_status(&opts)?);

    // restart with many memberships
    r.restart = Some(run_restart(&opts)?);

    // many ports at once
    r.ports = Some(run_ports(&opts)?);

    // idle
    for _ in 0..runs {
        r.idles.push(idle(&opts)?);
    }
    let path = results::write(&opts, &r)?;
    std::fs::write(
        opts.out.join("convergence.svg"),
        chart::svg_chart(&r.convergence()),
    )?;
    summary::write(&opts, &r, &path)
}

/// The flood scenario: igmpd with its defaults and with `--max-groups 256`, then the
/// kernel's own snooping.
fn run_flood(opts: &opts::Opts) -> Result<(serde_json::Value, results::FloodFigures)> {
    let default = flood::flood(opts, Mode::Igmpd, &[])?;
    let limited = flood::flood(opts, Mode::Igmpd, &["--max-groups", "256"])?;
    let kernel = flood::flood(opts, Mode::Kernel, &[])?;
    let v = flood::to_json(&default, &limited, &kernel);
    let mib = |f: &flood::Flood| f.rss_peak_kib.unwrap_or(0) as f64 / 1024.0;
    let figures = results::FloodFigures {
        rss_default_mib: mib(&default),
        rss_256_mib: mib(&limited),
        victim_p99_ms: v["victim_join_p99_ms"].as_f64(),
        status_ms: v["status_ms"].as_f64(),
        kernel_p99_ms: v["kernel"]["victim_join_p99_ms"].as_f64(),
    };
    Ok((v, figures))
}

/// The many-ports scenario: 64 ports x 500 groups (16 x 100 with `--quick`), `runs` times.
fn run_ports(opts: &opts::Opts) -> Result<Vec<ports::PortsRun>> {
    let (p, n) = if opts.quick { (16, 100) } else { (64, 500) };
    (0..opts.runs).map(|_| ports::ports(opts, p, n)).collect()
}

/// The restart scenario at 10 000 memberships (2 000 with `--quick`), `runs` times.
fn run_restart(opts: &opts::Opts) -> Result<Vec<restart::RestartRun>> {
    let n = if opts.quick { 2_000 } else { 10_000 };
    (0..opts.runs).map(|_| restart::restart(opts, n)).collect()
}

/// The status scenario at 10 000 groups (2 000 with `--quick`), `runs` times.
fn run_status(opts: &opts::Opts) -> Result<Vec<status::StatusRun>> {
    let n = if opts.quick { 2_000 } else { 10_000 };
    (0..opts.runs).map(|_| status::status(opts, n)).collect()
}
