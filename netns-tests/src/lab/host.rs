//! A host of the lab: a namespace on one bridge port.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::Result;

use crate::netns::Netns;

/// A host: its own namespace, with `eth0` the far end of a veth pair whose near end is a
/// port of the bridge.
#[derive(Debug)]
pub struct Host {
    pub(super) name: String,
    pub(super) ns: Netns,
    pub(super) ifname: String,
    pub(super) ifindex: u32,
    pub(super) port: String,
    pub(super) port_ifindex: u32,
    pub(super) mac: String,
    pub(super) ipv4: Ipv4Addr,
    pub(super) ipv6_ll: Ipv6Addr,
    pub(super) ipv6: Ipv6Addr,
}

impl Host {
    /// The host's role name given to the builder.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The host's namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }
    /// The host namespace's name.
    pub fn ns_name(&self) -> &str {
        self.ns.name()
    }
    /// The host's interface (`eth0`).
    pub fn ifname(&self) -> &str {
        &self.ifname
    }
    /// The host interface's ifindex (in the host namespace).
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }
    /// The bridge port the host hangs off (`pN`, in the switch namespace).
    pub fn port(&self) -> &str {
        &self.port
    }
    /// The bridge port's ifindex (in the switch namespace).
    pub fn port_ifindex(&self) -> u32 {
        self.port_ifindex
    }
    /// The host interface's MAC address, `aa:bb:cc:dd:ee:ff`.
    pub fn mac(&self) -> &str {
        &self.mac
    }
    /// The host's IPv4 address (prefix length 24).
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ipv4
    }
    /// The host's IPv6 link-local address.
    pub fn ipv6_ll(&self) -> Ipv6Addr {
        self.ipv6_ll
    }
    /// The host's IPv6 ULA address (prefix length 64).
    pub fn ipv6(&self) -> Ipv6Addr {
        self.ipv6
    }
    /// The host's IPv4 or IPv6 (ULA) address, matching the family of `like`.
    pub fn addr_like(&self, like: IpAddr) -> IpAddr {
        match like {
            IpAddr::V4(_) => IpAddr::V4(self.ipv4),
            IpAddr::V6(_) => IpAddr::V6(self.ipv6),
        }
    }
    /// Sets `net.ipv4.conf.eth0.force_igmp_version`. The kernel applies it to later
    /// reports; a host that heard an older query stays in that mode for its timeout anyway.
    pub fn set_force_igmp_version(&self, v: u8) -> Result<()> {
        self.ns.sysctl(
            &format!("net.ipv4.conf.{}.force_igmp_version", self.ifname),
            &v.to_string(),
        )
    }
    /// Sets `net.ipv6.conf.eth0.force_mld_version`.
    pub fn set_force_mld_version(&self, v: u8) -> Result<()> {
        self.ns.sysctl(
            &format!("net.ipv6.conf.{}.force_mld_version", self.ifname),
            &v.to_string(),
        )
    }
    /// Loads an nftables ruleset in the host's namespace.
    pub fn nft(&self, ruleset: &str) -> Result<()> {
        self.ns.nft(ruleset)
    }
}
