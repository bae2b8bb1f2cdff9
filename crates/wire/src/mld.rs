//! MLDv1 (RFC 2710) and MLDv2 (RFC 9777) messages, plus the ICMPv6 form of Multicast
//! Router Discovery (RFC 4286).
//!
//! MLD rides in ICMPv6, whose checksum covers the IPv6 pseudo-header, so parsing and
//! emitting take the IPv6 source and destination addresses.

use std::net::Ipv6Addr;

use crate::checksum;
use crate::error::{need, DecodeError};
use crate::float;
use crate::mrd::{MrdKind, MrdRepr};
use crate::record::{parse_records, parse_sources, GroupRecord};

/// IPv6 Next Header value of ICMPv6.
pub const NEXT_HEADER_ICMPV6: u8 = 58;

/// ICMPv6 message types of MLD.
pub mod types {
    /// Multicast Listener Query, MLDv1 and MLDv2 (RFC 2710 §3, RFC 9777 §5.1).
    pub const LISTENER_QUERY: u8 = 130;
    /// MLDv1 Multicast Listener Report (RFC 2710 §3).
    pub const V1_LISTENER_REPORT: u8 = 131;
    /// MLDv1 Multicast Listener Done (RFC 2710 §3).
    pub const V1_LISTENER_DONE: u8 = 132;
    /// MLDv2 Multicast Listener Report (RFC 9777 §5.2).
    pub const V2_LISTENER_REPORT: u8 = 143;
}

/// All-Nodes, destination of general queries (RFC 9777 §5.1.15).
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
/// All-Routers, destination of MLDv1 Done (RFC 2710 §5).
pub const ALL_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
/// All MLDv2-capable routers, destination of MLDv2 reports (RFC 9777 §5.2.14).
pub const ALL_MLDV2_ROUTERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x16);

/// The MLD version of a query: 24 octets is v1, 28 or more is v2 (RFC 9777 §8.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MldVersion {
    /// MLDv1.
    V1,
    /// MLDv2.
    V2,
}

impl MldVersion {
    /// 1 or 2.
    pub fn number(self) -> u8 {
        match self {
            MldVersion::V1 => 1,
            MldVersion::V2 => 2,
        }
    }
}

/// A Multicast Listener Query of either version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MldQuery {
    /// Which version the query's length says.
    pub version: MldVersion,
    /// Maximum Response Code as on the wire: milliseconds for v1, float-encoded for v2
    /// (RFC 9777 §5.1.3). See [`MldQuery::max_resp_time_ms`].
    pub max_resp_code: u16,
    /// :: for a general query, else the multicast address asked about.
    pub group: Ipv6Addr,
    /// S flag (RFC 9777 §5.1.7); v2 only.
    pub suppress_router_processing: bool,
    /// Querier's Robustness Variable, 0-7 (RFC 9777 §5.1.8); v2 only.
    pub qrv: u8,
    /// Querier's Query Interval Code (RFC 9777 §5.1.9); v2 only.
    pub qqic: u8,
    /// Sources of a multicast-address-and-source-specific query; v2 only.
    pub sources: Vec<Ipv6Addr>,
}

impl MldQuery {
    /// A general query of `version`; v1 carries only the response delay.
    pub fn general(version: MldVersion, max_resp_ms: u32, qrv: u8, qqi_s: u32) -> Self {
        let v2 = version == MldVersion::V2;
        MldQuery {
            version,
            max_resp_code: if v2 {
                float::encode_code16(max_resp_ms)
            } else {
                max_resp_ms.min(u32::from(u16::MAX)) as u16
            },
            group: Ipv6Addr::UNSPECIFIED,
            suppress_router_processing: false,
            qrv: if v2 { qrv.min(7) } else { 0 },
            qqic: if v2 { float::encode_code8(qqi_s) } else { 0 },
            sources: Vec::new(),
        }
    }

    /// True for a general query (address ::).
    pub fn is_general(&self) -> bool {
        self.group.is_unspecified()
    }

    /// Maximum Response Delay in milliseconds.
    pub fn max_resp_time_ms(&self) -> u32 {
        match self.version {
            MldVersion::V1 => u32::from(self.max_resp_code),
            MldVersion::V2 => float::decode_code16(self.max_resp_code),
        }
    }

    /// Querier's Query Interval in seconds from QQIC, None for v1 or QQIC 0.
    pub fn qqi_secs(&self) -> Option<u32> {
        (self.version == MldVersion::V2 && self.qqic != 0).then(|| float::decode_code8(self.qqic))
    }
}

/// One MLD (or ICMPv6 MRD) message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MldRepr {
    /// Multicast Listener Query (v1 or v2).
    Query(MldQuery),
    /// MLDv1 Report.
    V1Report {
        /// The multicast address reported.
        group: Ipv6Addr,
    },
    /// MLDv1 Done.
    V1Done {
        /// The multicast address left.
        group: Ipv6Addr,
    },
    /// MLDv2 Report.
    V2Report {
        /// Its multicast address records.
        records: Vec<GroupRecord<Ipv6Addr>>,
    },
    /// Multicast Router Discovery in ICMPv6 (RFC 4286).
    Mrd(MrdRepr),
}

