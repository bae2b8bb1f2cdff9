//! IGMP and MLD on the wire: a pure codec, no I/O.
//!
//! Covers IGMPv1 (RFC 1112), IGMPv2 (RFC 2236), IGMPv3 (RFC 9776), MLDv1 (RFC 2710),
//! MLDv2 (RFC 9777), Multicast Router Discovery (RFC 4286) and recognises PIM hellos
//! (RFC 7761 §4.9.2), each as a semantic `Repr` with `parse` and `emit`.
//! [`frame`] adds the framing igmpd's AF_PACKET path needs: Ethernet, one 802.1Q tag, IPv4
//! with the Router Alert option (RFC 2113) and IPv6 with a Hop-by-Hop Router Alert
//! (RFC 2711), and builders that emit whole frames.
//!
//! Every parser is total: any byte slice yields a value or a [`DecodeError`] naming the
//! reason, never a panic. Checksums are verified on parse and computed on emit.

pub mod checksum;
pub mod error;
pub mod float;
pub mod frame;
pub mod igmp;
pub mod mld;
pub mod mrd;
pub mod pcap;
pub mod pim;
pub mod record;

pub use error::DecodeError;
pub use frame::{
    parse_ethernet, parse_ip, EthernetHeader, Frame, Ipv4Header, Ipv6Header, Packet, VlanTag,
};
pub use igmp::{IgmpQuery, IgmpRepr, IgmpVersion};
pub use mld::{MldQuery, MldRepr, MldVersion};
pub use mrd::MrdRepr;
pub use record::{GroupRecord, RecordType};

/// A MAC address, as six bytes in wire order.
pub type MacAddr = [u8; 6];
