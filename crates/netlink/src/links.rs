//! Reading link messages: the attributes igmpd needs of a link, a bridge and a bridge port,
//! parsed here once (the querier's monitor, the snooping daemon and the doctor all use it).

use netlink_packet_core::Nla;
use netlink_packet_route::link::{
    AfSpecBridge, BridgeBooleanOptionFlags, BridgePortState, BridgeVlanInfo, BridgeVlanInfoFlags,
    InfoBridge, InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVlan, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage, LinkProtoInfoBridge,
};

/// `IFLA_IFNAME`.
pub fn name(m: &LinkMessage) -> Option<&str> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.as_str()),
        _ => None,
    })
}

/// `IFLA_MASTER`: the bridge a port belongs to.
pub fn master(m: &LinkMessage) -> Option<u32> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(c) => Some(*c),
        _ => None,
    })
}

/// Administratively up and with carrier (IFF_UP and IFF_RUNNING).
pub fn is_up(m: &LinkMessage) -> bool {
    m.header.flags.contains(LinkFlags::Up) && m.header.flags.contains(LinkFlags::Running)
}

/// `IFLA_ADDRESS` when it is a MAC address.
pub fn mac(m: &LinkMessage) -> Option<[u8; 6]> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Address(b) => <[u8; 6]>::try_from(b.as_slice()).ok(),
        _ => None,
    })
}

pub(crate) fn infos(m: &LinkMessage) -> impl Iterator<Item = &LinkInfo> {
    m.attributes
        .iter()
        .filter_map(|a| match a {
            LinkAttribute::LinkInfo(i) => Some(i),
            _ => None,
        })
        .flatten()
}

/// A Linux bridge (`IFLA_INFO_KIND` "bridge").
pub fn is_bridge(m: &LinkMessage) -> bool {
    infos(m).any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge)))
}

/// The port's STP state is forwarding (None: the message does not say). Dumps carry it in
/// the port's link info (`IFLA_BRPORT_STATE`); the bridge's own notifications of a state
/// change are `AF_BRIDGE` messages with it in `IFLA_PROTINFO`.
pub fn port_forwarding(m: &LinkMessage) -> Option<bool> {
    /// `IFLA_BRPORT_STATE`, `BR_STATE_FORWARDING` (include/uapi/linux/if_bridge.h).
    const IFLA_BRPORT_STATE: u16 = 1;
    const BR_STATE_FORWARDING: u8 = 3;
    let from_info = infos(m).find_map(|i| match i {
        LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => attrs.iter().find_map(|a| match a {
            InfoBridgePort::State(s) => Some(*s == BridgePortState::Forwarding),
            _ => None,
        }),
        _ => None,
    });
    from_info.or_else(|| {
        m.attributes.iter().find_map(|a| match a {
            LinkAttribute::ProtoInfoBridge(v) => v.iter().find_map(|p| match p {
                LinkProtoInfoBridge::Other(n)
                    if n.kind() == IFLA_BRPORT_STATE && n.value_len() == 1 =>
                {
                    let mut b = [0u8];
                    n.emit_value(&mut b);
                    Some(b[0] == BR_STATE_FORWARDING)
                }
                _ => None,
            }),
            _ => None,
        })
    })
}

/// A bridge port's (or the bridge's own, `self`) VLANs as `bridge vlan show` lists them,
/// from an `AF_BRIDGE` link message dumped with `RTEXT_FILTER_BRVLAN`
/// ([`crate::LinkHandle::dump_bridge_vlans`]). None when the message lists none.
pub fn port_vlans(m: &LinkMessage) -> Option<PortVlanList> {
    let infos: Vec<&BridgeVlanInfo> = m
        .attributes
        .iter()
        .filter_map(|a| match a {
            LinkAttribute::AfSpecBridge(v) => Some(v),
            _ => None,
        })
        .flatten()
        .filter_map(|a| match a {
            AfSpecBridge::VlanInfo(i) => Some(i),
            _ => None,
        })
        .collect();
    if infos.is_empty() {
        return None;
    }
    let pvid = infos
        .iter()
        .find(|i| i.flags.contains(BridgeVlanInfoFlags::Pvid))
        .map(|i| i.vid);
    Some(PortVlanList {
        pvid,
        vids: infos.iter().map(|i| i.vid).collect(),
        untagged: infos
            .iter()
            .filter(|i| i.flags.contains(BridgeVlanInfoFlags::Untagged))
            .map(|i| i.vid)
            .collect(),
    })
}

/// What [`port_vlans`] reads.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortVlanList {
    /// The VLAN of untagged frames.
    pub pvid: Option<u16>,
    /// Every VLAN.
    pub vids: Vec<u16>,
    /// The VLANs that egress untagged.
    pub untagged: Vec<u16>,
}

/// An 802.1Q interface (`ip link add link PARENT name N type vlan id VID`): `(PARENT,
/// VID)`. On a VLAN-filtering bridge, `br0.10` is how the host itself is in VLAN 10.
pub fn vlan_upper(m: &LinkMessage) -> Option<(u32, u16)> {
    let parent = m.attributes.iter().find_map(|a| match a {
        LinkAttribute::Link(p) => Some(*p),
        _ => None,
    })?;
    let vid = infos(m).find_map(|i| match i {
        LinkInfo::Data(InfoData::Vlan(v)) => v.iter().find_map(|x| match x {
            InfoVlan::Id(id) => Some(*id),
            _ => None,
        }),
        _ => None,
    })?;
    Some((parent, vid))
}

