//! Against the real kernel, each test in its own network namespace (root
//! required, like the rest of igmpd's tests).

mod common;

use std::{
    collections::BTreeSet,
    future::Future,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    time::Duration,
};

use common::{ifindex, switch, Netns};
use futures::{Stream, StreamExt, TryStreamExt};
use igmpd_netlink::{
    constants::RTPROT_KERNEL,
    events,
    mdb::{FilterMode, MdbFlags, MdbGroup, MdbItem, MdbRecord, MdbState},
    netlink_packet_route::link::BridgeMulticastRouterType,
    new_connection,
    probe::{self, MdbFeatures},
    set_receive_buffer, subscribe, Error, Event, Group, Handle,
};

const PROTO: u8 = 200;
const T: Duration = Duration::from_secs(10);

async fn timeout<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(T, f).await.expect("timed out")
}

fn connect() -> Handle {
    let (conn, handle, _) = new_connection().unwrap();
    tokio::spawn(conn);
    handle
}

async fn dump(h: &Handle, bridge: u32) -> Vec<MdbItem> {
    timeout(h.mdb().dump().bridge(bridge).execute().try_collect())
        .await
        .unwrap()
}

async fn entries(h: &Handle, bridge: u32) -> Vec<MdbRecord> {
    dump(h, bridge)
        .await
        .into_iter()
        .filter_map(|i| match i {
            MdbItem::Entry(e) => Some(e),
            MdbItem::RouterPort(_) => None,
        })
        .collect()
}

async fn find(
    h: &Handle,
    bridge: u32,
    group: MdbGroup,
    source: Option<IpAddr>,
) -> Option<MdbRecord> {
    entries(h, bridge)
        .await
        .into_iter()
        .find(|e| e.group == group && e.source == source)
}

/// Waits for the first event matching `pred`.
async fn wait_event(
    ev: &mut (impl Stream<Item = Event> + Unpin),
    pred: impl Fn(&Event) -> bool,
) -> Event {
    timeout(async {
        loop {
            let e = ev.next().await.expect("event stream ended");
            if pred(&e) {
                return e;
            }
        }
    })
    .await
}

struct Ids {
    br: u32,
    p1: u32,
    p2: u32,
}

