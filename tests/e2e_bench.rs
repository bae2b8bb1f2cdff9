//! `scripts/bench.sh --quick` runs end to end and writes results.json with the contract
//! fields (issues 8 and 15). Uses the debug binaries of this build (no nested cargo): `igmpd` and
//! the `igmpd-bench` driver (package bench/) next to it (`cargo build --workspace
//! --all-targets` builds both; `IGMPD_BENCH_DRIVER` overrides the driver's path). The
//! numbers of a debug build are not checked, only that every field is there and is a
//! number.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_igmpd");

fn driver() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("IGMPD_BENCH_DRIVER") {
        return Ok(PathBuf::from(p));
    }
    let p = PathBuf::from(BIN)
        .parent()
        .context("igmpd binary has no directory")?
        .join("igmpd-bench");
    ensure!(
        p.is_file(),
        "{} missing: build it first (cargo build -p igmpd-bench) \
         or set IGMPD_BENCH_DRIVER",
        p.display()
    );
    Ok(p)
}

fn num(v: &Value, path: &[&str]) -> Result<f64> {
    let mut x = v;
    for k in path {
        x = x
            .get(*k)
            .with_context(|| format!("results.json lacks {}", path.join(".")))?;
    }
    x.as_f64()
        .with_context(|| format!("{} is not a number: {x}", path.join(".")))
}

#[test]
fn bench_quick_writes_contract_json() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("igmpd-bench-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let started = Instant::now();
    let mut child = Command::new(root.join("scripts/bench.sh"))
        .arg("--quick")
        .env("IGMPD_BENCH_IGMPD", BIN)
        .env("IGMPD_BENCH_DRIVER", driver()?)
        .env("IGMPD_BENCH_OUT", &out)
        .spawn()
        .context("run scripts/bench.sh")?;
    // Bounded: --quick takes about a minute; give a debug build three.
    let limit = Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > limit {
            // SIGTERM: bench.sh cleans up its namespaces on the way out.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            std::thread::sleep(Duration::from_secs(5));
            let _ = child.kill();
            let _ = child.wait();
            bail!("bench.sh --quick did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    ensure!(status.success(), "bench.sh --quick failed: {status}");
    let text = std::fs::read_to_string(out.join("results.json"))?;
    let v: Value = serde_json::from_str(&text).context("results.json is not JSON")?;
    ensure!(num(&v, &["runs"])? >= 1.0, "runs");
    ensure!(v["machine"]["kernel"].is_string(), "machine.kernel");
    num(&v, &["machine", "cpus"])?;
    let conv = v["convergence"].as_array().context("convergence array")?;
    ensure!(!conv.is_empty(), "no convergence rows");
    for c in conv {
        for k in ["groups", "igmpd_ms", "kernel_ms", "ratio"] {
            ensure!(num(c, &[k])? > 0.0, "convergence.{k} not positive: {c}");
        }
    }
    for k in [
        "igmpd_reports_per_s",
        "kernel_reports_per_s",
        "ratio",
        "capture_drops",
    ] {
        num(&v, &["sustained", k])?;
    }
    for k in ["p50", "p99"] {
        ensure!(num(&v, &["join_to_mdb_ms", k])? > 0.0, "join_to_mdb_ms.{k}");
    }
    let leave = v["leave_ms"].as_array().context("leave_ms array")?;
    ensure!(!leave.is_empty(), "no leave rows");
    for l in leave {
        for k in ["last_member_interval_ms", "igmpd", "kernel"] {
            ensure!(num(l, &[k])? > 0.0, "leave_ms.{k}: {l}");
        }
    }
    for k in ["snoop_idle", "snoop_10k_memberships", "query_idle_1_iface"] {
        ensure!(num(&v, &["rss_kib", k])? > 0.0, "rss_kib.{k}");
    }
    for k in [
        "interfaces",
        "cpu_percent",
        "wakeups_per_s",
        "cpu_ms_per_query_round",
        "status_ms",
    ] {
        num(&v, &["idle", k])?;
    }
    // The flood scenario (issue 15): figures that always exist are numbers; a latency is
    // null when some join never reached the MDB (the kernel's own snooping turns itself
    // off at mcast_hash_max under the flood).
    for path in [
        &["flood", "seconds"][..],
        &["flood", "offered_per_s"],
        &["flood", "rss_peak_kib", "default"],
        &["flood", "rss_peak_kib", "max_groups_256"],
        &["flood", "status_ms"],
    ] {
        ensure!(num(&v, path)? > 0.0, "{} not positive", path.join("."));
    }
    for k in ["victim_join_p50_ms", "victim_join_p99_ms"] {
        let x = &v["flood"][k];
        ensure!(x.is_f64() || x.is_null(), "flood.{k}: {x}");
    }
    let k = &v["flood"]["kernel"]["victim_join_p99_ms"];
    ensure!(
        k.is_f64() || k.is_null(),
        "flood.kernel.victim_join_p99_ms: {k}"
    );
    // Status at scale (issue 18): 2 000 groups in --quick.
    for k in ["groups", "json_ms", "plain_ms", "join_p99_ms_while_reading"] {
        ensure!(num(&v, &["status", k])? > 0.0, "status.{k} not positive");
    }
    let svg = std::fs::read_to_string(out.join("convergence.svg"))?;
    ensure!(svg.starts_with("<svg") && svg.contains("kernel"), "chart");
    let _ = std::fs::remove_dir_all(&out);
    Ok(())
}
