//! The bridge VLAN database (`RTM_NEWVLAN` / `RTM_DELVLAN` / `RTM_GETVLAN`, Linux 5.8; the
//! per-VLAN multicast options 5.12+): what `bridge vlan show`, `bridge vlan set ... vid V
//! mcast_router M` and `bridge vlan global set ... vid V mcast_igmp_version N` use.
//!
//! netlink-packet-route has none of these messages. A [`VlanMessage`] keeps its attributes
//! as bytes and reads them on demand ([`VlanMessage::entries`], [`VlanMessage::globals`]),
//! skipping what it does not know: a dump from a newer kernel never fails to decode. The
//! kernel compresses a run of VLANs with the same settings into one entry with a range
//! (`BRIDGE_VLANDB_ENTRY_RANGE`, `BRIDGE_VLANDB_GOPTS_RANGE`); both carry `vid..=vid_end`.

use futures::StreamExt;
use netlink_packet_core::{DecodeError, NetlinkMessage, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

use crate::constants::AF_BRIDGE;
use crate::{error::RequestKind, Error, Handle, RtnlMessage};

/// `RTM_NEWVLAN`.
pub const RTM_NEWVLAN: u16 = 112;
/// `RTM_DELVLAN`.
pub const RTM_DELVLAN: u16 = 113;
/// `RTM_GETVLAN`.
pub const RTM_GETVLAN: u16 = 114;

// enum { BRIDGE_VLANDB_* } (include/uapi/linux/if_bridge.h).
const BRIDGE_VLANDB_ENTRY: u16 = 1;
const BRIDGE_VLANDB_GLOBAL_OPTIONS: u16 = 2;
const BRIDGE_VLANDB_DUMP_FLAGS: u16 = 1;
const BRIDGE_VLANDB_DUMPF_GLOBAL: u32 = 1 << 1;
const BRIDGE_VLANDB_ENTRY_INFO: u16 = 1;
const BRIDGE_VLANDB_ENTRY_RANGE: u16 = 2;
const BRIDGE_VLANDB_ENTRY_MCAST_ROUTER: u16 = 6;
const BRIDGE_VLANDB_GOPTS_ID: u16 = 1;
const BRIDGE_VLANDB_GOPTS_RANGE: u16 = 2;
const BRIDGE_VLANDB_GOPTS_MCAST_SNOOPING: u16 = 3;
const BRIDGE_VLANDB_GOPTS_MCAST_IGMP_VERSION: u16 = 4;
const BRIDGE_VLANDB_GOPTS_MCAST_MLD_VERSION: u16 = 5;
const BRIDGE_VLANDB_GOPTS_MCAST_QUERIER: u16 = 15;
const NLA_F_NESTED: u16 = 1 << 15;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// `BRIDGE_VLAN_INFO_PVID`.
pub const VLAN_INFO_PVID: u16 = 1 << 1;
/// `BRIDGE_VLAN_INFO_UNTAGGED`: the VLAN leaves the port untagged.
pub const VLAN_INFO_UNTAGGED: u16 = 1 << 2;
/// `BRIDGE_VLAN_INFO_BRENTRY`: the bridge device itself is in the VLAN (`self`).
pub const VLAN_INFO_BRENTRY: u16 = 1 << 5;
/// `BRIDGE_VLAN_INFO_ONLY_OPTS`: change options, leave the VLAN's flags alone.
const VLAN_INFO_ONLY_OPTS: u16 = 1 << 6;

/// One `struct br_vlan_msg` and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanMessage {
    /// `family` (`AF_BRIDGE`).
    pub family: u8,
    /// The port (or bridge) the entries belong to.
    pub ifindex: u32,
    /// The attributes, as they are on the wire.
    pub attributes: Vec<u8>,
}

/// A port's (or the bridge's own) VLANs `vid..=vid_end` with the same settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortVlan {
    /// First VID.
    pub vid: u16,
    /// Last VID (`vid` when not a range).
    pub vid_end: u16,
    /// `BRIDGE_VLAN_INFO_*` flags.
    pub flags: u16,
    /// The port-VLAN `mcast_router` (with `mcast_vlan_snooping` on).
    pub mcast_router: Option<u8>,
}

