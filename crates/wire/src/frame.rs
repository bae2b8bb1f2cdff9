//! Framing for the AF_PACKET path: Ethernet II, one 802.1Q tag, IPv4 with the Router
//! Alert option (RFC 2113), IPv6 with a Hop-by-Hop Router Alert (RFC 2711), and the IGMP,
//! MLD and PIM messages inside.
//!
//! [`parse_ethernet`] decodes a whole frame as captured; [`Frame::to_bytes`] builds one,
//! so a querier can send from a real address or from 0.0.0.0, tagged or untagged.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;
use crate::error::{need, DecodeError};
use crate::igmp::IgmpRepr;
use crate::mld::{MldRepr, NEXT_HEADER_ICMPV6};
use crate::pim::{PimHello, PROTOCOL_PIM};
use crate::MacAddr;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType (TPID) of an 802.1Q tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// IP protocol number of IGMP.
pub const PROTOCOL_IGMP: u8 = 2;

const IPV4_OPTION_END: u8 = 0;
const IPV4_OPTION_NOP: u8 = 1;
/// IPv4 Router Alert option type: copied flag set, class 0, number 20 (RFC 2113).
const IPV4_OPTION_ROUTER_ALERT: u8 = 0x94;
const IPV6_NEXT_HOP_BY_HOP: u8 = 0;
const IPV6_NEXT_DEST_OPTS: u8 = 60;
const IPV6_NEXT_FRAGMENT: u8 = 44;
const IPV6_OPTION_PAD1: u8 = 0;
/// IPv6 Router Alert option type (RFC 2711); value 0 means "MLD message".
const IPV6_OPTION_ROUTER_ALERT: u8 = 5;

/// An 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// Priority Code Point, 0-7.
    pub pcp: u8,
    /// Drop Eligible Indicator.
    pub dei: bool,
    /// VLAN identifier, 0-4095.
    pub vid: u16,
}

impl VlanTag {
    /// A tag for `vid` with priority 0.
    pub fn new(vid: u16) -> Self {
        VlanTag {
            pcp: 0,
            dei: false,
            vid: vid & 0x0fff,
        }
    }
}

/// Ethernet II header with at most one 802.1Q tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetHeader {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// The 802.1Q tag, if the frame carries one.
    pub vlan: Option<VlanTag>,
}

impl EthernetHeader {
    /// A header to `dst_ip`'s multicast MAC (RFC 1112 §6.4, RFC 2464 §7).
    pub fn multicast(src: MacAddr, dst_ip: IpAddr, vlan: Option<VlanTag>) -> Self {
        EthernetHeader {
            dst: multicast_mac(dst_ip),
            src,
            vlan,
        }
    }
}

/// The multicast MAC for an IP group: 01:00:5e + low 23 bits (IPv4), 33:33 + low 32
/// bits (IPv6).
pub fn multicast_mac(ip: IpAddr) -> MacAddr {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            [0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]
        }
        IpAddr::V6(a) => {
            let o = a.octets();
            [0x33, 0x33, o[12], o[13], o[14], o[15]]
        }
    }
}

/// The IPv4 header fields igmpd reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address (0.0.0.0 for a proxy query).
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Time to live; IGMP uses 1 (RFC 9776 §4).
    pub ttl: u8,
    /// Type of service byte; queriers use 0xc0 (Internetwork Control).
    pub tos: u8,
    /// Identification field.
    pub identification: u16,
    /// The DF flag.
    pub dont_fragment: bool,
    /// Whether the header carries the Router Alert option (RFC 9776 §4 requires it).
    pub router_alert: bool,
}

impl Ipv4Header {
    /// The header IGMP messages use: TTL 1, TOS 0xc0, Router Alert, DF.
    pub fn igmp(src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        Ipv4Header {
            src,
            dst,
            ttl: 1,
            tos: 0xc0,
            identification: 0,
            dont_fragment: true,
            router_alert: true,
        }
    }

    fn header_len(&self) -> usize {
        if self.router_alert {
            24
        } else {
            20
        }
    }