fn ids(ns: &Netns) -> Ids {
    Ids {
        br: ifindex(ns, "br0"),
        p1: ifindex(ns, "p1"),
        p2: ifindex(ns, "p2"),
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// What this kernel's MDB takes (see `probe`); a test that needs more says so and skips.
async fn features(h: &Handle, i: &Ids) -> MdbFeatures {
    timeout(probe::probe_mdb(h, i.br, i.p1, PROTO))
        .await
        .unwrap()
}

/// True (and a line saying why) when the kernel lacks what a test needs.
fn skip(f: MdbFeatures, needs: &[&str]) -> bool {
    let have = f.names();
    let missing: Vec<&&str> = needs.iter().filter(|n| !have.contains(n)).collect();
    if missing.is_empty() {
        return false;
    }
    eprintln!(
        "skipped on {}: the kernel's MDB lacks {missing:?}",
        probe::kernel_release()
    );
    true
}

/// `(major, minor)` of the running kernel, for the expectations the kernel's history sets.
fn release() -> (u32, u32) {
    let r = probe::kernel_release();
    let mut n = r
        .split(|c: char| !c.is_ascii_digit())
        .map(|x| x.parse().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0))
}

#[test]
fn the_probe_finds_what_the_kernel_history_says_and_leaves_nothing_behind() {
    let ns = switch();
    let i = ids(&ns);
    ns.block_on(|| async {
        let h = connect();
        let f = features(&h, &i).await;
        // br_mdb.c: MDBE_ATTR_SOURCE since 5.11; RTPROT, GROUP_MODE, SRC_LIST and
        // NLM_F_REPLACE since 6.3.
        let new = release() >= (6, 3);
        let want = MdbFeatures {
            protocol: new,
            source_list: new,
            replace: new,
            sg: release() >= (5, 11),
        };
        assert_eq!(f, want, "kernel {}", probe::kernel_release());
        assert!(entries(&h, i.br).await.is_empty(), "the probe left entries");
        // A second run finds the same (nothing left over disturbs it).
        assert_eq!(features(&h, &i).await, want);
        // Every kernel igmpd runs on reports the boolean option mask.
        let link = timeout(h.link().get_by_name("br0")).await.unwrap();
        assert_eq!(probe::knows_vlan_snooping(&link), release() >= (5, 12));
        let port = timeout(h.link().get_by_name("p1")).await.unwrap();
        assert_eq!(probe::knows_port_max_groups(&port), new);
    });
}

#[test]
fn ipv4_star_g_add_replace_delete_temp_and_permanent() {
    let ns = switch();
    let i = ids(&ns);
    ns.block_on(|| async {
        let h = connect();
        if skip(features(&h, &i).await, &["mdb_protocol", "mdb_replace"]) {
            return;
        }
        let g = v4(239, 1, 1, 1);
        timeout(h.mdb().add(i.br, i.p1, g).proto(PROTO).execute())
            .await
            .unwrap();
        let e = find(&h, i.br, g.into(), None).await.expect("temp entry");
        assert_eq!(
            (e.port, e.state, e.protocol),
            (i.p1, MdbState::Temporary, Some(PROTO))
        );
        assert!(e.timer.unwrap() > Duration::from_secs(200), "{e:?}");

        let again = timeout(h.mdb().add(i.br, i.p1, g).proto(PROTO).execute()).await;
        assert!(matches!(again, Err(Error::EntryExists(_))), "{again:?}");

        // Replace turns it permanent.
        timeout(
            h.mdb()
                .add(i.br, i.p1, g)
                .permanent()
                .proto(PROTO)
                .replace()
                .execute(),
        )
        .await
        .unwrap();
        let e = find(&h, i.br, g.into(), None).await.unwrap();
        assert_eq!(
            (e.state, e.timer),
            (MdbState::Permanent, Some(Duration::ZERO))
        );

        // A second port, permanent from the start.
        timeout(
            h.mdb()
                .add(i.br, i.p2, g)
                .permanent()
                .proto(PROTO)
                .execute(),
        )
        .await
        .unwrap();
        let ports: BTreeSet<u32> = entries(&h, i.br).await.iter().map(|e| e.port).collect();
        assert_eq!(ports, [i.p1, i.p2].into());

        timeout(h.mdb().del(i.br, i.p1, g).execute()).await.unwrap();
        let left: Vec<_> = entries(&h, i.br).await;
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].port, i.p2);
        let missing = timeout(h.mdb().del(i.br, i.p1, g).execute()).await;
        assert!(
            matches!(missing, Err(Error::EntryNotFound(_))),
            "{missing:?}"
        );
    });
}

#[test]
fn sg_entries_ipv4_and_ipv6_with_get() {
    let ns = switch();
    let i = ids(&ns);
    ns.block_on(|| async {
        let h = connect();
        if skip(features(&h, &i).await, &["mdb_protocol", "mdb_sg"]) {
            return;
        }
        let (g4, s4) = (v4(232, 1, 2, 3), IpAddr::V4(v4(10, 1, 1, 1)));
        let g6: Ipv6Addr = "ff3e::1234".parse().unwrap();
        let s6: IpAddr = "2001:db8::7".parse().unwrap();
        timeout(
            h.mdb()
                .add(i.br, i.p1, g4)
                .source(s4)
                .permanent()
                .proto(PROTO)
                .execute(),
        )
        .await
        .unwrap();
        timeout(
            h.mdb()
                .add(i.br, i.p2, g6)
                .source(s6)
                .proto(PROTO)
                .execute(),
        )
        .await
        .unwrap();

        let e4 = find(&h, i.br, g4.into(), Some(s4)).await.expect("(S,G) v4");
        assert_eq!((e4.port, e4.state), (i.p1, MdbState::Permanent));
        let e6 = find(&h, i.br, g6.into(), Some(s6)).await.expect("(S,G) v6");
        assert_eq!(
            (e6.port, e6.state, e6.protocol),
            (i.p2, MdbState::Temporary, Some(PROTO))
        );

        let got = timeout(h.mdb().get(i.br, g4).source(s4).execute())
            .await
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].port, got[0].source), (i.p1, Some(s4)));
        let none = timeout(h.mdb().get(i.br, v4(239, 9, 9, 9)).execute()).await;
        assert!(matches!(none, Err(Error::EntryNotFound(_))), "{none:?}");

        timeout(h.mdb().del(i.br, i.p2, g6).source(s6).execute())
            .await
            .unwrap();
        assert!(find(&h, i.br, g6.into(), Some(s6)).await.is_none());
        timeout(h.mdb().del(i.br, i.p1, g4).source(s4).execute())
            .await
            .unwrap();
        assert!(entries(&h, i.br).await.is_empty());
    });
}

