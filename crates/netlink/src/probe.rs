//! What the running kernel's bridge takes, found by asking it, never from its version.
//!
//! Userspace MDB entries grew over the years (see the history of `net/bridge/br_mdb.c`):
//! (S,G) entries with `MDBE_ATTR_SOURCE` (5.11), and a protocol value, a filter mode, a
//! source list and `NLM_F_REPLACE` (6.3). Debian 12's 6.1, Ubuntu 22.04's 5.15 and RHEL 9's
//! 5.14 refuse the newer attributes with EINVAL ("Unknown attribute type"). [`probe_mdb`]
//! writes and deletes one entry of each kind on a port of the bridge for
//! `233.252.0.1` (MCAST-TEST-NET, RFC 6676, documentation only) with source `192.0.2.1`
//! (TEST-NET-1, RFC 5737): no real traffic goes to that group, and each entry lives for
//! one request's round trip. A first plain (*,G) add is the control: if even that is
//! refused (a port in STP disabled state, snooping off), nothing is concluded.
//!
//! The other features are read from what the kernel reports of a bridge and its ports:
//! the kernel fills `IFLA_BR_MULTI_BOOLOPT`'s mask with every boolean option it knows
//! (`mcast_vlan_snooping` since 5.12), and `IFLA_BRPORT_MCAST_MAX_GROUPS` exists since 6.3.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_route::link::{
    BridgeBooleanOptionFlags, InfoBridge, InfoBridgePort, InfoData, InfoPortData, LinkInfo,
    LinkMessage,
};

use crate::links::infos;
use crate::{Error, Handle, MdbAddRequest};

/// The probe's group: MCAST-TEST-NET (RFC 6676).
pub const PROBE_GROUP: Ipv4Addr = Ipv4Addr::new(233, 252, 0, 1);
/// The probe's source: TEST-NET-1 (RFC 5737).
pub const PROBE_SOURCE: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// What userspace MDB writes the kernel takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MdbFeatures {
    /// `MDBE_ATTR_RTPROT`: an entry says who wrote it (`proto 73`).
    pub protocol: bool,
    /// `MDBE_ATTR_GROUP_MODE` + `MDBE_ATTR_SRC_LIST` on a (*,G) entry.
    pub source_list: bool,
    /// `NLM_F_REPLACE` (`bridge mdb replace`); without it an add over an entry is EEXIST.
    pub replace: bool,
    /// (S,G) entries (`MDBE_ATTR_SOURCE`).
    pub sg: bool,
}

impl MdbFeatures {
    /// Everything a current kernel takes (what igmpd assumes until a probe said otherwise).
    pub const ALL: MdbFeatures = MdbFeatures {
        protocol: true,
        source_list: true,
        replace: true,
        sg: true,
    };

    /// The names of what is there, for status (`mdb_protocol`, `mdb_source_list`,
    /// `mdb_replace`, `mdb_sg`).
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.protocol, "mdb_protocol"),
            (self.source_list, "mdb_source_list"),
            (self.replace, "mdb_replace"),
            (self.sg, "mdb_sg"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect()
    }

    /// Removes the features named in `names` (comma-separated, as [`Self::names`] spells
    /// them): `IGMPD_KERNEL_WITHOUT` makes a new kernel look like an old one to igmpd, so
    /// that the paths for old kernels can be run and diagnosed anywhere.
    pub fn without(mut self, names: &str) -> Self {
        for n in names.split(',').map(str::trim) {
            match n {
                "mdb_protocol" => self.protocol = false,
                "mdb_source_list" => self.source_list = false,
                "mdb_replace" => self.replace = false,
                "mdb_sg" => self.sg = false,
                _ => {}
            }
        }
        self
    }
}

/// Writes and deletes one probe entry of each kind on `port` of `bridge` (see the module
/// text), the protocol one with `proto`. An error means the control write failed: nothing is known yet.
pub async fn probe_mdb(
    handle: &Handle,
    bridge: u32,
    port: u32,
    proto: u8,
) -> Result<MdbFeatures, Error> {
    let group = IpAddr::V4(PROBE_GROUP);
    let source = IpAddr::V4(PROBE_SOURCE);
    let mdb = handle.mdb();
    let clear = || async {
        let _ = mdb.del(bridge, port, group).source(source).execute().await;
        let _ = mdb.del(bridge, port, group).execute().await;
    };
    // A probe cut short (the process killed between add and delete) left one behind.
    clear().await;
    let base = || mdb.add(bridge, port, group).permanent();
    base().execute().await?;
    // Each kind: taken or not, and gone again before the next.
    let taken = |req: MdbAddRequest| async {
        let ok = req.execute().await.is_ok();
        clear().await;
        ok
    };
    // The entry of the control add exists: a replace over it must be taken as such.
    let replace = taken(base().replace()).await;
    let protocol = taken(base().proto(proto)).await;
    let source_list = taken(
        base()
            .filter_mode(crate::mdb::FilterMode::Include)
            .source_list([source]),
    )
    .await;
    let sg = taken(base().source(source)).await;
    Ok(MdbFeatures {
        protocol,
        source_list,
        replace,
        sg,
    })
}

/// The kernel knows `mcast_vlan_snooping` (per-VLAN snooping, 5.12): the bridge's boolean
/// option mask, as the kernel fills it, has the bit.
pub fn knows_vlan_snooping(bridge: &LinkMessage) -> bool {
    infos(bridge).any(|i| match i {
        LinkInfo::Data(InfoData::Bridge(opts)) => opts.iter().any(|o| {
            matches!(o, InfoBridge::MultiBoolOpt(b)
                if b.mask.contains(BridgeBooleanOptionFlags::VlanMulticastSnooping))
        }),
        _ => false,
    })
}

/// The kernel knows `mcast_max_groups` on ports (6.3): a port's attributes have it.
pub fn knows_port_max_groups(port: &LinkMessage) -> bool {
    infos(port).any(|i| match i {
        LinkInfo::PortData(InfoPortData::BridgePort(opts)) => opts
            .iter()
            .any(|o| matches!(o, InfoBridgePort::MulticastMaxGroups(_))),
        _ => false,
    })
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_without_agree() {
        assert_eq!(
            MdbFeatures::ALL.names(),
            ["mdb_protocol", "mdb_source_list", "mdb_replace", "mdb_sg"]
        );
        let old = MdbFeatures::ALL.without("mdb_protocol, mdb_source_list,mdb_replace,bogus");
        assert_eq!(old.names(), ["mdb_sg"]);
        assert_eq!(MdbFeatures::ALL.without(""), MdbFeatures::ALL);
    }
}