/// A bridge VLAN's global options, `vid..=vid_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VlanGlobal {
    /// First VID.
    pub vid: u16,
    /// Last VID.
    pub vid_end: u16,
    /// `mcast_snooping`.
    pub snooping: Option<bool>,
    /// `mcast_igmp_version`.
    pub igmp_version: Option<u8>,
    /// `mcast_mld_version`.
    pub mld_version: Option<u8>,
    /// `mcast_querier`.
    pub querier: Option<bool>,
}

impl VlanGlobal {
    /// Every VID this entry covers.
    pub fn vids(&self) -> impl Iterator<Item = u16> {
        self.vid..=self.vid_end.max(self.vid)
    }
}

impl PortVlan {
    /// Every VID this entry covers.
    pub fn vids(&self) -> impl Iterator<Item = u16> {
        self.vid..=self.vid_end.max(self.vid)
    }
}

fn nla(kind: u16, value: &[u8]) -> Vec<u8> {
    let len = 4 + value.len();
    let mut out = Vec::with_capacity((len + 3) & !3);
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize((len + 3) & !3, 0);
    out
}

fn nested(kind: u16, inner: &[Vec<u8>]) -> Vec<u8> {
    nla(kind | NLA_F_NESTED, &inner.concat())
}

/// The attributes of `buf` as (type, value), stopping at the first malformed one.
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        let len = usize::from(u16_of(buf)?);
        let kind = u16_of(buf.get(2..)?)?;
        let value = buf.get(4..len)?;
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
        Some((kind & NLA_TYPE_MASK, value))
    })
}

fn u8_of(v: &[u8]) -> Option<u8> {
    v.first().copied()
}

fn u16_of(v: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(v.get(..2)?.try_into().ok()?))
}

impl VlanMessage {
    /// Parses the payload after the netlink header.
    pub fn parse(payload: &[u8]) -> Result<Self, DecodeError> {
        if payload.len() < 8 {
            return Err(DecodeError::from("br_vlan_msg shorter than 8 bytes"));
        }
        Ok(VlanMessage {
            family: payload[0],
            ifindex: u32::from_ne_bytes([payload[4], payload[5], payload[6], payload[7]]),
            attributes: payload[8..].to_vec(),
        })
    }

    /// The bytes after the netlink header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.attributes.len());
        out.extend_from_slice(&[self.family, 0, 0, 0]);
        out.extend_from_slice(&self.ifindex.to_ne_bytes());
        out.extend_from_slice(&self.attributes);
        out
    }

    fn new(ifindex: u32, attributes: Vec<u8>) -> Self {
        VlanMessage {
            family: AF_BRIDGE,
            ifindex,
            attributes,
        }
    }

    /// The port-VLAN entries (`BRIDGE_VLANDB_ENTRY`); an entry without a valid
    /// `BRIDGE_VLANDB_ENTRY_INFO` is skipped.
    pub fn entries(&self) -> Vec<PortVlan> {
        attrs(&self.attributes)
            .filter(|(k, _)| *k == BRIDGE_VLANDB_ENTRY)
            .filter_map(|(_, v)| {
                let mut e: Option<PortVlan> = None;
                let (mut end, mut router) = (None, None);
                for (k, v) in attrs(v) {
                    match k {
                        BRIDGE_VLANDB_ENTRY_INFO if v.len() >= 4 => {
                            let flags = u16_of(v)?;
                            let vid = u16_of(&v[2..])?;
                            e = Some(PortVlan {
                                vid,
                                vid_end: vid,
                                flags,
                                mcast_router: None,
                            });
                        }
                        BRIDGE_VLANDB_ENTRY_RANGE => end = u16_of(v),
                        BRIDGE_VLANDB_ENTRY_MCAST_ROUTER => router = u8_of(v),
                        _ => {}
                    }
                }
                let mut e = e?;
                e.vid_end = end.unwrap_or(e.vid);
                e.mcast_router = router;
                Some(e)
            })
            .collect()
    }

    /// The global VLAN options (`BRIDGE_VLANDB_GLOBAL_OPTIONS`); one without an ID is
    /// skipped.
    pub fn globals(&self) -> Vec<VlanGlobal> {
        attrs(&self.attributes)
            .filter(|(k, _)| *k == BRIDGE_VLANDB_GLOBAL_OPTIONS)
            .filter_map(|(_, v)| {
                let mut g = VlanGlobal::default();
                let mut id = None;
                for (k, v) in attrs(v) {
                    match k {
                        BRIDGE_VLANDB_GOPTS_ID => id = u16_of(v),
                        BRIDGE_VLANDB_GOPTS_RANGE => g.vid_end = u16_of(v).unwrap_or(0),
                        BRIDGE_VLANDB_GOPTS_MCAST_SNOOPING => g.snooping = u8_of(v).map(|b| b != 0),
                        BRIDGE_VLANDB_GOPTS_MCAST_IGMP_VERSION => g.igmp_version = u8_of(v),
                        BRIDGE_VLANDB_GOPTS_MCAST_MLD_VERSION => g.mld_version = u8_of(v),
                        BRIDGE_VLANDB_GOPTS_MCAST_QUERIER => g.querier = u8_of(v).map(|b| b != 0),
                        _ => {}
                    }
                }
                g.vid = id?;
                g.vid_end = g.vid_end.max(g.vid);
                Some(g)
            })
            .collect()
    }
}

