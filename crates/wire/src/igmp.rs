//! IGMPv1 (RFC 1112), IGMPv2 (RFC 2236) and IGMPv3 (RFC 9776) messages, plus the IGMP
//! form of Multicast Router Discovery (RFC 4286).
//!
//! [`IgmpRepr::parse`] takes the IGMP message (the whole IPv4 payload), verifies its
//! checksum and classifies it; [`IgmpRepr::emit`] writes it back with a fresh checksum.

use std::net::Ipv4Addr;

use crate::checksum;
use crate::error::{need, DecodeError};
use crate::float;
use crate::mrd::{MrdKind, MrdRepr};
use crate::record::{parse_records, parse_sources, GroupRecord};

/// IGMP message types (RFC 9776 §4, RFC 2236 §2.1, RFC 1112 appendix I).
pub mod types {
    /// Membership Query, all versions.
    pub const MEMBERSHIP_QUERY: u8 = 0x11;
    /// Version 1 Membership Report.
    pub const V1_MEMBERSHIP_REPORT: u8 = 0x12;
    /// Version 2 Membership Report.
    pub const V2_MEMBERSHIP_REPORT: u8 = 0x16;
    /// Version 2 Leave Group.
    pub const V2_LEAVE_GROUP: u8 = 0x17;
    /// Version 3 Membership Report.
    pub const V3_MEMBERSHIP_REPORT: u8 = 0x22;
}

/// All-Systems group, destination of general queries (RFC 9776 §4.1.12).
pub const ALL_SYSTEMS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 1);
/// All-Routers group, destination of IGMPv2 leaves (RFC 2236 §3).
pub const ALL_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 2);
/// Destination of IGMPv3 reports (RFC 9776 §4.2.14).
pub const ALL_IGMPV3_ROUTERS: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 22);

/// The IGMP version a query belongs to, told apart by length and Max Resp Code as
/// RFC 9776 §7.1 specifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IgmpVersion {
    /// IGMPv1: 8 bytes, Max Resp Code 0.
    V1,
    /// IGMPv2: 8 bytes, Max Resp Code non-zero.
    V2,
    /// IGMPv3: 12 bytes or more.
    V3,
}

impl IgmpVersion {
    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            IgmpVersion::V1 => 1,
            IgmpVersion::V2 => 2,
            IgmpVersion::V3 => 3,
        }
    }
}

/// A Membership Query of any version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgmpQuery {
    /// Which version the query's format says.
    pub version: IgmpVersion,
    /// Max Resp Code as on the wire: 0 for v1; 1/10 s for v2; float-encoded for v3
    /// (RFC 9776 §4.1.1). See [`IgmpQuery::max_resp_time_ms`].
    pub max_resp_code: u8,
    /// 0.0.0.0 for a general query, else the group asked about.
    pub group: Ipv4Addr,
    /// S flag, Suppress Router-Side Processing (RFC 9776 §4.1.5); v3 only.
    pub suppress_router_processing: bool,
    /// Querier's Robustness Variable, 0-7 (RFC 9776 §4.1.6); v3 only.
    pub qrv: u8,
    /// Querier's Query Interval Code (RFC 9776 §4.1.7); v3 only.
    pub qqic: u8,
    /// Source addresses of a group-and-source-specific query; v3 only.
    pub sources: Vec<Ipv4Addr>,
}

impl IgmpQuery {
    /// A general query of `version` with `max_resp_ms`, robustness and query interval
    /// encoded as that version can (v1 carries none of them; v2 only the response time).
    pub fn general(version: IgmpVersion, max_resp_ms: u32, qrv: u8, qqi_s: u32) -> Self {
        let max_resp_code = match version {
            IgmpVersion::V1 => 0,
            IgmpVersion::V2 => (max_resp_ms / 100).clamp(1, 255) as u8,
            IgmpVersion::V3 => float::encode_code8(max_resp_ms / 100),
        };
        let v3 = version == IgmpVersion::V3;
        IgmpQuery {
            version,
            max_resp_code,
            group: Ipv4Addr::UNSPECIFIED,
            suppress_router_processing: false,
            qrv: if v3 { qrv.min(7) } else { 0 },
            qqic: if v3 { float::encode_code8(qqi_s) } else { 0 },
            sources: Vec::new(),
        }
    }

    /// True for a general query (group 0.0.0.0).
    pub fn is_general(&self) -> bool {
        self.group.is_unspecified()
    }

