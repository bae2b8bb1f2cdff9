//! Byte-level tests: iproute2's requests and the kernel's replies and
//! notifications parse to the expected structs, and emit back to the same
//! bytes (requests built with this crate's builders emit iproute2's bytes).

#[path = "common/golden.rs"]
#[allow(dead_code)]
mod golden;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_netlink::{
    mdb::*, netlink_packet_core::*, netlink_packet_route::link::BridgeMulticastRouterType,
    requests::link::LinkHandle, Error, Event, KernelError, MdbAddRequest, MdbDelRequest,
    MdbDumpRequest, MdbFlushRequest, MdbGetRequest, RequestKind, RtnlMessage,
};

const BR: u32 = 2;
const P1: u32 = 4;
const G: Ipv4Addr = Ipv4Addr::new(239, 1, 1, 1);

fn parse(bytes: &[u8]) -> NetlinkMessage<RtnlMessage> {
    NetlinkMessage::<RtnlMessage>::deserialize(bytes).expect("golden message parses")
}

fn inner(bytes: &[u8]) -> RtnlMessage {
    match parse(bytes).payload {
        NetlinkPayload::InnerMessage(m) => m,
        other => panic!("not an inner message: {other:?}"),
    }
}

fn emit(msg: &NetlinkMessage<RtnlMessage>) -> Vec<u8> {
    let mut buf = vec![0u8; msg.buffer_len()];
    msg.serialize(&mut buf);
    buf
}

/// Emits `built` with the golden message's sequence number and port id
/// (the only fields that differ per run) and compares with `golden`.
fn assert_emits(mut built: NetlinkMessage<RtnlMessage>, golden: &[u8]) {
    let g = parse(golden);
    built.header.sequence_number = g.header.sequence_number;
    built.header.port_number = g.header.port_number;
    built.finalize();
    assert_eq!(emit(&built), golden, "emitted bytes differ from golden");
    // And the golden bytes parse back to what was built.
    assert_eq!(parse(golden).payload, built.payload);
}

/// Parse then emit gives the same bytes.
fn assert_round_trip(golden: &[u8]) {
    let mut m = parse(golden);
    m.finalize();
    assert_eq!(emit(&m), golden);
}

fn request(entry: MdbEntry, attrs: Vec<MdbeAttribute>) -> MdbMessage {
    let mut attributes = vec![MdbAttribute::Entry(entry)];
    if !attrs.is_empty() {
        attributes.push(MdbAttribute::EntryAttrs(attrs));
    }
    MdbMessage {
        header: MdbHeader::new(BR),
        attributes,
    }
}

fn kernel_entry(entry: MdbEntry, attrs: Vec<MdbInfoAttribute>) -> MdbMessage {
    MdbMessage {
        header: MdbHeader::new(BR),
        attributes: vec![MdbAttribute::Mdb(vec![MdbGroupAttribute::Entry(vec![
            MdbPortAttribute::Info(MdbEntryInfo {
                entry,
                attributes: attrs,
            }),
        ])])],
    }
}

fn entry(port: u32, group: impl Into<MdbGroup>, state: MdbState, flags: MdbFlags) -> MdbEntry {
    MdbEntry {
        ifindex: port,
        state,
        flags,
        vid: 0,
        group: group.into(),
    }
}

#[test]
fn add_temp_with_proto_request() {
    let m = parse(golden::ADD_REQ);
    assert_eq!(
        m.header.flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
    );
    assert_eq!(
        m.payload,
        NetlinkPayload::InnerMessage(RtnlMessage::NewMdb(request(
            entry(P1, G, MdbState::Temporary, MdbFlags::empty()),
            vec![MdbeAttribute::Protocol(42)]
        )))
    );
    assert_emits(
        MdbAddRequest::new(BR, P1, G).proto(42).message(),
        golden::ADD_REQ,
    );
}