#[test]
fn filter_mode_and_source_list() {
    let ns = switch();
    let i = ids(&ns);
    ns.block_on(|| async {
        let h = connect();
        if skip(
            features(&h, &i).await,
            &["mdb_protocol", "mdb_source_list", "mdb_replace"],
        ) {
            return;
        }
        let g = v4(239, 2, 2, 2);
        let srcs: Vec<IpAddr> = vec![v4(10, 0, 0, 2).into(), v4(10, 0, 0, 3).into()];
        timeout(
            h.mdb()
                .add(i.br, i.p1, g)
                .permanent()
                .filter_mode(FilterMode::Exclude)
                .source_list(srcs.clone())
                .proto(PROTO)
                .replace()
                .execute(),
        )
        .await
        .unwrap();
        let star = find(&h, i.br, g.into(), None).await.unwrap();
        assert_eq!(star.filter_mode, Some(FilterMode::Exclude));
        let listed: BTreeSet<IpAddr> = star.sources.iter().map(|s| s.address).collect();
        assert_eq!(listed, srcs.iter().copied().collect());
        // EXCLUDE sources become blocked (S,G) entries.
        for s in &srcs {
            let sg = find(&h, i.br, g.into(), Some(*s)).await.unwrap();
            assert!(sg.flags.contains(MdbFlags::BLOCKED), "{sg:?}");
        }

        // INCLUDE mode with one source: forwarding (S,G), no blocked flag.
        let g2 = v4(232, 2, 2, 2);
        timeout(
            h.mdb()
                .add(i.br, i.p2, g2)
                .filter_mode(FilterMode::Include)
                .source_list([srcs[0]])
                .proto(PROTO)
                .replace()
                .execute(),
        )
        .await
        .unwrap();
        let star2 = find(&h, i.br, g2.into(), None).await.unwrap();
        assert_eq!(star2.filter_mode, Some(FilterMode::Include));
        let sg = find(&h, i.br, g2.into(), Some(srcs[0])).await.unwrap();
        assert!(!sg.flags.contains(MdbFlags::BLOCKED));

        // Filter mode on an (S,G) entry is refused by the kernel.
        let bad = timeout(
            h.mdb()
                .add(i.br, i.p1, g)
                .source(srcs[0])
                .filter_mode(FilterMode::Include)
                .replace()
                .execute(),
        )
        .await;
        assert!(
            matches!(bad, Err(Error::Kernel(ref k)) if k.message.is_some()),
            "{bad:?}"
        );
    });
}

#[test]
fn mac_group_and_proto_round_trip_and_flush() {
    let ns = switch();
    let i = ids(&ns);
    ns.block_on(|| async {
        let h = connect();
        if skip(features(&h, &i).await, &["mdb_protocol"]) {
            return;
        }
        let mac = [0x01, 0x00, 0x5e, 0x05, 0x06, 0x07];
        timeout(h.mdb().add(i.br, i.p1, mac).permanent().execute())
            .await
            .unwrap();
        let e = find(&h, i.br, MdbGroup::Mac(mac), None)
            .await
            .expect("L2 entry");
        assert_eq!((e.port, e.state), (i.p1, MdbState::Permanent));

        for (n, proto) in [4u8, 42, 99, 200, 255].into_iter().enumerate() {
            let g = v4(239, 3, 3, n as u8 + 1);
            timeout(
                h.mdb()
                    .add(i.br, i.p2, g)
                    .permanent()
                    .proto(proto)
                    .execute(),
            )
            .await
            .unwrap();
            let e = find(&h, i.br, g.into(), None).await.unwrap();
            assert_eq!(e.protocol, Some(proto));
        }
        // Flush only proto 200: the others stay.
        timeout(h.mdb().flush(i.br).proto(200).execute())
            .await
            .unwrap();
        let protos: BTreeSet<Option<u8>> =
            entries(&h, i.br).await.iter().map(|e| e.protocol).collect();
        assert_eq!(protos, [Some(4), Some(42), Some(99), Some(255)].into());
        // Flush the rest of p2's entries.
        timeout(h.mdb().flush(i.br).port(i.p2).execute())
            .await
            .unwrap();
        let left = entries(&h, i.br).await;
        assert_eq!(left.len(), 1, "{left:?}");
        assert_eq!(left[0].group, MdbGroup::Mac(mac));
    });
}

