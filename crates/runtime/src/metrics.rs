//! The metrics document (`GET /metrics`, `--metrics-listen`) as typed records, and its
//! encoding in the Prometheus text exposition format, version 0.0.4.
//!
//! A daemon's loop fills a [`MetricsDoc`] from its counters and gauges only: no group
//! lists (a port's memberships are a count it already keeps), so a scrape costs the loop
//! the same with 10 000 groups as with ten. Encoding ([`MetricsDoc::write_text`]) happens
//! off the loop, on a blocking-pool thread (`src/metrics.rs`), as status documents are.
//!
//! Names follow Prometheus's conventions: `igmpd_` prefix, `_total` on counters, one
//! HELP and TYPE line per metric, every sample of a metric together. VLAN labels are the
//! VLAN ID, `"0"` for untagged; `family` is `igmp` or `mld`.

use std::io::Write;
use std::net::IpAddr;

use crate::status::{BridgeCounters, PortCountersStatus};

/// The `Content-Type` of [`MetricsDoc::write_text`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What one daemon answers to a metrics request; `igmpd run` merges several.
#[derive(Debug, Default)]
pub struct MetricsDoc {
    /// Querier interfaces (`igmpd query`, `igmpd run`).
    pub interfaces: Vec<IfaceMetrics>,
    /// Snooped bridges (`igmpd snoop`, `igmpd run`).
    pub bridges: Vec<BridgeMetrics>,
    /// Current findings (as last evaluated, at most a second ago).
    pub findings: Vec<FindingCount>,
}

/// Messages received, for one family on one interface or bridge port (and VLAN).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    /// Membership reports: one per IGMPv1/v2 or MLDv1 report, one per IGMPv3/MLDv2
    /// record that is not a leave.
    pub reports: u64,
    /// Leaves: IGMPv2 Leave Group, MLDv1 Done, and IGMPv3/MLDv2 records that change to
    /// INCLUDE with no sources (RFC 9776 §5.1's "leave").
    pub leaves: u64,
    /// Queries, general and specific.
    pub queries: u64,
}

/// One querier interface.
#[derive(Debug)]
pub struct IfaceMetrics {
    /// Interface name.
    pub name: String,
    /// Link up.
    pub up: bool,
    /// One per family running on it.
    pub families: Vec<QuerierMetrics>,
}

/// One family's querier on an interface.
#[derive(Debug)]
pub struct QuerierMetrics {
    /// `igmp` or `mld`.
    pub family: &'static str,
    /// The instance's role (`querier`, `non-querier`, ...).
    pub role: &'static str,
    /// The elected querier, None when none is known.
    pub querier_address: Option<IpAddr>,
    /// Version in use.
    pub version: u8,
    /// Queries sent.
    pub queries_sent: u64,
    /// Messages received.
    pub received: Traffic,
    /// Frames dropped, by reason.
    pub drops: Vec<(&'static str, u64)>,
    /// Groups with members.
    pub groups: u64,
}

/// One snooped bridge.
#[derive(Debug)]
pub struct BridgeMetrics {
    /// Bridge name.
    pub name: String,
    /// Link up.
    pub up: bool,
    /// Snooping runs.
    pub active: bool,
    /// MDB entries (port, group, VLAN) programmed.
    pub mdb_entries: u64,
    /// MDB keys in use.
    pub mdb_keys: u64,
    /// Most MDB keys igmpd uses.
    pub mdb_entry_limit: u64,
    /// MDB write operations handed to the kernel (sets and deletes).
    pub mdb_writes: u64,
    /// The bridge's counters, as status shows them.
    pub counters: BridgeCounters,
    /// Each VLAN's (0: untagged) and family's querier.
    pub queriers: Vec<DomainMetrics>,
    /// Router ports: (port, VLAN, family), one per learned or configured one.
    pub router_ports: Vec<(String, u16, &'static str)>,
    /// Every port.
    pub ports: Vec<PortMetrics>,
}

/// The querier of one VLAN and family of a bridge.
#[derive(Debug)]
pub struct DomainMetrics {
    /// VLAN ID, 0 untagged.
    pub vid: u16,
    /// `igmp` or `mld`.
    pub family: &'static str,
    /// igmpd's instance's role.
    pub role: &'static str,
    /// The elected querier.
    pub querier_address: Option<IpAddr>,
    /// Queries igmpd sent (with `querier`).
    pub queries_sent: u64,
}

/// One bridge port.
#[derive(Debug)]
pub struct PortMetrics {
    /// Port name.
    pub name: String,
    /// Link up.
    pub up: bool,
    /// What its policy refused or dropped, as status shows it.
    pub counters: PortCountersStatus,
    /// Per VLAN and family: messages received and memberships held.
    pub vlans: Vec<PortVlanMetrics>,
}

/// One port's traffic and memberships in one VLAN and family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortVlanMetrics {
    /// VLAN ID, 0 untagged.
    pub vid: u16,
    /// `igmp` or `mld`.
    pub family: &'static str,
    /// Messages received.
    pub received: Traffic,
    /// Memberships held.
    pub memberships: u64,
}

/// How many findings of one code an interface or bridge has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindingCount {
    /// Interface or bridge.
    pub iface: String,
    /// Stable code.
    pub code: &'static str,
    /// `error`, `warning` or `info`.
    pub severity: &'static str,
    /// How many.
    pub count: u64,
}

impl FindingCount {
    /// Counts `findings` by interface, code and severity.
    pub fn count<'a>(
        findings: impl IntoIterator<Item = &'a crate::status::FindingDoc>,
    ) -> Vec<FindingCount> {
        let mut by: std::collections::BTreeMap<(&str, &'static str, &'static str), u64> =
            std::collections::BTreeMap::new();
        for f in findings {
            *by.entry((&f.iface, f.code, f.severity)).or_default() += 1;
        }
        by.into_iter()
            .map(|((iface, code, severity), count)| FindingCount {
                iface: iface.to_owned(),
                code,
                severity,
                count,
            })
            .collect()
    }
}

impl MetricsDoc {
    /// Adds `other`'s interfaces, bridges and findings.
    pub fn merge(&mut self, other: MetricsDoc) {
        self.interfaces.extend(other.interfaces);
        self.bridges.extend(other.bridges);
        self.findings.extend(other.findings);
    }

    /// Writes the document in the text exposition format 0.0.4 ([`CONTENT_TYPE`]),
    /// interfaces and bridges by name, through a buffer of its own.
    pub fn write_text(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        self.interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        self.bridges.sort_by(|a, b| a.name.cmp(&b.name));
        let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
        text::write(self, &mut w)?;
        w.flush()
    }
}

mod text;

#[cfg(test)]
mod tests;
