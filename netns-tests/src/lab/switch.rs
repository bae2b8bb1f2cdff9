//! The switch: the namespace with the bridge.

use std::net::{Ipv4Addr, Ipv6Addr};

use anyhow::{anyhow, Result};
use serde_json::Value;

use super::BridgeConfig;
use crate::mdb::{self, MdbEntry, RouterPort};
use crate::netns::Netns;

/// The switch: a namespace holding bridge `br0` with snooping on.
#[derive(Debug)]
pub struct Switch {
    pub(super) ns: Netns,
    pub(super) bridge: String,
    pub(super) bridge_ifindex: u32,
    pub(super) ipv4: Option<Ipv4Addr>,
    pub(super) ipv6_ll: Ipv6Addr,
    pub(super) config: BridgeConfig,
}

impl Switch {
    /// The switch namespace.
    pub fn netns(&self) -> &Netns {
        &self.ns
    }
    /// The switch namespace's name.
    pub fn ns_name(&self) -> &str {
        self.ns.name()
    }
    /// The bridge's name (`br0`).
    pub fn bridge(&self) -> &str {
        &self.bridge
    }
    /// The bridge's ifindex in the switch namespace.
    pub fn bridge_ifindex(&self) -> u32 {
        self.bridge_ifindex
    }
    /// The bridge's IPv4 address, if it has one.
    pub fn ipv4(&self) -> Option<Ipv4Addr> {
        self.ipv4
    }
    /// The bridge's IPv6 link-local address.
    pub fn ipv6_ll(&self) -> Ipv6Addr {
        self.ipv6_ll
    }
    /// The settings the bridge was created with (plus later [`Switch::set_bridge`] calls).
    pub fn config(&self) -> &BridgeConfig {
        &self.config
    }
    /// Changes bridge settings at run time (`ip link set br0 type bridge ...`, `querier`
    /// last in a request of its own); fields that are `None` in `config` stay as they are.
    pub fn set_bridge(&mut self, config: &BridgeConfig) -> Result<()> {
        let (rest, querier) = config.ip_link_args_querier_last();
        for extra in std::iter::once(rest).chain(querier) {
            let mut args = vec!["link", "set", self.bridge.as_str(), "type", "bridge"];
            args.extend(extra.iter().map(String::as_str));
            self.ns.ip(&args)?;
        }
        let c = &mut self.config;
        macro_rules! merge {
            ($($f:ident),*) => { $( if config.$f.is_some() { c.$f = config.$f; } )* };
        }
        merge!(
            querier,
            query_use_ifaddr,
            query_interval,
            query_response_interval,
            membership_interval,
            querier_interval,
            last_member_interval,
            last_member_count,
            startup_query_interval,
            startup_query_count,
            igmp_version,
            mld_version
        );
        Ok(())
    }
    /// The bridge's multicast settings as the kernel reports them (`ip -d -j link show`):
    /// the `linkinfo.info_data` object, e.g. `["mcast_query_intvl"] == 200` (iproute2 6.15 key names).
    pub fn bridge_info(&self) -> Result<serde_json::Map<String, Value>> {
        let out = self
            .ns
            .ip(&["-d", "-j", "link", "show", "dev", &self.bridge])?;
        let v: Value = serde_json::from_str(&out)?;
        v.pointer("/0/linkinfo/info_data")
            .and_then(Value::as_object)
            .cloned()
            .ok_or_else(|| anyhow!("no linkinfo for {}", self.bridge))
    }
    /// The bridge's MDB entries.
    pub fn mdb(&self) -> Result<Vec<MdbEntry>> {
        mdb::dump(self.ns.name(), &self.bridge)
    }
    /// The bridge's multicast router ports.
    pub fn router_ports(&self) -> Result<Vec<RouterPort>> {
        Ok(mdb::dump_all(self.ns.name(), &self.bridge)?.routers)
    }
}
