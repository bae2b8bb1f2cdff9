//! Property tests: emit -> parse round trips for every message kind, totality of every
//! parser on arbitrary and mutated bytes, and etherparse as an independent decoder of the
//! frames we emit (its IGMP decoder, its IPv4/IPv6 header and ICMPv6 checksum code).

use std::net::{Ipv4Addr, Ipv6Addr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use igmpd_wire::frame::{parse_ethernet, parse_ip, Ipv4Header, Ipv6Header, Packet, VlanTag};
use igmpd_wire::pim::PimHello;
use igmpd_wire::{
    pcap, Frame, GroupRecord, IgmpQuery, IgmpRepr, IgmpVersion, MldQuery, MldRepr, MldVersion,
    MrdRepr, RecordType,
};
use proptest::prelude::*;

fn v4_mcast() -> impl Strategy<Value = Ipv4Addr> {
    (224u8..=239, any::<[u8; 3]>()).prop_map(|(a, [b, c, d])| Ipv4Addr::new(a, b, c, d))
}

fn v4_any() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn v6_mcast() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 15]>().prop_map(|rest| {
        let mut a = [0xffu8; 16];
        a[1..].copy_from_slice(&rest);
        Ipv6Addr::from(a)
    })
}

fn v6_any() -> impl Strategy<Value = Ipv6Addr> {
    any::<[u8; 16]>().prop_map(Ipv6Addr::from)
}

fn record_type() -> impl Strategy<Value = RecordType> {
    prop_oneof![
        (1u8..=6).prop_map(RecordType::from_code),
        any::<u8>().prop_map(RecordType::from_code)
    ]
}

fn aux() -> impl Strategy<Value = Vec<u8>> {
    (0usize..3).prop_flat_map(|w| proptest::collection::vec(any::<u8>(), w * 4))
}

fn v4_record() -> impl Strategy<Value = GroupRecord<Ipv4Addr>> {
    (
        record_type(),
        v4_mcast(),
        proptest::collection::vec(v4_any(), 0..6),
        aux(),
    )
        .prop_map(|(record_type, group, sources, aux_data)| GroupRecord {
            record_type,
            group,
            sources,
            aux_data,
        })
}

fn v6_record() -> impl Strategy<Value = GroupRecord<Ipv6Addr>> {
    (
        record_type(),
        v6_mcast(),
        proptest::collection::vec(v6_any(), 0..4),
        aux(),
    )
        .prop_map(|(record_type, group, sources, aux_data)| GroupRecord {
            record_type,
            group,
            sources,
            aux_data,
        })
}

fn mrd() -> impl Strategy<Value = MrdRepr> {
    prop_oneof![
        (any::<u8>(), any::<u16>(), any::<u16>()).prop_map(|(a, q, r)| MrdRepr::Advertisement {
            advertisement_interval: a,
            query_interval: q,
            robustness: r,
        }),
        Just(MrdRepr::Solicitation),
        Just(MrdRepr::Termination),
    ]
}

fn igmp_query() -> impl Strategy<Value = IgmpQuery> {
    let group = prop_oneof![Just(Ipv4Addr::UNSPECIFIED), v4_mcast()];
    prop_oneof![
        group.clone().prop_map(|group| IgmpQuery {
            group,
            ..IgmpQuery::general(IgmpVersion::V1, 0, 0, 0)
        }),
        (group.clone(), 1u8..=255).prop_map(|(group, code)| IgmpQuery {
            group,
            max_resp_code: code,
            ..IgmpQuery::general(IgmpVersion::V2, 0, 0, 0)
        }),
        (
            group,
            any::<u8>(),
            any::<bool>(),
            0u8..8,
            any::<u8>(),
            proptest::collection::vec(v4_any(), 0..8)
        )
            .prop_map(|(group, max_resp_code, s, qrv, qqic, sources)| IgmpQuery {
                version: IgmpVersion::V3,
                max_resp_code,
                group,
                suppress_router_processing: s,
                qrv,
                qqic,
                sources,
            }),
    ]
}