    fn emit(&self, protocol: u8, payload_len: usize, out: &mut Vec<u8>) {
        let start = out.len();
        let hl = self.header_len();
        let total = (hl + payload_len).min(usize::from(u16::MAX)) as u16;
        out.push(0x40 | (hl / 4) as u8);
        out.push(self.tos);
        out.extend_from_slice(&total.to_be_bytes());
        out.extend_from_slice(&self.identification.to_be_bytes());
        out.extend_from_slice(&[if self.dont_fragment { 0x40 } else { 0 }, 0]);
        out.push(self.ttl);
        out.push(protocol);
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        if self.router_alert {
            out.extend_from_slice(&[IPV4_OPTION_ROUTER_ALERT, 4, 0, 0]);
        }
        let c = checksum::internet(&out[start..start + hl]);
        out[start + 10..start + 12].copy_from_slice(&c.to_be_bytes());
    }
}

/// The IPv6 header fields igmpd reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Header {
    /// Source address; MLD requires a link-local one (RFC 9777 §5).
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
    /// Hop limit; MLD uses 1.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Value of the Hop-by-Hop Router Alert option, if present (0 = MLD, RFC 2711).
    pub router_alert: Option<u16>,
}

impl Ipv6Header {
    /// The header MLD messages use: hop limit 1, Hop-by-Hop Router Alert value 0.
    pub fn mld(src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        Ipv6Header {
            src,
            dst,
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            router_alert: Some(0),
        }
    }

    fn emit(&self, next_header: u8, payload_len: usize, out: &mut Vec<u8>) {
        let ext = if self.router_alert.is_some() { 8 } else { 0 };
        let plen = (ext + payload_len).min(usize::from(u16::MAX)) as u16;
        let word =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0xf_ffff);
        out.extend_from_slice(&word.to_be_bytes());
        out.extend_from_slice(&plen.to_be_bytes());
        out.push(if self.router_alert.is_some() {
            IPV6_NEXT_HOP_BY_HOP
        } else {
            next_header
        });
        out.push(self.hop_limit);
        out.extend_from_slice(&self.src.octets());
        out.extend_from_slice(&self.dst.octets());
        if let Some(v) = self.router_alert {
            // Hop-by-Hop header of 8 bytes: next, length 0, RA (4 bytes), PadN of 2.
            out.extend_from_slice(&[next_header, 0, IPV6_OPTION_ROUTER_ALERT, 2]);
            out.extend_from_slice(&v.to_be_bytes());
            out.extend_from_slice(&[1, 0]);
        }
    }
}

/// An IP packet igmpd understands: the IP header and the message it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// IGMP (or IGMP MRD) in IPv4.
    Igmp {
        /// The IPv4 header.
        ip: Ipv4Header,
        /// The message.
        igmp: IgmpRepr,
    },
    /// MLD (or ICMPv6 MRD) in IPv6.
    Mld {
        /// The IPv6 header.
        ip: Ipv6Header,
        /// The message.
        mld: MldRepr,
    },
    /// A PIM hello in IPv4.
    PimHelloV4 {
        /// The IPv4 header.
        ip: Ipv4Header,
        /// The hello.
        hello: PimHello,
    },
    /// A PIM hello in IPv6.
    PimHelloV6 {
        /// The IPv6 header.
        ip: Ipv6Header,
        /// The hello.
        hello: PimHello,
    },
}

impl Packet {
    /// The IP source address.
    pub fn src(&self) -> IpAddr {
        match self {
            Packet::Igmp { ip, .. } | Packet::PimHelloV4 { ip, .. } => IpAddr::V4(ip.src),
            Packet::Mld { ip, .. } | Packet::PimHelloV6 { ip, .. } => IpAddr::V6(ip.src),
        }
    }

    /// The IP destination address.
    pub fn dst(&self) -> IpAddr {
        match self {
            Packet::Igmp { ip, .. } | Packet::PimHelloV4 { ip, .. } => IpAddr::V4(ip.dst),
            Packet::Mld { ip, .. } | Packet::PimHelloV6 { ip, .. } => IpAddr::V6(ip.dst),
        }
    }

