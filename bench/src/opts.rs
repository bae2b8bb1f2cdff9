//! The command line.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};

#[derive(Clone, Debug)]
pub(crate) struct Opts {
    /// The igmpd binary under test.
    pub(crate) igmpd: PathBuf,
    /// Where results.json, summary.txt and convergence.svg go.
    pub(crate) out: PathBuf,
    pub(crate) quick: bool,
    /// Runs of every scenario (min/median/max over them).
    pub(crate) runs: usize,
    /// Group counts of the convergence scenario.
    pub(crate) sizes: Vec<usize>,
    /// Only this scenario (profiling): "convergence", "sustained", "flood", "status",
    /// "restart" or "ports".
    pub(crate) only: Option<String>,
    /// How long each rate of the sustained scenario is sent.
    pub(crate) sustain: Duration,
    /// Groups joined one by one in the join latency scenario.
    pub(crate) latency_groups: usize,
    /// The measuring window of the idle scenario.
    pub(crate) idle_window: Duration,
    /// How long the flood scenario floods.
    pub(crate) flood: Duration,
}

/// The command line (see the usage `--help` prints).
pub(crate) fn parse_args() -> Result<Opts> {
    let mut a = std::env::args().skip(1);
    let mut igmpd = None;
    let mut out = PathBuf::from("target/bench");
    let mut quick = false;
    let mut runs = None;
    let mut sustain = None;
    let mut sizes = None;
    let mut only = None;
    let mut flood = None;
    while let Some(x) = a.next() {
        match x.as_str() {
            "--igmpd" => igmpd = a.next().map(PathBuf::from),
            "--out" => out = a.next().map(PathBuf::from).context("--out DIR")?,
            "--quick" => quick = true,
            "--runs" => runs = Some(a.next().context("--runs N")?.parse()?),
            "--sustain-secs" => {
                sustain = Some(Duration::from_secs_f64(
                    a.next().context("--sustain-secs S")?.parse()?,
                ))
            }
            "--sizes" => {
                sizes = Some(
                    a.next()
                        .context("--sizes N,N")?
                        .split(',')
                        .map(str::parse)
                        .collect::<Result<Vec<usize>, _>>()?,
                )
            }
            "--only" => {
                let o = a
                    .next()
                    .context("--only convergence|sustained|flood|status|restart|ports")?;
                ensure!(
                    [
                        "convergence",
                        "sustained",
                        "flood",
                        "status",
                        "restart",
                        "ports"
                    ]
                    .contains(&o.as_str()),
                    "--only takes convergence, sustained, flood, status, restart or ports, not {o}"
                );
                only = Some(o);
            }
            "--flood-secs" => {
                flood = Some(Duration::from_secs_f64(
                    a.next().context("--flood-secs S")?.parse()?,
                ))
            }
            "-h" | "--help" => {
                println!(
                    "igmpd-bench --igmpd PATH [--out DIR] [--quick] [--runs N] [--sizes N,N] [--sustain-secs S] [--flood-secs S] [--only convergence|sustained|flood|status|restart|ports]"
                );
                std::process::exit(0);
            }
            o => bail!("unknown argument {o:?}"),
        }
    }
    let igmpd = igmpd.context("--igmpd PATH is required")?;
    Ok(Opts {
        igmpd,
        out,
        quick,
        runs: runs.unwrap_or(if quick { 1 } else { 3 }),
        only,
        sizes: sizes.unwrap_or_else(|| {
            if quick {
                vec![1000, 4000]
            } else {
                vec![1000, 4000, 10_000]
            }
        }),
        sustain: sustain.unwrap_or(if quick {
            Duration::from_millis(1500)
        } else {
            Duration::from_secs(10)
        }),
        latency_groups: if quick { 100 } else { 500 },
        idle_window: if quick {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(10)
        },
        flood: flood.unwrap_or(if quick {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(30)
        }),
    })
}