fn proto_name(p: u8) -> String {
    match p {
        2 => "kernel".into(),
        3 => "boot".into(),
        4 => "static".into(),
        42 => "babel".into(),
        p => p.to_string(),
    }
}

fn flag_names(f: MdbFlags) -> BTreeSet<String> {
    [
        (MdbFlags::OFFLOAD, "offload"),
        (MdbFlags::FAST_LEAVE, "fast_leave"),
        (MdbFlags::STAR_EXCL, "added_by_star_ex"),
        (MdbFlags::BLOCKED, "blocked"),
        (MdbFlags::OFFLOAD_FAILED, "offload_failed"),
    ]
    .into_iter()
    .filter(|(b, _)| f.contains(*b))
    .map(|(_, n)| n.to_string())
    .collect()
}

#[test]
fn dump_equals_bridge_mdb_show() {
    let ns = switch();
    let i = ids(&ns);
    let name = |idx: u32| {
        if idx == i.p1 {
            "p1"
        } else if idx == i.p2 {
            "p2"
        } else {
            "br0"
        }
        .to_string()
    };
    ns.block_on(|| async {
        let h = connect();
        if skip(
            features(&h, &i).await,
            &["mdb_protocol", "mdb_replace", "mdb_source_list", "mdb_sg"],
        ) {
            return;
        }
        let s: IpAddr = v4(10, 9, 9, 9).into();
        timeout(
            h.mdb()
                .add(i.br, i.p1, v4(239, 4, 4, 4))
                .proto(PROTO)
                .execute(),
        )
        .await
        .unwrap();
        timeout(
            h.mdb()
                .add(i.br, i.p2, v4(232, 4, 4, 4))
                .source(s)
                .permanent()
                .execute(),
        )
        .await
        .unwrap();
        timeout(
            h.mdb()
                .add(i.br, i.p2, v4(239, 4, 4, 5))
                .permanent()
                .filter_mode(FilterMode::Exclude)
                .source_list([s])
                .proto(42)
                .replace()
                .execute(),
        )
        .await
        .unwrap();
        let g6: Ipv6Addr = "ff0e::4".parse().unwrap();
        timeout(h.mdb().add(i.br, i.p1, g6).permanent().execute())
            .await
            .unwrap();
        timeout(
            h.mdb()
                .add(i.br, i.p1, [0x01, 0x00, 0x5e, 4, 4, 4])
                .permanent()
                .execute(),
        )
        .await
        .unwrap();
        timeout(
            h.link()
                .set_port_mcast_router(i.p2, BridgeMulticastRouterType::Permanent),
        )
        .await
        .unwrap();

        type Row = (
            String,
            String,
            Option<String>,
            String,
            Option<String>,
            Vec<String>,
            String,
            BTreeSet<String>,
        );
        let ours = |items: &[MdbItem]| -> (BTreeSet<Row>, BTreeSet<String>) {
            let mut rows = BTreeSet::new();
            let mut routers = BTreeSet::new();
            for it in items {
                match it {
                    MdbItem::Entry(e) => {
                        let mut sl: Vec<String> =
                            e.sources.iter().map(|s| s.address.to_string()).collect();
                        sl.sort();
                        rows.insert((
                            name(e.port),
                            e.group.to_string(),
                            e.source.map(|s| s.to_string()),
                            match e.state {
                                MdbState::Permanent => "permanent".into(),
                                _ => "temp".into(),
                            },
                            e.filter_mode.map(|m| match m {
                                FilterMode::Include => "include".into(),
                                FilterMode::Exclude => "exclude".into(),
                                FilterMode::Other(x) => x.to_string(),
                            }),
                            sl,
                            proto_name(e.protocol.unwrap_or(0)),
                            flag_names(e.flags),
                        ));
                    }
                    MdbItem::RouterPort(r) => {
                        routers.insert(name(r.port));
                    }
                }
            }
            (rows, routers)
        };
        let theirs = |json: &str| -> (BTreeSet<Row>, BTreeSet<String>) {
            let v: serde_json::Value = serde_json::from_str(json).unwrap();
            let mut rows = BTreeSet::new();
            let mut routers = BTreeSet::new();
            for br in v.as_array().unwrap() {
                for e in br["mdb"].as_array().unwrap() {
                    let s = |k: &str| e.get(k).and_then(|x| x.as_str()).map(str::to_string);
                    let mut sl: Vec<String> = e
                        .get("source_list")
                        .and_then(|l| l.as_array())
                        .map(|l| {
                            l.iter()
                                .map(|x| x["address"].as_str().unwrap().to_string())
                                .collect()
                        })
                        .unwrap_or_default();
                    sl.sort();
                    rows.insert((
                        s("port").unwrap(),
                        s("grp").unwrap(),
                        s("src"),
                        s("state").unwrap(),
                        s("filter_mode"),
                        sl,
                        s("protocol").unwrap(),
                        e["flags"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|f| f.as_str().unwrap().to_string())
                            .collect(),
                    ));
                }
                if let Some(r) = br["router"].as_object() {
                    for ports in r.values() {
                        for p in ports.as_array().unwrap() {
                            routers.insert(p["port"].as_str().unwrap().to_string());
                        }
                    }
                }
            }
            (rows, routers)
        };
        // Poll: both views are snapshots; retry if the table moved between them.
        let mut last = None;
        for _ in 0..5 {
            let a = ours(&dump(&h, i.br).await);
            let b = theirs(&ns.sh("bridge -j -d mdb show dev br0"));
            if a == b {
                assert_eq!(a.0.len(), 6, "{a:?}"); // 5 added + the blocked (S,G) of the EXCLUDE list
                assert_eq!(a.1, ["p2".to_string()].into());
                return;
            }
            last = Some((a, b));
        }
        panic!("dump differs from bridge -j -d mdb show: {last:#?}");
    });
}

