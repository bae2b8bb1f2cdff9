//! Golden tests: every frame of the third-party captures in `tests/data/` (copied from the
//! project's shared captures so a fresh clone needs nothing else) decodes to the fields
//! tshark 4.0 shows for it, and re-emitting what we decoded gives the captured bytes back.

use std::fmt::Write as _;

use igmpd_wire::frame::{parse_ethernet, Packet};
use igmpd_wire::{pcap, record::Address, GroupRecord, IgmpRepr, MldRepr, MrdRepr};

fn load(name: &str) -> Vec<pcap::Record> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    pcap::read(&bytes).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn records<A: Address + std::fmt::Display>(rs: &[GroupRecord<A>]) -> String {
    let mut s = String::new();
    for r in rs {
        let srcs: Vec<String> = r.sources.iter().map(ToString::to_string).collect();
        write!(
            s,
            " {}({})[{}]",
            r.record_type.rfc_name(),
            r.group,
            srcs.join(",")
        )
        .unwrap();
    }
    s
}

fn mrd(m: &MrdRepr) -> String {
    match m {
        MrdRepr::Advertisement {
            advertisement_interval,
            query_interval,
            robustness,
        } => format!("mrd-adv {advertisement_interval} {query_interval} {robustness}"),
        MrdRepr::Solicitation => "mrd-sol".into(),
        MrdRepr::Termination => "mrd-term".into(),
    }
}

/// One line per frame with every decoded field that matters to igmpd.
fn summary(data: &[u8]) -> String {
    let f = match parse_ethernet(data) {
        Ok(f) => f,
        Err(e) => return format!("error {}", e.reason()),
    };
    let ttl = f.packet.hop_limit();
    let ra = if f.packet.router_alert() { " ra" } else { "" };
    let head = format!("{}>{} ttl={ttl}{ra}", f.packet.src(), f.packet.dst());
    let body = match &f.packet {
        Packet::Igmp { igmp, ip } => {
            assert_eq!(
                ip.tos, 0xc0,
                "every IGMP frame in these captures uses TOS 0xc0"
            );
            match igmp {
                IgmpRepr::Query(q) => {
                    let srcs: Vec<String> = q.sources.iter().map(ToString::to_string).collect();
                    format!(
                        "query v{} mrc={} s={} qrv={} qqic={} group={} sources=[{}]",
                        q.version.number(),
                        q.max_resp_code,
                        u8::from(q.suppress_router_processing),
                        q.qrv,
                        q.qqic,
                        q.group,
                        srcs.join(",")
                    )
                }
                IgmpRepr::V1Report { group } => format!("v1-report {group}"),
                IgmpRepr::V2Report { group } => format!("v2-report {group}"),
                IgmpRepr::V2Leave { group } => format!("leave {group}"),
                IgmpRepr::V3Report { records: rs } => format!("v3-report{}", records(rs)),
                IgmpRepr::Mrd(m) => mrd(m),
            }
        }
        Packet::Mld { mld, .. } => match mld {
            MldRepr::Query(q) => format!(
                "mld-query v{} mrc={} s={} qrv={} qqic={} group={} sources={}",
                q.version.number(),
                q.max_resp_code,
                u8::from(q.suppress_router_processing),
                q.qrv,
                q.qqic,
                q.group,
                q.sources.len()
            ),
            MldRepr::V1Report { group } => format!("mld-v1-report {group}"),
            MldRepr::V1Done { group } => format!("mld-done {group}"),
            MldRepr::V2Report { records: rs } => format!("mld-v2-report{}", records(rs)),
            MldRepr::Mrd(m) => mrd(m),
        },
        Packet::PimHelloV4 { hello, .. } | Packet::PimHelloV6 { hello, .. } => {
            format!("pim-hello {:?}", hello.holdtime)
        }
    };
    format!("{head} {body}")
}

