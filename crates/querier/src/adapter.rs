//! Between the wire codec and the protocol core, in both directions and for both daemons:
//! a decoded packet becomes what the core takes ([`heard`]), the core's [`QueryOut`]
//! becomes a frame ([`igmp_query_frame`], [`mld_query_frame`]). Pure, no I/O.

use std::net::{Ipv4Addr, Ipv6Addr};

use igmpd_wire::frame::{Ipv4Header, Ipv6Header};
use igmpd_wire::{
    float, igmp, mld, Frame, IgmpQuery, IgmpRepr, IgmpVersion, MacAddr, MldQuery, MldRepr,
    MldVersion, MrdRepr, Packet,
};

use crate::core::{Generation, Proto, QueryIn, QueryOut, Report};

/// A received IGMP or MLD message in core terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<A> {
    /// A query.
    Query(QueryIn<A>),
    /// Reports: one per v1/v2 message, one per v3 record.
    Reports(Vec<Report<A>>),
    /// Something the querier does not act on (MRD, PIM).
    Ignored,
}

impl<A> Input<A> {
    /// Counts the message in `t` (for the metrics): a query, or each report as a report
    /// or a leave. A leave is an IGMPv2 Leave Group / MLDv1 Done, or a record that changes
    /// to INCLUDE with no sources (RFC 9776 §5.1, RFC 9777 §6.1: how v3 hosts leave).
    pub fn count(&self, t: &mut igmpd_runtime::metrics::Traffic) {
        match self {
            Input::Query(_) => t.queries += 1,
            Input::Reports(rs) => {
                for r in rs {
                    let leave = match r {
                        Report::Leave(_) => true,
                        Report::Record(igmpd_wire::RecordType::ChangeToInclude, _, s) => {
                            s.is_empty()
                        }
                        _ => false,
                    };
                    if leave {
                        t.leaves += 1;
                    } else {
                        t.reports += 1;
                    }
                }
            }
            Input::Ignored => {}
        }
    }
}

/// One IGMP or MLD message in core terms: who sent it, what it says, and its format's
/// version (for the observer's view of the hosts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<A> {
    /// The sender; None for the unspecified address (0.0.0.0 proxy queries, :: reports).
    pub src: Option<A>,
    /// What it says.
    pub input: Input<A>,
    /// Its format's generation (MLDv1 counts as v2, MLDv2 as v3).
    pub gen: Generation,
}

/// What a decoded packet is to the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard<'a> {
    /// An IGMP query or report.
    Igmp(Message<Ipv4Addr>),
    /// An MLD query or report from a valid source.
    Mld(Message<Ipv6Addr>),
    /// An MLD message from a source that is not link-local (RFC 9777 §5.1.14, §5.2.13:
    /// queries must come from a link-local address, reports from one or from ::): dropped.
    MldBadSource,
    /// A Multicast Router Discovery message (RFC 4286), over IGMP or MLD.
    Mrd(Proto, &'a MrdRepr),
    /// A PIM hello (RFC 7761 §4.3.1) with its Holdtime option, if any.
    PimHello(Proto, Option<u16>),
}

/// A decoded packet in core terms: the one way both daemons read what they heard.
pub fn heard(packet: &Packet) -> Heard<'_> {
    match packet {
        Packet::Igmp {
            igmp: IgmpRepr::Mrd(m),
            ..
        } => Heard::Mrd(Proto::Igmp, m),
        Packet::Igmp { ip, igmp } => Heard::Igmp(Message {
            src: (!ip.src.is_unspecified()).then_some(ip.src),
            input: igmp_input(igmp),
            gen: igmp_report_gen(igmp),
        }),
        Packet::Mld {
            mld: MldRepr::Mrd(m),
            ..
        } => Heard::Mrd(Proto::Mld, m),
        Packet::Mld { ip, mld } => {
            let input = mld_input(mld);
            let ok = is_link_local(&ip.src)
                || (ip.src.is_unspecified() && !matches!(input, Input::Query(_)));
            if !ok {
                return Heard::MldBadSource;
            }
            Heard::Mld(Message {
                src: (!ip.src.is_unspecified()).then_some(ip.src),
                input,
                gen: mld_report_gen(mld),
            })
        }
        Packet::PimHelloV4 { hello, .. } => Heard::PimHello(Proto::Igmp, hello.holdtime),
        Packet::PimHelloV6 { hello, .. } => Heard::PimHello(Proto::Mld, hello.holdtime),
    }
}

/// IGMP message to core input.
pub fn igmp_input(repr: &IgmpRepr) -> Input<Ipv4Addr> {
    match repr {
        IgmpRepr::Query(q) => Input::Query(query_in(
            match q.version {
                IgmpVersion::V1 => Generation::V1,
                IgmpVersion::V2 => Generation::V2,
                IgmpVersion::V3 => Generation::V3,
            },
            (!q.group.is_unspecified()).then_some(q.group),
            &q.sources,
            (q.suppress_router_processing, q.qrv, q.qqi_secs()),
            q.max_resp_time_ms(),
        )),
        IgmpRepr::V1Report { group } => Input::Reports(vec![Report::V1(*group)]),
        IgmpRepr::V2Report { group } => Input::Reports(vec![Report::V2(*group)]),
        IgmpRepr::V2Leave { group } => Input::Reports(vec![Report::Leave(*group)]),
        IgmpRepr::V3Report { records } => Input::Reports(record_reports(records)),
        IgmpRepr::Mrd(_) => Input::Ignored,
    }
}

