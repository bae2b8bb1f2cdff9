//! From option values (flags, or config sections resolved to flags) to what the daemons
//! run with: one conversion for `igmpd query`, `igmpd snoop` and `igmpd run`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use igmpd_querier::core::{Config, Generation, Proto};
use igmpd_snooping::shell::SnoopSettings;

use crate::cli::{ProtocolArgs, SnoopingArgs, StartupArgs};

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
}

impl Bridge {
    /// Without `--querier` the bridge's instances are passive: the timers drive the
    /// per-port membership state; the versions the queries (with `--querier`).
    pub fn passive(snooping: &SnoopingArgs) -> bool {
        !snooping.querier
    }

    /// The bridge `name` with the families of `p` and `startup`.
    pub fn new(
        name: String,
        p: &ProtocolArgs,
        startup: &StartupArgs,
        snooping: SnoopingArgs,
    ) -> Result<Bridge> {
        let (igmp, mld) = families(p, startup, Bridge::passive(&snooping))?;
        Ok(Bridge {
            name,
            igmp,
            mld,
            snooping,
            vlans: BTreeMap::new(),
            vlan_addresses: BTreeMap::new(),
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
            state_dir: control_socket
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .map(Path::to_path_buf),
        }
    }
}
