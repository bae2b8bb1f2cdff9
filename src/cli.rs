//! The command line: every subcommand and flag, and the one list of protocol options.
//!
//! The option groups below are each written once ([`options!`]): a group is a set of
//! flags and, under the same names with underscores, the keys of the config sections it
//! belongs to (see `crate::config`). `--help`, the man page and the completions are
//! generated from these definitions (`igmpd generate`).
//!
//! | group | flags of | keys of |
//! | --- | --- | --- |
//! | [`ProtocolArgs`] | `query`, `snoop` | `[defaults]`, `[interface.NAME]`, `[bridge.NAME]`, `[bridge.NAME.vlan.VID]` |
//! | [`StartupArgs`] | `query` | the same |
//! | [`PassiveArgs`] | `query` | `[defaults]`, `[interface.NAME]`; also read in `[bridge.NAME.vlan.VID]`, where the bridge's `querier` decides instead |
//! | [`HostArgs`] | `query` | `[interface.NAME]` |
//! | [`SnoopingArgs`] | `snoop` | `[bridge.NAME]` |
//! | [`PolicyArgs`] | `snoop` | `[bridge.NAME]`, `[bridge.NAME.port.PORT]` (with `router_guard`, `fast_leave` and `acl`, keys only; `static_groups` in port sections) |
//! | [`MetricsArgs`] | `query`, `snoop`, `run` | the top level (daemon-wide; the flag of `run` wins over the key) |

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};
use igmpd_querier::core::HostJoin;

use crate::control;
use crate::options::{options, ListenAddr};

/// Default config path (of `igmpd run` and `igmpd check-config`).
pub const DEFAULT_CONFIG: &str = "/etc/igmpd/igmpd.toml";

/// Userspace IGMP/MLD querier and snooping bridge for Linux.
#[derive(Debug, Parser)]
#[command(name = "igmpd", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run everything a config file says (queriers on several interfaces, snooping on
    /// several bridges) in one process with one control socket. SIGHUP or `igmpd reload`
    /// re-reads the file.
    Run(RunArgs),
    /// Check a config file: print each error with its file, line and key.
    CheckConfig {
        /// The file to check.
        #[arg(value_name = "PATH", default_value = DEFAULT_CONFIG)]
        path: PathBuf,
    },
    /// Make a running `igmpd run` re-read its config file (as SIGHUP does). Needs root or
    /// the config's `control_group`.
    Reload {
        /// Control socket of the daemon to ask.
        #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
        control_socket: PathBuf,
    },
    /// Add or delete a static group of a bridge port in a running `igmpd snoop` or
    /// `igmpd run`: it forwards like a learned membership, never expires, counts against
    /// no limit, and survives restarts (kept in the state file until deleted). Needs root
    /// or the config's `control_group`.
    Static(StaticArgs),
    /// Forget the learned memberships of a bridge (of one port, of one group) in a running
    /// igmpd and send a general query so that the hosts report again; static groups stay.
    /// Needs root or the config's `control_group`.
    Flush(FlushArgs),
    /// Hand bridges back to the kernel after an igmpd died without cleaning up (SIGKILL,
    /// a crash), as a clean exit does: igmpd's entries become temporary (the kernel ages
    /// them), the ports' `mcast_router` and the bridges' versions are restored from the
    /// state file, the nftables table is removed. A bridge igmpd left cleanly needs
    /// nothing. Refused while the control socket answers (igmpd still runs). The systemd
    /// unit runs it after every stop (`ExecStopPost`).
    Cleanup(CleanupArgs),
    /// Run an IGMP/MLD querier on one or more interfaces.
    Query(QueryArgs),
    /// Do IGMP/MLD snooping for a Linux bridge and program its multicast database.
    ///
    /// igmpd learns memberships from every port (the kernel's learning is stopped by an
    /// nftables table `igmpd_snoop_BRIDGE`, removed at exit, and by the kernel if igmpd
    /// dies), forwards reports to router ports, and writes permanent MDB entries with protocol 73 (`proto 73` in
    /// `bridge -d mdb show`); entries of other protocols are never touched.
    Snoop(SnoopArgs),
    /// Show the state of a running igmpd.
    Status {
        /// Print JSON instead of tables, on one line as `ip -j` does.
        #[arg(long)]
        json: bool,
        /// With --json: indent it over several lines (`ip -j -p`).
        #[arg(long, short = 'p', requires = "json")]
        pretty: bool,
        /// Control socket of the daemon to ask.
        #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
        control_socket: PathBuf,
    },
    /// Stream what happens in a running igmpd, one line per event (join, leave, expiry,
    /// static-add, static-del, querier-elected, querier-lost, router-port-up,
    /// router-port-down, finding-raised, finding-cleared), like `ip monitor`, until the
    /// daemon ends or you quit. Every local user may. A client that stops reading is
    /// dropped by the daemon.
    Monitor {
        /// One JSON object per line (NDJSON; fields time, event, bridge or interface,
        /// port, vid, group, source, host, family, and each event's own).
        #[arg(long)]
        json: bool,
        /// Control socket of the daemon to watch.
        #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
        control_socket: PathBuf,
    },
    /// Find why multicast stops on a LAN: queriers, this host's answers and firewall,
    /// silent hosts. Exit status 0: nothing wrong; 1: a warning or error; 2: could not run.
    Doctor(DoctorArgs),
    /// Decode a hex-encoded IGMP/MLD frame or IP packet and print what it holds.
    Decode {
        /// The bytes as hex digits; spaces and colons are ignored.
        hex: String,
        /// What the bytes start with.
        #[arg(long, value_enum, default_value = "ethernet")]
        layer: FirstHeader,
    },
    /// Print the man page or shell completions (for packagers).
    #[command(hide = true, subcommand)]
    Generate(What),
}

