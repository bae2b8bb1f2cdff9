//! A switch namespace with a snooping Linux bridge, and host namespaces on its ports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::mdb::{self, MdbEntry, RouterPort};
use crate::netns::{cleanup_stale_namespaces, Netns};
use crate::poll::poll_until_ok;

static LAB_COUNTER: AtomicU32 = AtomicU32::new(0);

/// How long a new lab may take to get its addresses usable (DAD off, so this is slack).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(20);

/// IGMP version the bridge's querier speaks (`mcast_igmp_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgmpVersion {
    /// IGMPv2 queries (the kernel's default).
    V2,
    /// IGMPv3 queries.
    V3,
}

/// MLD version the bridge's querier speaks (`mcast_mld_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MldVersion {
    /// MLDv1 queries (the kernel's default).
    V1,
    /// MLDv2 queries.
    V2,
}

/// Multicast settings of the lab's bridge, as `ip link add/set BR type bridge ...` takes
/// them. `None` leaves the kernel default. Durations are rounded to the centiseconds
/// iproute2 expects. Snooping (`mcast_snooping 1`) is always on.
///
/// The kernel raises query and startup-query intervals below 1 s to 1 s.
///
/// Kernel 6.18 fact: snooping forwards by the MDB only from one Max Response Delay after a
/// querier appears; until then every group is flooded. Enabling `mcast_querier` arms that
/// delay with the response interval in force at that moment, and the kernel applies
/// `mcast_querier` before `mcast_query_response_interval` within one request. So the lab
/// (and [`Switch::set_bridge`]) applies `querier` in a second request, after the timers:
/// with [`BridgeConfig::fast_querier`] forwarding by the MDB starts about 1 s after the
/// bridge comes up instead of 10 s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeConfig {
    /// `mcast_querier`: the bridge sends general queries itself.
    pub querier: Option<bool>,
    /// `mcast_query_use_ifaddr`: queries from the bridge's IPv4 address instead of 0.0.0.0.
    pub query_use_ifaddr: Option<bool>,
    /// `mcast_query_interval`.
    pub query_interval: Option<Duration>,
    /// `mcast_query_response_interval` (Max Resp Time of general queries).
    pub query_response_interval: Option<Duration>,
    /// `mcast_membership_interval`: a learned port group ages out this long after the
    /// last report.
    pub membership_interval: Option<Duration>,
    /// `mcast_querier_interval`: Other Querier Present interval.
    pub querier_interval: Option<Duration>,
    /// `mcast_last_member_interval`.
    pub last_member_interval: Option<Duration>,
    /// `mcast_last_member_count`.
    pub last_member_count: Option<u32>,
    /// `mcast_startup_query_interval`.
    pub startup_query_interval: Option<Duration>,
    /// `mcast_startup_query_count`.
    pub startup_query_count: Option<u32>,
    /// `mcast_igmp_version`.
    pub igmp_version: Option<IgmpVersion>,
    /// `mcast_mld_version`.
    pub mld_version: Option<MldVersion>,
}

impl BridgeConfig {
    /// Snooping on, everything else at kernel defaults (no querier: the kernel then floods
    /// all multicast, even groups it has MDB entries for).
    pub fn snooping() -> BridgeConfig {
        BridgeConfig::default()
    }

    /// The bridge is the querier, from its IPv4 address, with short timers: IGMPv3/MLDv2,
    /// query interval 2 s, response interval 1 s, membership interval 5 s, startup queries
    /// 2 × 1 s, last member 2 × 1 s.
    pub fn fast_querier() -> BridgeConfig {
        BridgeConfig {
            querier: Some(true),
            query_use_ifaddr: Some(true),
            query_interval: Some(Duration::from_secs(2)),
            query_response_interval: Some(Duration::from_secs(1)),
            membership_interval: Some(Duration::from_secs(5)),
            querier_interval: None,
            last_member_interval: Some(Duration::from_secs(1)),
            last_member_count: Some(2),
            startup_query_interval: Some(Duration::from_secs(1)),
            startup_query_count: Some(2),
            igmp_version: Some(IgmpVersion::V3),
            mld_version: Some(MldVersion::V2),
        }
    }

    /// Sets `mcast_querier`.
    pub fn querier(mut self, on: bool) -> Self {
        self.querier = Some(on);
        self
    }
    /// Sets `mcast_query_use_ifaddr`.
    pub fn query_use_ifaddr(mut self, on: bool) -> Self {
        self.query_use_ifaddr = Some(on);
        self
    }
    /// Sets `mcast_query_interval`.
    pub fn query_interval(mut self, d: Duration) -> Self {
        self.query_interval = Some(d);
        self
    }
    /// Sets `mcast_query_response_interval`.
    pub fn query_response_interval(mut self, d: Duration) -> Self {
        self.query_response_interval = Some(d);
        self
    }
    /// Sets `mcast_membership_interval`.
    pub fn membership_interval(mut self, d: Duration) -> Self {
        self.membership_interval = Some(d);
        self
    }
    /// Sets `mcast_querier_interval`.
    pub fn querier_interval(mut self, d: Duration) -> Self {
        self.querier_interval = Some(d);
        self
    }
    /// Sets `mcast_last_member_interval`.
    pub fn last_member_interval(mut self, d: Duration) -> Self {
        self.last_member_interval = Some(d);
        self
    }
    /// Sets `mcast_last_member_count`.
    pub fn last_member_count(mut self, n: u32) -> Self {
        self.last_member_count = Some(n);
        self
    }
    /// Sets `mcast_startup_query_interval`.
    pub fn startup_query_interval(mut self, d: Duration) -> Self {
        self.startup_query_interval = Some(d);
        self
    }
    /// Sets `mcast_startup_query_count`.
    pub fn startup_query_count(mut self, n: u32) -> Self {
        self.startup_query_count = Some(n);
        self
    }
    /// Sets `mcast_igmp_version`.
    pub fn igmp_version(mut self, v: IgmpVersion) -> Self {
        self.igmp_version = Some(v);
        self
    }
    /// Sets `mcast_mld_version`.
    pub fn mld_version(mut self, v: MldVersion) -> Self {
        self.mld_version = Some(v);
        self
    }

