//! Framing round trips and the parsers' edge cases.
use super::*;
use crate::igmp::{IgmpQuery, IgmpVersion, ALL_SYSTEMS};
use crate::mld::{MldQuery, MldVersion, ALL_NODES};

const MAC: MacAddr = [0x02, 0, 0, 0, 0, 1];

#[test]
fn multicast_macs() {
    assert_eq!(
        multicast_mac(IpAddr::V4(Ipv4Addr::new(239, 129, 1, 2))),
        [0x01, 0x00, 0x5e, 0x01, 0x01, 0x02]
    );
    assert_eq!(
        multicast_mac(IpAddr::V6("ff02::1:ffc7:140".parse().unwrap())),
        [0x33, 0x33, 0xff, 0xc7, 0x01, 0x40]
    );
}

#[test]
fn igmp_query_frame_from_zero_source_with_tag() {
    let f = Frame::igmp(
        MAC,
        Some(VlanTag::new(100)),
        Ipv4Header::igmp(Ipv4Addr::UNSPECIFIED, ALL_SYSTEMS),
        IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 10_000, 2, 125)),
    );
    let b = f.to_bytes();
    assert_eq!(b.len(), f.buffer_len());
    assert_eq!(&b[12..16], &[0x81, 0x00, 0x00, 100]);
    assert_eq!(parse_ethernet(&b).unwrap(), f);
    // Ethernet padding after the IP packet is ignored.
    let mut padded = b.clone();
    padded.resize(80, 0);
    assert_eq!(parse_ethernet(&padded).unwrap(), f);
}

#[test]
fn mld_frame_has_hop_by_hop_router_alert() {
    let src: Ipv6Addr = "fe80::1".parse().unwrap();
    let f = Frame::mld(
        MAC,
        None,
        Ipv6Header::mld(src, ALL_NODES),
        MldRepr::Query(MldQuery::general(MldVersion::V2, 10_000, 2, 125)),
    );
    let b = f.to_bytes();
    assert_eq!(b[14 + 6], 0, "next header is hop-by-hop");
    assert_eq!(&b[54..60], &[58, 0, 5, 2, 0, 0]);
    assert_eq!(parse_ethernet(&b).unwrap(), f);
    assert_eq!(parse_ip(&b[14..]).unwrap(), f.packet);
}

#[test]
fn ip_level_errors() {
    let f = Frame::igmp(
        MAC,
        None,
        Ipv4Header::igmp(Ipv4Addr::new(10, 0, 0, 1), ALL_SYSTEMS),
        IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V2, 10_000, 2, 125)),
    );
    let good = f.to_bytes();
    let mut b = good.clone();
    b[14 + 10] ^= 1;
    assert_eq!(parse_ethernet(&b), Err(DecodeError::BadIpChecksum));
    let mut b = good.clone();
    b[12] = 0x08;
    b[13] = 0x06;
    assert_eq!(
        parse_ethernet(&b),
        Err(DecodeError::UnsupportedEtherType(0x0806))
    );
    assert!(matches!(
        parse_ethernet(&good[..30]),
        Err(DecodeError::Truncated { .. })
    ));
    assert_eq!(parse_ip(&[0x50]), Err(DecodeError::BadIpHeader("version")));
}