    /// TTL or hop limit.
    pub fn hop_limit(&self) -> u8 {
        match self {
            Packet::Igmp { ip, .. } | Packet::PimHelloV4 { ip, .. } => ip.ttl,
            Packet::Mld { ip, .. } | Packet::PimHelloV6 { ip, .. } => ip.hop_limit,
        }
    }

    /// Whether the IP header carried a Router Alert option.
    pub fn router_alert(&self) -> bool {
        match self {
            Packet::Igmp { ip, .. } | Packet::PimHelloV4 { ip, .. } => ip.router_alert,
            Packet::Mld { ip, .. } | Packet::PimHelloV6 { ip, .. } => ip.router_alert.is_some(),
        }
    }

    /// Bytes of the whole IP packet.
    pub fn buffer_len(&self) -> usize {
        match self {
            Packet::Igmp { ip, igmp } => ip.header_len() + igmp.buffer_len(),
            Packet::Mld { ip, mld } => {
                40 + 8 * usize::from(ip.router_alert.is_some()) + mld.buffer_len()
            }
            Packet::PimHelloV4 { ip, hello } => ip.header_len() + hello.to_bytes_v4().len(),
            Packet::PimHelloV6 { ip, hello } => {
                40 + 8 * usize::from(ip.router_alert.is_some())
                    + hello.to_bytes_v6(&ip.src, &ip.dst).len()
            }
        }
    }

    /// Appends the IP packet (headers, checksums, message) to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            Packet::Igmp { ip, igmp } => {
                ip.emit(PROTOCOL_IGMP, igmp.buffer_len(), out);
                igmp.emit(out);
            }
            Packet::Mld { ip, mld } => {
                ip.emit(NEXT_HEADER_ICMPV6, mld.buffer_len(), out);
                mld.emit(&ip.src, &ip.dst, out);
            }
            Packet::PimHelloV4 { ip, hello } => {
                let body = hello.to_bytes_v4();
                ip.emit(PROTOCOL_PIM, body.len(), out);
                out.extend_from_slice(&body);
            }
            Packet::PimHelloV6 { ip, hello } => {
                let body = hello.to_bytes_v6(&ip.src, &ip.dst);
                ip.emit(PROTOCOL_PIM, body.len(), out);
                out.extend_from_slice(&body);
            }
        }
    }

    /// The IP packet as a new vector (for raw IP sockets).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(&mut v);
        v
    }
}

/// A whole Ethernet frame carrying IGMP, MLD or a PIM hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Ethernet header and VLAN tag.
    pub ethernet: EthernetHeader,
    /// The IP packet.
    pub packet: Packet,
}

impl Frame {
    /// An IGMP frame to the multicast MAC of `ip.dst`.
    pub fn igmp(src_mac: MacAddr, vlan: Option<VlanTag>, ip: Ipv4Header, igmp: IgmpRepr) -> Self {
        Frame {
            ethernet: EthernetHeader::multicast(src_mac, IpAddr::V4(ip.dst), vlan),
            packet: Packet::Igmp { ip, igmp },
        }
    }

    /// An MLD frame to the multicast MAC of `ip.dst`.
    pub fn mld(src_mac: MacAddr, vlan: Option<VlanTag>, ip: Ipv6Header, mld: MldRepr) -> Self {
        Frame {
            ethernet: EthernetHeader::multicast(src_mac, IpAddr::V6(ip.dst), vlan),
            packet: Packet::Mld { ip, mld },
        }
    }

    /// Bytes of the whole frame.
    pub fn buffer_len(&self) -> usize {
        14 + 4 * usize::from(self.ethernet.vlan.is_some()) + self.packet.buffer_len()
    }

