//! tshark as a second decoder: every message kind the codec emits, written to a pcap,
//! must decode in tshark without malformed packets or expert warnings, and with the field
//! values we put in (float-encoded max-resp and QQIC included).
//!
//! tshark is installed by scripts/install-deps.sh; without it this test fails rather than
//! silently passing.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;

use igmpd_wire::frame::{Ipv4Header, Ipv6Header, Packet, VlanTag};
use igmpd_wire::pim::PimHello;
use igmpd_wire::{
    float, igmp, mld, mrd, pcap, EthernetHeader, Frame, GroupRecord, IgmpQuery, IgmpRepr,
    IgmpVersion, MldQuery, MldRepr, MldVersion, MrdRepr, RecordType,
};

const MAC: [u8; 6] = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// A frame and the tshark fields it must show (field -> all occurrences joined by ',').
struct Case {
    frame: Frame,
    expect: Vec<(&'static str, String)>,
}

fn igmp_case(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    vlan: Option<u16>,
    repr: IgmpRepr,
    expect: Vec<(&'static str, String)>,
) -> Case {
    Case {
        frame: Frame::igmp(
            MAC,
            vlan.map(VlanTag::new),
            Ipv4Header::igmp(src, dst),
            repr,
        ),
        expect,
    }
}

fn mld_case(dst: Ipv6Addr, repr: MldRepr, expect: Vec<(&'static str, String)>) -> Case {
    Case {
        frame: Frame::mld(
            MAC,
            None,
            Ipv6Header::mld(v6("fe80::42:acff:fe11:2"), dst),
            repr,
        ),
        expect,
    }
}

fn e(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let me = v4("10.0.0.1");
    // IGMPv1 query, IGMPv2 general and group-specific query, from a real address and
    // from 0.0.0.0, untagged and tagged.
    cases.push(igmp_case(
        me,
        igmp::ALL_SYSTEMS,
        None,
        IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V1, 10_000, 2, 125)),
        e(&[
            ("igmp.version", "1"),
            ("igmp.type", "0x11"),
            ("ip.src", "10.0.0.1"),
            ("ip.ttl", "1"),
            ("ip.dsfield", "0xc0"),
            ("ip.opt.ra", "0"),
        ]),
    ));
    cases.push(igmp_case(
        Ipv4Addr::UNSPECIFIED,
        igmp::ALL_SYSTEMS,
        Some(100),
        IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V2, 10_000, 2, 125)),
        e(&[
            ("igmp.version", "2"),
            ("igmp.type", "0x11"),
            ("igmp.max_resp", "100"),
            ("igmp.maddr", "0.0.0.0"),
            ("ip.src", "0.0.0.0"),
            ("vlan.id", "100"),
        ]),
    ));
    cases.push(igmp_case(
        me,
        v4("239.1.2.3"),
        None,
        IgmpRepr::Query(IgmpQuery {
            group: v4("239.1.2.3"),
            ..IgmpQuery::general(IgmpVersion::V2, 1000, 2, 125)
        }),
        e(&[
            ("igmp.version", "2"),
            ("igmp.max_resp", "10"),
            ("igmp.maddr", "239.1.2.3"),
        ]),
    ));
    // IGMPv3 general query with float-encoded max resp (25.6 s) and QQIC (300 s -> 288 s).
    let mrc = float::encode_code8(256);
    let qqic = float::encode_code8(300);
    cases.push(igmp_case(
        me,
        igmp::ALL_SYSTEMS,
        None,
        IgmpRepr::Query(IgmpQuery {
            max_resp_code: mrc,
            qqic,
            ..IgmpQuery::general(IgmpVersion::V3, 0, 2, 0)
        }),
        vec![
            ("igmp.version", "3".into()),
            ("igmp.max_resp", float::decode_code8(mrc).to_string()),
            ("igmp.qqic", qqic.to_string()),
            ("igmp.qrv", "2".into()),
            ("igmp.s", "0".into()),
            ("igmp.num_src", "0".into()),
        ],
    ));
    // Group-and-source-specific query with the S flag.
    cases.push(igmp_case(
        me,
        v4("232.1.1.1"),
        None,
        IgmpRepr::Query(IgmpQuery {
            group: v4("232.1.1.1"),
            suppress_router_processing: true,
            sources: vec![v4("10.0.0.7"), v4("10.0.0.8"), v4("10.0.0.9")],
            ..IgmpQuery::general(IgmpVersion::V3, 1000, 7, 125)
        }),
        e(&[
            ("igmp.version", "3"),
            ("igmp.max_resp", "10"),
            ("igmp.s", "1"),
            ("igmp.qrv", "7"),
            ("igmp.qqic", "125"),
            ("igmp.num_src", "3"),
            ("igmp.saddr", "10.0.0.7,10.0.0.8,10.0.0.9"),
            ("igmp.maddr", "232.1.1.1"),
        ]),
    ));
    cases.push(igmp_case(
        v4("10.0.0.5"),
        v4("239.5.5.5"),
        None,
        IgmpRepr::V1Report {
            group: v4("239.5.5.5"),
        },
        e(&[
            ("igmp.version", "1"),
            ("igmp.type", "0x12"),
            ("igmp.maddr", "239.5.5.5"),
        ]),
    ));
    cases.push(igmp_case(
        v4("10.0.0.5"),
        v4("239.5.5.5"),
        None,
        IgmpRepr::V2Report {
            group: v4("239.5.5.5"),
        },
        e(&[
            ("igmp.version", "2"),
            ("igmp.type", "0x16"),
            ("igmp.maddr", "239.5.5.5"),
        ]),
    ));
    cases.push(igmp_case(
        v4("10.0.0.5"),
        igmp::ALL_ROUTERS,
        None,
        IgmpRepr::V2Leave {
            group: v4("239.5.5.5"),
        },
        e(&[
            ("igmp.version", "2"),
            ("igmp.type", "0x17"),
            ("igmp.maddr", "239.5.5.5"),
        ]),
    ));
    // IGMPv3 report with all six record types, sources and aux data.
    let records: Vec<GroupRecord<Ipv4Addr>> = (1..=6u8)
        .map(|t| GroupRecord {
            record_type: RecordType::from_code(t),
            group: Ipv4Addr::new(239, 0, 0, t),
            sources: (0..t % 3).map(|i| Ipv4Addr::new(10, 0, 1, i)).collect(),
            aux_data: if t == 4 {
                vec![0xde, 0xad, 0xbe, 0xef]
            } else {
                vec![]
            },
        })
        .collect();
    cases.push(igmp_case(
        v4("10.0.0.5"),
        igmp::ALL_IGMPV3_ROUTERS,
        None,
        IgmpRepr::V3Report { records },
        e(&[
            ("igmp.version", "3"),
            ("igmp.type", "0x22"),
            ("igmp.num_grp_recs", "6"),
            ("igmp.record_type", "1,2,3,4,5,6"),
            (
                "igmp.maddr",
                "239.0.0.1,239.0.0.2,239.0.0.3,239.0.0.4,239.0.0.5,239.0.0.6",
            ),
            ("igmp.num_src", "1,2,0,1,2,0"),
            ("igmp.aux_data_len", "0,0,0,1,0,0"),
            (
                "igmp.saddr",
                "10.0.1.0,10.0.1.0,10.0.1.1,10.0.1.0,10.0.1.0,10.0.1.1",
            ),
        ]),
    ));
    // MRD (RFC 4286) in IGMP. Wireshark 4.0's mrdisc dissector knows only the pre-RFC
    // draft's IGMP types (0x24-0x26); RFC 4286 §8 / IANA assign 0x30-0x32, which the Linux
    // bridge uses too (IGMP_MRDISC_ADV). So tshark can vouch for the type only;
    // the ICMPv6 form below it decodes in full.
    cases.push(igmp_case(
        me,
        mrd::ALL_SNOOPERS_V4,
        None,
        IgmpRepr::Mrd(MrdRepr::Advertisement {
            advertisement_interval: 20,
            query_interval: 125,
            robustness: 2,
        }),
        e(&[("igmp.type", "0x30")]),
    ));
    cases.push(igmp_case(
        me,
        igmp::ALL_ROUTERS,
        None,
        IgmpRepr::Mrd(MrdRepr::Solicitation),
        e(&[("igmp.type", "0x31")]),
    ));
    cases.push(igmp_case(
        me,
        mrd::ALL_SNOOPERS_V4,
        None,
        IgmpRepr::Mrd(MrdRepr::Termination),
        e(&[("igmp.type", "0x32")]),
    ));
    // MLDv1 query, report, done; MLDv2 query with float max resp and sources; report.
    cases.push(mld_case(
        mld::ALL_NODES,
        MldRepr::Query(MldQuery::general(MldVersion::V1, 10_000, 2, 125)),
        e(&[
            ("icmpv6.type", "130"),
            ("icmpv6.mld.maximum_response_delay", "10000"),
            ("icmpv6.mld.multicast_address", "::"),
            ("ipv6.hlim", "1"),
            ("ipv6.hopopts.nxt", "58"),
            ("ipv6.opt.router_alert", "0"),
        ]),
    ));
    let mrc16 = float::encode_code16(100_000);
    cases.push(mld_case(
        v6("ff0e::101"),
        MldRepr::Query(MldQuery {
            group: v6("ff0e::101"),
            max_resp_code: mrc16,
            suppress_router_processing: true,
            sources: vec![v6("2001:db8::1"), v6("2001:db8::2")],
            ..MldQuery::general(MldVersion::V2, 0, 3, 300)
        }),
        vec![
            ("icmpv6.type", "130".into()),
            (
                "icmpv6.mld.maximum_response_code",
                float::decode_code16(mrc16).to_string(),
            ),
            ("icmpv6.mld.flag.s", "1".into()),
            ("icmpv6.mld.flag.qrv", "3".into()),
            (
                "icmpv6.mld.qqi",
                float::decode_code8(float::encode_code8(300)).to_string(),
            ),
            ("icmpv6.mld.nb_sources", "2".into()),
            (
                "icmpv6.mld.source_address",
                "2001:db8::1,2001:db8::2".into(),
            ),
            ("icmpv6.mld.multicast_address", "ff0e::101".into()),
        ],
    ));
    cases.push(mld_case(
        v6("ff0e::101"),
        MldRepr::V1Report {
            group: v6("ff0e::101"),
        },
        e(&[
            ("icmpv6.type", "131"),
            ("icmpv6.mld.multicast_address", "ff0e::101"),
        ]),
    ));
    cases.push(mld_case(
        mld::ALL_ROUTERS,
        MldRepr::V1Done {
            group: v6("ff0e::101"),
        },
        e(&[
            ("icmpv6.type", "132"),
            ("icmpv6.mld.multicast_address", "ff0e::101"),
        ]),
    ));
    let records: Vec<GroupRecord<Ipv6Addr>> = (1..=6u16)
        .map(|t| GroupRecord {
            record_type: RecordType::from_code(t as u8),
            group: Ipv6Addr::new(0xff0e, 0, 0, 0, 0, 0, 0, t),
            sources: (0..t % 3)
                .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i))
                .collect(),
            aux_data: vec![],
        })
        .collect();
    cases.push(mld_case(
        mld::ALL_MLDV2_ROUTERS,
        MldRepr::V2Report { records },
        e(&[
            ("icmpv6.type", "143"),
            ("icmpv6.mldr.nb_mcast_records", "6"),
            ("icmpv6.mldr.mar.record_type", "1,2,3,4,5,6"),
            ("icmpv6.mldr.mar.nb_sources", "1,2,0,1,2,0"),
            (
                "icmpv6.mldr.mar.multicast_address",
                "ff0e::1,ff0e::2,ff0e::3,ff0e::4,ff0e::5,ff0e::6",
            ),
        ]),
    ));
    cases.push(mld_case(
        mrd::ALL_SNOOPERS_V6,
        MldRepr::Mrd(MrdRepr::Advertisement {
            advertisement_interval: 20,
            query_interval: 125,
            robustness: 2,
        }),
        e(&[
            ("icmpv6.type", "151"),
            ("icmpv6.mcast_ra.query_interval", "125"),
            ("icmpv6.mcast_ra.robustness_variable", "2"),
        ]),
    ));
    cases.push(mld_case(
        mld::ALL_ROUTERS,
        MldRepr::Mrd(MrdRepr::Solicitation),
        e(&[("icmpv6.type", "152")]),
    ));
    cases.push(mld_case(
        mrd::ALL_SNOOPERS_V6,
        MldRepr::Mrd(MrdRepr::Termination),
        e(&[("icmpv6.type", "153")]),
    ));
    // PIM hellos, v4 and v6.
    let pim_ip = Ipv4Header {
        ttl: 1,
        tos: 0xc0,
        router_alert: false,
        ..Ipv4Header::igmp(me, igmpd_wire::pim::ALL_PIM_ROUTERS_V4)
    };
    cases.push(Case {
        frame: Frame {
            ethernet: EthernetHeader::multicast(MAC, pim_ip.dst.into(), None),
            packet: Packet::PimHelloV4 {
                ip: pim_ip,
                hello: PimHello {
                    holdtime: Some(105),
                },
            },
        },
        expect: e(&[("pim.type", "0"), ("pim.holdtime", "105")]),
    });
    let pim6 = Ipv6Header {
        router_alert: None,
        ..Ipv6Header::mld(v6("fe80::1"), igmpd_wire::pim::ALL_PIM_ROUTERS_V6)
    };
    cases.push(Case {
        frame: Frame {
            ethernet: EthernetHeader::multicast(MAC, pim6.dst.into(), None),
            packet: Packet::PimHelloV6 {
                ip: pim6,
                hello: PimHello {
                    holdtime: Some(105),
                },
            },
        },
        expect: e(&[("pim.type", "0"), ("pim.holdtime", "105")]),
    });
    cases
}

