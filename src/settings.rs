//! From option values (flags, or config sections resolved to flags) to what the daemons
//! run with: one conversion for `igmpd query`, `igmpd snoop` and `igmpd run`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use igmpd_querier::core::{Config, Generation, HostJoin, Proto};
use igmpd_snooping::shell::SnoopSettings;

use igmpd_snooping::core::policy::{AclAction, AclRule, LimitAction, Prefix};
use igmpd_snooping::core::{PortPolicy, StaticGroup};

use crate::cli::{HostArgs, PolicyArgs, ProtocolArgs, SnoopingArgs, StartupArgs};

/// The host joins of an interface, checked as one socket per family holds them (each
/// join once, one filter mode per group).
pub fn joins(h: &HostArgs) -> Result<Vec<HostJoin>> {
    igmpd_querier::core::host::check_list(&h.join).context("join")?;
    Ok(h.join.clone())
}

/// One ACL rule as written (`{ action = "deny", group = "239.255.0.0/16" }`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AclEntry {
    /// "permit" or "deny".
    pub action: String,
    /// A group prefix (`239.255.0.0/16`) or one group.
    pub group: String,
    /// A source prefix or address: the rule then applies to source-specific joins only.
    pub source: Option<String>,
}

fn acl_action(key: &str, s: &str) -> Result<AclAction> {
    match s {
        "permit" => Ok(AclAction::Permit),
        "deny" => Ok(AclAction::Deny),
        _ => anyhow::bail!("{key} must be \"permit\" or \"deny\", not {s:?}"),
    }
}

impl AclEntry {
    /// The rule, checked: the group prefix is multicast, the families agree.
    pub fn rule(&self) -> Result<AclRule> {
        let action = acl_action("action", &self.action)?;
        let group = Prefix::parse(&self.group).map_err(|e| anyhow::anyhow!("group: {e}"))?;
        let source = self
            .source
            .as_deref()
            .map(Prefix::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("source: {e}"))?;
        if let Some(src) = &source {
            if src.is_ipv4() != group.is_ipv4() {
                anyhow::bail!("source {src} and group {group} are of different families");
            }
        }
        if !group.is_multicast() {
            anyhow::bail!("group {group} is not a multicast prefix (224.0.0.0/4, ff00::/8)");
        }
        Ok(AclRule {
            action,
            group,
            source,
        })
    }
}

/// One static group as written (`{ group = "232.1.1.1", source = "10.0.0.5", vlan = 10 }`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticEntry {
    /// The group.
    pub group: String,
    /// Only this source.
    pub source: Option<String>,
    /// The VLAN (VLAN-filtering bridges).
    pub vlan: Option<u16>,
}

impl StaticEntry {
    /// The static group, checked (see [`StaticGroup::check`]).
    pub fn group(&self) -> Result<StaticGroup> {
        static_group(&self.group, self.source.as_deref(), self.vlan)
    }
}

/// A static group from its parts as given (config or `igmpd static`), checked.
pub fn static_group(group: &str, source: Option<&str>, vlan: Option<u16>) -> Result<StaticGroup> {
    let parse = |what: &str, s: &str| -> Result<std::net::IpAddr> {
        s.trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{what} {s:?} is not an IP address"))
    };
    if vlan == Some(0) {
        anyhow::bail!("vlan must be 1..=4094 (leave it out for untagged)");
    }
    let g = StaticGroup {
        group: parse("group", group)?,
        source: source.map(|s| parse("source", s)).transpose()?,
        vid: vlan.unwrap_or(0),
    };
    g.check().map_err(|e| anyhow::anyhow!(e))?;
    Ok(g)
}

/// What a port may do besides its option group's keys: `router_guard`, `fast_leave`,
/// `flood_unregistered` and `flood_reports`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortFlags {
    /// Queries, PIM hellos and MRD from the port are dropped.
    pub router_guard: bool,
    /// Leaves end the port's membership at once where no other host is in the group.
    pub fast_leave: bool,
    /// The port's `mcast_flood` while igmpd runs (None: as it is).
    pub flood_unregistered: Option<bool>,
    /// The port also gets every report forwarded (a downstream snooping switch).
    pub flood_reports: bool,
}

/// A port policy from its options, flags and ACL rules.
pub fn policy(p: &PolicyArgs, flags: PortFlags, acl: Vec<AclRule>) -> Result<PortPolicy> {
    let limit_action = match p.limit_action.as_str() {
        "deny" => LimitAction::Deny,
        "replace" => LimitAction::Replace,
        other => anyhow::bail!("limit_action must be \"deny\" or \"replace\", not {other:?}"),
    };
    if p.max_sources == Some(0) {
        anyhow::bail!("max_sources must be at least 1");
    }
    if p.max_report_rate == Some(0) {
        anyhow::bail!("max_report_rate must be at least 1 (unset: no limit)");
    }
    Ok(PortPolicy {
        max_groups: p.max_groups.map(|n| n as usize),
        max_sources: p.max_sources.map(|n| n as usize),
        limit_action,
        router_guard: flags.router_guard,
        acl,
        acl_default: acl_action("acl_default", &p.acl_default)?,
        max_report_rate: p.max_report_rate,
        require_router_alert: p.require_router_alert,
        fast_leave: flags.fast_leave,
        flood_unregistered: flags.flood_unregistered,
        flood_reports: flags.flood_reports,
    })
}

