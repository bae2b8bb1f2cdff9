//! `igmpd cleanup [BRIDGE...] [--config FILE]`: hands bridges back to the kernel after an
//! igmpd died without its clean exit, as that exit would have. One line per bridge; exit
//! status 1 when one could not be handed back.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Parser;
use igmpd_snooping::shell::SnoopDaemon;

use super::block_on;
use crate::cli::{CleanupArgs, Cli, Command};
use crate::control;
use crate::settings::Bridge;

/// Runs the cleanup; its exit status.
pub fn run(args: CleanupArgs) -> ExitCode {
    match cleanup(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => super::failed(&e, ExitCode::FAILURE),
    }
}

/// Whether every bridge was handed back (or needed nothing).
fn cleanup(args: CleanupArgs) -> Result<bool> {
    let (bridges, socket) = bridges(&args)?;
    // The control socket is removed at a clean exit and refuses connections once its
    // daemon is dead: one that answers means igmpd still runs these bridges.
    if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
        bail!(
            "igmpd is running (its control socket {} answers): stop it first; it hands its bridges back itself",
            socket.display()
        );
    }
    crate::privs::restrict()?;
    block_on(async {
        let mut ok = true;
        for b in &bridges {
            let settings = b.settings(&socket);
            if !SnoopDaemon::left_behind(&settings) {
                println!("{}: nothing left behind", b.name);
                continue;
            }
            let r = match SnoopDaemon::start(settings).await {
                Ok(d) => d.hand_back().await,
                Err(e) => Err(e),
            };
            match r {
                Ok(n) => println!(
                    "{}: handed back ({n} entries now temporary, settings restored, table removed)",
                    b.name
                ),
                Err(e) => {
                    ok = false;
                    eprintln!("igmpd: {}: {e}", b.name);
                }
            }
        }
        ok
    })
}

/// The bridges to hand back, with the settings they ran with, and the control socket.
fn bridges(args: &CleanupArgs) -> Result<(Vec<Bridge>, PathBuf)> {
    let cfg = match &args.config {
        Some(path) => {
            Some(crate::config::load(path).map_err(|e| anyhow::anyhow!("{}", e.join("; ")))?)
        }
        None => None,
    };
    let socket = args
        .control_socket
        .clone()
        .or_else(|| cfg.as_ref().and_then(|c| c.control_socket.clone()))
        .unwrap_or_else(|| PathBuf::from(control::DEFAULT_PATH));
    let mut out = Vec::new();
    let from_file = cfg.map(|c| c.bridges).unwrap_or_default();
    if args.bridges.is_empty() {
        if args.config.is_none() {
            bail!("name the bridges to hand back, or give --config");
        }
        out = from_file;
    } else {
        for name in &args.bridges {
            match from_file.iter().find(|b| &b.name == name) {
                Some(b) => out.push(b.clone()),
                None => out.push(default_bridge(name, &socket)?),
            }
        }
    }
    Ok((out, socket))
}

/// `name` as `igmpd snoop NAME` runs it with its defaults.
fn default_bridge(name: &str, socket: &Path) -> Result<Bridge> {
    let socket = socket
        .to_str()
        .context("control socket path is not UTF-8")?;
    let cli = Cli::try_parse_from(["igmpd", "snoop", name, "--control-socket", socket])?;
    match cli.command {
        Command::Snoop(a) => super::snoop::bridge(a),
        _ => bail!("not a snoop command line"),
    }
}