/// Asserts the summaries, and that each decoded frame re-emits to the captured bytes
/// (up to the IP packet's end).
fn check(name: &str, expected: &[&str]) {
    let recs = load(name);
    let got: Vec<String> = recs.iter().map(|r| summary(&r.data)).collect();
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g, e, "{name} frame {}", i + 1);
    }
    assert_eq!(got.len(), expected.len(), "{name}: frame count");
    for (i, r) in recs.iter().enumerate() {
        if let Ok(f) = parse_ethernet(&r.data) {
            let mut emitted = f.to_bytes();
            let mut original = r.data[..emitted.len()].to_vec();
            if matches!(f.packet, Packet::Mld { .. }) {
                // The Hop-by-Hop header's last two bytes are padding: Linux hosts write a
                // PadN option (01 00), the kernel bridge's querier two Pad1 (00 00). Both
                // are valid and we emit PadN, so the padding is not compared.
                emitted[60..62].fill(0);
                original[60..62].fill(0);
            }
            assert_eq!(emitted, original, "{name} frame {} re-emits", i + 1);
        }
    }
}

#[test]
fn frr_8_4_igmpv2_querier() {
    let q =
        "10.77.0.13>224.0.0.1 ttl=1 ra query v2 mrc=15 s=0 qrv=0 qqic=0 group=0.0.0.0 sources=[]";
    let gsq =
        "10.77.0.13>239.9.9.8 ttl=1 ra query v2 mrc=10 s=0 qrv=0 qqic=0 group=239.9.9.8 sources=[]";
    let r22 = "10.77.0.13>224.0.0.22 ttl=1 ra v2-report 224.0.0.22";
    let r2 = "10.77.0.13>224.0.0.2 ttl=1 ra v2-report 224.0.0.2";
    let host = "10.77.0.11>239.9.9.8 ttl=1 ra v2-report 239.9.9.8";
    let mrd_grp = "10.77.0.1>224.0.0.106 ttl=1 ra v2-report 224.0.0.106";
    check(
        "frr-8.4-igmpv2-querier.pcap",
        &[
            r22,
            r2,
            host,
            q,
            r22,
            r2,
            host,
            q,
            mrd_grp,
            r2,
            "10.77.0.11>224.0.0.2 ttl=1 ra leave 239.9.9.8",
            gsq,
            gsq,
            r22,
            q,
            gsq,
            gsq,
            r2,
            r22,
            mrd_grp,
            q,
        ],
    );
}

#[test]
fn frr_8_4_igmpv3_querier_with_s_flag_and_zero_source_in_group_and_source_query() {
    let q =
        "10.77.0.13>224.0.0.1 ttl=1 ra query v3 mrc=20 s=1 qrv=2 qqic=3 group=0.0.0.0 sources=[]";
    // FRR's group-and-source-specific query after a leave lists 0.0.0.0 as its source.
    let gssq = "10.77.0.13>239.9.9.9 ttl=1 ra query v3 mrc=10 s=0 qrv=2 qqic=3 group=239.9.9.9 sources=[0.0.0.0]";
    let gsq =
        "10.77.0.13>239.9.9.9 ttl=1 ra query v3 mrc=10 s=0 qrv=2 qqic=3 group=239.9.9.9 sources=[]";
    let r22 = "10.77.0.13>224.0.0.22 ttl=1 ra v2-report 224.0.0.22";
    let r2 = "10.77.0.13>224.0.0.2 ttl=1 ra v2-report 224.0.0.2";
    let h232 = "10.77.0.11>232.1.1.1 ttl=1 ra v2-report 232.1.1.1";
    let h239 = "10.77.0.11>239.9.9.9 ttl=1 ra v2-report 239.9.9.9";
    let m = "10.77.0.1>224.0.0.106 ttl=1 ra v2-report 224.0.0.106";
    check(
        "frr-8.4-igmpv3-querier.pcap",
        &[
            r22,
            r2,
            h232,
            h239,
            q,
            m,
            h232,
            h239,
            r2,
            q,
            r2,
            r22,
            m,
            h232,
            h239,
            q,
            h239,
            "10.77.0.11>224.0.0.2 ttl=1 ra leave 239.9.9.9",
            "10.77.0.11>224.0.0.2 ttl=1 ra leave 232.1.1.1",
            gssq,
            gsq,
            r22,
            m,
            gsq,
            gssq,
            r2,
            q,
        ],
    );
    // QQIC 3 s and Max Resp 2.0 s as FRR was configured.
    let f = parse_ethernet(&load("frr-8.4-igmpv3-querier.pcap")[4].data).unwrap();
    let Packet::Igmp {
        igmp: IgmpRepr::Query(q),
        ..
    } = f.packet
    else {
        panic!("frame 5 is a query")
    };
    assert_eq!((q.max_resp_time_ms(), q.qqi_secs()), (2000, Some(3)));
}

