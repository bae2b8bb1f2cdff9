//! Flooded groups (`flood_groups`): groups the LAN's own protocols need on every port
//! whether or not a host there reports them: IPv6 solicited-node groups
//! (ff02::1:ff00:0/104, RFC 4291 §2.7.1; neighbour discovery, RFC 4861 §7.2.2) and mDNS
//! (ff02::fb, 224.0.0.251; RFC 6762 §3).
//!
//! Why MDB entries: once a querier exists the Linux bridge forwards unregistered IPv6
//! multicast other than ff02::1 to router ports only (`br_multicast_ipv6_rcv` marks it
//! `mrouters_only`; `br_handle_frame_finish` then takes `br_multicast_flood` with no
//! entry, which walks the router list only), so the port flag `mcast_flood` cannot help
//! and an nftables bridge rule cannot duplicate a frame to ports. A prefix cannot be an MDB
//! entry, so each concrete group of a prefix that igmpd hears of (a report on any port: a
//! host joins its solicited-node group before duplicate address detection, RFC 4862
//! §5.4.2, and mDNS responders join ff02::fb) becomes a (*,G) entry on every port up in
//! its VLAN, for as long as igmpd runs: never expiring, written like a static group's
//! (exempt from the ports' shares near the MDB limit). The bridge's hash counts groups, not
//! ports, so a flooded group costs one key, as the learned group did (README, "Flooded
//! groups"). 224.0.0.0/24 needs nothing: the kernel floods it anyway (RFC 4541 §2.1.2).
//!
//! At most `entry_limit` groups are flooded (each is one MDB key); a group past it is
//! snooped as before.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use igmpd_querier::core::observer::{Finding, Severity};

use super::domain::Shared;
use super::mdb::EntryFilter;
use super::EntryKey;

/// Most hosts whose port is kept for `nd-at-risk`.
const HOST_PORTS: usize = 4096;

/// The flood list when none is configured.
pub const DEFAULT_FLOOD_GROUPS: [&str; 3] = ["ff02::1:ff00:0/104", "ff02::fb", "224.0.0.251"];

/// A multicast prefix: `ff02::1:ff00:0/104`, or one group (`ff02::fb`: /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FloodPrefix {
    /// The prefix's address, bits past `len` zero.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

impl FloodPrefix {
    /// Whether `group` is in the prefix.
    pub fn contains(&self, group: IpAddr) -> bool {
        match (self.addr, group) {
            (IpAddr::V4(p), IpAddr::V4(g)) => mask4(u32::from(g), self.len) == u32::from(p),
            (IpAddr::V6(p), IpAddr::V6(g)) => mask6(u128::from(g), self.len) == u128::from(p),
            _ => false,
        }
    }
}

/// `v` with the bits past `len` (0..=32) cleared.
fn mask4(v: u32, len: u8) -> u32 {
    v & !(u32::MAX.checked_shr(u32::from(len)).unwrap_or(0))
}

/// `v` with the bits past `len` (0..=128) cleared.
fn mask6(v: u128, len: u8) -> u128 {
    v & !(u128::MAX.checked_shr(u32::from(len)).unwrap_or(0))
}

/// Why a flood prefix was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodPrefixError(String);

impl fmt::Display for FloodPrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FloodPrefixError {}

impl FromStr for FloodPrefix {
    type Err = FloodPrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |m: String| FloodPrefixError(m);
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| bad(format!("{a:?} is not an IP address")))?;
        let bits: u8 = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => bits,
            Some(l) => l
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= bits)
                .ok_or_else(|| bad(format!("prefix length {l:?} is not 0..={bits}")))?,
        };
        // The prefix must stay inside multicast space: ff00::/8 and 224.0.0.0/4.
        let min = if addr.is_ipv4() { 4 } else { 8 };
        if !addr.is_multicast() || len < min {
            return Err(bad(format!("{s} is not a multicast prefix")));
        }
        let masked = match addr {
            IpAddr::V4(p) => IpAddr::V4(mask4(u32::from(p), len).into()),
            IpAddr::V6(p) => IpAddr::V6(mask6(u128::from(p), len).into()),
        };
        if masked != addr {
            return Err(bad(format!(
                "{s} has bits set past its length (the prefix is {masked}/{len})"
            )));
        }
        Ok(FloodPrefix { addr, len })
    }
}

impl fmt::Display for FloodPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let full = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == full {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// The default flood list, parsed.
pub fn default_flood_groups() -> Vec<FloodPrefix> {
    DEFAULT_FLOOD_GROUPS
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect()
}

impl Shared {
    /// Whether `group` is in the flood list.
    pub(super) fn is_flood_group(&self, group: IpAddr) -> bool {
        self.cfg.flood_groups.iter().any(|p| p.contains(group))
    }

    /// A report named `group` in VLAN `vid`: when it is in the flood list, it is flooded
    /// from now on, on every port up in the VLAN.
    pub(super) fn heard_flood_group(&mut self, vid: u16, group: IpAddr) {
        if !self.is_flood_group(group) || self.flood.groups.contains(&(vid, group)) {
            return;
        }
        if self.flood.groups.len() >= self.cfg.entry_limit {
            return;
        }
        self.flood.groups.insert((vid, group));
        for key in self.flood_keys_of(vid, group).collect::<Vec<_>>() {
            if self.flood.keys.insert(key) {
                self.mdb.set_exempt(key, true);
                self.set_desired(key, Some(EntryFilter::Any));
            }
        }
    }

