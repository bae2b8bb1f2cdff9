//! The status document (`igmpd status --json`) as typed records.
//!
//! Serialized straight to JSON (no `serde_json::Value` tree in between: a map and a string
//! per key cost ten times as much). Field names are the documented JSON fields; keep them.
//! Per-group addresses are kept as [`IpAddr`] (written as the same strings): the daemon's
//! loop only copies them, and the text is made where the document is encoded, off the loop.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::IpAddr;

use serde::Serialize;

/// What one daemon answers to `status`; `igmpd run` merges several.
#[derive(Debug, Default, Serialize)]
pub struct StatusDoc {
    /// Querier interfaces (`igmpd query`, `igmpd snoop --querier`, `igmpd run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interfaces: Option<Vec<IfaceStatus>>,
    /// Snooped bridges (`igmpd snoop`, `igmpd run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bridges: Option<Vec<BridgeStatus>>,
    /// Current findings.
    pub findings: Vec<FindingDoc>,
    /// The running kernel and what igmpd found it takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel: Option<KernelStatus>,
}

/// An address as one number that orders as [`IpAddr`] does (every IPv4 address before
/// every IPv6 one): integer keys sort 10 000 groups several times faster than the enum.
fn addr_key(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(a) => (false, u128::from(a.to_bits())),
        IpAddr::V6(a) => (true, a.to_bits()),
    }
}

/// The running kernel (`"kernel": {"release": ..., "features": [...]}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelStatus {
    /// `uname -r`.
    pub release: String,
    /// What igmpd found the kernel takes (probed, never guessed from the release):
    /// `mdb_protocol`, `mdb_source_list`, `mdb_replace`, `mdb_sg`, `mcast_vlan_snooping`,
    /// `port_mcast_max_groups`. Empty until probed.
    pub features: Vec<&'static str>,
}

impl StatusDoc {
    /// Puts every group list in its documented order: a port's memberships by VLAN
    /// (untagged first), then IGMP before MLD, then address; an interface's groups by
    /// address. The daemons build the lists in the order of their hash maps, on their
    /// event loop; the sorting is left to where the document is encoded, off the loop.
    pub fn sort(&mut self) {
        for b in self.bridges.iter_mut().flatten() {
            for p in &mut b.ports {
                p.groups
                    .sort_by_cached_key(|g| (u32::from(g.vid.unwrap_or(0)), addr_key(g.group)));
            }
        }
        for i in self.interfaces.iter_mut().flatten() {
            for f in [&mut i.igmp, &mut i.mld].into_iter().flatten() {
                f.groups.sort_by_cached_key(|g| addr_key(g.group));
            }
        }
    }

    /// Writes the document as JSON, on one line or indented (`pretty`), sorted first
    /// ([`StatusDoc::sort`]), through a buffer of its own. Not generic on purpose: the
    /// encoder is instantiated here, with this crate's optimisation level rather than the
    /// binary's size-first one (twice as fast for a 10 000-group document, whose encoding
    /// is the largest part of `igmpd status`'s latency).
    pub fn write_json(
        &mut self,
        out: &mut dyn std::io::Write,
        pretty: bool,
    ) -> std::io::Result<()> {
        self.sort();
        let mut w = std::io::BufWriter::with_capacity(128 * 1024, out);
        if pretty {
            serde_json::to_writer_pretty(&mut w, self)?;
        } else {
            serde_json::to_writer(&mut w, self)?;
        }
        w.flush()
    }

    /// Adds `other`'s interfaces, bridges and findings to this one.
    pub fn merge(&mut self, other: StatusDoc) {
        fn join<T>(a: &mut Option<Vec<T>>, b: Option<Vec<T>>) {
            if let Some(b) = b {
                a.get_or_insert_with(Vec::new).extend(b);
            }
        }
        join(&mut self.interfaces, other.interfaces);
        join(&mut self.bridges, other.bridges);
        self.findings.extend(other.findings);
        // One kernel: the document with the longer feature list probed more.
        match (&mut self.kernel, other.kernel) {
            (Some(k), Some(o)) if o.features.len() > k.features.len() => *k = o,
            (k @ None, o) => *k = o,
            _ => {}
        }
    }
}

