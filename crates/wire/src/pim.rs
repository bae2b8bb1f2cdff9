//! PIM hello recognition (RFC 7761 §4.9.2): a port that hears PIM hellos leads to a
//! multicast router, which RFC 4541 §2.1.1 lets a snooping switch treat as a router port.

use std::net::Ipv6Addr;

use crate::checksum;
use crate::error::{need, DecodeError};

/// IP protocol / IPv6 Next Header of PIM.
pub const PROTOCOL_PIM: u8 = 103;
/// ALL-PIM-ROUTERS for IPv4.
pub const ALL_PIM_ROUTERS_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 13);
/// ALL-PIM-ROUTERS for IPv6.
pub const ALL_PIM_ROUTERS_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x0d);

/// Hello option type of Holdtime (RFC 7761 §4.9.2).
const OPTION_HOLDTIME: u16 = 1;

/// A PIMv2 hello, with the option snooping cares about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PimHello {
    /// Holdtime option in seconds, if present: how long the router counts as present.
    pub holdtime: Option<u16>,
}

impl PimHello {
    /// Parses a PIM message carried in IPv4; `NotPimHello` for other PIM messages.
    pub fn parse_v4(buf: &[u8]) -> Result<Self, DecodeError> {
        Self::parse(buf, checksum::verify)
    }

    /// Parses a PIM message carried in IPv6 (checksum with the pseudo-header).
    pub fn parse_v6(buf: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<Self, DecodeError> {
        Self::parse(buf, |b| checksum::verify_v6(src, dst, PROTOCOL_PIM, b))
    }

    fn parse(buf: &[u8], verify: impl Fn(&[u8]) -> bool) -> Result<Self, DecodeError> {
        need("PIM", buf, 4)?;
        // PIM Ver 2, Type 0 (Hello).
        if buf[0] != 0x20 {
            return Err(DecodeError::NotPimHello);
        }
        if !verify(buf) {
            return Err(DecodeError::BadChecksum);
        }
        let mut holdtime = None;
        let mut rest = &buf[4..];
        while !rest.is_empty() {
            need("PIM hello option", rest, 4)?;
            let t = u16::from_be_bytes([rest[0], rest[1]]);
            let len = usize::from(u16::from_be_bytes([rest[2], rest[3]]));
            need("PIM hello option", rest, 4 + len)?;
            if t == OPTION_HOLDTIME && len == 2 {
                holdtime = Some(u16::from_be_bytes([rest[4], rest[5]]));
            }
            rest = &rest[4 + len..];
        }
        Ok(PimHello { holdtime })
    }

    /// Emits a hello (with a Holdtime option when set) and an IPv4 checksum.
    pub fn to_bytes_v4(&self) -> Vec<u8> {
        let mut v = self.body();
        let c = checksum::internet(&v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        v
    }

    /// Emits a hello with the IPv6 pseudo-header checksum.
    pub fn to_bytes_v6(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let mut v = self.body();
        let c = checksum::internet_v6(src, dst, PROTOCOL_PIM, &v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        v
    }

    fn body(&self) -> Vec<u8> {
        let mut v = vec![0x20, 0, 0, 0];
        if let Some(h) = self.holdtime {
            v.extend_from_slice(&OPTION_HOLDTIME.to_be_bytes());
            v.extend_from_slice(&2u16.to_be_bytes());
            v.extend_from_slice(&h.to_be_bytes());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_rejects_other_pim() {
        let h = PimHello {
            holdtime: Some(105),
        };
        assert_eq!(PimHello::parse_v4(&h.to_bytes_v4()).unwrap(), h);
        let src = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
        assert_eq!(
            PimHello::parse_v6(
                &h.to_bytes_v6(&src, &ALL_PIM_ROUTERS_V6),
                &src,
                &ALL_PIM_ROUTERS_V6
            )
            .unwrap(),
            h
        );
        // PIM Join/Prune (type 3).
        assert_eq!(
            PimHello::parse_v4(&[0x23, 0, 0, 0]),
            Err(DecodeError::NotPimHello)
        );
        let mut bad = h.to_bytes_v4();
        bad[5] ^= 1;
        assert_eq!(PimHello::parse_v4(&bad), Err(DecodeError::BadChecksum));
    }

    #[test]
    fn option_running_past_the_end_is_truncated() {
        let mut v = vec![0x20, 0, 0, 0, 0, 1, 0, 9, 0, 1];
        let c = checksum::internet(&v);
        v[2..4].copy_from_slice(&c.to_be_bytes());
        assert!(matches!(
            PimHello::parse_v4(&v),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
