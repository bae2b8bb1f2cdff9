//! The running kernel: what its MDB takes (probed once a port is up, see
//! [`igmpd_netlink::probe`]) and the bridge's source filtering.
//!
//! Source filtering: the bridge looks up (S,G) entries only with `mcast_igmp_version 3` /
//! `mcast_mld_version 2`, and defaults to 2 / 1. When igmpd queries with IGMPv3 / MLDv2 it
//! sets them at start (the old values saved first in the state file) and restores them at
//! exit, so that INCLUDE and SSM joins receive only their sources, as with the kernel's own
//! snooping set to v3. An admin who lowers them while igmpd runs is not overruled: igmpd
//! writes (*,G) entries from then on and raises `source-filtering-off`.

use igmpd_netlink::links;
use igmpd_netlink::netlink_packet_route::link::InfoBridge;
use igmpd_netlink::probe::{self, MdbFeatures};
use igmpd_querier::core::Generation;
use igmpd_runtime::status::{FindingDoc, KernelStatus};
use tracing::{debug, info, warn};

use super::{SnoopDaemon, MDB_PROTO};

/// `IGMPD_KERNEL_WITHOUT=mdb_protocol,...`: features to treat as missing (to run and
/// diagnose the paths for older kernels on a new one).
const WITHOUT_ENV: &str = "IGMPD_KERNEL_WITHOUT";

/// `source-filtering-off` for bridge `br`: `what` was lowered while igmpd runs; `fix`
/// (the command up to its version options) raises it again.
pub(super) fn source_filtering_off(br: &str, what: String, fix: String) -> FindingDoc {
    FindingDoc {
        code: "source-filtering-off",
        severity: "warning",
        iface: br.to_owned(),
        message: format!(
            "{what} while igmpd runs: the kernel no longer looks up (S,G) entries there, so igmpd writes (*,G) entries and INCLUDE and SSM joins receive every source"
        ),
        hint: format!(
            "{fix} mcast_igmp_version 3 mcast_mld_version 2 (or run igmpd with --igmp-version 2 / --mld-version 1 if sources are not to be filtered)"
        ),
        host: None,
        group: None,
    }
}

/// The family is snooped with IGMPv3 / MLDv2 queries (source filtering wanted).
pub(super) fn queries_v3(c: &Option<igmpd_querier::core::Config>) -> bool {
    c.as_ref().is_some_and(|c| c.version == Generation::V3)
}

impl SnoopDaemon {
    /// Probes the kernel's MDB on a port that is up (once; without one, when one comes
    /// up) and writes the way it takes.
    pub(super) async fn probe_kernel(&mut self) {
        if self.kernel_features.is_some() {
            return;
        }
        let Some(bridge) = self.bridge_ifindex() else {
            return;
        };
        let Some(port) = self.ports.iter().find(|(_, p)| p.up).map(|(i, _)| *i) else {
            debug!(bridge = %self.settings.bridge, "no port is up: the kernel's MDB is probed when one is");
            return;
        };
        let mdb = match probe::probe_mdb(&self.handle, bridge, port, MDB_PROTO).await {
            Ok(f) => f,
            Err(e) => {
                warn!(bridge = %self.settings.bridge, error = %e, "cannot probe what the kernel's MDB takes: assuming a current kernel");
                return;
            }
        };
        let mdb = match std::env::var(WITHOUT_ENV) {
            Ok(v) if !v.is_empty() => {
                info!(without = %v, "{WITHOUT_ENV}: treating these kernel features as missing");
                mdb.without(&v)
            }
            _ => mdb,
        };
        let links = self.links().await.unwrap_or_default();
        let mut names = mdb.names();
        let bridge_link = links.iter().find(|l| l.header.index == bridge);
        if bridge_link.is_some_and(probe::knows_vlan_snooping) {
            names.push("mcast_vlan_snooping");
        }
        let ports = links.iter().filter(|l| links::master(l) == Some(bridge));
        if ports.clone().any(probe::knows_port_max_groups) {
            names.push("port_mcast_max_groups");
        }
        self.apply_kernel(mdb, names);
    }

