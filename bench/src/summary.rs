//! summary.txt (also printed): min/median/max of every measure, its target and PASS/FAIL.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::idle::Idle;
use crate::opts::Opts;
use crate::results::Measured;
use crate::stats::{mmm, Mmm};

/// Prints the summary and writes it to `summary.txt` in `opts.out`; `path` is results.json.
pub(crate) fn write(opts: &Opts, r: &Measured, path: &Path) -> Result<()> {
    let runs = opts.runs;
    let (kernel_release, cpus) = (&r.kernel_release, r.cpus);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "\nigmpd bench: kernel {kernel_release}, {cpus} CPUs, {runs} run(s){}",
        if opts.quick { " (--quick)" } else { "" }
    );
    let _ = writeln!(
        t,
        "{:<36} {:>10} {:>10} {:>10} {:<6} {:<22} result",
        "measure", "min", "median", "max", "unit", "target"
    );
    if !matches!(opts.only.as_deref(), Some("flood") | Some("status")) {
        measures(opts, r, &mut t);
    }
    flood_rows(r, &mut t);
    status_rows(r, &mut t);
    restart_rows(r, &mut t);
    ports_rows(r, &mut t);
    let _ = writeln!(
        t,
        "\nwrote {} and {} in {} s",
        path.display(),
        opts.out.join("convergence.svg").display(),
        r.started.elapsed().as_secs()
    );
    print!("{t}");
    std::fs::write(opts.out.join("summary.txt"), t)?;
    Ok(())
}

/// The flood scenario's rows: igmpd's peak RSS (defaults, max_groups 256), the second
/// port's join latency during the flood and the kernel's, status latency.
fn flood_rows(r: &Measured, t: &mut String) {
    let Some((_, f)) = &r.flood else { return };
    let line = |t: &mut String, what: &str, v: Option<f64>, unit: &str, target: &str, max: f64| {
        let _ = match v {
            Some(v) => writeln!(
                t,
                "{what:<36} {:>10.2} {:>10.2} {:>10.2} {unit:<6} {target:<22} {}",
                v,
                v,
                v,
                if v <= max { "PASS" } else { "FAIL" }
            ),
            None => writeln!(
                t,
                "{what:<36} {:>32} {unit:<6} {target:<22} FAIL",
                "not every join"
            ),
        };
    };
    line(
        t,
        "flood: RSS peak, defaults",
        Some(f.rss_default_mib),
        "MiB",
        "< 64 MiB",
        64.0,
    );
    line(
        t,
        "flood: RSS peak, max_groups 256",
        Some(f.rss_256_mib),
        "MiB",
        "-",
        f64::MAX,
    );
    line(
        t,
        "flood: second port join p99",
        f.victim_p99_ms,
        "ms",
        "<= 10 ms",
        10.0,
    );
    line(
        t,
        "flood: status --json",
        f.status_ms,
        "ms",
        "<= 100 ms",
        100.0,
    );
    match f.kernel_p99_ms {
        Some(k) => {
            let _ = writeln!(
                t,
                "{:<36} {:>10.2} {:>10.2} {:>10.2} ms",
                "flood: kernel, second port join p99", k, k, k
            );
        }
        None => {
            let _ = writeln!(
                t,
                "{:<36} {:>32} ms",
                "flood: kernel, second port join p99", "not every join"
            );
        }
    }
}