fn igmp() -> impl Strategy<Value = IgmpRepr> {
    prop_oneof![
        igmp_query().prop_map(IgmpRepr::Query),
        v4_mcast().prop_map(|group| IgmpRepr::V1Report { group }),
        v4_mcast().prop_map(|group| IgmpRepr::V2Report { group }),
        v4_mcast().prop_map(|group| IgmpRepr::V2Leave { group }),
        proptest::collection::vec(v4_record(), 0..5)
            .prop_map(|records| IgmpRepr::V3Report { records }),
        mrd().prop_map(IgmpRepr::Mrd),
    ]
}

fn mld() -> impl Strategy<Value = MldRepr> {
    let group = prop_oneof![Just(Ipv6Addr::UNSPECIFIED), v6_mcast()];
    prop_oneof![
        (group.clone(), any::<u16>()).prop_map(|(group, code)| MldRepr::Query(MldQuery {
            group,
            max_resp_code: code,
            ..MldQuery::general(MldVersion::V1, 0, 0, 0)
        })),
        (
            group,
            any::<u16>(),
            any::<bool>(),
            0u8..8,
            any::<u8>(),
            proptest::collection::vec(v6_any(), 0..5)
        )
            .prop_map(
                |(group, max_resp_code, s, qrv, qqic, sources)| MldRepr::Query(MldQuery {
                    version: MldVersion::V2,
                    max_resp_code,
                    group,
                    suppress_router_processing: s,
                    qrv,
                    qqic,
                    sources,
                })
            ),
        v6_mcast().prop_map(|group| MldRepr::V1Report { group }),
        v6_mcast().prop_map(|group| MldRepr::V1Done { group }),
        proptest::collection::vec(v6_record(), 0..4)
            .prop_map(|records| MldRepr::V2Report { records }),
        mrd().prop_map(MldRepr::Mrd),
    ]
}

fn vlan() -> impl Strategy<Value = Option<VlanTag>> {
    proptest::option::of(
        (0u8..8, any::<bool>(), 0u16..4096).prop_map(|(pcp, dei, vid)| VlanTag { pcp, dei, vid }),
    )
}

fn ipv4() -> impl Strategy<Value = Ipv4Header> {
    (
        v4_any(),
        v4_any(),
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(src, dst, ttl, tos, identification, dont_fragment, router_alert)| Ipv4Header {
                src,
                dst,
                ttl,
                tos,
                identification,
                dont_fragment,
                router_alert,
            },
        )
}

fn ipv6() -> impl Strategy<Value = Ipv6Header> {
    (
        v6_any(),
        v6_any(),
        any::<u8>(),
        any::<u8>(),
        0u32..(1 << 20),
        proptest::option::of(any::<u16>()),
    )
        .prop_map(
            |(src, dst, hop_limit, traffic_class, flow_label, router_alert)| Ipv6Header {
                src,
                dst,
                hop_limit,
                traffic_class,
                flow_label,
                router_alert,
            },
        )
}