impl MldRepr {
    /// True when ICMPv6 type `t` is one this module decodes.
    pub fn is_known_type(t: u8) -> bool {
        matches!(
            t,
            types::LISTENER_QUERY
                | types::V1_LISTENER_REPORT
                | types::V1_LISTENER_DONE
                | types::V2_LISTENER_REPORT
        ) || MrdKind::from_icmpv6_type(t).is_some()
    }

    /// Parses one ICMPv6 message (the whole upper-layer payload) sent from `src` to `dst`,
    /// verifying its checksum with the pseudo-header.
    pub fn parse(buf: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<Self, DecodeError> {
        need("ICMPv6", buf, 4)?;
        let msg_type = buf[0];
        if let Some(kind) = MrdKind::from_icmpv6_type(msg_type) {
            let mrd = MrdRepr::parse(kind, buf)?;
            verify(buf, src, dst)?;
            return Ok(MldRepr::Mrd(mrd));
        }
        if !Self::is_known_type(msg_type) {
            return Err(DecodeError::UnknownType(msg_type));
        }
        if msg_type == types::V2_LISTENER_REPORT {
            // Type, Reserved, Checksum, Reserved(16), Nr of Mcast Address Records(16).
            need("MLDv2 report", buf, 8)?;
            verify(buf, src, dst)?;
            let count = usize::from(u16::from_be_bytes([buf[6], buf[7]]));
            return parse_records(&buf[8..], count).map(|records| MldRepr::V2Report { records });
        }
        // Query, v1 report, done: Type, Code, Checksum, Max Resp(16), Reserved(16), Address.
        need("MLD", buf, 24)?;
        verify(buf, src, dst)?;
        let max_resp_code = u16::from_be_bytes([buf[4], buf[5]]);
        let mut a = [0u8; 16];
        a.copy_from_slice(&buf[8..24]);
        let group = Ipv6Addr::from(a);
        match msg_type {
            types::LISTENER_QUERY => parse_query(buf, max_resp_code, group).map(MldRepr::Query),
            types::V1_LISTENER_REPORT => multicast(group).map(|group| MldRepr::V1Report { group }),
            _ => multicast(group).map(|group| MldRepr::V1Done { group }),
        }
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            MldRepr::Query(q) if q.version == MldVersion::V2 => 28 + 16 * q.sources.len(),
            MldRepr::Query(_) | MldRepr::V1Report { .. } | MldRepr::V1Done { .. } => 24,
            MldRepr::V2Report { records } => {
                8 + records.iter().map(GroupRecord::buffer_len).sum::<usize>()
            }
            MldRepr::Mrd(m) => m.buffer_len(),
        }
    }

    /// Appends the message with its ICMPv6 checksum for `src` -> `dst` to `out`.
    pub fn emit(&self, src: &Ipv6Addr, dst: &Ipv6Addr, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            MldRepr::Query(q) => {
                out.extend_from_slice(&[types::LISTENER_QUERY, 0, 0, 0]);
                out.extend_from_slice(&q.max_resp_code.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(&q.group.octets());
                if q.version == MldVersion::V2 {
                    let nsrc = q.sources.len().min(usize::from(u16::MAX));
                    out.push((u8::from(q.suppress_router_processing) << 3) | (q.qrv & 0x07));
                    out.push(q.qqic);
                    out.extend_from_slice(&(nsrc as u16).to_be_bytes());
                    for s in &q.sources[..nsrc] {
                        out.extend_from_slice(&s.octets());
                    }
                }
            }
            MldRepr::V1Report { group } => emit24(out, types::V1_LISTENER_REPORT, group),
            MldRepr::V1Done { group } => emit24(out, types::V1_LISTENER_DONE, group),
            MldRepr::V2Report { records } => {
                let n = records.len().min(usize::from(u16::MAX));
                out.extend_from_slice(&[types::V2_LISTENER_REPORT, 0, 0, 0, 0, 0]);
                out.extend_from_slice(&(n as u16).to_be_bytes());
                for r in &records[..n] {
                    r.emit(out);
                }
            }
            MldRepr::Mrd(m) => m.emit_zero_checksum(true, out),
        }
        let c = checksum::internet_v6(src, dst, NEXT_HEADER_ICMPV6, &out[start..]);
        out[start + 2..start + 4].copy_from_slice(&c.to_be_bytes());
    }

    /// The message as a new vector.
    pub fn to_bytes(&self, src: &Ipv6Addr, dst: &Ipv6Addr) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(src, dst, &mut v);
        v
    }
}

fn verify(buf: &[u8], src: &Ipv6Addr, dst: &Ipv6Addr) -> Result<(), DecodeError> {
    if checksum::verify_v6(src, dst, NEXT_HEADER_ICMPV6, buf) {
        Ok(())
    } else {
        Err(DecodeError::BadChecksum)
    }
}

