//! igmpd: userspace IGMP/MLD querier and snooping daemon for Linux.
//!
//! The protocol work lives in the library crates under `crates/`; this binary is the CLI,
//! the control socket and the wiring of the daemons.

mod config;
mod control;
mod doctor;
mod duration;
mod firewall;
mod generate;
mod privs;
mod query;
mod run;
mod sdnotify;
mod snoop;
mod status;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser};

/// Userspace IGMP/MLD querier and snooping bridge for Linux.
#[derive(Debug, Parser)]
#[command(name = "igmpd", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run everything a config file says (queriers on several interfaces, snooping on
    /// several bridges) in one process with one control socket. SIGHUP or `igmpd reload`
    /// re-reads the file.
    Run(RunArgs),
    /// Check a config file: print each error with its file, line and key.
    CheckConfig {
        /// The file to check.
        #[arg(value_name = "PATH", default_value = config::DEFAULT_PATH)]
        path: PathBuf,
    },
    /// Make a running `igmpd run` re-read its config file (as SIGHUP does). Needs root or
    /// the config's `control_group`.
    Reload {
        /// Control socket of the daemon to ask.
        #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
        control_socket: PathBuf,
    },
    /// Run an IGMP/MLD querier on one or more interfaces.
    Query(QueryArgs),
    /// Do IGMP/MLD snooping for a Linux bridge and program its multicast database.
    ///
    /// igmpd learns memberships from every port (the kernel's learning is stopped by an
    /// nftables table `igmpd_snoop_BRIDGE`, removed at exit), forwards reports to router
    /// ports, and writes permanent MDB entries with protocol 73 (`proto 73` in
    /// `bridge -d mdb show`); entries of other protocols are never touched.
    Snoop(SnoopArgs),
    /// Show the state of a running igmpd.
    Status {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
        /// Control socket of the daemon to ask.
        #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
        control_socket: PathBuf,
    },
    /// Find why multicast stops on a LAN: queriers, this host's answers and firewall,
    /// silent hosts. Exit status 0: nothing wrong; 1: a warning or error; 2: could not run.
    Doctor(doctor::DoctorArgs),
    /// Decode a hex-encoded IGMP/MLD frame or IP packet and print what it holds.
    Decode {
        /// The bytes as hex digits; spaces and colons are ignored.
        hex: String,
        /// What the bytes start with.
        #[arg(long, value_enum, default_value = "ethernet")]
        layer: Layer,
    },
    /// Print the man page or shell completions (for packagers).
    #[command(hide = true, subcommand)]
    Generate(generate::What),
}

/// `igmpd run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, value_name = "PATH", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Where `igmpd status` and `igmpd reload` reach this daemon [default: the config's
    /// `control_socket`, else /run/igmpd/igmpd.sock].
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration::parse(s)
}

/// Protocol timers and versions, shared by `query` (and later `snoop`).
#[derive(Debug, Clone, Args)]
pub struct ProtocolArgs {
    /// IGMP version to query with.
    #[arg(long, value_name = "1|2|3", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub igmp_version: u8,
    /// MLD version to query with.
    #[arg(long, value_name = "1|2", default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub mld_version: u8,
    /// Do not run MLD (IPv6).
    #[arg(long)]
    pub no_mld: bool,
    /// Do not run IGMP (IPv4).
    #[arg(long)]
    pub no_igmp: bool,
    /// Query Interval (RFC 9776 §8.2).
    #[arg(long, value_name = "DUR", default_value = "125s", value_parser = parse_duration)]
    pub query_interval: Duration,
    /// Query Response Interval, the Max Resp Time of general queries (§8.3).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub query_response_interval: Duration,
    /// Robustness Variable (§8.1).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub robustness: u8,
    /// Last Member Query Interval (§8.8).
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    pub last_member_query_interval: Duration,
    /// Last Member Query Count (§8.9) [default: the robustness variable].
    #[arg(long, value_name = "N")]
    pub last_member_query_count: Option<u8>,
}

/// `igmpd query`.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Interfaces to query on (plain, VLAN or bridge interfaces).
    #[arg(value_name = "IFACE", required = true)]
    pub ifaces: Vec<String>,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
    /// Startup Query Interval (§8.6) [default: a quarter of the query interval].
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub startup_query_interval: Option<Duration>,
    /// Startup Query Count (§8.7) [default: the robustness variable].
    #[arg(long, value_name = "N")]
    pub startup_query_count: Option<u8>,
    /// Track state and take part in nothing: never send a query.
    #[arg(long)]
    pub passive: bool,
    /// Where `igmpd status` reaches this daemon.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
    pub control_socket: PathBuf,
}

/// `igmpd snoop`.
#[derive(Debug, Clone, Args)]
pub struct SnoopArgs {
    /// The bridge (its multicast snooping must be on: `mcast_snooping 1`).
    #[arg(value_name = "BRIDGE")]
    pub bridge: String,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
    /// Run the querier of `igmpd query` on the bridge (turn the kernel's off:
    /// `mcast_querier 0`).
    #[arg(long)]
    pub querier: bool,
    /// A port with a multicast router behind it: gets every report and all multicast
    /// (repeatable). Others are learned from queries, PIM hellos and MRD.
    #[arg(long, value_name = "PORT")]
    pub router_port: Vec<String>,
    /// Raise the bridge's mcast_hash_max to N at start. igmpd keeps its entries below that
    /// limit (the kernel turns snooping off for the whole bridge when it is reached) and
    /// refuses new groups there.
    #[arg(long, value_name = "N")]
    pub raise_hash_max: Option<u32>,
    /// Where `igmpd status` reaches this daemon.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
    pub control_socket: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Layer {
    /// An Ethernet header (as AF_PACKET or tcpdump -xx shows).
    Ethernet,
    /// An IPv4 or IPv6 header.
    Ip,
}

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
