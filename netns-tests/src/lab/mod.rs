//! A switch namespace with a snooping Linux bridge, and host namespaces on its ports.
//!
//! [`BridgeConfig`] (bridge.rs) says how the bridge is set up, [`LabBuilder`] (builder.rs)
//! creates the namespaces and links, [`Switch`] (switch.rs) and [`Host`] (host.rs) are what
//! a test then reaches through the [`Lab`].

mod bridge;
mod builder;
mod host;
mod switch;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{Context, Result};

pub use bridge::{BridgeConfig, IgmpVersion, MldVersion};
pub use builder::{HostSpec, LabBuilder};
pub use host::Host;
pub use switch::Switch;

use crate::mdb::MdbEntry;
use crate::poll::poll_until_ok;

/// A switch and its hosts; everything is torn down on drop.
#[derive(Debug)]
pub struct Lab {
    // Hosts drop first, then the switch (whose namespace holds the bridge ends).
    hosts: Vec<Host>,
    switch: Switch,
    subnet_v4: (Ipv4Addr, u8),
}

impl Lab {
    /// Starts describing a lab: no hosts, [`BridgeConfig::snooping`], bridge with an
    /// IPv4 address.
    pub fn builder() -> LabBuilder {
        LabBuilder {
            bridge: BridgeConfig::snooping(),
            bridge_ipv4: true,
            hosts: Vec::new(),
        }
    }
    /// The switch.
    pub fn switch(&self) -> &Switch {
        &self.switch
    }
    /// The switch, to change bridge settings.
    pub fn switch_mut(&mut self) -> &mut Switch {
        &mut self.switch
    }
    /// The host called `name`.
    ///
    /// # Panics
    /// If there is no such host (a typo in a test).
    pub fn host(&self, name: &str) -> &Host {
        self.try_host(name)
            .unwrap_or_else(|| panic!("no host {name:?} in this lab"))
    }
    /// The host called `name`, if any.
    pub fn try_host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }
    /// All hosts, in the order they were added.
    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }
    /// The lab's IPv4 subnet: network address and prefix length.
    pub fn subnet_v4(&self) -> (Ipv4Addr, u8) {
        self.subnet_v4
    }
    /// Names of every namespace of this lab (switch first).
    pub fn namespaces(&self) -> Vec<String> {
        std::iter::once(self.switch.ns_name().to_owned())
            .chain(self.hosts.iter().map(|h| h.ns_name().to_owned()))
            .collect()
    }
    /// The bridge's MDB entries.
    pub fn mdb(&self) -> Result<Vec<MdbEntry>> {
        self.switch.mdb()
    }
    /// Whether the MDB holds a (*,G) entry for `group` on `host`'s port.
    pub fn has_membership(&self, host: &str, group: IpAddr) -> Result<bool> {
        let port = self.host(host).port();
        Ok(self.mdb()?.iter().any(|e| e.is_star_g(port, group)))
    }

    /// Polls the MDB until [`Lab::has_membership`] equals `present`, for at most `timeout`.
    pub fn wait_membership(
        &self,
        host: &str,
        group: IpAddr,
        present: bool,
        timeout: Duration,
    ) -> Result<()> {
        poll_until_ok(timeout, Duration::from_millis(25), || {
            Ok::<_, anyhow::Error>((self.has_membership(host, group)? == present).then_some(()))
        })
        .with_context(|| {
            format!(
                "{group} on {host}'s port {} should be {}",
                self.host(host).port(),
                if present { "registered" } else { "gone" }
            )
        })
    }
}