/// The status scenario's rows: both forms with many groups, and the second port's join
/// latency while status is read in a loop.
fn status_rows(r: &Measured, t: &mut String) {
    let Some(runs) = r.status.as_deref().filter(|s| !s.is_empty()) else {
        return;
    };
    let n = runs[0].groups;
    let m = |f: fn(&crate::status::StatusRun) -> f64| mmm(&runs.iter().map(f).collect::<Vec<_>>());
    let quiet = m(|s| s.quiet_join_p99_ms);
    let _ = writeln!(
        t,
        "{:<36} {:>10.2} {:>10.2} {:>10.2} ms",
        "join p99, nobody reading status", quiet.min, quiet.med, quiet.max
    );
    let rows: [(String, Mmm, &str, f64); 3] = [
        (
            format!("status --json, {n} groups"),
            m(|s| s.json_ms),
            "<= 20 ms",
            20.0,
        ),
        (
            format!("status (tables), {n} groups"),
            m(|s| s.plain_ms),
            "<= 20 ms",
            20.0,
        ),
        (
            "join p99 while status is read".to_owned(),
            m(|s| s.join_p99_ms),
            "<= 2 ms",
            2.0,
        ),
    ];
    for (what, v, target, max) in rows {
        let _ = writeln!(
            t,
            "{what:<36} {:>10.2} {:>10.2} {:>10.2} {:<6} {target:<22} {}",
            v.min,
            v.med,
            v.max,
            "ms",
            if v.med <= max { "PASS" } else { "FAIL" }
        );
    }
}

/// The many-ports scenario's rows: convergence against the kernel, RSS, join p99.
fn ports_rows(r: &Measured, t: &mut String) {
    let Some(runs) = r.ports.as_deref().filter(|s| !s.is_empty()) else {
        return;
    };
    let (p, n) = (runs[0].ports, runs[0].groups_per_port);
    let m = |f: fn(&crate::ports::PortsRun) -> f64| mmm(&runs.iter().map(f).collect::<Vec<_>>());
    let (i, k) = (m(|s| s.igmpd_ms), m(|s| s.kernel_ms));
    let ratio = m(|s| s.igmpd_ms / s.kernel_ms.max(1e-9));
    let rows: [(String, Mmm, &str, &str, f64); 5] = [
        (format!("ports {p}x{n}: igmpd"), i, "ms", "", f64::INFINITY),
        (format!("ports {p}x{n}: kernel"), k, "ms", "", f64::INFINITY),
        (format!("ports {p}x{n}: ratio"), ratio, "x", "<= 1.2x", 1.2),
        (
            format!("ports {p}x{n}: RSS"),
            m(|s| s.rss_kib as f64 / 1024.0),
            "MiB",
            "<= 40 MiB",
            40.0,
        ),
        (
            format!("ports {p}x{n}: join p99"),
            m(|s| s.join_p99_ms),
            "ms",
            "<= 2 ms",
            2.0,
        ),
    ];
    for (what, v, unit, target, max) in rows {
        let verdict = if max.is_infinite() {
            ""
        } else if v.med <= max {
            "PASS"
        } else {
            "FAIL"
        };
        let _ = writeln!(
            t,
            "{what:<36} {:>10.2} {:>10.2} {:>10.2} {unit:<6} {target:<22} {verdict}",
            v.min, v.med, v.max
        );
    }
}

/// The restart scenario's rows: adoption time and the probe's losses.
fn restart_rows(r: &Measured, t: &mut String) {
    let Some(runs) = r.restart.as_deref().filter(|s| !s.is_empty()) else {
        return;
    };
    let n = runs[0].memberships;
    let m =
        |f: fn(&crate::restart::RestartRun) -> f64| mmm(&runs.iter().map(f).collect::<Vec<_>>());
    let rows: [(String, Mmm, &str, &str, f64); 3] = [
        (
            format!("restart: adopt {n} + a new join"),
            m(|s| s.adopt_ms),
            "ms",
            "<= 1000 ms",
            1000.0,
        ),
        (
            "restart: probe datagrams lost".to_owned(),
            m(|s| s.probe_lost as f64),
            "",
            "0",
            0.0,
        ),
        (
            "restart: stale entries after a GMI".to_owned(),
            m(|s| s.stale as f64),
            "",
            "0",
            0.0,
        ),
    ];
    for (what, v, unit, target, max) in rows {
        let _ = writeln!(
            t,
            "{what:<36} {:>10.2} {:>10.2} {:>10.2} {unit:<6} {target:<22} {}",
            v.min,
            v.med,
            v.max,
            if v.max <= max { "PASS" } else { "FAIL" }
        );
    }
}