    /// The `type bridge` arguments for `ip link add/set`, e.g.
    /// `["mcast_snooping", "1", "mcast_query_interval", "200", ...]`, in one list (see the
    /// type's docs for why the lab sends `mcast_querier` separately).
    pub fn ip_link_args(&self) -> Vec<String> {
        fn cs(d: Duration) -> String {
            ((d.as_millis() + 5) / 10).to_string()
        }
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        let mut a: Vec<(&str, String)> = vec![("mcast_snooping", "1".to_owned())];
        let c = self;
        if let Some(v) = c.querier {
            a.push(("mcast_querier", flag(v)));
        }
        if let Some(v) = c.query_use_ifaddr {
            a.push(("mcast_query_use_ifaddr", flag(v)));
        }
        if let Some(v) = c.query_interval {
            a.push(("mcast_query_interval", cs(v)));
        }
        if let Some(v) = c.query_response_interval {
            a.push(("mcast_query_response_interval", cs(v)));
        }
        if let Some(v) = c.membership_interval {
            a.push(("mcast_membership_interval", cs(v)));
        }
        if let Some(v) = c.querier_interval {
            a.push(("mcast_querier_interval", cs(v)));
        }
        if let Some(v) = c.last_member_interval {
            a.push(("mcast_last_member_interval", cs(v)));
        }
        if let Some(v) = c.last_member_count {
            a.push(("mcast_last_member_count", v.to_string()));
        }
        if let Some(v) = c.startup_query_interval {
            a.push(("mcast_startup_query_interval", cs(v)));
        }
        if let Some(v) = c.startup_query_count {
            a.push(("mcast_startup_query_count", v.to_string()));
        }
        if let Some(v) = c.igmp_version {
            let v = match v {
                IgmpVersion::V2 => "2",
                IgmpVersion::V3 => "3",
            };
            a.push(("mcast_igmp_version", v.to_owned()));
        }
        if let Some(v) = c.mld_version {
            let v = match v {
                MldVersion::V1 => "1",
                MldVersion::V2 => "2",
            };
            a.push(("mcast_mld_version", v.to_owned()));
        }
        a.into_iter().flat_map(|(k, v)| [k.to_owned(), v]).collect()
    }

    /// [`BridgeConfig::ip_link_args`] split in two requests: everything but
    /// `mcast_querier`, then `mcast_querier` alone (if set).
    fn ip_link_args_querier_last(&self) -> (Vec<String>, Option<Vec<String>>) {
        let rest = BridgeConfig {
            querier: None,
            ..self.clone()
        };
        let querier = self.querier.map(|q| {
            vec![
                "mcast_querier".to_owned(),
                if q { "1" } else { "0" }.to_owned(),
            ]
        });
        (rest.ip_link_args(), querier)
    }
}

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
    bridge: BridgeConfig,
    bridge_ipv4: bool,
    hosts: Vec<HostSpec>,
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

/// The switch: a namespace holding bridge `br0` with snooping on.
#[derive(Debug)]
pub struct Switch {
    ns: Netns,
    bridge: String,
    bridge_ifindex: u32,
    ipv4: Option<Ipv4Addr>,
    ipv6_ll: Ipv6Addr,
    config: BridgeConfig,
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

/// A host: its own namespace, with `eth0` the far end of a veth pair whose near end is a
/// port of the bridge.
#[derive(Debug)]
pub struct Host {
    name: String,
    ns: Netns,
    ifname: String,
    ifindex: u32,
    port: String,
    port_ifindex: u32,
    mac: String,
    ipv4: Ipv4Addr,
    ipv6_ll: Ipv6Addr,
    ipv6: Ipv6Addr,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_args_are_centiseconds() {
        let a = BridgeConfig::fast_querier().ip_link_args().join(" ");
        assert!(a.starts_with("mcast_snooping 1 mcast_querier 1 mcast_query_use_ifaddr 1"));
        assert!(a.contains("mcast_query_interval 200"));
        assert!(a.contains("mcast_query_response_interval 100"));
        assert!(a.contains("mcast_membership_interval 500"));
        assert!(a.contains("mcast_igmp_version 3 mcast_mld_version 2"));
        assert_eq!(
            BridgeConfig::snooping().ip_link_args(),
            ["mcast_snooping", "1"]
        );
        let odd = BridgeConfig::snooping().query_interval(Duration::from_millis(1234));
        assert_eq!(odd.ip_link_args()[3], "123");
    }
}
