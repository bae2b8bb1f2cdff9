//! `struct br_mdb_entry`: one port's membership in one group.

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use netlink_packet_core::{DecodeError, Emitable, Parseable};

use crate::constants::{ETH_P_IP, ETH_P_IPV6, MDB_PERMANENT, MDB_TEMPORARY};

/// Length of `struct br_mdb_entry` (26 bytes of fields, padded to 28).
pub const MDB_ENTRY_LEN: usize = 28;

mod field {
    use std::ops::Range;
    pub const IFINDEX: Range<usize> = 0..4;
    pub const STATE: usize = 4;
    pub const FLAGS: usize = 5;
    pub const VID: Range<usize> = 6..8;
    pub const ADDR: Range<usize> = 8..24;
    pub const PROTO: Range<usize> = 24..26;
}

/// Whether an entry ages out (`MDB_TEMPORARY`) or stays (`MDB_PERMANENT`).
#[derive(Debug, PartialEq, Eq, Clone, Copy, Default)]
pub enum MdbState {
    /// `MDB_TEMPORARY`: ages out after the bridge's membership interval
    /// unless refreshed.
    #[default]
    Temporary,
    /// `MDB_PERMANENT`: stays until deleted.
    Permanent,
    /// A value this crate does not know.
    Other(u8),
}

impl From<u8> for MdbState {
    fn from(v: u8) -> Self {
        match v {
            MDB_TEMPORARY => Self::Temporary,
            MDB_PERMANENT => Self::Permanent,
            v => Self::Other(v),
        }
    }
}

impl From<MdbState> for u8 {
    fn from(v: MdbState) -> u8 {
        match v {
            MdbState::Temporary => MDB_TEMPORARY,
            MdbState::Permanent => MDB_PERMANENT,
            MdbState::Other(v) => v,
        }
    }
}

bitflags::bitflags! {
    /// `MDB_FLAGS_*` of `struct br_mdb_entry`. Unknown bits are retained.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct MdbFlags: u8 {
        /// `MDB_FLAGS_OFFLOAD`: programmed into switch hardware.
        const OFFLOAD = 1 << 0;
        /// `MDB_FLAGS_FAST_LEAVE`: the port has fast leave on.
        const FAST_LEAVE = 1 << 1;
        /// `MDB_FLAGS_STAR_EXCL`: (S,G) entry created from a (*,G) EXCLUDE.
        const STAR_EXCL = 1 << 2;
        /// `MDB_FLAGS_BLOCKED`: (S,G) entry that blocks S (EXCLUDE list).
        const BLOCKED = 1 << 3;
        /// `MDB_FLAGS_OFFLOAD_FAILED`: hardware offload failed.
        const OFFLOAD_FAILED = 1 << 4;
        const _ = !0;
    }
}

/// The group address of an MDB entry: `addr.u` interpreted by `addr.proto`.
#[derive(Debug, PartialEq, Eq, Clone, Copy, Hash, PartialOrd, Ord)]
pub enum MdbGroup {
    /// IPv4 group (`addr.proto` = `ETH_P_IP`).
    Ipv4(Ipv4Addr),
    /// IPv6 group (`addr.proto` = `ETH_P_IPV6`).
    Ipv6(Ipv6Addr),
    /// Layer 2 group (`addr.proto` = 0): a multicast MAC address.
    Mac([u8; 6]),
    /// Anything else, kept as received.
    Other {
        /// `addr.proto`, host byte order.
        proto: u16,
        /// `addr.u`, as received.
        addr: [u8; 16],
    },
}

impl MdbGroup {
    /// The `addr.proto` value (an EtherType, host byte order).
    pub fn proto(&self) -> u16 {
        match self {
            Self::Ipv4(_) => ETH_P_IP,
            Self::Ipv6(_) => ETH_P_IPV6,
            Self::Mac(_) => 0,
            Self::Other { proto, .. } => *proto,
        }
    }

    /// The IP address of an IPv4 or IPv6 group.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ipv4(a) => Some(IpAddr::V4(*a)),
            Self::Ipv6(a) => Some(IpAddr::V6(*a)),
            _ => None,
        }
    }

    fn emit_addr(&self, buf: &mut [u8]) {
        buf.fill(0);
        match self {
            Self::Ipv4(a) => buf[..4].copy_from_slice(&a.octets()),
            Self::Ipv6(a) => buf.copy_from_slice(&a.octets()),
            Self::Mac(m) => buf[..6].copy_from_slice(m),
            Self::Other { addr, .. } => buf.copy_from_slice(addr),
        }
    }
}

impl From<Ipv4Addr> for MdbGroup {
    fn from(a: Ipv4Addr) -> Self {
        Self::Ipv4(a)
    }
}

impl From<Ipv6Addr> for MdbGroup {
    fn from(a: Ipv6Addr) -> Self {
        Self::Ipv6(a)
    }
}

impl From<IpAddr> for MdbGroup {
    fn from(a: IpAddr) -> Self {
        match a {
            IpAddr::V4(a) => Self::Ipv4(a),
            IpAddr::V6(a) => Self::Ipv6(a),
        }
    }
}

impl From<[u8; 6]> for MdbGroup {
    fn from(m: [u8; 6]) -> Self {
        Self::Mac(m)
    }
}