fn request(message_type: u16, m: VlanMessage, flags: u16) -> NetlinkMessage<RtnlMessage> {
    let mut n = NetlinkMessage::from(RtnlMessage::Vlan {
        message_type,
        message: m,
    });
    n.header.flags = flags;
    n
}

/// `bridge vlan set dev PORT vid VID mcast_router MODE` (0 off, 1 learn, 2 permanent):
/// the router mode of one port in one VLAN, which the kernel uses with
/// `mcast_vlan_snooping` on. `BRIDGE_VLAN_INFO_ONLY_OPTS`: the VLAN's flags stay.
pub fn set_port_router_message(port: u32, vid: u16, mode: u8) -> NetlinkMessage<RtnlMessage> {
    let mut info = VLAN_INFO_ONLY_OPTS.to_ne_bytes().to_vec();
    info.extend_from_slice(&vid.to_ne_bytes());
    let entry = nested(
        BRIDGE_VLANDB_ENTRY,
        &[
            nla(BRIDGE_VLANDB_ENTRY_INFO, &info),
            nla(BRIDGE_VLANDB_ENTRY_MCAST_ROUTER, &[mode]),
        ],
    );
    request(
        RTM_NEWVLAN,
        VlanMessage::new(port, entry),
        NLM_F_REQUEST | NLM_F_ACK,
    )
}

/// `bridge vlan global set dev BRIDGE vid VID [mcast_igmp_version N] [mcast_mld_version N]`.
pub fn set_versions_message(
    bridge: u32,
    vid: u16,
    igmp: Option<u8>,
    mld: Option<u8>,
) -> NetlinkMessage<RtnlMessage> {
    let mut inner = vec![nla(BRIDGE_VLANDB_GOPTS_ID, &vid.to_ne_bytes())];
    if let Some(v) = igmp {
        inner.push(nla(BRIDGE_VLANDB_GOPTS_MCAST_IGMP_VERSION, &[v]));
    }
    if let Some(v) = mld {
        inner.push(nla(BRIDGE_VLANDB_GOPTS_MCAST_MLD_VERSION, &[v]));
    }
    let opts = nested(BRIDGE_VLANDB_GLOBAL_OPTIONS, &inner);
    request(
        RTM_NEWVLAN,
        VlanMessage::new(bridge, opts),
        NLM_F_REQUEST | NLM_F_ACK,
    )
}

/// The dump request: port VLANs, or with `global` the bridges' global VLAN options.
pub fn dump_message(global: bool) -> NetlinkMessage<RtnlMessage> {
    let attrs = if global {
        nla(
            BRIDGE_VLANDB_DUMP_FLAGS,
            &BRIDGE_VLANDB_DUMPF_GLOBAL.to_ne_bytes(),
        )
    } else {
        Vec::new()
    };
    request(
        RTM_GETVLAN,
        VlanMessage::new(0, attrs),
        NLM_F_REQUEST | NLM_F_DUMP,
    )
}