    /// Max Resp Time in milliseconds. An IGMPv1 query has none; RFC 2236 §4 says to treat
    /// it as 10 s (code 100).
    pub fn max_resp_time_ms(&self) -> u32 {
        match self.version {
            IgmpVersion::V1 => 10_000,
            IgmpVersion::V2 => u32::from(self.max_resp_code) * 100,
            IgmpVersion::V3 => float::decode_code8(self.max_resp_code) * 100,
        }
    }

    /// Querier's Query Interval in seconds from QQIC, None where the query has none
    /// (v1/v2, or QQIC 0).
    pub fn qqi_secs(&self) -> Option<u32> {
        (self.version == IgmpVersion::V3 && self.qqic != 0).then(|| float::decode_code8(self.qqic))
    }
}

/// One IGMP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IgmpRepr {
    /// Membership Query (v1, v2 or v3).
    Query(IgmpQuery),
    /// Version 1 Membership Report.
    V1Report {
        /// The group reported.
        group: Ipv4Addr,
    },
    /// Version 2 Membership Report.
    V2Report {
        /// The group reported.
        group: Ipv4Addr,
    },
    /// Version 2 Leave Group.
    V2Leave {
        /// The group left.
        group: Ipv4Addr,
    },
    /// Version 3 Membership Report.
    V3Report {
        /// Its group records.
        records: Vec<GroupRecord<Ipv4Addr>>,
    },
    /// Multicast Router Discovery in IGMP (RFC 4286).
    Mrd(MrdRepr),
}

impl IgmpRepr {
    /// Parses one IGMP message: `buf` is the whole IPv4 payload. Verifies the checksum
    /// over all of it (RFC 9776 §4.1.2: extra octets count too) and ignores octets after
    /// the fields each version defines.
    pub fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        need("IGMP", buf, 4)?;
        let msg_type = buf[0];
        if let Some(kind) = MrdKind::from_igmp_type(msg_type) {
            let mrd = MrdRepr::parse(kind, buf)?;
            verify(buf)?;
            return Ok(IgmpRepr::Mrd(mrd));
        }
        match msg_type {
            types::MEMBERSHIP_QUERY
            | types::V1_MEMBERSHIP_REPORT
            | types::V2_MEMBERSHIP_REPORT
            | types::V2_LEAVE_GROUP
            | types::V3_MEMBERSHIP_REPORT => {}
            t => return Err(DecodeError::UnknownType(t)),
        }
        need("IGMP", buf, 8)?;
        verify(buf)?;
        let code = buf[1];
        let group = Ipv4Addr::new(buf[4], buf[5], buf[6], buf[7]);
        match msg_type {
            types::MEMBERSHIP_QUERY => parse_query(buf, code, group).map(IgmpRepr::Query),
            types::V1_MEMBERSHIP_REPORT => {
                multicast(group).map(|group| IgmpRepr::V1Report { group })
            }
            types::V2_MEMBERSHIP_REPORT => {
                multicast(group).map(|group| IgmpRepr::V2Report { group })
            }
            types::V2_LEAVE_GROUP => multicast(group).map(|group| IgmpRepr::V2Leave { group }),
            _ => {
                // V3 report: Type, Reserved, Checksum, Reserved(16), Number of Group Records.
                let count = usize::from(u16::from_be_bytes([buf[6], buf[7]]));
                parse_records(&buf[8..], count).map(|records| IgmpRepr::V3Report { records })
            }
        }
    }

    /// Bytes on the wire.
    pub fn buffer_len(&self) -> usize {
        match self {
            IgmpRepr::Query(q) if q.version == IgmpVersion::V3 => 12 + 4 * q.sources.len(),
            IgmpRepr::Query(_)
            | IgmpRepr::V1Report { .. }
            | IgmpRepr::V2Report { .. }
            | IgmpRepr::V2Leave { .. } => 8,
            IgmpRepr::V3Report { records } => {
                8 + records.iter().map(GroupRecord::buffer_len).sum::<usize>()
            }
            IgmpRepr::Mrd(m) => m.buffer_len(),
        }
    }

    /// Appends the message, checksum filled in, to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            IgmpRepr::Query(q) => {
                out.extend_from_slice(&[types::MEMBERSHIP_QUERY, q.max_resp_code, 0, 0]);
                out.extend_from_slice(&q.group.octets());
                if q.version == IgmpVersion::V3 {
                    let nsrc = q.sources.len().min(usize::from(u16::MAX));
                    out.push((u8::from(q.suppress_router_processing) << 3) | (q.qrv & 0x07));
                    out.push(q.qqic);
                    out.extend_from_slice(&(nsrc as u16).to_be_bytes());
                    for s in &q.sources[..nsrc] {
                        out.extend_from_slice(&s.octets());
                    }
                }
            }
            IgmpRepr::V1Report { group } => emit8(out, types::V1_MEMBERSHIP_REPORT, *group),
            IgmpRepr::V2Report { group } => emit8(out, types::V2_MEMBERSHIP_REPORT, *group),
            IgmpRepr::V2Leave { group } => emit8(out, types::V2_LEAVE_GROUP, *group),
            IgmpRepr::V3Report { records } => {
                let n = records.len().min(usize::from(u16::MAX));
                out.extend_from_slice(&[types::V3_MEMBERSHIP_REPORT, 0, 0, 0, 0, 0]);
                out.extend_from_slice(&(n as u16).to_be_bytes());
                for r in &records[..n] {
                    r.emit(out);
                }
            }
            IgmpRepr::Mrd(m) => m.emit_zero_checksum(false, out),
        }
        let c = checksum::internet(&out[start..]);
        out[start + 2..start + 4].copy_from_slice(&c.to_be_bytes());
    }

    /// The message as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.buffer_len());
        self.emit(&mut v);
        v
    }
}