/// The IGMP and the MLD config (None: that family is off).
pub type Families = (Option<Config>, Option<Config>);

/// Builds and checks the per-family configuration.
pub fn families(p: &ProtocolArgs, startup: &StartupArgs, passive: bool) -> Result<Families> {
    if p.no_igmp && p.no_mld {
        anyhow::bail!("--no-igmp and --no-mld together leave nothing to do");
    }
    let make = |proto: Proto, version: u8| -> Result<Config> {
        let mut c = Config::new(proto);
        c.version = Generation::from_version(proto, version)
            .with_context(|| format!("{} has no version {version}", proto.name()))?;
        c.query_interval = p.query_interval;
        c.query_response_interval = p.query_response_interval;
        c.robustness = p.robustness;
        c.last_member_query_interval = p.last_member_query_interval;
        c.last_member_query_count = p.last_member_query_count;
        c.startup_query_interval = startup.startup_query_interval;
        c.startup_query_count = startup.startup_query_count;
        c.passive = passive;
        c.validate().map_err(|e| {
            anyhow::anyhow!("invalid {} settings: {e}", proto.name().to_uppercase())
        })?;
        Ok(c)
    };
    let igmp = (!p.no_igmp)
        .then(|| make(Proto::Igmp, p.igmp_version))
        .transpose()?;
    let mld = (!p.no_mld)
        .then(|| make(Proto::Mld, p.mld_version))
        .transpose()?;
    Ok((igmp, mld))
}

/// One snooped bridge, resolved (from `igmpd snoop`'s flags or a `[bridge.NAME]` section).
#[derive(Debug, Clone, PartialEq)]
pub struct Bridge {
    /// Bridge name.
    pub name: String,
    /// IGMP settings of the bridge (None: not snooped).
    pub igmp: Option<Config>,
    /// MLD settings.
    pub mld: Option<Config>,
    /// Querier, router ports, hash limit.
    pub snooping: SnoopingArgs,
    /// Per-VLAN settings that differ from the bridge's: (IGMP, MLD) per VID.
    pub vlans: BTreeMap<u16, Families>,
    /// Per-VLAN querier sources (`querier_address`).
    pub vlan_addresses: BTreeMap<u16, igmpd_snooping::core::VlanAddresses>,
    /// What every port may do.
    pub policy: PortPolicy,
    /// Ports with a policy of their own, by name.
    pub port_policies: BTreeMap<String, PortPolicy>,
    /// Ports' static groups (`static_groups`), by name.
    pub static_groups: BTreeMap<String, BTreeSet<StaticGroup>>,
}

impl Bridge {
    /// Without `--querier` the bridge's instances are passive: the timers drive the
    /// per-port membership state; the versions the queries (with `--querier`).
    pub fn passive(snooping: &SnoopingArgs) -> bool {
        !snooping.querier
    }

    /// The bridge `name` with the families of `p` and `startup`, every port's `policy`,
    /// the ports in `router_guard` guarded and those in `fast_leave` leaving fast.
    pub fn new(
        name: String,
        p: &ProtocolArgs,
        startup: &StartupArgs,
        snooping: SnoopingArgs,
        policy: PortPolicy,
        router_guard: &[String],
        fast_leave: &[String],
    ) -> Result<Bridge> {
        let (igmp, mld) = families(p, startup, Bridge::passive(&snooping))?;
        let mut port_policies: BTreeMap<String, PortPolicy> = BTreeMap::new();
        for port in router_guard {
            port_policies
                .entry(port.clone())
                .or_insert_with(|| policy.clone())
                .router_guard = true;
        }
        for port in fast_leave {
            port_policies
                .entry(port.clone())
                .or_insert_with(|| policy.clone())
                .fast_leave = true;
        }
        Ok(Bridge {
            name,
            igmp,
            mld,
            snooping,
            vlans: BTreeMap::new(),
            vlan_addresses: BTreeMap::new(),
            policy,
            port_policies,
            static_groups: BTreeMap::new(),
        })
    }

    /// What the snooping daemon runs with. The ports' `mcast_router` settings from before
    /// igmpd are kept next to the control socket, so that a restart after SIGKILL still
    /// restores them.
    pub fn settings(&self, control_socket: &Path) -> SnoopSettings {
        SnoopSettings {
            bridge: self.name.clone(),
            igmp: self.igmp.clone(),
            mld: self.mld.clone(),
            querier: self.snooping.querier,
            router_ports: self.snooping.router_ports.clone(),
            raise_hash_max: self.snooping.raise_hash_max,
            vlans: self.vlans.clone(),
            vlan_addresses: self.vlan_addresses.clone(),
            policy: self.policy.clone(),
            port_policies: self.port_policies.clone(),
            static_groups: self.static_groups.clone(),
            flood_groups: self.snooping.flood_groups.clone(),
            state_dir: control_socket
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf),
        }
    }
}