#[test]
fn add_sg_permanent_request() {
    assert_emits(
        MdbAddRequest::new(BR, P1, G)
            .source(Ipv4Addr::new(10, 0, 0, 1).into())
            .permanent()
            .proto(42)
            .message(),
        golden::ADD_SG_REQ,
    );
    let RtnlMessage::NewMdb(m) = inner(golden::ADD_SG_REQ) else {
        panic!()
    };
    assert_eq!(
        m.attributes[1],
        MdbAttribute::EntryAttrs(vec![
            MdbeAttribute::Source(Ipv4Addr::new(10, 0, 0, 1).into()),
            MdbeAttribute::Protocol(42)
        ])
    );
}

#[test]
fn add_ipv6_sg_request() {
    let grp: Ipv6Addr = "ff0e::1234".parse().unwrap();
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let m = inner(golden::ADD_IPV6_SG_REQ);
    assert_eq!(
        m,
        RtnlMessage::NewMdb(request(
            entry(P1, grp, MdbState::Permanent, MdbFlags::empty()),
            vec![MdbeAttribute::Source(src.into())]
        ))
    );
    assert_emits(
        MdbAddRequest::new(BR, P1, grp)
            .source(src.into())
            .permanent()
            .message(),
        golden::ADD_IPV6_SG_REQ,
    );
}

#[test]
fn add_mac_group_request() {
    let mac = [0x01, 0x00, 0x5e, 0x01, 0x02, 0x03];
    assert_eq!(
        inner(golden::ADD_MAC_REQ),
        RtnlMessage::NewMdb(request(
            entry(
                P1,
                MdbGroup::Mac(mac),
                MdbState::Permanent,
                MdbFlags::empty()
            ),
            vec![]
        ))
    );
    assert_emits(
        MdbAddRequest::new(BR, P1, mac).permanent().message(),
        golden::ADD_MAC_REQ,
    );
}

#[test]
fn replace_with_filter_mode_and_source_list_request() {
    let m = parse(golden::REPLACE_REQ);
    assert_eq!(
        m.header.flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE
    );
    let s2: IpAddr = Ipv4Addr::new(10, 0, 0, 2).into();
    let s3: IpAddr = Ipv4Addr::new(10, 0, 0, 3).into();
    assert_eq!(
        m.payload,
        NetlinkPayload::InnerMessage(RtnlMessage::NewMdb(request(
            entry(P1, G, MdbState::Permanent, MdbFlags::empty()),
            vec![
                MdbeAttribute::GroupMode(FilterMode::Exclude),
                MdbeAttribute::SrcList(vec![
                    MdbeSrcListAttribute::Entry(vec![MdbeSrcAttribute::Address(s2)]),
                    MdbeSrcListAttribute::Entry(vec![MdbeSrcAttribute::Address(s3)]),
                ]),
                MdbeAttribute::Protocol(42),
            ]
        )))
    );
    assert_emits(
        MdbAddRequest::new(BR, P1, G)
            .permanent()
            .filter_mode(FilterMode::Exclude)
            .source_list([s2, s3])
            .proto(42)
            .replace()
            .message(),
        golden::REPLACE_REQ,
    );
}

#[test]
fn del_request() {
    let m = parse(golden::DEL_REQ);
    assert_eq!(m.header.flags, NLM_F_REQUEST | NLM_F_ACK);
    let grp: Ipv6Addr = "ff0e::1234".parse().unwrap();
    let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
    assert_emits(
        MdbDelRequest::new(BR, P1, grp).source(src.into()).message(),
        golden::DEL_REQ,
    );
}

#[test]
fn dump_request() {
    assert_eq!(
        parse(golden::DUMP_REQ).header.flags,
        NLM_F_REQUEST | NLM_F_DUMP
    );
    assert_emits(MdbDumpRequest::new().message(), golden::DUMP_REQ);
}