/// MLD message to core input.
pub fn mld_input(repr: &MldRepr) -> Input<Ipv6Addr> {
    match repr {
        MldRepr::Query(q) => Input::Query(query_in(
            match q.version {
                MldVersion::V1 => Generation::V2,
                MldVersion::V2 => Generation::V3,
            },
            (!q.group.is_unspecified()).then_some(q.group),
            &q.sources,
            (q.suppress_router_processing, q.qrv, q.qqi_secs()),
            q.max_resp_time_ms(),
        )),
        MldRepr::V1Report { group } => Input::Reports(vec![Report::V2(*group)]),
        MldRepr::V1Done { group } => Input::Reports(vec![Report::Leave(*group)]),
        MldRepr::V2Report { records } => Input::Reports(record_reports(records)),
        MldRepr::Mrd(_) => Input::Ignored,
    }
}

/// A query's fields in core terms (both families carry the same ones); `v3` is the S flag,
/// QRV and QQI in seconds, which only version-3 (IGMPv3/MLDv2) queries have.
fn query_in<A: Copy>(
    gen: Generation,
    group: Option<A>,
    sources: &[A],
    v3: (bool, u8, Option<u32>),
    max_resp_ms: u32,
) -> QueryIn<A> {
    let (s_flag, qrv, qqi_s) = v3;
    QueryIn {
        gen,
        group,
        sources: sources.to_vec(),
        s_flag,
        qrv,
        qqi: qqi_s.map(|s| std::time::Duration::from_secs(u64::from(s))),
        max_resp: std::time::Duration::from_millis(u64::from(max_resp_ms)),
    }
}

/// One report per IGMPv3 group record or MLDv2 multicast address record.
fn record_reports<A: igmpd_wire::record::Address>(
    records: &[igmpd_wire::GroupRecord<A>],
) -> Vec<Report<A>> {
    records
        .iter()
        .map(|r| Report::Record(r.record_type, r.group, r.sources.clone()))
        .collect()
}

fn tenths(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis() / 100).unwrap_or(u32::MAX)
}

fn millis(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn secs(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_secs()).unwrap_or(u32::MAX)
}

/// The IGMP query message for `q` (RFC 9776 §4.1; v1/v2 per RFC 1112 / RFC 2236).
pub fn igmp_query(q: &QueryOut<Ipv4Addr>) -> IgmpRepr {
    let group = q.group.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let query = match q.gen {
        Generation::V1 => IgmpQuery {
            group,
            ..IgmpQuery::general(IgmpVersion::V1, 0, 0, 0)
        },
        // IGMPv2 Max Resp Time is linear in tenths of a second, 1..=255.
        Generation::V2 => IgmpQuery {
            group,
            max_resp_code: tenths(q.max_resp).clamp(1, 255) as u8,
            ..IgmpQuery::general(IgmpVersion::V2, 0, 0, 0)
        },
        Generation::V3 => IgmpQuery {
            version: IgmpVersion::V3,
            max_resp_code: float::encode_code8(tenths(q.max_resp)),
            group,
            suppress_router_processing: q.s_flag,
            qrv: q.qrv & 7,
            qqic: float::encode_code8(secs(q.qqi)),
            sources: q.sources.clone(),
        },
    };
    IgmpRepr::Query(query)
}

/// The MLD query message for `q` (RFC 9777 §5.1; MLDv1 per RFC 2710 §3).
pub fn mld_query(q: &QueryOut<Ipv6Addr>) -> MldRepr {
    let group = q.group.unwrap_or(Ipv6Addr::UNSPECIFIED);
    let query = match q.gen {
        Generation::V1 | Generation::V2 => MldQuery {
            group,
            max_resp_code: millis(q.max_resp).min(u32::from(u16::MAX)) as u16,
            ..MldQuery::general(MldVersion::V1, 0, 0, 0)
        },
        Generation::V3 => MldQuery {
            version: MldVersion::V2,
            max_resp_code: float::encode_code16(millis(q.max_resp)),
            group,
            suppress_router_processing: q.s_flag,
            qrv: q.qrv & 7,
            qqic: float::encode_code8(secs(q.qqi)),
            sources: q.sources.clone(),
        },
    };
    MldRepr::Query(query)
}

/// A whole IGMP query frame: from our address (or 0.0.0.0), to All-Systems for a general
/// query and to the group for a specific one (RFC 9776 §4.1.12); TTL 1, TOS 0xc0, Router
/// Alert.
pub fn igmp_query_frame(src_mac: MacAddr, q: &QueryOut<Ipv4Addr>) -> Frame {
    let dst = q.group.unwrap_or(igmp::ALL_SYSTEMS);
    let src = q.src.unwrap_or(Ipv4Addr::UNSPECIFIED);
    Frame::igmp(src_mac, None, Ipv4Header::igmp(src, dst), igmp_query(q))
}

