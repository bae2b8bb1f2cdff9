//! igmpd: userspace IGMP/MLD querier and snooping daemon for Linux.
//!
//! The protocol work lives in the library crates under `crates/`; this binary is the CLI,
//! the control socket and the wiring of the daemons.

mod cli;
mod config;
mod control;
mod doctor;
mod duration;
mod firewall;
mod generate;
mod options;
mod privs;
mod query;
mod run;
mod sdnotify;
mod settings;
mod snoop;
mod status;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Layer};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::CheckConfig { path } => config::check(&path),
        Command::Reload { control_socket } => {
            control::request(&control_socket, &serde_json::json!({"command": "reload"})).map(|_| ())
        }
        Command::Generate(what) => generate::print(what),
        Command::Query(args) => query::run(args),
        Command::Snoop(args) => snoop::run(args),
        Command::Status {
            json,
            control_socket,
        } => status(json, &control_socket),
        Command::Decode { hex, layer } => decode(&hex, layer),
        Command::Doctor(args) => {
            return match doctor::run(args) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("igmpd: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, no backtrace: these are users' errors, not ours.
            eprintln!("igmpd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, or to journald with structured fields (IFACE=, GROUP=, ... as journal
/// fields, `journalctl IFACE=eth0`) when stderr is the journal stream systemd gave us
/// (`JOURNAL_STREAM` names stderr's device and inode). If the journal socket cannot be
/// opened, stderr it is.
fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // `RUST_LOG=igmpd_snooping=debug,info` style: per-target levels. (Not EnvFilter: its
    // span and field matching pulls in a regex engine, a tenth of the binary, for
    // nothing a daemon's user asks for.)
    let filter: Targets = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| default.parse().unwrap_or_default());
    if sdnotify::stderr_is_journal() {
        if let Ok(journald) = tracing_journald::layer() {
            let journald = journald.with_syslog_identifier("igmpd".into());
            let _ = tracing_subscriber::registry()
                .with(filter)
                .with(journald)
                .try_init();
            return;
        }
    }
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .with(filter)
        .try_init();
}

fn status(json: bool, path: &std::path::Path) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    if json {
        // The daemon indents it; passed on as it came.
        let req = serde_json::json!({"command": "status", "format": "pretty"});
        let raw = control::request_raw(path, &req)?;
        let _ = out.write_all(&raw).and_then(|()| out.write_all(b"\n"));
    } else {
        let doc = control::request(path, &serde_json::json!({"command": "status"}))?;
        let _ = writeln!(out, "{}", status::render(&doc).trim_end());
    }
    Ok(())
}

fn decode(hex: &str, layer: Layer) -> anyhow::Result<()> {
    let digits: String = hex
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '\n' | '\t'))
        .collect();
    if digits.len() % 2 != 0 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        anyhow::bail!("not an even number of hex digits");
    }
    let bytes: Vec<u8> = (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16))
        .collect::<Result<_, _>>()?;
    let text = match layer {
        Layer::Ethernet => igmpd_wire::parse_ethernet(&bytes).map(|f| format!("{f:?}")),
        Layer::Ip => igmpd_wire::parse_ip(&bytes).map(|p| format!("{p:?}")),
    }
    .map_err(|e| anyhow::anyhow!("cannot decode ({}): {e}", e.reason()))?;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
    Ok(())
}