    /// Appends the frame to `out` (no padding to 60 bytes: the NIC or veth does that
    /// where the medium needs it).
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ethernet.dst);
        out.extend_from_slice(&self.ethernet.src);
        if let Some(tag) = self.ethernet.vlan {
            out.extend_from_slice(&ETHERTYPE_VLAN.to_be_bytes());
            let tci =
                (u16::from(tag.pcp & 7) << 13) | (u16::from(tag.dei) << 12) | (tag.vid & 0x0fff);
            out.extend_from_slice(&tci.to_be_bytes());
        }
        let ethertype = match self.packet {
            Packet::Igmp { .. } | Packet::PimHelloV4 { .. } => ETHERTYPE_IPV4,
            Packet::Mld { .. } | Packet::PimHelloV6 { .. } => ETHERTYPE_IPV6,
        };
        out.extend_from_slice(&ethertype.to_be_bytes());
        self.packet.emit(out);
    }

    /// The frame as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(&mut v);
        v
    }
}

/// Decodes a whole Ethernet frame. Trailing bytes beyond the IP packet (Ethernet padding)
/// are ignored.
pub fn parse_ethernet(buf: &[u8]) -> Result<Frame, DecodeError> {
    need("Ethernet", buf, 14)?;
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&buf[0..6]);
    src.copy_from_slice(&buf[6..12]);
    let mut ethertype = u16::from_be_bytes([buf[12], buf[13]]);
    let mut rest = &buf[14..];
    let mut vlan = None;
    if ethertype == ETHERTYPE_VLAN {
        need("802.1Q", rest, 4)?;
        let tci = u16::from_be_bytes([rest[0], rest[1]]);
        vlan = Some(VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        });
        ethertype = u16::from_be_bytes([rest[2], rest[3]]);
        rest = &rest[4..];
    }
    let packet = match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(rest)?,
        ETHERTYPE_IPV6 => parse_ipv6(rest)?,
        other => return Err(DecodeError::UnsupportedEtherType(other)),
    };
    Ok(Frame {
        ethernet: EthernetHeader { dst, src, vlan },
        packet,
    })
}

/// Decodes an IP packet (IPv4 or IPv6 by its version nibble), as a raw IP socket or a
/// cooked capture delivers it.
pub fn parse_ip(buf: &[u8]) -> Result<Packet, DecodeError> {
    need("IP", buf, 1)?;
    match buf[0] >> 4 {
        4 => parse_ipv4(buf),
        6 => parse_ipv6(buf),
        _ => Err(DecodeError::BadIpHeader("version")),
    }
}

/// Decodes an IPv4 packet carrying IGMP or PIM.
pub fn parse_ipv4(buf: &[u8]) -> Result<Packet, DecodeError> {
    need("IPv4", buf, 20)?;
    if buf[0] >> 4 != 4 {
        return Err(DecodeError::BadIpHeader("version"));
    }
    let hl = usize::from(buf[0] & 0x0f) * 4;
    if hl < 20 {
        return Err(DecodeError::BadIpHeader("header length"));
    }
    need("IPv4 header", buf, hl)?;
    let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if total < hl {
        return Err(DecodeError::BadIpHeader("total length"));
    }
    need("IPv4 packet", buf, total)?;
    if !checksum::verify(&buf[..hl]) {
        return Err(DecodeError::BadIpChecksum);
    }
    let flags_frag = u16::from_be_bytes([buf[6], buf[7]]);
    if flags_frag & 0x3fff != 0 {
        // More Fragments set or a non-zero offset.
        return Err(DecodeError::Fragmented);
    }
    let router_alert = ipv4_router_alert(&buf[20..hl])?;
    let ip = Ipv4Header {
        src: Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
        dst: Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]),
        ttl: buf[8],
        tos: buf[1],
        identification: u16::from_be_bytes([buf[4], buf[5]]),
        dont_fragment: flags_frag & 0x4000 != 0,
        router_alert,
    };
    let payload = &buf[hl..total];
    match buf[9] {
        PROTOCOL_IGMP => Ok(Packet::Igmp {
            ip,
            igmp: IgmpRepr::parse(payload)?,
        }),
        PROTOCOL_PIM => Ok(Packet::PimHelloV4 {
            ip,
            hello: PimHello::parse_v4(payload)?,
        }),
        p => Err(DecodeError::UnsupportedProtocol(p)),
    }
}