/// One querier interface.
#[derive(Debug, Serialize)]
pub struct IfaceStatus {
    /// Interface name.
    pub name: String,
    /// Its index, null while it does not exist.
    pub ifindex: Option<u32>,
    /// Link up.
    pub up: bool,
    /// IGMP state, absent when IGMP is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub igmp: Option<FamilyStatus>,
    /// MLD state, absent when MLD is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mld: Option<FamilyStatus>,
    /// The box's own memberships (host joins) on it, absent when none are configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub joins: Vec<JoinStatus>,
}

/// One host join: a group the box's kernel is asked to be a member of.
#[derive(Debug, Serialize)]
pub struct JoinStatus {
    /// The group.
    pub group: IpAddr,
    /// The source of a source-specific join (INCLUDE {source}), absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<IpAddr>,
    /// `joined`, or why not (the kernel's error, or that the interface is missing).
    pub state: String,
}

/// One protocol on one interface.
#[derive(Debug, Serialize)]
pub struct FamilyStatus {
    /// Version in use (lowered by older queriers, RFC 9776 §7.3.1).
    pub version: u8,
    /// Configured version.
    pub configured_version: u8,
    /// `querier` or `non-querier`.
    pub role: &'static str,
    /// Our address on the link.
    pub address: Option<String>,
    /// The elected querier.
    pub querier_address: Option<String>,
    /// Time left on the other-querier-present timer, 0 when not running.
    pub other_querier_expires_in_ms: u64,
    /// Robustness variable in use.
    pub robustness: u8,
    /// Query interval in use.
    pub query_interval_ms: u64,
    /// General and specific queries sent.
    pub queries_sent: u64,
    /// Frames dropped, by reason.
    pub drops: BTreeMap<&'static str, u64>,
    /// Group memberships.
    pub groups: Vec<GroupStatus>,
}

/// One group's membership on one querier interface.
#[derive(Debug, Serialize)]
pub struct GroupStatus {
    /// Group address.
    pub group: IpAddr,
    /// `include` or `exclude`.
    pub filter_mode: &'static str,
    /// Source records.
    pub sources: Vec<SourceStatus>,
    /// Last host that reported.
    pub last_reporter: Option<IpAddr>,
    /// Hosts that reported and when (absent in `igmpd snoop --querier`'s bridge section,
    /// whose per-port groups name the hosts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reporters: Option<Vec<ReporterStatus>>,
    /// Host compatibility version (RFC 9776 §7.3.2).
    pub compat_version: u8,
    /// Time left on the group timer, 0 in INCLUDE mode.
    pub expires_in_ms: u64,
}

/// One source of a group.
#[derive(Debug, Serialize)]
pub struct SourceStatus {
    /// Source address.
    pub address: IpAddr,
    /// Time left on its timer, 0 when not running.
    pub expires_in_ms: u64,
}

/// One host that reported a group.
#[derive(Debug, Serialize)]
pub struct ReporterStatus {
    /// Host address.
    pub address: IpAddr,
    /// Time since its last report.
    pub last_report_ms_ago: u64,
}

/// A finding as status and the doctor print it.
#[derive(Debug, Clone, Serialize)]
pub struct FindingDoc {
    /// Stable code.
    pub code: &'static str,
    /// `error`, `warning` or `info`.
    pub severity: &'static str,
    /// Interface.
    pub iface: String,
    /// What was seen.
    pub message: String,
    /// What to change.
    pub hint: String,
    /// The host concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The group concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl FindingDoc {
    /// What makes two evaluations "the same finding" (to log it once): interface, code,
    /// host and group.
    pub fn key(&self) -> (&str, &'static str, Option<&str>, Option<&str>) {
        (
            &self.iface,
            self.code,
            self.host.as_deref(),
            self.group.as_deref(),
        )
    }
}

