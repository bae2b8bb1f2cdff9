//! Multicast Router Discovery (RFC 4286): how routers announce themselves to snooping
//! switches. Carried in IGMP (types 0x30-0x32) over IPv4 and in ICMPv6 (types 151-153).

use crate::error::{need, DecodeError};

/// All-Snoopers group for Advertisements and Terminations (RFC 4286 §5.1, §6.1).
pub const ALL_SNOOPERS_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 106);
/// All-Snoopers group for IPv6 (RFC 4286 §5.1).
pub const ALL_SNOOPERS_V6: std::net::Ipv6Addr =
    std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x6a);

/// IGMP types of MRD (RFC 4286 §8).
pub(crate) const IGMP_ADVERTISEMENT: u8 = 0x30;
pub(crate) const IGMP_SOLICITATION: u8 = 0x31;
pub(crate) const IGMP_TERMINATION: u8 = 0x32;
/// ICMPv6 types of MRD (RFC 4286 §8).
pub(crate) const ICMPV6_ADVERTISEMENT: u8 = 151;
pub(crate) const ICMPV6_SOLICITATION: u8 = 152;
pub(crate) const ICMPV6_TERMINATION: u8 = 153;

/// One MRD message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MrdRepr {
    /// Multicast Router Advertisement (RFC 4286 §5): a router is on this port.
    Advertisement {
        /// Advertisement Interval in seconds (4-180).
        advertisement_interval: u8,
        /// The router's Query Interval in seconds (0 when it is not a querier).
        query_interval: u16,
        /// The router's Robustness Variable (0 when it is not a querier).
        robustness: u16,
    },
    /// Multicast Router Solicitation (RFC 4286 §6).
    Solicitation,
    /// Multicast Router Termination (RFC 4286 §7).
    Termination,
}

/// Which of the three messages a type value names, for IGMP or ICMPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MrdKind {
    Advertisement,
    Solicitation,
    Termination,
}

impl MrdKind {
    pub(crate) fn from_igmp_type(t: u8) -> Option<Self> {
        match t {
            IGMP_ADVERTISEMENT => Some(MrdKind::Advertisement),
            IGMP_SOLICITATION => Some(MrdKind::Solicitation),
            IGMP_TERMINATION => Some(MrdKind::Termination),
            _ => None,
        }
    }

    pub(crate) fn from_icmpv6_type(t: u8) -> Option<Self> {
        match t {
            ICMPV6_ADVERTISEMENT => Some(MrdKind::Advertisement),
            ICMPV6_SOLICITATION => Some(MrdKind::Solicitation),
            ICMPV6_TERMINATION => Some(MrdKind::Termination),
            _ => None,
        }
    }
}

impl MrdRepr {
    /// Parses a message whose type field (`buf[0]`) was already classified as `kind` and
    /// whose checksum the caller verified.
    pub(crate) fn parse(kind: MrdKind, buf: &[u8]) -> Result<Self, DecodeError> {
        match kind {
            MrdKind::Advertisement => {
                need("MRD advertisement", buf, 8)?;
                Ok(MrdRepr::Advertisement {
                    advertisement_interval: buf[1],
                    query_interval: u16::from_be_bytes([buf[4], buf[5]]),
                    robustness: u16::from_be_bytes([buf[6], buf[7]]),
                })
            }
            MrdKind::Solicitation => {
                need("MRD solicitation", buf, 4)?;
                Ok(MrdRepr::Solicitation)
            }
            MrdKind::Termination => {
                need("MRD termination", buf, 4)?;
                Ok(MrdRepr::Termination)
            }
        }
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            MrdRepr::Advertisement { .. } => 8,
            MrdRepr::Solicitation | MrdRepr::Termination => 4,
        }
    }

    /// Appends the message with a zero checksum; `ipv6` picks the ICMPv6 type numbers.
    pub(crate) fn emit_zero_checksum(&self, ipv6: bool, out: &mut Vec<u8>) {
        let (t4, t6) = match self {
            MrdRepr::Advertisement { .. } => (IGMP_ADVERTISEMENT, ICMPV6_ADVERTISEMENT),
            MrdRepr::Solicitation => (IGMP_SOLICITATION, ICMPV6_SOLICITATION),
            MrdRepr::Termination => (IGMP_TERMINATION, ICMPV6_TERMINATION),
        };
        out.push(if ipv6 { t6 } else { t4 });
        match self {
            MrdRepr::Advertisement {
                advertisement_interval,
                query_interval,
                robustness,
            } => {
                out.push(*advertisement_interval);
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&query_interval.to_be_bytes());
                out.extend_from_slice(&robustness.to_be_bytes());
            }
            MrdRepr::Solicitation | MrdRepr::Termination => out.extend_from_slice(&[0, 0, 0]),
        }
    }
}