/// The VLAN requests of a connection: `handle.vlan()`.
#[derive(Debug, Clone)]
pub struct VlanHandle(Handle);

impl VlanHandle {
    pub(crate) fn new(h: Handle) -> Self {
        Self(h)
    }

    /// [`set_port_router_message`], acked.
    pub async fn set_port_router(&self, port: u32, vid: u16, mode: u8) -> Result<(), Error> {
        self.0
            .ack(set_port_router_message(port, vid, mode), RequestKind::Other)
            .await
    }

    /// [`set_versions_message`], acked.
    pub async fn set_versions(
        &self,
        bridge: u32,
        vid: u16,
        igmp: Option<u8>,
        mld: Option<u8>,
    ) -> Result<(), Error> {
        self.0
            .ack(
                set_versions_message(bridge, vid, igmp, mld),
                RequestKind::Other,
            )
            .await
    }

    /// Every VLAN message of the dump (`bridge vlan show`, or `bridge vlan global show`
    /// with `global`), of every bridge and port.
    pub async fn dump(&self, global: bool) -> Result<Vec<VlanMessage>, Error> {
        let mut replies =
            std::pin::pin!(self.0.replies(dump_message(global), RequestKind::Other)?);
        let mut out = Vec::new();
        while let Some(r) = replies.next().await {
            if let RtnlMessage::Vlan { message, .. } = r? {
                out.push(message);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(flags: u16, vid: u16, end: Option<u16>, router: Option<u8>) -> Vec<u8> {
        let mut info = flags.to_ne_bytes().to_vec();
        info.extend_from_slice(&vid.to_ne_bytes());
        let mut inner = vec![nla(BRIDGE_VLANDB_ENTRY_INFO, &info)];
        if let Some(e) = end {
            inner.push(nla(BRIDGE_VLANDB_ENTRY_RANGE, &e.to_ne_bytes()));
        }
        if let Some(r) = router {
            inner.push(nla(BRIDGE_VLANDB_ENTRY_MCAST_ROUTER, &[r]));
        }
        nested(BRIDGE_VLANDB_ENTRY, &inner)
    }

    #[test]
    fn entries_ranges_and_options_round_trip() {
        let attrs = [
            entry(VLAN_INFO_PVID | VLAN_INFO_UNTAGGED, 10, None, Some(1)),
            entry(0, 20, Some(25), None),
            // Malformed: no info.
            nested(
                BRIDGE_VLANDB_ENTRY,
                &[nla(BRIDGE_VLANDB_ENTRY_MCAST_ROUTER, &[2])],
            ),
        ]
        .concat();
        let m = VlanMessage::parse(&VlanMessage::new(4, attrs).to_bytes()).unwrap();
        assert_eq!(m.ifindex, 4);
        let e = m.entries();
        assert_eq!(e.len(), 2);
        assert_eq!(
            (e[0].vid, e[0].vid_end, e[0].mcast_router),
            (10, 10, Some(1))
        );
        assert_eq!(
            e[1].vids().collect::<Vec<_>>(),
            vec![20, 21, 22, 23, 24, 25]
        );
    }

    #[test]
    fn the_version_request_is_what_the_kernel_reads_back() {
        let req = set_versions_message(3, 10, Some(3), None);
        let netlink_packet_core::NetlinkPayload::InnerMessage(RtnlMessage::Vlan {
            message, ..
        }) = req.payload
        else {
            panic!("not a VLAN message");
        };
        let g = message.globals();
        assert_eq!(g.len(), 1);
        assert_eq!(
            (g[0].vid, g[0].igmp_version, g[0].mld_version),
            (10, Some(3), None)
        );
    }

    #[test]
    fn garbage_never_panics() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            if let Ok(m) = VlanMessage::parse(&bytes) {
                let _ = (m.entries(), m.globals());
            }
        }
    }
}