#[test]
fn get_request_and_reply() {
    let src: IpAddr = Ipv4Addr::new(10, 0, 0, 1).into();
    assert_eq!(parse(golden::GET_REQ).header.flags, NLM_F_REQUEST);
    assert_emits(
        MdbGetRequest::new(BR, G).source(src).message(),
        golden::GET_REQ,
    );

    let reply = inner(golden::GET_REPLY);
    assert_eq!(
        reply,
        RtnlMessage::NewMdb(kernel_entry(
            entry(P1, G, MdbState::Permanent, MdbFlags::empty()),
            vec![
                MdbInfoAttribute::Timer(0),
                MdbInfoAttribute::Source(src),
                MdbInfoAttribute::Protocol(42),
            ]
        ))
    );
    assert_round_trip(golden::GET_REPLY);
}

#[test]
fn flush_request() {
    let m = parse(golden::FLUSH_REQ);
    assert_eq!(m.header.flags, NLM_F_REQUEST | NLM_F_ACK | 0x200);
    assert_emits(
        MdbFlushRequest::new(BR).proto(42).message(),
        golden::FLUSH_REQ,
    );
}

#[test]
fn dump_reply_parses_every_entry() {
    let m = parse(golden::DUMP_REPLY);
    assert_eq!(m.header.flags, NLM_F_MULTIPART);
    let RtnlMessage::GetMdb(mdb) = inner(golden::DUMP_REPLY) else {
        panic!("type")
    };
    let items = mdb.items();
    let entries: Vec<_> = items
        .iter()
        .map(|i| match i {
            MdbItem::Entry(e) => (e.group.to_string(), e.source, e.state, e.flags, e.protocol),
            MdbItem::RouterPort(_) => panic!("no router port in this dump"),
        })
        .collect();
    let v4 = |a, b, c, d| Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
    assert_eq!(
        entries,
        vec![
            (
                "01:00:5e:01:02:03".into(),
                None,
                MdbState::Permanent,
                MdbFlags::empty(),
                Some(4)
            ),
            (
                "ff0e::1234".into(),
                Some("2001:db8::1".parse().unwrap()),
                MdbState::Permanent,
                MdbFlags::empty(),
                Some(4)
            ),
            (
                "239.1.1.1".into(),
                v4(10, 0, 0, 1),
                MdbState::Permanent,
                MdbFlags::empty(),
                Some(42)
            ),
            (
                "239.1.1.1".into(),
                v4(10, 0, 0, 3),
                MdbState::Permanent,
                MdbFlags::BLOCKED,
                Some(42)
            ),
            (
                "239.1.1.1".into(),
                v4(10, 0, 0, 2),
                MdbState::Permanent,
                MdbFlags::BLOCKED,
                Some(42)
            ),
            (
                "239.1.1.1".into(),
                None,
                MdbState::Permanent,
                MdbFlags::empty(),
                Some(42)
            ),
        ]
    );
    assert!(items
        .iter()
        .all(|i| matches!(i, MdbItem::Entry(e) if e.bridge == BR && e.port == P1)));
    assert_round_trip(golden::DUMP_REPLY);
}

fn events(bytes: &[u8]) -> Vec<Event> {
    Event::from_message(parse(bytes))
}

#[test]
fn event_new_temporary_entry() {
    assert_eq!(
        inner(golden::EVENT_NEW_TEMP),
        RtnlMessage::NewMdb(kernel_entry(
            entry(P1, G, MdbState::Temporary, MdbFlags::empty()),
            vec![
                MdbInfoAttribute::Timer(26000),
                MdbInfoAttribute::Protocol(42)
            ]
        ))
    );
    let [Event::NewMdbEntry(r)] = &events(golden::EVENT_NEW_TEMP)[..] else {
        panic!()
    };
    assert_eq!(r.timer, Some(std::time::Duration::from_secs(260)));
    assert_round_trip(golden::EVENT_NEW_TEMP);
}