/// Every measure but the flood's and the status scenario's.
fn measures(opts: &Opts, r: &Measured, t: &mut String) {
    let si = mmm(&r.s_ig);
    let sk = mmm(&r.s_ke);
    let (rss_idle, rss_10k) = r.rss_snoop();
    let im = |f: fn(&Idle) -> f64| r.idle(f);
    let row = |t: &mut String, what: &str, m: Mmm, unit: &str, target: &str, ok: bool| {
        let _ = writeln!(
            t,
            "{what:<36} {:>10.2} {:>10.2} {:>10.2} {unit:<6} {target:<22} {}",
            m.min,
            m.med,
            m.max,
            if ok { "PASS" } else { "FAIL" }
        );
    };
    let info = |t: &mut String, what: &str, m: Mmm, unit: &str| {
        let _ = writeln!(
            t,
            "{what:<36} {:>10.2} {:>10.2} {:>10.2} {unit:<6}",
            m.min, m.med, m.max
        );
    };
    for (n, ig, ke) in &r.conv {
        let (i, k) = (mmm(ig), mmm(ke));
        info(t, &format!("convergence {n}: kernel"), k, "ms");
        let ratio = i.med / k.med.max(1e-9);
        let last = Some(n) == opts.sizes.last();
        if last {
            row(
                t,
                &format!("convergence {n}: igmpd"),
                i,
                "ms",
                &format!("<= 1.5x kernel ({ratio:.2}x)"),
                ratio <= 1.5,
            );
        } else {
            info(t, &format!("convergence {n}: igmpd ({ratio:.2}x)"), i, "ms");
        }
    }
    info(t, "sustained lossless: kernel", sk, "rep/s");
    let sr = si.med / sk.med.max(1e-9);
    row(
        t,
        "sustained lossless: igmpd",
        si,
        "rep/s",
        &format!(">= 0.9x kernel ({sr:.2}x)"),
        sr >= 0.9,
    );
    info(t, "join->MDB p50: igmpd", mmm(&r.p50), "ms");
    row(
        t,
        "join->MDB p99: igmpd",
        mmm(&r.p99),
        "ms",
        "<= 2 ms",
        mmm(&r.p99).med <= 2.0,
    );
    info(t, "join->MDB p99: kernel", mmm(&r.kp99), "ms");
    for (lmi, ig, ke) in &r.leaves {
        info(t, &format!("leave lmi {lmi} ms: kernel"), mmm(ke), "ms");
        row(
            t,
            &format!("leave lmi {lmi} ms: igmpd"),
            mmm(ig),
            "ms",
            "<= kernel (+5 ms)",
            mmm(ig).med <= mmm(ke).med + 5.0,
        );
    }
    info(t, "RSS snoop idle", rss_idle, "KiB");
    row(
        t,
        "RSS snoop 10k memberships",
        rss_10k,
        "KiB",
        "<= 16384 KiB",
        rss_10k.med <= 16384.0,
    );
    row(
        t,
        "RSS query idle, 1 iface",
        im(|i| i.rss_1 as f64),
        "KiB",
        "<= 4096 KiB",
        im(|i| i.rss_1 as f64).med <= 4096.0,
    );
    info(
        t,
        "RSS query idle, 200 ifaces",
        im(|i| i.rss_200 as f64),
        "KiB",
    );
    row(
        t,
        "query idle CPU, 200 ifaces",
        im(|i| i.cpu_percent),
        "%",
        "<= 0.1 %",
        im(|i| i.cpu_percent).med <= 0.1,
    );
    row(
        t,
        "query wake-ups/s, 200 ifaces",
        im(|i| i.wakeups_per_s),
        "1/s",
        "0 between deadlines",
        im(|i| i.wakeups_per_s).med < 0.5,
    );
    info(
        t,
        "query wake-ups/s, 1 iface",
        im(|i| i.wakeups_per_s_1),
        "1/s",
    );
    info(
        t,
        "query CPU per round, 200 ifaces",
        im(|i| i.cpu_ms_per_round),
        "ms",
    );
    row(
        t,
        "status --json, 200 ifaces",
        im(|i| i.status_ms),
        "ms",
        "<= 10 ms",
        im(|i| i.status_ms).med <= 10.0,
    );
}