impl fmt::Display for MdbGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ipv4(a) => a.fmt(f),
            Self::Ipv6(a) => a.fmt(f),
            Self::Mac(m) => write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            ),
            Self::Other { proto, addr } => write!(f, "proto {proto:#06x} {addr:02x?}"),
        }
    }
}

/// `struct br_mdb_entry`: port, state, flags, VLAN and group of one entry.
///
/// ```text
/// 0                8                16              24               32
/// +----------------+----------------+----------------+----------------+
/// |                       port interface index                        |
/// +----------------+----------------+----------------+----------------+
/// |     state      |     flags      |               vid               |
/// +----------------+----------------+----------------+----------------+
/// |           group address (16 bytes: IPv4, IPv6 or MAC)             |
/// +----------------+----------------+----------------+----------------+
/// |       proto (EtherType, BE)     |             padding             |
/// +----------------+----------------+----------------+----------------+
/// ```
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct MdbEntry {
    /// Interface index of the port (the bridge itself for host joins).
    pub ifindex: u32,
    /// Temporary or permanent.
    pub state: MdbState,
    /// `MDB_FLAGS_*`.
    pub flags: MdbFlags,
    /// VLAN id, 0 for none.
    pub vid: u16,
    /// The group.
    pub group: MdbGroup,
}

impl MdbEntry {
    /// An entry for `port` and `group`, temporary, no VLAN.
    pub fn new(port: u32, group: MdbGroup) -> Self {
        Self {
            ifindex: port,
            state: MdbState::Temporary,
            flags: MdbFlags::empty(),
            vid: 0,
            group,
        }
    }
}

impl<T: AsRef<[u8]> + ?Sized> Parseable<T> for MdbEntry {
    fn parse(buf: &T) -> Result<Self, DecodeError> {
        let buf = buf.as_ref();
        // The kernel accepts (and older kernels send) the unpadded 26 bytes.
        if buf.len() < field::PROTO.end {
            return Err(DecodeError::invalid_buffer(
                "br_mdb_entry",
                buf.len(),
                MDB_ENTRY_LEN,
            ));
        }
        let mut addr = [0u8; 16];
        addr.copy_from_slice(&buf[field::ADDR]);
        let proto = u16::from_be_bytes([buf[field::PROTO.start], buf[field::PROTO.start + 1]]);
        let group = match proto {
            ETH_P_IP => MdbGroup::Ipv4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3])),
            ETH_P_IPV6 => MdbGroup::Ipv6(Ipv6Addr::from(addr)),
            0 => MdbGroup::Mac([addr[0], addr[1], addr[2], addr[3], addr[4], addr[5]]),
            proto => MdbGroup::Other { proto, addr },
        };
        Ok(Self {
            ifindex: u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]),
            state: buf[field::STATE].into(),
            flags: MdbFlags::from_bits_retain(buf[field::FLAGS]),
            vid: u16::from_ne_bytes([buf[field::VID.start], buf[field::VID.start + 1]]),
            group,
        })
    }
}

impl Emitable for MdbEntry {
    fn buffer_len(&self) -> usize {
        MDB_ENTRY_LEN
    }

    fn emit(&self, buffer: &mut [u8]) {
        let buffer = &mut buffer[..MDB_ENTRY_LEN];
        buffer.fill(0);
        buffer[field::IFINDEX].copy_from_slice(&self.ifindex.to_ne_bytes());
        buffer[field::STATE] = self.state.into();
        buffer[field::FLAGS] = self.flags.bits();
        buffer[field::VID].copy_from_slice(&self.vid.to_ne_bytes());
        self.group.emit_addr(&mut buffer[field::ADDR]);
        buffer[field::PROTO].copy_from_slice(&self.group.proto().to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vid_is_encoded_in_host_order_at_offset_6() {
        let mut e = MdbEntry::new(4, MdbGroup::Ipv4(Ipv4Addr::new(239, 1, 1, 1)));
        e.vid = 100;
        e.state = MdbState::Permanent;
        let mut buf = [0xffu8; MDB_ENTRY_LEN];
        e.emit(&mut buf);
        assert_eq!(&buf[6..8], &100u16.to_ne_bytes());
        assert_eq!(buf[4], 1);
        assert_eq!(&buf[24..28], &[0x08, 0x00, 0, 0]);
        assert_eq!(MdbEntry::parse(&buf[..]).unwrap(), e);
        e.vid = 4094;
        e.emit(&mut buf);
        assert_eq!(MdbEntry::parse(&buf[..]).unwrap().vid, 4094);
    }

    #[test]
    fn short_buffer_is_an_error() {
        assert!(MdbEntry::parse(&[0u8; 25][..]).is_err());
    }

    #[test]
    fn unknown_proto_is_kept() {
        let mut buf = [0u8; MDB_ENTRY_LEN];
        buf[8] = 0xaa;
        buf[24] = 0x12;
        buf[25] = 0x34;
        let e = MdbEntry::parse(&buf[..]).unwrap();
        assert!(matches!(e.group, MdbGroup::Other { proto: 0x1234, .. }));
        let mut out = [0u8; MDB_ENTRY_LEN];
        e.emit(&mut out);
        assert_eq!(out, buf);
    }
}
