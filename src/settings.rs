//! From option values (flags, or config sections resolved to flags) to what the daemons
//! run with: one conversion for `igmpd query`, `igmpd snoop` and `igmpd run`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use igmpd_querier::core::{Config, Generation, HostJoin, Proto};
use igmpd_snooping::shell::SnoopSettings;

use igmpd_snooping::core::policy::{AclAction, AclRule, LimitAction, Prefix};
use igmpd_snooping::core::PortPolicy;

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

/// A port policy from its options, `router_guard` and ACL rules.
pub fn policy(p: &PolicyArgs, router_guard: bool, acl: Vec<AclRule>) -> Result<PortPolicy> {
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
        router_guard,
        acl,
        acl_default: acl_action("acl_default", &p.acl_default)?,
        max_report_rate: p.max_report_rate,
        require_router_alert: p.require_router_alert,
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
}

impl Bridge {
    /// Without `--querier` the bridge's instances are passive: the timers drive the
    /// per-port membership state; the versions the queries (with `--querier`).
    pub fn passive(snooping: &SnoopingArgs) -> bool {
        !snooping.querier
    }

    /// The bridge `name` with the families of `p` and `startup`, every port's `policy`
    /// and the ports in `router_guard` guarded.
    pub fn new(
        name: String,
        p: &ProtocolArgs,
        startup: &StartupArgs,
        snooping: SnoopingArgs,
        policy: PortPolicy,
        router_guard: &[String],
    ) -> Result<Bridge> {
        let (igmp, mld) = families(p, startup, Bridge::passive(&snooping))?;
        let port_policies = router_guard
            .iter()
            .map(|port| {
                let guarded = PortPolicy {
                    router_guard: true,
                    ..policy.clone()
                };
                (port.clone(), guarded)
            })
            .collect();
        Ok(Bridge {
            name,
            igmp,
            mld,
            snooping,
            vlans: BTreeMap::new(),
            vlan_addresses: BTreeMap::new(),
            policy,
            port_policies,
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
            state_dir: control_socket
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf),
        }
    }
}