/// `igmpd run`.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The config file.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Where `igmpd status` and `igmpd reload` reach this daemon [default: the config's
    /// `control_socket`, else /run/igmpd/igmpd.sock].
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// `igmpd query`.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// Interfaces to query on (plain, VLAN or bridge interfaces).
    #[arg(value_name = "IFACE", required = true)]
    pub ifaces: Vec<String>,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
    #[command(flatten)]
    pub startup: StartupArgs,
    #[command(flatten)]
    pub passive: PassiveArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub host: HostArgs,
    /// Where `igmpd status` reaches this daemon.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
    pub control_socket: PathBuf,
}

/// `igmpd static add|del`.
#[derive(Debug, Clone, Args)]
pub struct StaticArgs {
    /// Add or delete.
    #[arg(value_enum)]
    pub action: StaticAction,
    /// The bridge.
    #[arg(value_name = "BRIDGE")]
    pub bridge: String,
    /// The port.
    #[arg(value_name = "PORT")]
    pub port: String,
    /// The group (IPv4 or IPv6).
    #[arg(value_name = "GROUP")]
    pub group: std::net::IpAddr,
    /// Only this source: an (S,G) entry (SSM, or a source-specific join).
    #[arg(long, value_name = "S")]
    pub source: Option<std::net::IpAddr>,
    /// In this VLAN (VLAN-filtering bridges; without it: untagged, the port's PVID).
    #[arg(long, value_name = "V", value_parser = clap::value_parser!(u16).range(1..=4094))]
    pub vlan: Option<u16>,
    /// Control socket of the daemon to ask.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
    pub control_socket: PathBuf,
}

/// `add` or `del`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StaticAction {
    /// Add the static group.
    Add,
    /// Delete it.
    Del,
}

/// `igmpd flush`.
#[derive(Debug, Clone, Args)]
pub struct FlushArgs {
    /// The bridge.
    #[arg(value_name = "BRIDGE")]
    pub bridge: String,
    /// Only this port's memberships (the query then goes out of this port only).
    #[arg(long, value_name = "P")]
    pub port: Option<String>,
    /// Only this group's memberships.
    #[arg(long, value_name = "G")]
    pub group: Option<std::net::IpAddr>,
    /// Control socket of the daemon to ask.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
    pub control_socket: PathBuf,
}