#[test]
fn event_new_blocked_sg() {
    let [Event::NewMdbEntry(r)] = &events(golden::EVENT_NEW_SG_BLOCKED)[..] else {
        panic!()
    };
    assert_eq!(r.flags, MdbFlags::BLOCKED);
    assert_eq!(r.source, Some(Ipv4Addr::new(10, 0, 0, 2).into()));
    assert_round_trip(golden::EVENT_NEW_SG_BLOCKED);
}

#[test]
fn event_del_ipv6_sg() {
    let [Event::DelMdbEntry(r)] = &events(golden::EVENT_DEL_IPV6_SG)[..] else {
        panic!()
    };
    assert_eq!(r.group, MdbGroup::Ipv6("ff0e::1234".parse().unwrap()));
    assert_eq!(r.source, Some("2001:db8::1".parse().unwrap()));
    assert_round_trip(golden::EVENT_DEL_IPV6_SG);
}

#[test]
fn event_learned_entry() {
    let [Event::NewMdbEntry(r)] = &events(golden::EVENT_NEW_LEARNED)[..] else {
        panic!()
    };
    assert_eq!(r.group, MdbGroup::Ipv4(Ipv4Addr::new(239, 1, 1, 5)));
    assert_eq!(r.protocol, Some(igmpd_netlink::constants::RTPROT_KERNEL));
    assert_eq!(r.state, MdbState::Temporary);
    assert_round_trip(golden::EVENT_NEW_LEARNED);
}

#[test]
fn event_router_port_add_and_del() {
    let expected = |del: bool| {
        let msg = MdbMessage {
            header: MdbHeader::new(BR),
            attributes: vec![MdbAttribute::Router(vec![MdbRouterAttribute::Port(
                MdbRouterPort {
                    ifindex: P1,
                    attributes: vec![],
                },
            )])],
        };
        if del {
            RtnlMessage::DelMdb(msg)
        } else {
            RtnlMessage::NewMdb(msg)
        }
    };
    assert_eq!(inner(golden::EVENT_NEW_ROUTER), expected(false));
    assert_eq!(inner(golden::EVENT_DEL_ROUTER), expected(true));
    assert!(
        matches!(&events(golden::EVENT_NEW_ROUTER)[..], [Event::NewRouterPort(r)] if r.port == P1 && r.bridge == BR)
    );
    assert!(
        matches!(&events(golden::EVENT_DEL_ROUTER)[..], [Event::DelRouterPort(r)] if r.port == P1)
    );
    assert_round_trip(golden::EVENT_NEW_ROUTER);
    assert_round_trip(golden::EVENT_DEL_ROUTER);
}

#[test]
fn set_port_mcast_router_request() {
    assert_emits(
        LinkHandle::set_port_mcast_router_message(P1, BridgeMulticastRouterType::Permanent),
        golden::SET_MCAST_ROUTER_REQ,
    );
}

fn kernel_error(bytes: &[u8]) -> KernelError {
    let m = parse(bytes);
    let NetlinkPayload::Error(e) = &m.payload else {
        panic!("not an error")
    };
    KernelError::from_error_message(e, m.header.flags)
}

#[test]
fn ack_is_not_an_error() {
    let m = parse(golden::ADD_ACK);
    assert!(matches!(&m.payload, NetlinkPayload::Error(e) if e.code.is_none()));
}

#[test]
fn entry_exists_error() {
    let k = kernel_error(golden::EXISTS_ERR);
    assert_eq!(k.errno, 17);
    assert_eq!(
        k.message.as_deref(),
        Some("bridge: (S, G) group is already joined by port")
    );
    assert!(matches!(
        Error::from_kernel(RequestKind::MdbAdd { protocol: None }, k),
        Error::EntryExists(_)
    ));
}

