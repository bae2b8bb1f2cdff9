//! A flat, typed view of MDB messages: one [`MdbItem`] per port entry or
//! router port, the shape `bridge mdb show` prints.

use std::{net::IpAddr, time::Duration};

use netlink_packet_route::link::BridgeMulticastRouterType;

use super::{
    FilterMode, MdbAttribute, MdbFlags, MdbGroup, MdbGroupAttribute, MdbInfoAttribute, MdbMessage,
    MdbPortAttribute, MdbRouterAttribute, MdbRouterPortAttribute, MdbSrcAttribute,
    MdbSrcListAttribute, MdbState,
};

/// Kernel timers in MDB messages are in USER_HZ (centiseconds).
fn centis(c: u32) -> Duration {
    Duration::from_millis(u64::from(c) * 10)
}

/// One port's membership of one group (or (S,G)), as the kernel reports it.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct MdbRecord {
    /// Bridge interface index.
    pub bridge: u32,
    /// Port interface index (the bridge's own for host joins).
    pub port: u32,
    /// The group.
    pub group: MdbGroup,
    /// S of an (S,G) entry.
    pub source: Option<IpAddr>,
    /// VLAN id, 0 for none.
    pub vid: u16,
    /// Temporary or permanent.
    pub state: MdbState,
    /// `MDB_FLAGS_*`.
    pub flags: MdbFlags,
    /// Who installed it (`MDBA_MDB_EATTR_RTPROT`): 2 = kernel (learned),
    /// 3 = boot, 4 = static, or a daemon's own value.
    pub protocol: Option<u8>,
    /// Remaining time until it ages out (zero for permanent entries).
    pub timer: Option<Duration>,
    /// Filter mode (reported by IGMPv3 / MLDv2 bridges only).
    pub filter_mode: Option<FilterMode>,
    /// Source list (reported by IGMPv3 / MLDv2 bridges only).
    pub sources: Vec<MdbSource>,
}

/// One source of an entry's source list.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct MdbSource {
    /// Source address.
    pub address: IpAddr,
    /// Remaining source timer.
    pub timer: Option<Duration>,
}

/// A multicast router port of a bridge.
#[derive(Debug, PartialEq, Eq, Clone)]
pub struct RouterPortRecord {
    /// Bridge interface index.
    pub bridge: u32,
    /// Port interface index.
    pub port: u32,
    /// `MDBA_ROUTER_PATTR_TYPE` (dumps only; notifications carry the port alone).
    pub kind: Option<BridgeMulticastRouterType>,
    /// `MDBA_ROUTER_PATTR_TIMER`.
    pub timer: Option<Duration>,
    /// `MDBA_ROUTER_PATTR_INET_TIMER`.
    pub inet_timer: Option<Duration>,
    /// `MDBA_ROUTER_PATTR_INET6_TIMER`.
    pub inet6_timer: Option<Duration>,
    /// `MDBA_ROUTER_PATTR_VID`.
    pub vid: Option<u16>,
}

/// One item of an MDB dump, get reply or notification.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum MdbItem {
    /// A port entry.
    Entry(MdbRecord),
    /// A router port.
    RouterPort(RouterPortRecord),
}

impl MdbMessage {
    /// Flattens a kernel-originated message into its entries and router
    /// ports, in wire order. Unknown attributes are skipped here (they stay
    /// in [`MdbMessage::attributes`]).
    pub fn items(&self) -> Vec<MdbItem> {
        let bridge = self.header.ifindex;
        let mut out = Vec::new();
        for attr in &self.attributes {
            match attr {
                MdbAttribute::Mdb(groups) => {
                    for g in groups {
                        let MdbGroupAttribute::Entry(ports) = g else {
                            continue;
                        };
                        for p in ports {
                            let MdbPortAttribute::Info(info) = p else {
                                continue;
                            };
                            let mut r = MdbRecord {
                                bridge,
                                port: info.entry.ifindex,
                                group: info.entry.group,
                                source: None,
                                vid: info.entry.vid,
                                state: info.entry.state,
                                flags: info.entry.flags,
                                protocol: None,
                                timer: None,
                                filter_mode: None,
                                sources: Vec::new(),
                            };
                            for a in &info.attributes {
                                match a {
                                    MdbInfoAttribute::Timer(t) => r.timer = Some(centis(*t)),
                                    MdbInfoAttribute::Source(s) => r.source = Some(*s),
                                    MdbInfoAttribute::Protocol(p) => r.protocol = Some(*p),
                                    MdbInfoAttribute::GroupMode(m) => r.filter_mode = Some(*m),
                                    MdbInfoAttribute::SrcList(list) => {
                                        r.sources.extend(list.iter().filter_map(source))
                                    }
                                    MdbInfoAttribute::Other(_) => {}
                                }
                            }
                            out.push(MdbItem::Entry(r));
                        }
                    }
                }
                MdbAttribute::Router(ports) => {
                    for p in ports {
                        let MdbRouterAttribute::Port(p) = p else {
                            continue;
                        };
                        let mut r = RouterPortRecord {
                            bridge,
                            port: p.ifindex,
                            kind: None,
                            timer: None,
                            inet_timer: None,
                            inet6_timer: None,
                            vid: None,
                        };
                        for a in &p.attributes {
                            match a {
                                MdbRouterPortAttribute::Timer(t) => r.timer = Some(centis(*t)),
                                MdbRouterPortAttribute::Type(t) => r.kind = Some((*t).into()),
                                MdbRouterPortAttribute::InetTimer(t) => {
                                    r.inet_timer = Some(centis(*t))
                                }
                                MdbRouterPortAttribute::Inet6Timer(t) => {
                                    r.inet6_timer = Some(centis(*t))
                                }
                                MdbRouterPortAttribute::Vid(v) => r.vid = Some(*v),
                                MdbRouterPortAttribute::Other(_) => {}
                            }
                        }
                        out.push(MdbItem::RouterPort(r));
                    }
                }
                _ => {}
            }
        }
        out
    }
}

fn source(a: &MdbSrcListAttribute) -> Option<MdbSource> {
    let MdbSrcListAttribute::Entry(attrs) = a else {
        return None;
    };
    let mut address = None;
    let mut timer = None;
    for a in attrs {
        match a {
            MdbSrcAttribute::Address(x) => address = Some(*x),
            MdbSrcAttribute::Timer(t) => timer = Some(centis(*t)),
            MdbSrcAttribute::Other(_) => {}
        }
    }
    Some(MdbSource {
        address: address?,
        timer,
    })
}
