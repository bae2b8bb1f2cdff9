//! The sans-IO snooping core of one bridge.
//!
//! Per VLAN (0 = untagged) and family there is a [`Domain`]: one bridge-level querier
//! [`Instance`](igmpd_querier::core::Instance) with the observer of the bridge (one
//! [`Segment`](igmpd_querier::core::Segment)) and one
//! [`Membership`](igmpd_querier::core::Membership) per port. Inputs are frames seen on a
//! port (the shell decodes them), port and bridge changes, MDB entries found at start, and
//! `now`. Outputs ([`Output`]) are queries to send on the bridge, MDB writes, router-port
//! changes for the kernel, and events for logs. [`Snooper::next_deadline`] says when to
//! call [`Snooper::poll`] again. IGMP and MLD take one code path, generic over
//! [`Family`].
//!
//! Rules, with their sources:
//! - Per-port state is RFC 9776 §6 / RFC 9777 §7 with `Timing::querier = None`: the port
//!   state never sends; a leave lowers timers only through the querier's group-specific
//!   queries (RFC 9776 §6.6.1; RFC 4541 §2.1.1 c: the snooping switch relies on the
//!   querier's queries). Such a query lowers the timers to Last Member Query Count x its
//!   Max Resp Time, as the Linux bridge does ([`Domain`]).
//! - Every report is also fed to the bridge-level instance, so that with `--querier` it
//!   sends the last-member queries (§6.6.3); our own queries lower the ports' timers like
//!   received ones (§6.6.1).
//! - Reports and leaves go to router ports only, never back to the ingress port
//!   (RFC 4541 §2.1.1 a).
//! - Groups the kernel does not snoop are not tracked: 224.0.0.0/24 (RFC 4541 §2.1.2) and
//!   ff02::1 (all-nodes).
//!
//! Modules: `family` (what differs between IGMP and MLD), `domain` (one VLAN and family),
//! `snooper` (the bridge: lifecycle, ports, timers), `adopt` (entries found at start),
//! `input` (what a captured frame does), [`flood`] (groups on every port), [`policy`] (untrusted ports), [`statics`] (static
//! groups), [`admin`] (flush, the query of a port that came up), [`mdb`] (the desired MDB against what was programmed), [`router`]
//! (multicast router ports).

pub mod admin;
mod adopt;
mod domain;
mod family;
pub mod flood;
mod input;
pub mod mdb;
pub mod policy;
mod retry;
pub mod router;
mod snooper;
pub mod statics;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_querier::core::membership::Removal;
use igmpd_querier::core::{Config, Event, Proto, QueryOut};

pub use domain::Domain;
pub use domain::DomainVisitor;
pub use domain::VlanAddresses;
pub use family::Family;
pub use flood::FloodPrefix;
pub use mdb::{EntryFilter, EntryKey, MdbOp, MdbTable, SetOutcome};
pub use policy::{PortCounters, PortPolicy, PortState};
pub use router::{Reason, RouterPorts};
pub use snooper::Snooper;

/// What the snooper is asked to do.
#[derive(Debug, Clone)]
pub struct SnoopConfig {
    /// IGMP settings (timers, version); None: IPv4 is not snooped.
    pub igmp: Option<Config>,
    /// MLD settings; None: IPv6 is not snooped.
    pub mld: Option<Config>,
    /// Run the querier on the bridge (else the instances are passive).
    pub querier: bool,
    /// Configured router ports (ifindexes).
    pub router_ports: BTreeSet<u32>,
    /// The bridge looks up (S,G) entries for IPv4 (`mcast_igmp_version 3`): write source
    /// lists; otherwise plain (*,G) entries.
    pub source_filtering_v4: bool,
    /// The same for IPv6 (`mcast_mld_version 2`).
    pub source_filtering_v6: bool,
    /// Most kernel MDB keys igmpd may use (below `mcast_hash_max`).
    pub entry_limit: usize,
    /// Per-VLAN settings that differ from the bridge's: (IGMP, MLD) per VID; a VLAN not
    /// listed uses `igmp` and `mld`.
    pub vlans: BTreeMap<u16, (Option<Config>, Option<Config>)>,
    /// The bridge filters VLANs (`vlan_filtering 1`): a frame's 802.1Q tag names its
    /// VLAN. Without it a tag is not a VLAN of the bridge: the kernel learns a tagged
    /// report as an untagged membership (vid 0), and so does igmpd.
    pub vlan_filtering: bool,
    /// Per-VLAN snooping (`mcast_vlan_snooping 1`, with `vlan_filtering`): each VLAN has
    /// its own querier and election, and router ports are per port and VLAN, as in the
    /// kernel. Without it one querier (VLAN 0, untagged) serves the bridge.
    pub vlan_snooping: bool,
    /// What each port may do (limits, guard, ACL, rate).
    pub policy: Policies,
    /// Groups flooded to every port once heard of (`flood_groups`, see [`flood`]).
    pub flood_groups: Vec<FloodPrefix>,
}