#[test]
fn bad_proto_error_points_at_rtprot() {
    let k = kernel_error(golden::BAD_PROTO_ERR);
    assert_eq!(k.errno, 34); // ERANGE, from the attribute policy
    assert_eq!(k.message.as_deref(), Some("integer out of range"));
    assert_eq!(k.offset, Some(60));
    assert_eq!(k.offending_attribute, Some(4));
    assert!(matches!(
        Error::from_kernel(RequestKind::MdbAdd { protocol: Some(2) }, k),
        Error::BadProtocol(_)
    ));
}

#[test]
fn del_of_missing_entry_is_not_found() {
    let k = kernel_error(golden::DEL_NOT_FOUND_ERR);
    assert_eq!((k.errno, k.message.as_deref()), (22, None));
    assert!(matches!(
        Error::from_kernel(RequestKind::MdbDel, k),
        Error::EntryNotFound(_)
    ));
}

#[test]
fn unknown_attributes_are_kept_and_emitted_back() {
    // EVENT_NEW_TEMP with an extra unknown MDBA_MDB_EATTR (type 0x7f, 4 bytes)
    // inside the entry info, and an unknown top-level attribute (type 9).
    let mut msg = parse(golden::EVENT_NEW_TEMP);
    let NetlinkPayload::InnerMessage(RtnlMessage::NewMdb(m)) = &mut msg.payload else {
        panic!()
    };
    let MdbAttribute::Mdb(groups) = &mut m.attributes[0] else {
        panic!()
    };
    let MdbGroupAttribute::Entry(ports) = &mut groups[0] else {
        panic!()
    };
    let MdbPortAttribute::Info(info) = &mut ports[0] else {
        panic!()
    };
    info.attributes
        .push(MdbInfoAttribute::Other(DefaultNla::new(
            0x7f,
            vec![1, 2, 3, 4],
        )));
    m.attributes
        .push(MdbAttribute::Other(DefaultNla::new(9, vec![5, 6])));
    msg.finalize();
    let bytes = emit(&msg);
    assert_eq!(parse(&bytes), msg);
}

#[test]
fn truncated_and_garbage_input_never_panics() {
    for golden in [
        golden::DUMP_REPLY,
        golden::REPLACE_REQ,
        golden::GET_REPLY,
        golden::EVENT_NEW_ROUTER,
        golden::BAD_PROTO_ERR,
    ] {
        for cut in 0..golden.len() {
            let mut b = golden[..cut].to_vec();
            if b.len() >= 4 {
                b[..4].copy_from_slice(&(cut as u32).to_ne_bytes());
            }
            let _ = NetlinkMessage::<RtnlMessage>::deserialize(&b);
            // Typed parse of the body alone is total too.
            if cut > 16 {
                let _ = MdbMessage::parse_with_direction(&golden[16..cut], false);
                let _ = MdbMessage::parse_with_direction(&golden[16..cut], true);
            }
        }
        // Flip every byte of the body.
        for i in 16..golden.len() {
            let mut b = golden.to_vec();
            b[i] ^= 0xff;
            let _ = NetlinkMessage::<RtnlMessage>::deserialize(&b);
            let _ = MdbMessage::parse_with_direction(&b[16..], false);
            let _ = MdbMessage::parse_with_direction(&b[16..], true);
        }
    }
}

#[test]
fn undecodable_mdb_message_is_kept_raw() {
    // A kernel RTM_NEWMDB whose MDBA_MDB_EATTR_TIMER is 2 bytes long.
    let mut b = golden::EVENT_NEW_TEMP.to_vec();
    // Find the timer attribute (len 8, type 1) after the 28-byte entry.
    let pos = b.windows(4).position(|w| w == [8, 0, 1, 0]).unwrap();
    b[pos] = 6;
    let m = parse(&b);
    match m.payload {
        NetlinkPayload::InnerMessage(RtnlMessage::Unparsed { message_type, .. }) => {
            assert_eq!(message_type, 84)
        }
        other => panic!("{other:?}"),
    }
}