fn verify(buf: &[u8]) -> Result<(), DecodeError> {
    if checksum::verify(buf) {
        Ok(())
    } else {
        Err(DecodeError::BadChecksum)
    }
}

fn multicast(group: Ipv4Addr) -> Result<Ipv4Addr, DecodeError> {
    if group.is_multicast() {
        Ok(group)
    } else {
        Err(DecodeError::NotMulticast)
    }
}

fn emit8(out: &mut Vec<u8>, t: u8, group: Ipv4Addr) {
    out.extend_from_slice(&[t, 0, 0, 0]);
    out.extend_from_slice(&group.octets());
}

/// RFC 9776 §7.1: 8 octets with code 0 is v1, 8 octets otherwise v2, 12 or more is v3;
/// "Query messages that do not match any of the above conditions ... MUST be silently
/// ignored" (9-11 octets).
fn parse_query(buf: &[u8], code: u8, group: Ipv4Addr) -> Result<IgmpQuery, DecodeError> {
    if !(group.is_unspecified() || group.is_multicast()) {
        return Err(DecodeError::NotMulticast);
    }
    let version = match buf.len() {
        8 if code == 0 => IgmpVersion::V1,
        8 => IgmpVersion::V2,
        9..=11 => return Err(DecodeError::BadLength(buf.len())),
        _ => IgmpVersion::V3,
    };
    if version != IgmpVersion::V3 {
        return Ok(IgmpQuery {
            version,
            max_resp_code: code,
            group,
            suppress_router_processing: false,
            qrv: 0,
            qqic: 0,
            sources: Vec::new(),
        });
    }
    let nsrc = usize::from(u16::from_be_bytes([buf[10], buf[11]]));
    let sources = parse_sources(&buf[12..], nsrc)?;
    Ok(IgmpQuery {
        version,
        max_resp_code: code,
        group,
        suppress_router_processing: buf[8] & 0x08 != 0,
        qrv: buf[8] & 0x07,
        qqic: buf[9],
        sources,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RecordType;

    fn g(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
        Ipv4Addr::new(a, b, c, d)
    }

    #[test]
    fn v2_general_query_golden() {
        // FRR 8.4 IGMPv2 general query: max resp 10 s.
        let bytes = [0x11, 0x64, 0xee, 0x9b, 0, 0, 0, 0];
        let q = match IgmpRepr::parse(&bytes).unwrap() {
            IgmpRepr::Query(q) => q,
            other => panic!("{other:?}"),
        };
        assert_eq!(q.version, IgmpVersion::V2);
        assert_eq!(q.max_resp_time_ms(), 10_000);
        assert!(q.is_general());
        assert_eq!(IgmpRepr::Query(q).to_bytes(), bytes);
    }

    #[test]
    fn v1_query_is_code_zero_and_eight_bytes() {
        let r = IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V1, 10_000, 2, 125));
        let b = r.to_bytes();
        assert_eq!(b.len(), 8);
        assert_eq!(b[1], 0);
        let IgmpRepr::Query(q) = IgmpRepr::parse(&b).unwrap() else {
            panic!()
        };
        assert_eq!(q.version, IgmpVersion::V1);
        assert_eq!(q.max_resp_time_ms(), 10_000);
    }

    #[test]
    fn query_of_nine_to_eleven_bytes_is_bad_length() {
        for len in 9..=11 {
            let mut b = vec![0x11, 0x64, 0, 0, 0, 0, 0, 0];
            b.resize(len, 0);
            let c = checksum::internet(&b);
            b[2..4].copy_from_slice(&c.to_be_bytes());
            assert_eq!(IgmpRepr::parse(&b), Err(DecodeError::BadLength(len)));
        }
    }

    #[test]
    fn v3_query_with_sources_and_flags_round_trips() {
        let q = IgmpQuery {
            version: IgmpVersion::V3,
            max_resp_code: float::encode_code8(300),
            group: g(239, 9, 9, 9),
            suppress_router_processing: true,
            qrv: 2,
            qqic: float::encode_code8(300),
            sources: vec![g(10, 0, 0, 1), g(10, 0, 0, 2)],
        };
        let r = IgmpRepr::Query(q.clone());
        let b = r.to_bytes();
        assert_eq!(b.len(), r.buffer_len());
        assert_eq!(IgmpRepr::parse(&b).unwrap(), r);
        assert_eq!(q.qqi_secs(), Some(288));
    }

    #[test]
    fn v3_query_extra_octets_are_ignored_but_checksummed() {
        let r = IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 10_000, 2, 125));
        let mut b = r.to_bytes();
        b.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(IgmpRepr::parse(&b), Err(DecodeError::BadChecksum));
        b[2..4].copy_from_slice(&[0, 0]);
        let c = checksum::internet(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(IgmpRepr::parse(&b).unwrap(), r);
    }

    #[test]
    fn v3_query_source_count_beyond_length() {
        let mut b = IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 10_000, 2, 125)).to_bytes();
        b[11] = 3;
        b[2..4].copy_from_slice(&[0, 0]);
        let c = checksum::internet(&b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
        assert_eq!(IgmpRepr::parse(&b), Err(DecodeError::TooManySources));
    }

    #[test]
    fn reports_and_leave_need_multicast_groups() {
        for r in [
            IgmpRepr::V1Report {
                group: g(10, 0, 0, 1),
            },
            IgmpRepr::V2Report {
                group: g(10, 0, 0, 1),
            },
            IgmpRepr::V2Leave {
                group: g(0, 0, 0, 0),
            },
        ] {
            assert_eq!(
                IgmpRepr::parse(&r.to_bytes()),
                Err(DecodeError::NotMulticast)
            );
        }
        let q = IgmpQuery {
            group: g(10, 1, 1, 1),
            ..IgmpQuery::general(IgmpVersion::V2, 1000, 2, 125)
        };
        assert_eq!(
            IgmpRepr::parse(&IgmpRepr::Query(q).to_bytes()),
            Err(DecodeError::NotMulticast)
        );
    }

    #[test]
    fn v3_report_all_record_types_round_trip() {
        let records = (1..=6u8)
            .chain([9])
            .map(|t| GroupRecord {
                record_type: RecordType::from_code(t),
                group: g(239, 1, 1, t),
                sources: (0..t).map(|i| g(10, 0, 0, i)).collect(),
                aux_data: if t == 2 { vec![9, 9, 9, 9] } else { vec![] },
            })
            .collect();
        let r = IgmpRepr::V3Report { records };
        let b = r.to_bytes();
        assert_eq!(b.len(), r.buffer_len());
        assert_eq!(IgmpRepr::parse(&b).unwrap(), r);
    }

    #[test]
    fn bad_checksum_and_unknown_type_and_truncation() {
        let mut b = IgmpRepr::V2Report {
            group: g(239, 1, 1, 1),
        }
        .to_bytes();
        b[3] ^= 0xff;
        assert_eq!(IgmpRepr::parse(&b), Err(DecodeError::BadChecksum));
        assert_eq!(
            IgmpRepr::parse(&[0x13, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::UnknownType(0x13))
        );
        assert!(matches!(
            IgmpRepr::parse(&[0x11, 0, 0]),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            IgmpRepr::parse(&[0x16, 0, 0, 0, 0]),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn mrd_messages_round_trip() {
        for m in [
            MrdRepr::Advertisement {
                advertisement_interval: 20,
                query_interval: 125,
                robustness: 2,
            },
            MrdRepr::Solicitation,
            MrdRepr::Termination,
        ] {
            let r = IgmpRepr::Mrd(m);
            let b = r.to_bytes();
            assert_eq!(b.len(), r.buffer_len());
            assert_eq!(IgmpRepr::parse(&b).unwrap(), r);
        }
    }
}