/// Every port's [`PortPolicy`]: the bridge's for ports not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    /// `[bridge.B]` (and `igmpd snoop`'s flags): every port.
    pub bridge: PortPolicy,
    /// `[bridge.B.port.P]` by ifindex: the whole policy of that port.
    pub ports: BTreeMap<u32, PortPolicy>,
}

impl Policies {
    /// `port`'s policy.
    pub fn of(&self, port: u32) -> &PortPolicy {
        self.ports.get(&port).unwrap_or(&self.bridge)
    }
}

/// A query to send on the bridge, for the shell to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyQuery {
    /// IGMP.
    V4(QueryOut<Ipv4Addr>),
    /// MLD.
    V6(QueryOut<Ipv6Addr>),
}

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnoopEvent {
    /// A port's membership of a group started or ended.
    PortGroup {
        /// Port ifindex.
        port: u32,
        /// VLAN (0 none).
        vid: u16,
        /// The group.
        group: IpAddr,
        /// True when added.
        added: bool,
        /// Who reported it (added), or why it went (removed).
        why: Why,
    },
    /// An INCLUDE-mode membership gained or lost a source (and keeps others).
    PortSource {
        /// Port ifindex.
        port: u32,
        /// VLAN (0 none).
        vid: u16,
        /// The group.
        group: IpAddr,
        /// The source.
        source: IpAddr,
        /// True when added.
        added: bool,
        /// Who reported it, or why it went.
        why: Why,
    },
    /// A new group was not written: the bridge's hash limit is reached.
    Refused {
        /// Port ifindex.
        port: u32,
        /// VLAN.
        vid: u16,
        /// The group.
        group: IpAddr,
    },
    /// The bridge-level instance's election or version changed.
    Querier {
        /// VLAN.
        vid: u16,
        /// Family.
        proto: Proto,
        /// What happened (membership changes are not repeated here).
        event: Event<IpAddr>,
    },
}

/// What caused a [`SnoopEvent::PortGroup`] or [`SnoopEvent::PortSource`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// Added by a report.
    Joined {
        /// The host whose report did it (None: 0.0.0.0 / ::, or not known).
        host: Option<IpAddr>,
        /// A group: in EXCLUDE mode, every source (else its sources follow as
        /// [`SnoopEvent::PortSource`]). A source: false.
        any_source: bool,
    },
    /// Removed: why.
    Removed(Removal),
}

/// What the core asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a query on the bridge device (tagged with `vid` when non-zero); the bridge
    /// floods it to every port.
    Query {
        /// VLAN, 0 for untagged.
        vid: u16,
        /// The query.
        query: AnyQuery,
    },
    /// Send a query out of one port only (tagged as the port's egress for `vid` wants):
    /// a port that came up, or `igmpd flush --port`.
    PortQuery {
        /// Port ifindex.
        port: u32,
        /// VLAN, 0 for untagged.
        vid: u16,
        /// The query.
        query: AnyQuery,
    },
    /// Write the MDB.
    Mdb(MdbOp),
    /// Tell the kernel a port is (true) or is no longer (false) a multicast router port:
    /// the port's `mcast_router` (vid 0), or with per-VLAN snooping the port's in VLAN
    /// `vid`.
    RouterPort {
        /// Port ifindex.
        port: u32,
        /// VLAN (0: the port itself).
        vid: u16,
        /// Router or not.
        router: bool,
    },
    /// Log it.
    Event(SnoopEvent),
}

