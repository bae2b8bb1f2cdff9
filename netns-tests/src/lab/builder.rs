//! Building a lab: namespaces, the bridge, veth pairs, addresses.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use super::{BridgeConfig, Host, Lab, Switch};
use crate::netns::{cleanup_stale_namespaces, Netns};
use crate::poll::poll_until_ok;

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long a new lab may take to get its addresses usable (DAD off, so this is slack).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// How to set up one host of a lab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSpec {
    name: String,
    force_igmp_version: Option<u8>,
    force_mld_version: Option<u8>,
}

impl HostSpec {
    /// A host called `name` (a role such as "a" or "sender"; unique within the lab).
    pub fn new(name: &str) -> HostSpec {
        HostSpec {
            name: name.to_owned(),
            force_igmp_version: None,
            force_mld_version: None,
        }
    }

    /// `net.ipv4.conf.eth0.force_igmp_version` (0 = auto, 1, 2, 3), set before any join.
    pub fn force_igmp_version(mut self, v: u8) -> Self {
        self.force_igmp_version = Some(v);
        self
    }

    /// `net.ipv6.conf.eth0.force_mld_version` (0 = auto, 1, 2), set before any join.
    pub fn force_mld_version(mut self, v: u8) -> Self {
        self.force_mld_version = Some(v);
        self
    }
}

/// Builds a [`Lab`]: see [`Lab::builder`].
#[derive(Clone, Debug)]
pub struct LabBuilder {
    pub(super) bridge: BridgeConfig,
    pub(super) bridge_ipv4: bool,
    pub(super) hosts: Vec<HostSpec>,
}

impl LabBuilder {
    /// The bridge's multicast settings (default: [`BridgeConfig::snooping`]).
    pub fn bridge(mut self, config: BridgeConfig) -> Self {
        self.bridge = config;
        self
    }

    /// Whether the bridge gets the lab's `.254` IPv4 address (default: yes; needed for
    /// `query_use_ifaddr`).
    pub fn bridge_ipv4(mut self, on: bool) -> Self {
        self.bridge_ipv4 = on;
        self
    }

    /// Adds a host with default settings.
    pub fn host(mut self, name: &str) -> Self {
        self.hosts.push(HostSpec::new(name));
        self
    }

    /// Adds hosts with default settings.
    pub fn hosts(mut self, names: &[&str]) -> Self {
        self.hosts.extend(names.iter().map(|n| HostSpec::new(n)));
        self
    }

    /// Adds a host described by `spec`.
    pub fn host_spec(mut self, spec: HostSpec) -> Self {
        self.hosts.push(spec);
        self
    }