fn frame() -> impl Strategy<Value = Frame> {
    let pim = proptest::option::of(any::<u16>()).prop_map(|holdtime| PimHello { holdtime });
    let packet = prop_oneof![
        4 => (ipv4(), igmp()).prop_map(|(ip, igmp)| Packet::Igmp { ip, igmp }),
        4 => (ipv6(), mld()).prop_map(|(ip, mld)| Packet::Mld { ip, mld }),
        1 => (ipv4(), pim.clone()).prop_map(|(ip, hello)| Packet::PimHelloV4 { ip, hello }),
        1 => (ipv6(), pim).prop_map(|(ip, hello)| Packet::PimHelloV6 { ip, hello }),
    ];
    (any::<[u8; 6]>(), any::<[u8; 6]>(), vlan(), packet).prop_map(|(dst, src, vlan, packet)| {
        Frame {
            ethernet: igmpd_wire::EthernetHeader { dst, src, vlan },
            packet,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn igmp_round_trips(r in igmp()) {
        let b = r.to_bytes();
        prop_assert_eq!(b.len(), r.buffer_len());
        prop_assert_eq!(IgmpRepr::parse(&b).unwrap(), r);
    }

    #[test]
    fn mld_round_trips(r in mld(), src in v6_any(), dst in v6_any()) {
        let b = r.to_bytes(&src, &dst);
        prop_assert_eq!(b.len(), r.buffer_len());
        prop_assert_eq!(MldRepr::parse(&b, &src, &dst).unwrap(), r);
    }

    #[test]
    fn frame_round_trips(f in frame()) {
        let b = f.to_bytes();
        prop_assert_eq!(b.len(), f.buffer_len());
        prop_assert_eq!(parse_ethernet(&b).unwrap(), f.clone());
        let ip_start = if f.ethernet.vlan.is_some() { 18 } else { 14 };
        prop_assert_eq!(parse_ip(&b[ip_start..]).unwrap(), f.packet);
    }

    #[test]
    fn parsers_are_total_on_arbitrary_bytes(b in proptest::collection::vec(any::<u8>(), 0..200)) {
        let src = Ipv6Addr::LOCALHOST;
        let _ = parse_ethernet(&b);
        let _ = parse_ip(&b);
        let _ = IgmpRepr::parse(&b);
        let _ = MldRepr::parse(&b, &src, &src);
        let _ = PimHello::parse_v4(&b);
        let _ = pcap::read(&b);
    }

    /// Valid frames with bytes changed, cut or extended: never a panic, and whatever
    /// still parses re-emits to a frame that parses to the same thing.
    #[test]
    fn mutated_frames_never_panic(
        f in frame(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut b = f.to_bytes();
        for (i, v) in &edits {
            let at = i.index(b.len());
            b[at] = *v;
        }
        let cut_at = cut.index(b.len() + 1);
        for bytes in [&b[..], &b[..cut_at]] {
            if let Ok(g) = parse_ethernet(bytes) {
                prop_assert_eq!(parse_ethernet(&g.to_bytes()).unwrap(), g);
            }
        }
    }

    /// etherparse, an independent decoder, reads our IGMP frames the same way.
    #[test]
    fn etherparse_agrees_on_igmp_frames(ip in ipv4(), igmp in igmp(), vlan in vlan()) {
        // etherparse wants 8 bytes of IGMP; MRD solicitations and terminations have 4
        // (RFC 4286 §6.1, §7.1), so they are checked by the round trips only.
        prop_assume!(igmp.buffer_len() >= 8);
        let f = Frame { ethernet: igmpd_wire::EthernetHeader { dst: [1, 0, 0x5e, 0, 0, 1], src: [2, 0, 0, 0, 0, 1], vlan }, packet: Packet::Igmp { ip, igmp: igmp.clone() } };
        let b = f.to_bytes();
        let p = SlicedPacket::from_ethernet(&b).expect("etherparse decodes our frame");
        let vids: Vec<u16> = p.vlan_ids().iter().map(|v| v.value()).collect();
        prop_assert_eq!(vids, vlan.map(|v| v.vid).into_iter().collect::<Vec<_>>());
        let Some(NetSlice::Ipv4(v4)) = &p.net else { panic!("not IPv4: {:?}", p.net) };
        let h = v4.header().to_header();
        prop_assert_eq!(h.source, ip.src.octets());
        prop_assert_eq!(h.destination, ip.dst.octets());
        prop_assert_eq!(h.time_to_live, ip.ttl);
        prop_assert_eq!(h.dont_fragment, ip.dont_fragment);
        prop_assert_eq!(h.header_checksum, h.calc_header_checksum());
        prop_assert_eq!(h.options.as_slice() == [0x94, 4, 0, 0], ip.router_alert);
        let Some(TransportSlice::Igmp(s)) = &p.transport else { panic!("not IGMP: {:?}", p.transport) };
        prop_assert!(s.is_checksum_valid());
        use etherparse::IgmpSlice as E;
        match (&igmp, s) {
            (IgmpRepr::Query(q), E::MembershipQuery(e)) => {
                prop_assert!(q.version != IgmpVersion::V3);
                prop_assert_eq!(e.max_response_time(), q.max_resp_code);
                prop_assert_eq!(e.group_address().octets, q.group.octets());
            }
            (IgmpRepr::Query(q), E::MembershipQueryWithSources(e)) => {
                prop_assert_eq!(q.version, IgmpVersion::V3);
                prop_assert_eq!(e.max_response_code().0, q.max_resp_code);
                // Both decode the float code to the same time.
                prop_assert_eq!(u32::from(e.max_response_code().as_10th_secs()) * 100, q.max_resp_time_ms());
                prop_assert_eq!(e.group_address().octets, q.group.octets());
                prop_assert_eq!(e.s_flag(), q.suppress_router_processing);
                prop_assert_eq!(e.qrv().value(), q.qrv);
                prop_assert_eq!(e.qqic(), q.qqic);
                let srcs: Vec<Ipv4Addr> = e.source_addresses().map(Ipv4Addr::from).collect();
                prop_assert_eq!(&srcs, &q.sources);
            }
            (IgmpRepr::V1Report { group }, E::MembershipReportV1(e)) => prop_assert_eq!(e.group_address().octets, group.octets()),
            (IgmpRepr::V2Report { group }, E::MembershipReportV2(e)) => prop_assert_eq!(e.group_address().octets, group.octets()),
            (IgmpRepr::V2Leave { group }, E::LeaveGroup(e)) => prop_assert_eq!(e.group_address().octets, group.octets()),
            (IgmpRepr::V3Report { records }, E::MembershipReportV3(e)) => {
                prop_assert_eq!(usize::from(e.num_of_records()), records.len());
                let theirs: Vec<_> = e.group_records().collect::<Result<_, _>>().expect("records decode");
                prop_assert_eq!(theirs.len(), records.len());
                for (t, r) in theirs.iter().zip(records) {
                    prop_assert_eq!(t.record_type().0, r.record_type.code());
                    prop_assert_eq!(t.multicast_address(), r.group.octets());
                    let srcs: Vec<Ipv4Addr> = t.source_addresses().map(Ipv4Addr::from).collect();
                    prop_assert_eq!(&srcs, &r.sources);
                    prop_assert_eq!(t.aux_data(), &r.aux_data[..]);
                }
            }
            (IgmpRepr::Mrd(_), E::Unknown(_)) => {}
            (ours, theirs) => prop_assert!(false, "we emitted {:?}, etherparse read {:?}", ours, theirs),
        }
    }

    /// etherparse reads the IPv6 header, the Hop-by-Hop header and verifies the ICMPv6
    /// checksum (pseudo-header included) of our MLD frames.
    #[test]
    fn etherparse_agrees_on_mld_frames(ip in ipv6(), mld in mld(), vlan in vlan()) {
        // etherparse wants 8 bytes of ICMPv6; MRD solicitations and terminations have 4.
        prop_assume!(mld.buffer_len() >= 8);
        let f = Frame { ethernet: igmpd_wire::EthernetHeader { dst: [0x33, 0x33, 0, 0, 0, 1], src: [2, 0, 0, 0, 0, 1], vlan }, packet: Packet::Mld { ip, mld: mld.clone() } };
        let b = f.to_bytes();
        let p = SlicedPacket::from_ethernet(&b).expect("etherparse decodes our frame");
        let Some(NetSlice::Ipv6(v6)) = &p.net else { panic!("not IPv6: {:?}", p.net) };
        let h = v6.header();
        prop_assert_eq!(h.source(), ip.src.octets());
        prop_assert_eq!(h.destination(), ip.dst.octets());
        prop_assert_eq!(h.hop_limit(), ip.hop_limit);
        prop_assert_eq!(h.traffic_class(), ip.traffic_class);
        prop_assert_eq!(h.flow_label().value(), ip.flow_label);
        prop_assert_eq!(v6.extensions().is_empty(), ip.router_alert.is_none());
        let Some(TransportSlice::Icmpv6(s)) = &p.transport else { panic!("not ICMPv6: {:?}", p.transport) };
        prop_assert!(s.is_checksum_valid(ip.src.octets(), ip.dst.octets()));
        prop_assert_eq!(s.slice().len(), mld.buffer_len());
        let expected_type = mld.to_bytes(&ip.src, &ip.dst)[0];
        prop_assert_eq!(s.type_u8(), expected_type);
    }
}