/// `igmpd cleanup`.
#[derive(Debug, Clone, Args)]
pub struct CleanupArgs {
    /// Bridges to hand back (with --config, by default every bridge of the file).
    #[arg(value_name = "BRIDGE")]
    pub bridges: Vec<String>,
    /// Take the bridges and the control socket from this config file.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The dead daemon's control socket: its directory holds the state files
    /// [default: the config's control_socket, else /run/igmpd/igmpd.sock].
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
}

/// `igmpd snoop`.
#[derive(Debug, Clone, Args)]
pub struct SnoopArgs {
    /// The bridge (its multicast snooping must be on: `mcast_snooping 1`).
    #[arg(value_name = "BRIDGE")]
    pub bridge: String,
    #[command(flatten)]
    pub protocol: ProtocolArgs,
    #[command(flatten)]
    pub snooping: SnoopingArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// A port whose queries, PIM hellos and MRD advertisements are dropped (also before
    /// the kernel sees them): it never becomes a router port and never takes part in the
    /// querier election (repeatable; the config's `router_guard = true`).
    #[arg(long = "router-guard", value_name = "PORT")]
    pub router_guard: Vec<String>,
    /// A port where a leave ends the membership at once, without last-member queries,
    /// when igmpd knows no other host on the port in the group (repeatable; the config's
    /// `fast_leave = true`).
    #[arg(long = "fast-leave", value_name = "PORT")]
    pub fast_leave: Vec<String>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Where `igmpd status` reaches this daemon.
    #[arg(long, value_name = "PATH", default_value = control::DEFAULT_PATH)]
    pub control_socket: PathBuf,
}

/// The IGMP versions igmpd queries with (the flag's range and the config key's).
pub const IGMP_VERSIONS: RangeInclusive<i64> = 1..=3;
/// The MLD versions.
pub const MLD_VERSIONS: RangeInclusive<i64> = 1..=2;

fn parse_duration(s: &str) -> Result<Duration, String> {
    crate::duration::parse(s)
}

options! {
    /// Protocol timers and versions, shared by `query` and `snoop`.
    pub struct ProtocolArgs / ProtocolLayer {
        /// IGMP version to query with.
        #[arg(long, value_name = "1|2|3", default_value_t = 3, value_parser = clap::value_parser!(u8).range(IGMP_VERSIONS))]
        pub igmp_version: u8,
        /// MLD version to query with.
        #[arg(long, value_name = "1|2", default_value_t = 2, value_parser = clap::value_parser!(u8).range(MLD_VERSIONS))]
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
}

options! {
    /// The startup queries of `query` (RFC 9776 §8.6, §8.7).
    pub struct StartupArgs / StartupLayer {
        /// Startup Query Interval (§8.6) [default: a quarter of the query interval].
        #[arg(long, value_name = "DUR", value_parser = parse_duration)]
        pub startup_query_interval: Option<Duration>,
        /// Startup Query Count (§8.7) [default: the robustness variable].
        #[arg(long, value_name = "N")]
        pub startup_query_count: Option<u8>,
    }
}

options! {
    /// A querier that only listens (`query`; on a bridge `--querier` decides).
    pub struct PassiveArgs / PassiveLayer {
        /// Track state and take part in nothing: never send a query.
        #[arg(long)]
        pub passive: bool,
    }
}

/// A host join as written: GROUP or SOURCE/GROUP.
pub fn parse_join(s: &str) -> Result<HostJoin, String> {
    s.parse()
        .map_err(|e: igmpd_querier::core::JoinError| e.to_string())
}

options! {
    /// The box's own memberships on a querier interface (`query`).
    pub struct HostArgs / HostLayer {
        /// Make this host's kernel a member of GROUP, or of SOURCE/GROUP
        /// (source-specific), on the interfaces (repeatable): it attracts the stream,
        /// sends the reports and answers other queriers' queries for it; igmpd's own
        /// membership view counts it as a member.
        #[arg(long = "join", value_name = "[SOURCE/]GROUP", value_parser = parse_join)]
        pub join: Vec<HostJoin>,
    }
}

options! {
    /// What `snoop` adds.
    pub struct SnoopingArgs / SnoopingLayer {
        /// Run the querier of `igmpd query` on the bridge (turn the kernel's off:
        /// `mcast_querier 0`).
        #[arg(long)]
        pub querier: bool,
        /// A port with a multicast router behind it: gets every report and all multicast
        /// (repeatable). Others are learned from queries, PIM hellos and MRD.
        #[arg(long = "router-port", value_name = "PORT")]
        pub router_ports: Vec<String>,
        /// Raise the bridge's mcast_hash_max to N at start. igmpd keeps its entries below that
        /// limit (the kernel turns snooping off for the whole bridge when it is reached) and
        /// refuses new groups there.
        #[arg(long, value_name = "N")]
        pub raise_hash_max: Option<u32>,
        /// Flood traffic to PREFIX (a multicast group, or a prefix such as
        /// ff02::1:ff00:0/104) to every port, reported or not, once a report for the group
        /// was heard: IPv6 neighbour discovery and mDNS keep working for hosts that stop
        /// answering queries (repeatable; replaces the default list; the config's
        /// `flood_groups = []` floods nothing).
        #[arg(long = "flood-group", value_name = "PREFIX",
              default_values_t = igmpd_snooping::core::flood::default_flood_groups())]
        pub flood_groups: Vec<igmpd_snooping::core::FloodPrefix>,
    }
}