/// The bridge-port `mcast_router` setting (0 off, 1 learned, 2 permanent, 3 temporary).
pub fn port_mcast_router(m: &LinkMessage) -> Option<u8> {
    infos(m).find_map(|i| match i {
        LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => attrs.iter().find_map(|a| match a {
            InfoBridgePort::MulticastRouter(t) => Some(u8::from(*t)),
            _ => None,
        }),
        _ => None,
    })
}

/// The bridge-port `mcast_flood` flag: unregistered multicast may leave through the port.
pub fn port_mcast_flood(m: &LinkMessage) -> Option<bool> {
    infos(m).find_map(|i| match i {
        LinkInfo::PortData(InfoPortData::BridgePort(attrs)) => attrs.iter().find_map(|a| match a {
            InfoBridgePort::MulticastFlood(on) => Some(*on),
            _ => None,
        }),
        _ => None,
    })
}

/// What the snooper needs to know of a bridge device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeLink {
    /// Interface index.
    pub ifindex: u32,
    /// Its MAC (all zero when it has none yet).
    pub mac: [u8; 6],
    /// Up with carrier.
    pub up: bool,
    /// `mcast_hash_max` (the kernel default, 4096, when not reported).
    pub hash_max: u32,
    /// `mcast_igmp_version` is 3: the kernel looks up (S,G) entries for IPv4.
    pub igmp_v3: bool,
    /// `mcast_mld_version` is 2.
    pub mld_v2: bool,
    /// `mcast_igmp_version` (2, the kernel's default, when not reported).
    pub igmp_version: u8,
    /// `mcast_mld_version` (1 when not reported).
    pub mld_version: u8,
    /// `mcast_snooping`.
    pub snooping: bool,
    /// `mcast_querier`: the kernel's own querier is on.
    pub kernel_querier: bool,
    /// `vlan_filtering`.
    pub vlan_filtering: bool,
    /// `mcast_vlan_snooping` (per-VLAN snooping, 5.12).
    pub vlan_snooping: bool,
}

impl BridgeLink {
    /// The bridge attributes of `m` (defaults where the kernel did not say).
    pub fn from_message(m: &LinkMessage) -> Self {
        let mut b = BridgeLink {
            ifindex: m.header.index,
            mac: mac(m).unwrap_or([0; 6]),
            up: is_up(m),
            hash_max: 4096,
            igmp_v3: false,
            mld_v2: false,
            igmp_version: 2,
            mld_version: 1,
            snooping: true,
            kernel_querier: false,
            vlan_filtering: false,
            vlan_snooping: false,
        };
        for i in infos(m) {
            if let LinkInfo::Data(InfoData::Bridge(opts)) = i {
                for o in opts {
                    match o {
                        InfoBridge::MulticastHashMax(v) => b.hash_max = *v,
                        InfoBridge::MulticastIgmpVersion(v) => {
                            b.igmp_version = *v;
                            b.igmp_v3 = *v >= 3;
                        }
                        InfoBridge::MulticastMldVersion(v) => {
                            b.mld_version = *v;
                            b.mld_v2 = *v >= 2;
                        }
                        InfoBridge::MulticastSnooping(v) => b.snooping = *v,
                        InfoBridge::MulticastQuerier(v) => b.kernel_querier = *v,
                        InfoBridge::VlanFiltering(v) => b.vlan_filtering = *v,
                        InfoBridge::MultiBoolOpt(o) => {
                            b.vlan_snooping = o
                                .value
                                .contains(BridgeBooleanOptionFlags::VlanMulticastSnooping)
                        }
                        _ => {}
                    }
                }
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_bridge_and_its_settings() {
        let mut m = LinkMessage::default();
        m.header.index = 7;
        m.header.flags = LinkFlags::Up | LinkFlags::Running;
        m.attributes = vec![
            LinkAttribute::IfName("br0".into()),
            LinkAttribute::Address(vec![2, 0, 0, 0, 0, 1]),
            LinkAttribute::LinkInfo(vec![
                LinkInfo::Kind(InfoKind::Bridge),
                LinkInfo::Data(InfoData::Bridge(vec![
                    InfoBridge::MulticastHashMax(512),
                    InfoBridge::MulticastIgmpVersion(3),
                    InfoBridge::MulticastMldVersion(1),
                    InfoBridge::MulticastQuerier(true),
                ])),
            ]),
        ];
        assert_eq!(name(&m), Some("br0"));
        assert!(is_bridge(&m) && is_up(&m));
        assert_eq!(master(&m), None);
        let b = BridgeLink::from_message(&m);
        assert_eq!(
            b,
            BridgeLink {
                ifindex: 7,
                mac: [2, 0, 0, 0, 0, 1],
                up: true,
                hash_max: 512,
                igmp_v3: true,
                igmp_version: 3,
                mld_version: 1,
                mld_v2: false,
                snooping: true,
                kernel_querier: true,
                vlan_filtering: false,
                vlan_snooping: false,
            }
        );
    }

    #[test]
    fn a_port_without_carrier_is_down() {
        let mut m = LinkMessage::default();
        m.header.flags = LinkFlags::Up;
        m.attributes = vec![LinkAttribute::Controller(3)];
        assert!(!is_up(&m));
        assert_eq!(master(&m), Some(3));
        assert!(!is_bridge(&m));
        assert_eq!(port_mcast_router(&m), None);
        assert_eq!(mac(&m), None);
    }
}