fn multicast(group: Ipv6Addr) -> Result<Ipv6Addr, DecodeError> {
    if group.is_multicast() {
        Ok(group)
    } else {
        Err(DecodeError::NotMulticast)
    }
}

fn emit24(out: &mut Vec<u8>, t: u8, group: &Ipv6Addr) {
    out.extend_from_slice(&[t, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&group.octets());
}

/// RFC 9777 §8.1: 24 octets is MLDv1, 28 or more MLDv2; 25-27 octets is invalid.
fn parse_query(buf: &[u8], code: u16, group: Ipv6Addr) -> Result<MldQuery, DecodeError> {
    if !(group.is_unspecified() || group.is_multicast()) {
        return Err(DecodeError::NotMulticast);
    }
    match buf.len() {
        24 => Ok(MldQuery {
            version: MldVersion::V1,
            max_resp_code: code,
            group,
            suppress_router_processing: false,
            qrv: 0,
            qqic: 0,
            sources: Vec::new(),
        }),
        25..=27 => Err(DecodeError::BadLength(buf.len())),
        _ => {
            let nsrc = usize::from(u16::from_be_bytes([buf[26], buf[27]]));
            let sources = parse_sources(&buf[28..], nsrc)?;
            Ok(MldQuery {
                version: MldVersion::V2,
                max_resp_code: code,
                group,
                suppress_router_processing: buf[24] & 0x08 != 0,
                qrv: buf[24] & 0x07,
                qqic: buf[25],
                sources,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordType;

    fn ll(x: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, x)
    }

    fn mc(x: u16) -> Ipv6Addr {
        Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, x)
    }

    #[test]
    fn every_kind_round_trips() {
        let src = ll(1);
        let reprs = [
            (
                MldRepr::Query(MldQuery::general(MldVersion::V1, 10_000, 2, 125)),
                ALL_NODES,
            ),
            (
                MldRepr::Query(MldQuery::general(MldVersion::V2, 100_000, 3, 300)),
                ALL_NODES,
            ),
            (
                MldRepr::Query(MldQuery {
                    group: mc(5),
                    suppress_router_processing: true,
                    sources: vec![ll(7), ll(8)],
                    ..MldQuery::general(MldVersion::V2, 1000, 2, 125)
                }),
                mc(5),
            ),
            (MldRepr::V1Report { group: mc(1) }, mc(1)),
            (MldRepr::V1Done { group: mc(1) }, ALL_ROUTERS),
            (
                MldRepr::V2Report {
                    records: (1..=6)
                        .map(|t| GroupRecord {
                            record_type: RecordType::from_code(t),
                            group: mc(u16::from(t)),
                            sources: (0..t).map(|i| ll(u16::from(i))).collect(),
                            aux_data: vec![],
                        })
                        .collect(),
                },
                ALL_MLDV2_ROUTERS,
            ),
            (
                MldRepr::Mrd(MrdRepr::Advertisement {
                    advertisement_interval: 20,
                    query_interval: 125,
                    robustness: 2,
                }),
                crate::mrd::ALL_SNOOPERS_V6,
            ),
            (MldRepr::Mrd(MrdRepr::Solicitation), ALL_ROUTERS),
            (
                MldRepr::Mrd(MrdRepr::Termination),
                crate::mrd::ALL_SNOOPERS_V6,
            ),
        ];
        for (r, dst) in reprs {
            let b = r.to_bytes(&src, &dst);
            assert_eq!(b.len(), r.buffer_len(), "{r:?}");
            assert_eq!(MldRepr::parse(&b, &src, &dst).unwrap(), r);
            // The pseudo-header is part of the checksum: another source fails.
            assert_eq!(
                MldRepr::parse(&b, &ll(99), &dst),
                Err(DecodeError::BadChecksum)
            );
        }
    }

    #[test]
    fn large_max_resp_is_float_encoded() {
        let q = MldQuery::general(MldVersion::V2, 100_000, 2, 125);
        assert!(q.max_resp_code >= 0x8000);
        assert!(q.max_resp_time_ms() <= 100_000 && q.max_resp_time_ms() > 99_000);
    }

    #[test]
    fn query_lengths_25_to_27_are_invalid() {
        for len in 25..=27 {
            let mut b = MldRepr::Query(MldQuery::general(MldVersion::V1, 1000, 0, 0))
                .to_bytes(&ll(1), &ALL_NODES);
            b.resize(len, 0);
            b[2..4].copy_from_slice(&[0, 0]);
            let c = checksum::internet_v6(&ll(1), &ALL_NODES, NEXT_HEADER_ICMPV6, &b);
            b[2..4].copy_from_slice(&c.to_be_bytes());
            assert_eq!(
                MldRepr::parse(&b, &ll(1), &ALL_NODES),
                Err(DecodeError::BadLength(len))
            );
        }
    }

    #[test]
    fn unknown_icmpv6_type() {
        // A neighbour solicitation is ICMPv6 but not MLD.
        assert_eq!(
            MldRepr::parse(&[135, 0, 0, 0], &ll(1), &ALL_NODES),
            Err(DecodeError::UnknownType(135))
        );
    }
}