options! {
    /// What a bridge's ports may do (untrusted access ports); `[bridge.NAME.port.PORT]`
    /// overrides them for one port.
    pub struct PolicyArgs / PolicyLayer {
        /// Memberships a port may hold, every VLAN and family counted together [default:
        /// the bridge's MDB entry limit, at least 4096].
        #[arg(long, value_name = "N")]
        pub max_groups: Option<u32>,
        /// Sources per group a port may hold [default: 1024].
        #[arg(long, value_name = "N")]
        pub max_sources: Option<u32>,
        /// At max-groups: refuse the new membership (deny) or drop the port's membership
        /// whose last report is oldest (replace).
        #[arg(long, value_name = "deny|replace", default_value = "deny", value_parser = ["deny", "replace"])]
        pub limit_action: String,
        /// Reports per second a port may send (a token bucket with a second's burst);
        /// more are dropped and counted.
        #[arg(long, value_name = "N")]
        pub max_report_rate: Option<u32>,
        /// Drop reports and queries without the IP Router Alert option.
        #[arg(long)]
        pub require_router_alert: bool,
        /// What the group ACL (`acl` in the config) does with a join no rule matches.
        #[arg(long, value_name = "permit|deny", default_value = "permit", value_parser = ["permit", "deny"])]
        pub acl_default: String,
    }
}

options! {
    /// The Prometheus endpoint (`query`, `snoop`, `run`; daemon-wide in the config).
    pub struct MetricsArgs / MetricsLayer {
        /// Serve Prometheus metrics at http://ADDR/metrics (IPv4:PORT or [IPv6]:PORT,
        /// e.g. 127.0.0.1:9654) [default: off]. Anyone who reaches the address reads them:
        /// keep it on loopback or a management network.
        #[arg(long, value_name = "ADDR")]
        pub metrics_listen: Option<ListenAddr>,
    }
}

/// `igmpd doctor` arguments.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The interface to examine.
    #[arg(value_name = "IFACE")]
    pub iface: String,
    /// How long to listen [default: until a general query of each family was seen and
    /// answered or not, at most 130 s].
    #[arg(long, value_name = "DUR", value_parser = crate::duration::parse)]
    pub duration: Option<Duration>,
    /// Ask actively: find the LAN's live hosts and make their answers reach this host
    /// (see the output for what it sends and leaves behind).
    #[arg(long)]
    pub probe: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `igmpd decode`'s bytes start with.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FirstHeader {
    /// An Ethernet header (as AF_PACKET or tcpdump -xx shows).
    Ethernet,
    /// An IPv4 or IPv6 header.
    Ip,
}

/// What `igmpd generate` prints.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum What {
    /// The igmpd(8) man page (roff).
    Man,
    /// Completions for a shell.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}