/// One snooped bridge (`igmpd snoop`).
#[derive(Debug, Serialize)]
pub struct BridgeStatus {
    /// Bridge name.
    pub name: String,
    /// Its index, null while it does not exist.
    pub ifindex: Option<u32>,
    /// Link up.
    pub up: bool,
    /// Snooping is running (the bridge exists, is up and has snooping on).
    pub active: bool,
    /// igmpd runs the querier on the bridge.
    pub querier: bool,
    /// The bridge's `mcast_hash_max`.
    pub mcast_hash_max: Option<u32>,
    /// Most MDB keys igmpd uses.
    pub entry_limit: usize,
    /// MDB keys in use.
    pub mdb_keys: usize,
    /// Entries (port, group, VLAN) programmed.
    pub mdb_entries: usize,
    /// The entries filter sources for every snooped family: the bridge looks up (S,G)
    /// entries (`mcast_igmp_version 3` / `mcast_mld_version 2`) and the kernel takes source
    /// lists or (S,G) entries.
    pub source_filtering: bool,
    /// The nftables table that stops the kernel's learning is owned by igmpd's socket, so
    /// the kernel deletes it if igmpd dies (false: the kernel lacks the owner flag, and a
    /// crash leaves it until `igmpd cleanup`; null: not installed).
    pub nft_table_owned: Option<bool>,
    /// The untagged IGMP querier as the bridge follows it, null when IGMP is off.
    pub igmp: Option<BridgeQuerierStatus>,
    /// The untagged MLD querier, null when MLD is off.
    pub mld: Option<BridgeQuerierStatus>,
    /// Per-VLAN snooping (`mcast_vlan_snooping 1`): each VLAN's queriers and source
    /// filtering; empty otherwise.
    pub vlans: Vec<BridgeVlanStatus>,
    /// Counters since start.
    pub counters: BridgeCounters,
    /// Multicast router ports, configured and learned.
    pub router_ports: Vec<RouterPortStatus>,
    /// Every port with its memberships.
    pub ports: Vec<PortStatus>,
}

/// One VLAN of a bridge with per-VLAN snooping.
#[derive(Debug, Serialize)]
pub struct BridgeVlanStatus {
    /// VLAN ID.
    pub vid: u16,
    /// The VLAN's versions make the kernel look up (S,G) entries for every snooped
    /// family (null: the kernel did not say).
    pub source_filtering: Option<bool>,
    /// The VLAN's IGMP querier, null when IGMP is off.
    pub igmp: Option<BridgeQuerierStatus>,
    /// The VLAN's MLD querier.
    pub mld: Option<BridgeQuerierStatus>,
}

/// The querier a bridge follows (elected, with the timers it adopted).
#[derive(Debug, Serialize)]
pub struct BridgeQuerierStatus {
    /// What igmpd's own instance is: `querier`, `proxy` (querier without an address,
    /// queries from 0.0.0.0), `non-querier`, `passive`, `inactive`.
    pub role: &'static str,
    /// The elected querier, null when none is known.
    pub querier_address: Option<String>,
    /// Robustness variable in use.
    pub robustness: u8,
    /// Query interval in use.
    pub query_interval_ms: u64,
    /// Group membership interval in use (RFC 9776 §8.4).
    pub group_membership_interval_ms: u64,
}

/// What a snooping bridge counted since start.
#[derive(Debug, Default, Serialize)]
pub struct BridgeCounters {
    /// Reports (and leaves) received.
    pub reports: u64,
    /// Queries received.
    pub queries: u64,
    /// Reports forwarded to router ports.
    pub forwarded: u64,
    /// New groups refused at the entry limit.
    pub groups_refused: u64,
    /// Groups refused now.
    pub groups_refused_now: u64,
    /// Entries written as (*,G) because the source list did not fit.
    pub source_lists_degraded: u64,
    /// MDB writes the kernel refused.
    pub mdb_errors: u64,
    /// Frames the capture ring dropped.
    pub capture_drops: u64,
    /// Frames that did not decode.
    pub decode_drops: u64,
    /// MLD messages from a source that is not link-local.
    pub mld_bad_source: u64,
    /// Entries adopted from the MDB at start.
    pub adopted: u64,
    /// 802.1Q-tagged reports and queries on a bridge without VLAN filtering (learned as
    /// untagged, as the kernel does).
    pub vlan_tags_ignored: u64,
    /// Frames on a VLAN-filtering bridge tagged with a VLAN their port is not in, or
    /// untagged on a port without a PVID (the bridge drops them too).
    pub vlan_drops: u64,
    /// Batches of MDB writes whose send failed (they were sent again).
    pub writer_send_failures: u64,
    /// Times the rtnetlink event stream ended and igmpd connected again.
    pub netlink_reconnects: u64,
    /// Activations (the bridge coming up) that failed and were retried.
    pub activation_failures: u64,
}