/// Walks IPv4 options; true when a Router Alert is among them.
fn ipv4_router_alert(mut opts: &[u8]) -> Result<bool, DecodeError> {
    let mut ra = false;
    while let Some(&t) = opts.first() {
        match t {
            IPV4_OPTION_END => break,
            IPV4_OPTION_NOP => opts = &opts[1..],
            _ => {
                let len = usize::from(
                    *opts
                        .get(1)
                        .ok_or(DecodeError::BadIpHeader("option length"))?,
                );
                if len < 2 || len > opts.len() {
                    return Err(DecodeError::BadIpHeader("option length"));
                }
                if t == IPV4_OPTION_ROUTER_ALERT && len == 4 {
                    ra = true;
                }
                opts = &opts[len..];
            }
        }
    }
    Ok(ra)
}

/// Decodes an IPv6 packet carrying MLD or PIM, after an optional Hop-by-Hop header and
/// any Destination Options headers.
pub fn parse_ipv6(buf: &[u8]) -> Result<Packet, DecodeError> {
    need("IPv6", buf, 40)?;
    if buf[0] >> 4 != 6 {
        return Err(DecodeError::BadIpHeader("version"));
    }
    let plen = usize::from(u16::from_be_bytes([buf[4], buf[5]]));
    need("IPv6 packet", buf, 40 + plen)?;
    let word = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&buf[8..24]);
    dst.copy_from_slice(&buf[24..40]);
    let mut ip = Ipv6Header {
        src: Ipv6Addr::from(src),
        dst: Ipv6Addr::from(dst),
        hop_limit: buf[7],
        traffic_class: ((word >> 20) & 0xff) as u8,
        flow_label: word & 0xf_ffff,
        router_alert: None,
    };
    let mut next = buf[6];
    let mut rest = &buf[40..40 + plen];
    let mut first = true;
    loop {
        match next {
            IPV6_NEXT_HOP_BY_HOP | IPV6_NEXT_DEST_OPTS => {
                // RFC 8200 §4.3: Hop-by-Hop may only come first.
                if next == IPV6_NEXT_HOP_BY_HOP && !first {
                    return Err(DecodeError::BadIpHeader("hop-by-hop header not first"));
                }
                need("IPv6 extension header", rest, 2)?;
                let len = (usize::from(rest[1]) + 1) * 8;
                need("IPv6 extension header", rest, len)?;
                let ra = ipv6_options(&rest[2..len])?;
                if next == IPV6_NEXT_HOP_BY_HOP {
                    ip.router_alert = ra;
                }
                next = rest[0];
                rest = &rest[len..];
            }
            IPV6_NEXT_FRAGMENT => return Err(DecodeError::Fragmented),
            NEXT_HEADER_ICMPV6 => {
                return Ok(Packet::Mld {
                    mld: MldRepr::parse(rest, &ip.src, &ip.dst)?,
                    ip,
                })
            }
            PROTOCOL_PIM => {
                return Ok(Packet::PimHelloV6 {
                    hello: PimHello::parse_v6(rest, &ip.src, &ip.dst)?,
                    ip,
                })
            }
            p => return Err(DecodeError::UnsupportedProtocol(p)),
        }
        first = false;
    }
}

/// Walks the TLV options of a Hop-by-Hop or Destination Options header; returns the
/// Router Alert value if one is there.
fn ipv6_options(mut opts: &[u8]) -> Result<Option<u16>, DecodeError> {
    let mut ra = None;
    while let Some(&t) = opts.first() {
        if t == IPV6_OPTION_PAD1 {
            opts = &opts[1..];
            continue;
        }
        if opts.len() < 2 {
            return Err(DecodeError::BadIpHeader("option length"));
        }
        let len = usize::from(opts[1]) + 2;
        if len > opts.len() {
            return Err(DecodeError::BadIpHeader("option length"));
        }
        if t == IPV6_OPTION_ROUTER_ALERT && len == 4 {
            ra = Some(u16::from_be_bytes([opts[2], opts[3]]));
        }
        opts = &opts[len..];
    }
    Ok(ra)
}

#[cfg(test)]
mod tests;