/// A whole MLD query frame from our link-local address, to All-Nodes or the group, hop
/// limit 1 with a Hop-by-Hop Router Alert (RFC 9777 §5.1.14). None without an address:
/// MLD queries cannot come from ::.
pub fn mld_query_frame(src_mac: MacAddr, q: &QueryOut<Ipv6Addr>) -> Option<Frame> {
    let src = q.src?;
    let dst = q.group.unwrap_or(mld::ALL_NODES);
    Some(Frame::mld(
        src_mac,
        None,
        Ipv6Header::mld(src, dst),
        mld_query(q),
    ))
}

/// True for fe80::/10.
pub fn is_link_local(a: &Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}

/// The version of a report message (v1, v2 or v3 format; MLDv1 counts as v2, MLDv2 as v3),
/// for the [`Observer`](crate::core::observer::Observer).
pub fn igmp_report_gen(r: &IgmpRepr) -> Generation {
    match r {
        IgmpRepr::V1Report { .. } => Generation::V1,
        IgmpRepr::V3Report { .. } => Generation::V3,
        _ => Generation::V2,
    }
}

/// [`igmp_report_gen`] for MLD.
pub fn mld_report_gen(r: &MldRepr) -> Generation {
    match r {
        MldRepr::V2Report { .. } => Generation::V3,
        _ => Generation::V2,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::net::IpAddr;

    use super::*;
    use igmpd_wire::parse_ethernet;

    fn out4(gen: Generation, group: Option<Ipv4Addr>) -> QueryOut<Ipv4Addr> {
        QueryOut {
            gen,
            src: Some("10.0.0.1".parse().unwrap()),
            group,
            sources: vec![],
            s_flag: false,
            qrv: 2,
            qqi: Duration::from_secs(300),
            max_resp: Duration::from_secs(10),
        }
    }

    #[test]
    fn v3_query_round_trips_through_the_wire_with_float_codes() {
        let q = out4(Generation::V3, None);
        let f = igmp_query_frame([2, 0, 0, 0, 0, 1], &q);
        let parsed = parse_ethernet(&f.to_bytes()).unwrap();
        let igmpd_wire::frame::Packet::Igmp { ip, igmp } = parsed.packet else {
            panic!()
        };
        assert_eq!(
            (ip.ttl, ip.tos, ip.router_alert, ip.dst),
            (1, 0xc0, true, igmp::ALL_SYSTEMS)
        );
        let Input::Query(back) = igmp_input(&igmp) else {
            panic!()
        };
        assert_eq!(back.max_resp, Duration::from_secs(10));
        // 300 s is not representable: QQIC carries 288 s, the largest value not above it.
        assert_eq!(back.qqi, Some(Duration::from_secs(288)));
        assert_eq!(back.qrv, 2);
    }

    #[test]
    fn v1_and_v2_queries_have_eight_bytes() {
        for gen in [Generation::V1, Generation::V2] {
            let IgmpRepr::Query(q) = igmp_query(&out4(gen, None)) else {
                panic!()
            };
            assert_eq!(IgmpRepr::Query(q.clone()).buffer_len(), 8);
            assert_eq!(q.max_resp_code, if gen == Generation::V1 { 0 } else { 100 });
        }
    }

    #[test]
    fn specific_query_goes_to_the_group() {
        let g: Ipv4Addr = "239.1.2.3".parse().unwrap();
        let f = igmp_query_frame([2, 0, 0, 0, 0, 1], &out4(Generation::V2, Some(g)));
        assert_eq!(f.packet.dst(), IpAddr::V4(g));
    }

    #[test]
    fn mld_queries_need_a_source_and_encode_by_version() {
        let mut q = QueryOut {
            gen: Generation::V3,
            src: None,
            group: None,
            sources: vec![],
            s_flag: false,
            qrv: 2,
            qqi: Duration::from_secs(125),
            max_resp: Duration::from_secs(100),
        };
        assert!(mld_query_frame([2, 0, 0, 0, 0, 1], &q).is_none());
        q.src = Some("fe80::1".parse().unwrap());
        let f = mld_query_frame([2, 0, 0, 0, 0, 1], &q).unwrap();
        let parsed = parse_ethernet(&f.to_bytes()).unwrap();
        let igmpd_wire::frame::Packet::Mld { mld, .. } = parsed.packet else {
            panic!()
        };
        let Input::Query(back) = mld_input(&mld) else {
            panic!()
        };
        assert_eq!(
            (back.gen, back.max_resp <= Duration::from_secs(100)),
            (Generation::V3, true)
        );
        q.gen = Generation::V2;
        let MldRepr::Query(v1) = mld_query(&q) else {
            panic!()
        };
        assert_eq!((v1.version, v1.max_resp_code), (MldVersion::V1, 65_535));
    }
}