/// One multicast router port.
#[derive(Debug, Serialize)]
pub struct RouterPortStatus {
    /// Port name.
    pub name: String,
    /// VLAN it was learned on, null for configured ones and untagged.
    pub vid: Option<u16>,
    /// Why: `configured`, `query`, `pim`, `mrd`.
    pub reasons: Vec<&'static str>,
    /// `igmp`, `mld`.
    pub families: Vec<&'static str>,
    /// Time until a learned port stops being one, null for configured ones.
    pub expires_in_ms: Option<u64>,
}

/// One bridge port.
#[derive(Debug, Serialize)]
pub struct PortStatus {
    /// Port name.
    pub name: String,
    /// Port ifindex.
    pub ifindex: u32,
    /// Link up.
    pub up: bool,
    /// Memberships on this port.
    pub groups: Vec<PortGroupStatus>,
    /// What the port may do (its policy, with the defaults filled in).
    pub limits: PortLimitsStatus,
    /// What the port's policy refused or dropped.
    pub counters: PortCountersStatus,
    /// The port's ACL rules in order, with their hits.
    pub acl: Vec<AclRuleStatus>,
}

/// A port's limits.
#[derive(Debug, Serialize)]
pub struct PortLimitsStatus {
    /// Memberships the port may hold (configured, or the default bound).
    pub max_groups: usize,
    /// Memberships it holds now (every VLAN and family).
    pub groups: usize,
    /// Sources per group.
    pub max_sources: usize,
    /// `deny` or `replace`.
    pub limit_action: &'static str,
    /// Queries, PIM and MRD from the port are dropped.
    pub router_guard: bool,
    /// Reports per second, null: no limit.
    pub max_report_rate: Option<u32>,
    /// Reports and queries need Router Alert.
    pub require_router_alert: bool,
    /// What the ACL does when no rule matches: `permit` or `deny`.
    pub acl_default: &'static str,
}

/// A port's policy counters.
#[derive(Debug, Serialize)]
pub struct PortCountersStatus {
    /// New memberships refused at max_groups.
    pub refused: u64,
    /// Memberships replaced by newer ones (`limit_action = "replace"`).
    pub replaced: u64,
    /// Sources refused at max_sources.
    pub refused_sources: u64,
    /// Joins denied by the ACL.
    pub denied: u64,
    /// Queries, PIM hellos and MRD dropped by router_guard.
    pub guard_drops: u64,
    /// Reports over max_report_rate.
    pub rate_drops: u64,
    /// Reports and queries without Router Alert (require_router_alert).
    pub router_alert_drops: u64,
    /// Queries with a TTL other than 1 or a destination other than the RFC's.
    pub bad_queries: u64,
    /// Joins no ACL rule matched.
    pub acl_default_hits: u64,
    /// Frames lost because the port's share of the capture backlog was full (it sent
    /// faster than igmpd could take them).
    pub backlog_drops: u64,
}

/// One ACL rule.
#[derive(Debug, Serialize)]
pub struct AclRuleStatus {
    /// `permit` or `deny`.
    pub action: &'static str,
    /// Group prefix.
    pub group: String,
    /// Source prefix, null: any.
    pub source: Option<String>,
    /// Joins (records, or sources of source-specific ones) it decided.
    pub hits: u64,
}

/// One group's membership on one bridge port.
#[derive(Debug, Serialize)]
pub struct PortGroupStatus {
    /// Group address.
    pub group: IpAddr,
    /// VLAN, null untagged.
    pub vid: Option<u16>,
    /// `include` or `exclude`.
    pub filter_mode: &'static str,
    /// Source records.
    pub sources: Vec<SourceStatus>,
    /// Hosts that reported it.
    pub hosts: Vec<IpAddr>,
    /// Host compatibility version (RFC 9776 §7.3.2).
    pub compat_version: u8,
    /// Time left on the group timer, 0 in INCLUDE mode (and for static groups).
    pub expires_in_ms: u64,
    /// `learned` (from the port's hosts), `static` (configured, or `igmpd static add`;
    /// never expires) or `flood` (a group of the bridge's `flood_groups` heard of: on
    /// every port, never expires). A group may be more than one: one record each.
    pub origin: &'static str,
    /// The group is in the bridge's `flood_groups`: forwarded to every port whether or not
    /// its hosts report it (their reports are shown, never needed).
    pub flooded: bool,
}

#[cfg(test)]
mod tests;