    /// Writes entries the way the kernel takes them; says once what is missing.
    fn apply_kernel(&mut self, mdb: MdbFeatures, names: Vec<&'static str>) {
        let release = probe::kernel_release();
        self.kernel_mdb = mdb;
        self.writes.dialect.set(&mdb);
        self.snooper.set_per_source(!mdb.source_list && mdb.sg);
        if mdb == MdbFeatures::ALL {
            info!(kernel = %release, features = ?names, "kernel features");
        } else {
            let missing: Vec<&str> = MdbFeatures::ALL
                .names()
                .into_iter()
                .filter(|n| !names.contains(n))
                .collect();
            let how = match (mdb.source_list, mdb.sg) {
                (true, _) => "entries with source lists",
                (false, true) => "(*,G) entries, and INCLUDE joins as one (S,G) entry per source; EXCLUDE joins forward every source",
                (false, false) => "(*,G) entries only: every joined port receives every source",
            };
            let who = if mdb.protocol {
                ""
            } else {
                "; its own entries are known again after a restart from the state file"
            };
            warn!(kernel = %release, ?missing, "this kernel's MDB takes less than igmpd can write: igmpd writes {how}{who}");
        }
        self.kernel_features = Some(names);
        self.update_source_filtering();
    }

    /// The kernel as `status` shows it.
    pub(super) fn kernel_status(&self) -> KernelStatus {
        KernelStatus {
            release: probe::kernel_release(),
            features: self.kernel_features.clone().unwrap_or_default(),
        }
    }

    /// With IGMPv3 / MLDv2 configured, the bridge's versions to 3 / 2 (see the module).
    pub(super) async fn set_versions(&mut self) {
        let Some(b) = self.bridge.clone() else { return };
        let v3 = queries_v3;
        let igmp = (v3(&self.settings.igmp) && b.igmp_version < 3).then_some(3);
        let mld = (v3(&self.settings.mld) && b.mld_version < 2).then_some(2);
        // An earlier igmpd (killed) changed them: its saved values are the originals.
        let originals = self
            .saved
            .versions
            .unwrap_or((b.igmp_version, b.mld_version));
        if igmp.is_none() && mld.is_none() {
            self.original_versions = self.saved.versions;
            self.update_source_filtering();
            return;
        }
        self.original_versions = Some(originals);
        self.save_state();
        let mut opts = Vec::new();
        opts.extend(igmp.map(InfoBridge::MulticastIgmpVersion));
        opts.extend(mld.map(InfoBridge::MulticastMldVersion));
        match self.handle.link().set_bridge(b.ifindex, opts).await {
            Ok(()) => {
                info!(bridge = %self.settings.bridge, igmp_from = b.igmp_version, igmp_to = igmp.unwrap_or(b.igmp_version), mld_from = b.mld_version, mld_to = mld.unwrap_or(b.mld_version), "source filtering: the bridge's mcast_igmp_version / mcast_mld_version raised to match the querier's IGMPv3 / MLDv2 (restored at exit)");
                if let Some(bl) = self.bridge.as_mut() {
                    if let Some(v) = igmp {
                        bl.igmp_version = v;
                        bl.igmp_v3 = true;
                    }
                    if let Some(v) = mld {
                        bl.mld_version = v;
                        bl.mld_v2 = true;
                    }
                }
            }
            Err(e) => {
                warn!(bridge = %self.settings.bridge, error = %e, "cannot raise the bridge's mcast_igmp_version / mcast_mld_version: entries without source filtering");
            }
        }
        self.update_source_filtering();
    }