#[test]
fn events_for_our_changes_and_router_ports() {
    let ns = switch();
    let i = ids(&ns);
    ns.block_on(|| async {
        let h = connect();
        if skip(features(&h, &i).await, &["mdb_protocol"]) {
            return;
        }
        let (mut conn, _eh, rx) = new_connection().unwrap();
        subscribe(&mut conn, &[Group::Mdb, Group::Link]).unwrap();
        tokio::spawn(conn);
        let mut ev = events(rx);

        let g = v4(239, 5, 5, 5);
        timeout(h.mdb().add(i.br, i.p1, g).proto(PROTO).execute())
            .await
            .unwrap();
        let e = wait_event(
            &mut ev,
            |e| matches!(e, Event::NewMdbEntry(r) if r.group == g.into()),
        )
        .await;
        let Event::NewMdbEntry(r) = e else {
            unreachable!()
        };
        assert_eq!((r.bridge, r.port, r.protocol), (i.br, i.p1, Some(PROTO)));

        timeout(h.mdb().del(i.br, i.p1, g).execute()).await.unwrap();
        wait_event(
            &mut ev,
            |e| matches!(e, Event::DelMdbEntry(r) if r.group == g.into() && r.port == i.p1),
        )
        .await;

        timeout(
            h.link()
                .set_port_mcast_router(i.p2, BridgeMulticastRouterType::Permanent),
        )
        .await
        .unwrap();
        wait_event(
            &mut ev,
            |e| matches!(e, Event::NewRouterPort(r) if r.port == i.p2 && r.bridge == i.br),
        )
        .await;
        let routers: Vec<_> = dump(&h, i.br)
            .await
            .into_iter()
            .filter_map(|x| match x {
                MdbItem::RouterPort(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(routers.len(), 1);
        assert_eq!(routers[0].port, i.p2);
        assert_eq!(routers[0].kind, Some(BridgeMulticastRouterType::Permanent));

        timeout(
            h.link()
                .set_port_mcast_router(i.p2, BridgeMulticastRouterType::TempQuery),
        )
        .await
        .unwrap();
        wait_event(
            &mut ev,
            |e| matches!(e, Event::DelRouterPort(r) if r.port == i.p2),
        )
        .await;
    });
}

#[test]
fn events_for_entries_the_kernel_learned_from_a_host() {
    let ns = switch();
    let host = Netns::new();
    let i = ids(&ns);
    ns.sh(&format!(
        "ip link add p3 type veth peer name eth0 netns {h}
         ip link set p3 master br0
         ip link set p3 up",
        h = host.name
    ));
    let p3 = ifindex(&ns, "p3");
    ns.block_on(|| async {
        let (mut conn, h, rx) = new_connection().unwrap();
        subscribe(&mut conn, &[Group::Mdb]).unwrap();
        tokio::spawn(conn);
        let mut ev = events(rx);
        // The host's own kernel joins the group and sends the IGMP report.
        host.sh("ip link set eth0 up
             ip addr add 192.0.2.10/24 dev eth0
             ip addr add 239.6.6.6/32 dev eth0 autojoin");
        let g = v4(239, 6, 6, 6);
        let e = wait_event(
            &mut ev,
            |e| matches!(e, Event::NewMdbEntry(r) if r.group == g.into()),
        )
        .await;
        let Event::NewMdbEntry(r) = e else {
            unreachable!()
        };
        assert_eq!(
            (r.port, r.state, r.protocol),
            (p3, MdbState::Temporary, Some(RTPROT_KERNEL))
        );
        // The dump shows it too; deleting it makes a DELMDB event.
        assert!(find(&h, i.br, g.into(), None).await.is_some());
        timeout(h.mdb().del(i.br, p3, g).execute()).await.unwrap();
        wait_event(
            &mut ev,
            |e| matches!(e, Event::DelMdbEntry(r) if r.group == g.into()),
        )
        .await;
    });
}

#[test]
fn kernel_errors_are_typed() {
    let ns = switch();
    let i = ids(&ns);
    ns.block_on(|| async {
        let h = connect();
        if skip(features(&h, &i).await, &["mdb_protocol"]) {
            return;
        }
        let g = v4(239, 7, 7, 7);

        for proto in [0u8, 1, 2, 3] {
            let r = timeout(
                h.mdb()
                    .add(i.br, i.p1, g)
                    .permanent()
                    .proto(proto)
                    .execute(),
            )
            .await;
            assert!(
                matches!(r, Err(Error::BadProtocol(_))),
                "proto {proto}: {r:?}"
            );
        }

        timeout(h.link().set_bridge_mcast_snooping(i.br, false))
            .await
            .unwrap();
        let r = timeout(h.mdb().add(i.br, i.p1, g).permanent().execute()).await;
        assert!(matches!(r, Err(Error::SnoopingDisabled(_))), "{r:?}");
        timeout(h.link().set_bridge_mcast_snooping(i.br, true))
            .await
            .unwrap();

        timeout(h.link().set_up(i.br, false)).await.unwrap();
        let r = timeout(h.mdb().add(i.br, i.p1, g).permanent().execute()).await;
        assert!(matches!(r, Err(Error::BridgeDown(_))), "{r:?}");
        timeout(h.link().set_up(i.br, true)).await.unwrap();

        timeout(h.link().set_up(i.p1, false)).await.unwrap();
        let r = timeout(h.mdb().add(i.br, i.p1, g).execute()).await;
        assert!(matches!(r, Err(Error::PortDisabled(_))), "{r:?}");
        // Permanent entries are allowed on a disabled port.
        timeout(h.mdb().add(i.br, i.p1, g).permanent().execute())
            .await
            .unwrap();

        let r = timeout(h.mdb().add(i.br, i.p1, g).permanent().execute()).await;
        let Err(Error::EntryExists(k)) = r else {
            panic!("{r:?}")
        };
        assert_eq!(k.errno, 17);
        assert!(k.message.unwrap().contains("already joined"));

        let r = timeout(h.mdb().del(i.br, i.p2, g).execute()).await;
        assert!(matches!(r, Err(Error::EntryNotFound(_))), "{r:?}");
    });
}

#[test]
fn overrun_is_reported_so_the_caller_can_redump() {
    let ns = switch();
    let i = ids(&ns);
    ns.block_on(|| async {
        let h = connect();
        if skip(features(&h, &i).await, &["mdb_protocol"]) {
            return;
        }
        let (mut conn, _eh, rx) = new_connection().unwrap();
        subscribe(&mut conn, &[Group::Mdb]).unwrap();
        set_receive_buffer(&mut conn, 1).unwrap(); // the kernel rounds up to its minimum
                                                   // Not polled yet: notifications pile up in the socket until it overflows.
        for n in 0..200u8 {
            timeout(
                h.mdb()
                    .add(i.br, i.p1, v4(239, 8, 0, n))
                    .permanent()
                    .proto(PROTO)
                    .execute(),
            )
            .await
            .unwrap();
        }
        tokio::spawn(conn);
        let mut ev = events(rx);
        wait_event(&mut ev, |e| matches!(e, Event::Overrun)).await;
        // Re-dump: everything is there.
        assert_eq!(entries(&h, i.br).await.len(), 200);
    });
}