    /// An MLD report from `host` on `port` (for `nd-at-risk`).
    pub(super) fn heard_host(&mut self, port: u32, host: Option<IpAddr>) {
        let Some(IpAddr::V6(h)) = host else {
            return;
        };
        let map = &mut self.flood.host_ports;
        if map.len() < HOST_PORTS || map.contains_key(&h) {
            map.insert(h, port);
        }
    }

    /// Whether the flood list covers every solicited-node group (ff02::1:ff00:0/104).
    fn floods_solicited_nodes(&self) -> bool {
        let sn: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00, 0));
        self.cfg
            .flood_groups
            .iter()
            .any(|p| p.len <= 104 && p.contains(sn))
    }

    /// The MDB keys one flooded group makes now: every port up in its VLAN.
    fn flood_keys_of(&self, vid: u16, group: IpAddr) -> impl Iterator<Item = EntryKey> + '_ {
        let family_on = match group {
            IpAddr::V4(_) => self.cfg.igmp.is_some(),
            IpAddr::V6(_) => self.cfg.mld.is_some(),
        };
        self.ports
            .iter()
            // No VLANs on this bridge: an entry with a vid would match nothing.
            .filter(move |_| self.bridge_up && family_on && (vid == 0 || self.cfg.vlan_filtering))
            .filter(move |p| self.port_in_vlan(**p, vid))
            .map(move |port| EntryKey {
                port: *port,
                vid,
                group,
            })
    }

    /// The MDB keys every flooded group makes now.
    pub(super) fn effective_flood(&self) -> BTreeSet<EntryKey> {
        self.flood
            .groups
            .iter()
            .flat_map(|(vid, g)| self.flood_keys_of(*vid, *g))
            .collect()
    }
}

impl super::Snooper {
    /// `nd-at-risk`: an IPv6 host that answers no MLD query (the querier's `member-silent`,
    /// raised only while other hosts answer: IPv6 is in use on the LAN) on a bridge that
    /// does not flood solicited-node groups. Once its memberships expire the bridge sends
    /// neighbour solicitations for it to router ports only (see the module documentation),
    /// and its IPv6 unicast stops. `name` gives a port's name.
    pub fn nd_at_risk(
        &self,
        now: igmpd_querier::core::Instant,
        bridge: &str,
        name: impl Fn(u32) -> String,
    ) -> Vec<Finding> {
        if self.sh.floods_solicited_nodes() {
            return Vec::new();
        }
        let silent = self.findings(now, bridge);
        silent
            .iter()
            .filter(|f| f.code == "member-silent")
            .filter_map(|f| {
                let host: Ipv6Addr = f.host.as_deref()?.parse().ok()?;
                let port = name(*self.sh.flood.host_ports.get(&host)?);
                Some(Finding {
                    code: "nd-at-risk",
                    severity: Severity::Error,
                    iface: f.iface.clone(),
                    host: Some(host.to_string()),
                    group: None,
                    message: format!(
                        "host {host} on port {port} answers no MLD query while other hosts use IPv6, and {bridge} does not flood solicited-node groups: once its memberships expire, neighbour solicitations for it reach router ports only and its IPv6 unicast stops"
                    ),
                    hint: format!(
                        "flood them: flood_groups = [\"ff02::1:ff00:0/104\", \"ff02::fb\", \"224.0.0.251\"] in [bridge.{bridge}] (the default; or --flood-group ff02::1:ff00:0/104); or on {host}: let MLD queries in (nftables: `icmpv6 type mld-listener-query accept` in the input chain; ip6tables: `-A INPUT -p icmpv6 --icmpv6-type 130 -j ACCEPT`); `igmpd doctor IFACE` on that host shows the rule that drops it"
                    ),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> FloodPrefix {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_parse_and_match() {
        let sn = p("ff02::1:ff00:0/104");
        assert!(sn.contains(ip("ff02::1:ff12:3456")));
        assert!(!sn.contains(ip("ff02::1:fe12:3456")));
        assert!(!sn.contains(ip("ff02::fb")));
        assert!(!sn.contains(ip("224.0.0.251")));
        assert!(p("ff02::fb").contains(ip("ff02::fb")));
        assert!(!p("ff02::fb").contains(ip("ff02::fc")));
        assert!(p("224.0.0.251").contains(ip("224.0.0.251")));
        assert!(p("239.255.0.0/16").contains(ip("239.255.1.2")));
        assert!(!p("239.255.0.0/16").contains(ip("239.254.1.2")));
        assert_eq!(sn.to_string(), "ff02::1:ff00:0/104");
        assert_eq!(p("ff02::fb").to_string(), "ff02::fb");
        assert_eq!(default_flood_groups().len(), 3);
    }

    #[test]
    fn bad_prefixes_are_typed_errors() {
        for s in [
            "ff02::1:ff00:0/129",
            "fe80::/10",
            "10.0.0.0/8",
            "ff02::1:ff00:1/104",
            "ff00::/4",
            "nonsense",
            "ff02::fb/x",
            "",
        ] {
            assert!(s.parse::<FloodPrefix>().is_err(), "{s}");
        }
    }
}
