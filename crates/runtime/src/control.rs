//! What a daemon's event loop answers on behalf of the control socket (the socket itself,
//! its permission check and its line protocol are the binary's: `src/control.rs`).

use std::net::IpAddr;

use tokio::sync::oneshot;

use crate::metrics::MetricsDoc;
use crate::status::StatusDoc;

/// A request from the control socket to one daemon.
#[derive(Debug)]
pub enum ControlRequest {
    /// The state as `igmpd status --json` prints it.
    Status(oneshot::Sender<StatusDoc>),
    /// Counters and gauges for `GET /metrics`: no group lists, so its cost on the loop
    /// does not grow with the memberships.
    Metrics(oneshot::Sender<MetricsDoc>),
    /// Answered at once: the loop turns (`igmpd run`'s watchdog; its cost does not grow
    /// with the state, as a status document's does).
    Ping(oneshot::Sender<()>),
    /// Read links and addresses again, keeping every membership and timer (SIGHUP in
    /// `igmpd query` and `igmpd snoop`); answered when done.
    Refresh(oneshot::Sender<()>),
    /// `igmpd static add|del` (snooping daemons): what was done, or why not.
    Static(StaticRequest, Reply),
    /// `igmpd flush` (snooping daemons): what was done, or why not.
    Flush(FlushRequest, Reply),
}

/// The answer to a request that changes state: a line for the operator, or the reason it
/// was refused.
pub type Reply = oneshot::Sender<Result<String, String>>;

/// A static group added or deleted at runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRequest {
    /// True to add, false to delete.
    pub add: bool,
    /// The bridge.
    pub bridge: String,
    /// The port, by name.
    pub port: String,
    /// The group.
    pub group: IpAddr,
    /// Only this source.
    pub source: Option<IpAddr>,
    /// The VLAN (0: untagged).
    pub vid: u16,
}

/// Learned memberships to forget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushRequest {
    /// The bridge.
    pub bridge: String,
    /// Only this port's.
    pub port: Option<String>,
    /// Only this group's.
    pub group: Option<IpAddr>,
}

/// The refusal a daemon without bridges gives to bridge commands.
pub fn no_bridges(bridge: &str) -> String {
    format!("no bridge {bridge} is snooped by this igmpd")
}