#[test]
fn kernel_bridge_querier_igmpv3_and_mldv1() {
    let mq = "fe80::fcc2:2eff:fea9:b2c6>ff02::1 ttl=1 ra mld-query v1 mrc=5000 s=0 qrv=0 qqic=0 group=:: sources=0";
    // The bridge has an address, so its IGMPv3 query comes from it (mcast_query_use_ifaddr).
    let q =
        "10.77.0.1>224.0.0.1 ttl=1 ra query v3 mrc=50 s=0 qrv=2 qqic=3 group=0.0.0.0 sources=[]";
    check(
        "kernel-bridge-querier-igmpv3-mldv1.pcap",
        &[
            // A router solicitation: ICMPv6 but not MLD.
            "error unknown_type",
            mq,
            q,
            "fe80::8855:11ff:fec7:140>ff02::1:ffc7:140 ttl=1 ra mld-v1-report ff02::1:ffc7:140",
            q,
            mq,
            "fe80::6c78:bdff:fe5a:4f16>ff02::1:ff5a:4f16 ttl=1 ra mld-v1-report ff02::1:ff5a:4f16",
            "fe80::fcc2:2eff:fea9:b2c6>ff02::1:ffa9:b2c6 ttl=1 ra mld-v1-report ff02::1:ffa9:b2c6",
            "fe80::fcc2:2eff:fea9:b2c6>ff02::16 ttl=1 ra mld-v2-report TO_EX(ff02::1:ffa9:b2c6)[] TO_EX(ff02::6a)[]",
        ],
    );
}

#[test]
fn mcd_2_4_querier_with_linux_v3_allow_block_to_in_and_v2_leave() {
    let q =
        "10.78.0.1>224.0.0.1 ttl=1 ra query v3 mrc=100 s=0 qrv=2 qqic=20 group=0.0.0.0 sources=[]";
    let gsq = |g: &str| {
        format!("10.78.0.1>{g} ttl=1 ra query v3 mrc=10 s=0 qrv=2 qqic=20 group={g} sources=[]")
    };
    let join =
        "10.78.0.12>224.0.0.22 ttl=1 ra v3-report ALLOW(232.1.1.1)[10.78.0.99] TO_EX(239.1.1.1)[]";
    let current =
        "10.78.0.12>224.0.0.22 ttl=1 ra v3-report IS_IN(232.1.1.1)[10.78.0.99] IS_EX(239.1.1.1)[]";
    let leave =
        "10.78.0.12>224.0.0.22 ttl=1 ra v3-report BLOCK(232.1.1.1)[10.78.0.99] TO_IN(239.1.1.1)[]";
    let (g239, g232, g2) = (gsq("239.1.1.1"), gsq("232.1.1.1"), gsq("239.2.2.2"));
    check(
        "mcd-2.4-querier.pcap",
        &[
            q,
            q,
            join,
            join,
            current,
            leave,
            leave,
            &g239,
            &g232,
            &g239,
            &g232,
            "10.78.0.11>224.0.0.2 ttl=1 ra leave 239.2.2.2",
            &g2,
            &g2,
            q,
        ],
    );
}

#[test]
fn pimd_2_3_2_startup_query_with_bad_checksum_is_rejected_second_accepted() {
    let report = |t: &str| {
        format!("10.77.0.12>224.0.0.22 ttl=1 ra v3-report {t}(224.0.0.22)[] {t}(224.0.0.2)[] {t}(224.0.0.13)[]")
    };
    let (to_ex, is_ex) = (report("TO_EX"), report("IS_EX"));
    check(
        "pimd-2.3.2-startup-query-bad-checksum.pcap",
        &[
            "error bad_checksum",
            &to_ex,
            &to_ex,
            &is_ex,
            "10.77.0.12>224.0.0.1 ttl=1 ra query v3 mrc=100 s=0 qrv=2 qqic=3 group=0.0.0.0 sources=[]",
        ],
    );
}