    /// At exit: the versions from before igmpd.
    pub(super) async fn restore_versions(&self) {
        let (Some((igmp, mld)), Some(b)) = (self.original_versions, self.bridge.as_ref()) else {
            return;
        };
        let mut opts = Vec::new();
        if b.igmp_version != igmp {
            opts.push(InfoBridge::MulticastIgmpVersion(igmp));
        }
        if b.mld_version != mld {
            opts.push(InfoBridge::MulticastMldVersion(mld));
        }
        if opts.is_empty() {
            return;
        }
        match self.handle.link().set_bridge(b.ifindex, opts).await {
            Ok(()) => {
                info!(bridge = %self.settings.bridge, mcast_igmp_version = igmp, mcast_mld_version = mld, "bridge versions restored")
            }
            Err(e) => {
                warn!(bridge = %self.settings.bridge, error = %e, "cannot restore mcast_igmp_version / mcast_mld_version")
            }
        }
    }

    /// Tells the core whether entries may filter sources: the bridge's versions, and a
    /// kernel that takes either source lists or (S,G) entries.
    pub(super) fn update_source_filtering(&mut self) {
        let Some(b) = self.bridge.as_ref() else {
            return;
        };
        let sources = self.kernel_mdb.source_list || self.kernel_mdb.sg;
        // Per-VLAN snooping: the kernel reads each VLAN's versions; sources are filtered
        // only where every VLAN looks them up.
        let (mut v4, mut v6) = (b.igmp_v3, b.mld_v2);
        if self.per_vlan() && !self.vlans.versions.is_empty() {
            v4 = self.vlans.versions.values().all(|(i, _)| *i >= 3);
            v6 = self.vlans.versions.values().all(|(_, m)| *m >= 2);
        }
        self.snooper
            .set_source_filtering(v4 && sources, v6 && sources);
        self.flush_outputs();
    }

    /// Entries filter sources for every snooped family.
    pub(super) fn source_filtering(&self) -> bool {
        let cfg = self.snooper.config();
        (self.settings.igmp.is_none() || cfg.source_filtering_v4)
            && (self.settings.mld.is_none() || cfg.source_filtering_v6)
    }

    /// `source-filtering-off`: igmpd queries with IGMPv3 / MLDv2 and raised the bridge's
    /// versions, and somebody lowered them since.
    /// Finding `snooping-off`: the bridge's own snooping is off, so it floods every group
    /// and igmpd's entries are not used.
    pub(super) fn snooping_off_finding(&self) -> Option<FindingDoc> {
        let b = self.bridge.as_ref().filter(|b| !b.snooping)?;
        let br = &self.settings.bridge;
        Some(FindingDoc {
            code: "snooping-off",
            severity: "error",
            iface: br.clone(),
            message: format!(
                "{br}'s multicast snooping was turned off (mcast_snooping 0, mcast_hash_max {}): it floods every group to every port and igmpd's entries are not used; igmpd snoops again once it is back on",
                b.hash_max
            ),
            hint: format!(
                "ip link set {br} type bridge mcast_snooping 1; the kernel turns it off itself when its MDB reaches mcast_hash_max: raise that (igmpd snoop --raise-hash-max N) before turning it back on"
            ),
            host: None,
            group: None,
        })
    }

    pub(super) fn source_filtering_finding(&self) -> Option<FindingDoc> {
        self.bridge_source_filtering_finding()
            .or_else(|| self.vlan_source_filtering_finding())
    }

    fn bridge_source_filtering_finding(&self) -> Option<FindingDoc> {
        let (b, _) = (self.bridge.as_ref()?, self.original_versions?);
        let v3 = queries_v3;
        let mut low = Vec::new();
        if v3(&self.settings.igmp) && b.igmp_version < 3 {
            low.push(format!("mcast_igmp_version {}", b.igmp_version));
        }
        if v3(&self.settings.mld) && b.mld_version < 2 {
            low.push(format!("mcast_mld_version {}", b.mld_version));
        }
        if low.is_empty() {
            return None;
        }
        let br = &self.settings.bridge;
        Some(source_filtering_off(
            br,
            format!("{br} was set to {}", low.join(" and ")),
            format!("ip link set {br} type bridge"),
        ))
    }
}