/// What [`Snooper::receive`] made of a frame, for counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Reports or leaves: forward the frame to the ports put in `forward`.
    Report,
    /// A query.
    Query,
    /// A router announcement (PIM hello, MRD).
    Router,
    /// Not for us (family not snooped, unknown port, bad MLD source).
    Ignored,
    /// Dropped by the port's policy or as malformed (guard, rate, Router Alert, ACL, a
    /// query's TTL or destination): counted per port, never forwarded.
    Dropped,
}

/// Counters shown in status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Reports and leaves processed.
    pub reports: u64,
    /// Queries seen.
    pub queries: u64,
    /// Frames forwarded to router ports (one per target port).
    pub forwarded: u64,
    /// MLD messages from a source that is not link-local (RFC 9777 §5.1.14, §5.2.13).
    pub bad_source: u64,
    /// Tagged frames on a bridge without VLAN filtering, learned as untagged.
    pub tagged_unfiltered: u64,
    /// Frames dropped on a VLAN-filtering bridge: tagged with a VLAN the port is not in,
    /// or untagged on a port without a PVID (the bridge's ingress filter drops them too).
    pub vlan_drops: u64,
}

/// A port's VLANs on a VLAN-filtering bridge (`bridge vlan show`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortVlans {
    /// Untagged frames belong to this VLAN (none: they are dropped).
    pub pvid: Option<u16>,
    /// Every VLAN the port is in.
    pub vids: BTreeSet<u16>,
    /// The VLANs that leave the port untagged (`untagged`); the others leave it tagged.
    pub untagged: BTreeSet<u16>,
}

/// One static group of a port: (*,G), or (S,G) with `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StaticGroup {
    /// The group.
    pub group: IpAddr,
    /// Only this source (SSM or a source-specific join); None: every source.
    pub source: Option<IpAddr>,
    /// VLAN; 0: untagged (the port's PVID on a VLAN-filtering bridge).
    pub vid: u16,
}

impl StaticGroup {
    /// Checks what the operator wrote: a multicast group the bridge snoops, a unicast
    /// source of the same family, a VLAN id 1..=4094.
    pub fn check(&self) -> Result<(), String> {
        let g = self.group;
        if !g.is_multicast() {
            return Err(format!("{g} is not a multicast group"));
        }
        let snooped = match g {
            IpAddr::V4(a) => Family::is_snooped(&a),
            IpAddr::V6(a) => Family::is_snooped(&a),
        };
        if !snooped {
            return Err(format!(
                "{g} is link-local control traffic the bridge floods anyway (224.0.0.0/24, ff02::1)"
            ));
        }
        if let Some(s) = self.source {
            if s.is_ipv4() != g.is_ipv4() {
                return Err(format!(
                    "source {s} and group {g} are of different families"
                ));
            }
            if s.is_multicast() || s.is_unspecified() {
                return Err(format!("source {s} is not a unicast address"));
            }
        }
        if self.vid > 4094 {
            return Err(format!("VLAN {} is not 0..=4094", self.vid));
        }
        Ok(())
    }
}

/// The flooded groups (see [`flood`]), and the port each IPv6 host was last heard on (`nd-at-risk` names
/// it after the host's memberships expired).
#[derive(Debug, Clone, Default)]
pub(crate) struct FloodState {
    /// The flood list's groups heard of, by VLAN: flooded until igmpd ends.
    pub(crate) groups: BTreeSet<(u16, IpAddr)>,
    /// The MDB keys the flooded groups make on the ports up.
    pub(crate) keys: BTreeSet<EntryKey>,
    /// Each MLD reporter's port (at most `HOST_PORTS` hosts).
    pub(crate) host_ports: BTreeMap<Ipv6Addr, u32>,
}

/// The sources a static entry forwards: None for every source.
pub type StaticSources = BTreeSet<Option<IpAddr>>;