/// Runs tshark over `file` and returns, per frame, field -> comma-joined occurrences.
fn tshark_fields(file: &std::path::Path, fields: &[&str]) -> Vec<BTreeMap<String, String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-n").arg("-r").arg(file).args([
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=,",
        "-E",
        "separator=\t",
    ]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark runs (scripts/install-deps.sh installs it)");
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            fields
                .iter()
                .zip(line.split('\t'))
                .map(|(f, v)| (f.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[test]
fn tshark_decodes_every_emitted_kind_as_we_meant_it() {
    let cases = cases();
    let records: Vec<pcap::Record> = cases
        .iter()
        .enumerate()
        .map(|(i, c)| pcap::Record {
            timestamp_us: 1_700_000_000_000_000 + i as u64,
            link_type: pcap::LINKTYPE_ETHERNET,
            data: c.frame.to_bytes(),
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("igmpd-wire-tshark-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("emitted.pcap");
    std::fs::write(&file, pcap::write(&records)).unwrap();

    let mut fields: Vec<&str> = vec![
        "frame.number",
        "_ws.malformed",
        "_ws.expert.severity",
        "_ws.expert.message",
        "igmp.checksum.status",
        "icmpv6.checksum.status",
        "ip.checksum.status",
        "mrdisc.checksum.status",
    ];
    for c in &cases {
        for (f, _) in &c.expect {
            if !fields.contains(f) {
                fields.push(f);
            }
        }
    }
    let rows = tshark_fields(&file, &fields);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(rows.len(), cases.len(), "tshark saw every frame");
    let mut failures = Vec::new();
    for (i, (c, row)) in cases.iter().zip(&rows).enumerate() {
        let n = i + 1;
        if !row["_ws.malformed"].is_empty() {
            failures.push(format!("frame {n}: malformed"));
        }
        // PI_WARN is 0x00800000 and PI_ERROR 0x00c00000; notes and chats are fine.
        for sev in row["_ws.expert.severity"]
            .split(',')
            .filter(|s| !s.is_empty())
        {
            if sev.parse::<u32>().unwrap_or(u32::MAX) >= 0x0080_0000 {
                failures.push(format!(
                    "frame {n}: expert {sev}: {}",
                    row["_ws.expert.message"]
                ));
            }
        }
        for k in [
            "igmp.checksum.status",
            "icmpv6.checksum.status",
            "ip.checksum.status",
            "mrdisc.checksum.status",
        ] {
            if !row[k].is_empty() && row[k] != "2" && row[k] != "1" {
                failures.push(format!("frame {n}: {k} = {}", row[k]));
            }
        }
        for (f, want) in &c.expect {
            if &row[*f] != want {
                failures.push(format!(
                    "frame {n} ({:?}): {f} = {:?}, want {want:?}",
                    c.frame.packet, row[*f]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "tshark disagrees:\n{}",
        failures.join("\n")
    );
}