    /// Creates the namespaces, bridge, veth pairs and addresses; returns once every host's
    /// interface is up with usable IPv4, IPv6 link-local and IPv6 ULA addresses.
    ///
    /// Removes stale namespaces of crashed earlier runs first
    /// ([`crate::cleanup_stale_namespaces`]).
    pub fn build(self) -> Result<Lab> {
        if let Err(e) = cleanup_stale_namespaces() {
            eprintln!("netns-tests: stale namespace cleanup failed: {e:#}");
        }
        if self.hosts.len() > 250 {
            bail!("at most 250 hosts");
        }
        for (i, h) in self.hosts.iter().enumerate() {
            if self.hosts[..i].iter().any(|o| o.name == h.name) {
                bail!("duplicate host name {:?}", h.name);
            }
        }
        let id = LAB_COUNTER.fetch_add(1, Ordering::Relaxed);
        // 10.<100 + pid % 100>.<lab % 256>.0/24 and fd49:<pid % 65536>:<lab % 65536>::/64:
        // not needed for isolation (namespaces are), only to tell captures apart.
        let pid = std::process::id();
        let v4_net = [10, 100 + (pid % 100) as u8, (id % 256) as u8];
        let v6_net = [0xfd49, (pid % 65536) as u16, (id % 65536) as u16];
        let v4 = |n: u8| Ipv4Addr::new(v4_net[0], v4_net[1], v4_net[2], n);
        let v6 = |n: u16| Ipv6Addr::new(v6_net[0], v6_net[1], v6_net[2], 0, 0, 0, 0, n);

        let sw = Netns::new()?;
        let mut host_ns = Vec::new();
        for _ in &self.hosts {
            host_ns.push(Netns::new()?);
        }
        // -e: the br_netfilter keys exist only when that module is loaded.
        sw.exec_ok(&[
            "sysctl",
            "-q",
            "-e",
            "-w",
            "net.bridge.bridge-nf-call-iptables=0",
            "net.bridge.bridge-nf-call-ip6tables=0",
            "net.bridge.bridge-nf-call-arptables=0",
            "net.ipv6.conf.all.accept_dad=0",
            "net.ipv6.conf.default.accept_dad=0",
        ])?;
        for ns in &host_ns {
            ns.disable_dad()?;
        }

        let bridge = "br0";
        let (bridge_args, querier_args) = self.bridge.ip_link_args_querier_last();
        let mut batch = format!("link add {bridge} type bridge {}\n", bridge_args.join(" "));
        if let Some(q) = querier_args {
            batch += &format!("link set {bridge} type bridge {}\n", q.join(" "));
        }
        for (i, ns) in host_ns.iter().enumerate() {
            let port = format!("p{}", i + 1);
            batch += &format!(
                "link add {port} type veth peer name eth0 netns {}\n\
                 link set {port} master {bridge}\n\
                 link set {port} up\n",
                ns.name()
            );
        }
        let bridge_ipv4 = self.bridge_ipv4.then(|| v4(254));
        if let Some(a) = bridge_ipv4 {
            batch += &format!("addr add {a}/24 dev {bridge}\n");
        }
        sw.ip_batch(&batch)?;
        // Bridge ports are not hosts: without this their own IPv6 stacks send MLD reports
        // for their link-local addresses that they never refresh (a port hands every frame
        // to the bridge, so it never hears a query), which looks like a host gone silent.
        let mut no_v6 = vec!["sysctl".to_owned(), "-q".to_owned(), "-w".to_owned()];
        no_v6.extend((1..=host_ns.len()).map(|i| format!("net.ipv6.conf.p{i}.disable_ipv6=1")));
        if host_ns.is_empty() {
            no_v6.clear();
        }
        if !no_v6.is_empty() {
            let argv: Vec<&str> = no_v6.iter().map(String::as_str).collect();
            sw.exec_ok(&argv)?;
        }

        let mut hosts = Vec::new();
        for (i, (spec, ns)) in self.hosts.iter().zip(host_ns).enumerate() {
            let n = u8::try_from(i + 1).context("too many hosts")?;
            let mut sysctls = vec![
                "sysctl".to_owned(),
                "-q".to_owned(),
                "-w".to_owned(),
                "net.ipv6.conf.eth0.accept_dad=0".to_owned(),
            ];
            if let Some(v) = spec.force_igmp_version {
                sysctls.push(format!("net.ipv4.conf.eth0.force_igmp_version={v}"));
            }
            if let Some(v) = spec.force_mld_version {
                sysctls.push(format!("net.ipv6.conf.eth0.force_mld_version={v}"));
            }
            let argv: Vec<&str> = sysctls.iter().map(String::as_str).collect();
            ns.exec_ok(&argv)?;
            ns.ip_batch(&format!(
                "addr add {}/24 dev eth0\naddr add {}/64 dev eth0 nodad\nlink set eth0 up\n",
                v4(n),
                v6(u16::from(n))
            ))?;
            hosts.push(Host {
                name: spec.name.clone(),
                ns,
                ifname: "eth0".to_owned(),
                ifindex: 0,
                port: format!("p{n}"),
                port_ifindex: 0,
                mac: String::new(),
                ipv4: v4(n),
                ipv6_ll: Ipv6Addr::UNSPECIFIED,
                ipv6: v6(u16::from(n)),
            });
        }
        sw.ip(&["link", "set", bridge, "up"])?;

        for h in &mut hosts {
            let (ifindex, mac, ll) = wait_link_ready(&h.ns, &h.ifname)?;
            h.ifindex = ifindex;
            h.mac = mac;
            h.ipv6_ll = ll;
            h.port_ifindex = sw.ifindex(&h.port)?;
        }
        let (bridge_ifindex, _, bridge_ll) = wait_link_ready(&sw, bridge)?;
        Ok(Lab {
            switch: Switch {
                ns: sw,
                bridge: bridge.to_owned(),
                bridge_ifindex,
                ipv4: bridge_ipv4,
                ipv6_ll: bridge_ll,
                config: self.bridge,
            },
            hosts,
            subnet_v4: (v4(0), 24),
        })
    }
}

/// Polls until `ifname` is up with a non-tentative IPv6 link-local address and no
/// tentative address at all; returns its ifindex, MAC and link-local address.
fn wait_link_ready(ns: &Netns, ifname: &str) -> Result<(u32, String, Ipv6Addr)> {
    poll_until_ok(SETTLE_TIMEOUT, Duration::from_millis(20), || {
        let out = ns.ip(&["-j", "addr", "show", "dev", ifname])?;
        let v: Value = serde_json::from_str(&out)?;
        let link = v.get(0).ok_or_else(|| anyhow!("no link {ifname}"))?;
        let up = link
            .get("flags")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|f| f == "LOWER_UP"));
        let mut ll = None;
        let mut tentative = false;
        for a in link
            .get("addr_info")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if a.get("tentative").is_some() {
                tentative = true;
            }
            if a.get("family") == Some(&Value::from("inet6"))
                && a.get("scope") == Some(&Value::from("link"))
            {
                ll = a
                    .get("local")
                    .and_then(Value::as_str)
                    .and_then(|s| s.parse::<Ipv6Addr>().ok());
            }
        }
        let ifindex = link
            .get("ifindex")
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok());
        let mac = link
            .get("address")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok::<_, anyhow::Error>(match (up, tentative, ll, ifindex, mac) {
            (true, false, Some(ll), Some(i), Some(mac)) => Some((i, mac, ll)),
            _ => None,
        })
    })
    .with_context(|| format!("{ifname} in {} not ready", ns.name()))
}
