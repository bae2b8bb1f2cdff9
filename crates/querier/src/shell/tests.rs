//! The `igmpd query` shell's own logic without a kernel: frames in, system events, status
//! and reconfiguration, on a daemon without packet sockets (what it would send is only
//! counted by the instances). The rtnetlink monitor is real (it needs no privilege) but
//! sees nothing of these made-up interfaces.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_netlink::{Monitor, SystemEvent};
use igmpd_runtime::clock::Clock;
use igmpd_runtime::findings::FindingsLog;
use igmpd_wire::frame::{Ipv4Header, Ipv6Header};
use igmpd_wire::{Frame, IgmpQuery, IgmpRepr, IgmpVersion, MldRepr, VlanTag};
use tokio::sync::mpsc;

use super::family::{Iface, InterfaceSettings};
use super::join::HostJoins;
use super::reader::RxFrame;
use super::QueryDaemon;
use crate::core::{Config, Instant, Proto};

const IFINDEX: u32 = 7;
const MAC: [u8; 6] = [2, 0, 0, 0, 0, 7];

fn settings(name: &str) -> InterfaceSettings {
    InterfaceSettings {
        name: name.into(),
        igmp: Some(Config::new(Proto::Igmp)),
        mld: Some(Config::new(Proto::Mld)),
        joins: vec![],
    }
}

/// A daemon with one interface `eth7`, as the start-up dump would have found it (no packet
/// socket: tests call `set_running` where the shell would find the socket open).
fn daemon() -> QueryDaemon {
    let (frames_tx, frames_rx) = mpsc::channel(16);
    let mut d = QueryDaemon {
        clock: Clock::new(),
        ifaces: vec![Iface::new(settings("eth7"))],
        findings: FindingsLog::new(),
        events: igmpd_runtime::events::Events::new(),
        monitor: Monitor::new().expect("an rtnetlink socket needs no privilege"),
        frames_tx,
        frames_rx,
    };
    for e in [
        SystemEvent::Link {
            ifindex: IFINDEX,
            name: "eth7".into(),
            up: true,
            mac: Some(MAC),
        },
        address("10.0.0.5".parse().unwrap()),
        address("fe80::7".parse().unwrap()),
    ] {
        d.apply_system_event(&e, false);
    }
    d
}

fn address(addr: IpAddr) -> SystemEvent {
    SystemEvent::Address {
        ifindex: IFINDEX,
        addr,
        prefix_len: 24,
        present: true,
        usable: true,
    }
}

fn igmp(src: &str, repr: IgmpRepr) -> RxFrame {
    let src: Ipv4Addr = src.parse().unwrap();
    let frame = Frame::igmp([2, 0, 0, 0, 0, 9], None, Ipv4Header::igmp(src, src), repr);
    RxFrame {
        ifindex: IFINDEX,
        data: frame.to_bytes(),
        vlan: None,
    }
}

fn mld(src: &str, repr: MldRepr) -> RxFrame {
    let src: Ipv6Addr = src.parse().unwrap();
    let frame = Frame::mld([2, 0, 0, 0, 0, 9], None, Ipv6Header::mld(src, src), repr);
    RxFrame {
        ifindex: IFINDEX,
        data: frame.to_bytes(),
        vlan: None,
    }
}

fn json(d: &QueryDaemon) -> serde_json::Value {
    serde_json::to_value(d.status()).unwrap()
}

#[tokio::test]
async fn the_start_dump_fills_in_the_interface() {
    let d = daemon();
    let i = &d.ifaces[0];
    assert_eq!((i.ifindex, i.mac, i.up), (Some(IFINDEX), MAC, true));
    assert_eq!(i.v4.first(), Some(&"10.0.0.5".parse().unwrap()));
    assert_eq!(i.v6_ll.first(), Some(&"fe80::7".parse().unwrap()));
    // A global IPv6 address is no querier source.
    let mut d = d;
    d.apply_system_event(&address("2001:db8::7".parse().unwrap()), true);
    assert_eq!(d.ifaces[0].v6_ll.len(), 1);
}

#[tokio::test]
async fn a_report_becomes_a_group_with_its_reporter() {
    let mut d = daemon();
    d.set_running(0, Instant::ZERO, true);
    let group: Ipv4Addr = "239.1.2.3".parse().unwrap();
    d.handle_frame(
        Instant::ZERO,
        igmp("10.0.0.9", IgmpRepr::V2Report { group }),
    );
    let s = json(&d);
    let g = &s["interfaces"][0]["igmp"]["groups"][0];
    assert_eq!(g["group"], "239.1.2.3");
    assert_eq!(g["last_reporter"], "10.0.0.9");
    assert_eq!(g["reporters"][0]["address"], "10.0.0.9");
    assert_eq!(g["compat_version"], 2);
}

#[tokio::test]
async fn a_lower_querier_wins_the_election_and_is_shown() {
    let mut d = daemon();
    d.set_running(0, Instant::ZERO, true);
    let q = IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 100, 2, 125));
    d.handle_frame(Instant::from_millis(10), igmp("10.0.0.1", q));
    let s = json(&d);
    assert_eq!(s["interfaces"][0]["igmp"]["role"], "non-querier");
    assert_eq!(s["interfaces"][0]["igmp"]["querier_address"], "10.0.0.1");
}

#[tokio::test]
async fn drops_are_counted_by_reason() {
    let mut d = daemon();
    d.set_running(0, Instant::ZERO, true);
    // RFC 9777 §5.2.13: an MLD report from a global address is dropped.
    let group: Ipv6Addr = "ff05::1:3".parse().unwrap();
    d.handle_frame(
        Instant::ZERO,
        mld("2001:db8::9", MldRepr::V1Report { group }),
    );
    // A truncated IPv4 frame.
    let mut short = igmp(
        "10.0.0.9",
        IgmpRepr::V2Report {
            group: "239.1.1.1".parse().unwrap(),
        },
    );
    short.data.truncate(30);
    d.handle_frame(Instant::ZERO, short);
    let s = json(&d);
    assert_eq!(
        s["interfaces"][0]["mld"]["drops"]["source_not_link_local"],
        1
    );
    assert_eq!(
        s["interfaces"][0]["mld"]["groups"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let v4_drops: u64 = s["interfaces"][0]["igmp"]["drops"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(v4_drops, 1);
}

#[tokio::test]
async fn tagged_frames_belong_to_their_vlan_not_to_the_untagged_instance() {
    let mut d = daemon();
    d.set_running(0, Instant::ZERO, true);
    let report = || {
        igmp(
            "10.0.0.9",
            IgmpRepr::V2Report {
                group: "239.1.1.1".parse().unwrap(),
            },
        )
    };
    // The kernel took the tag off (PACKET_AUXDATA) ...
    let mut f = report();
    f.vlan = Some(10);
    d.handle_frame(Instant::ZERO, f);
    // ... or it is still in the frame (a second tag, or no offload).
    let src: Ipv4Addr = "10.0.0.9".parse().unwrap();
    let frame = Frame::igmp(
        [2, 0, 0, 0, 0, 9],
        Some(VlanTag::new(20)),
        Ipv4Header::igmp(src, src),
        IgmpRepr::V2Report {
            group: "239.1.1.2".parse().unwrap(),
        },
    );
    d.handle_frame(
        Instant::ZERO,
        RxFrame {
            ifindex: IFINDEX,
            data: frame.to_bytes(),
            vlan: None,
        },
    );
    let s = json(&d);
    assert_eq!(s["interfaces"][0]["igmp"]["drops"]["vlan_tagged"], 2);
    assert_eq!(s["interfaces"][0]["igmp"]["groups"], serde_json::json!([]));
    // Untagged, the same report counts.
    d.handle_frame(Instant::ZERO, report());
    let s = json(&d);
    assert_eq!(
        s["interfaces"][0]["igmp"]["groups"][0]["group"],
        "239.1.1.1"
    );
}

#[tokio::test]
async fn frames_of_other_interfaces_are_ignored() {
    let mut d = daemon();
    d.set_running(0, Instant::ZERO, true);
    let mut f = igmp(
        "10.0.0.9",
        IgmpRepr::V2Report {
            group: "239.1.1.1".parse().unwrap(),
        },
    );
    f.ifindex = IFINDEX + 1;
    d.handle_frame(Instant::ZERO, f);
    assert_eq!(
        json(&d)["interfaces"][0]["igmp"]["groups"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn a_renamed_or_deleted_link_is_gone() {
    let mut d = daemon();
    d.set_running(0, Instant::ZERO, true);
    d.apply_system_event(
        &SystemEvent::Link {
            ifindex: IFINDEX,
            name: "eth7-old".into(),
            up: true,
            mac: Some(MAC),
        },
        true,
    );
    let i = &d.ifaces[0];
    assert_eq!((i.ifindex, i.up, i.v4.len()), (None, false, 0));
    assert!(!i.igmp.as_ref().unwrap().seg.instance().link_is_up());
    let s = json(&d);
    assert_eq!(s["interfaces"][0]["ifindex"], serde_json::Value::Null);
}

#[tokio::test]
async fn reconfiguring_keeps_what_did_not_change() {
    let mut d = daemon();
    d.set_running(0, Instant::ZERO, true);
    let group: Ipv4Addr = "239.1.2.3".parse().unwrap();
    d.handle_frame(
        Instant::ZERO,
        igmp("10.0.0.9", IgmpRepr::V2Report { group }),
    );
    assert!(d.ifaces[0].runs(&settings("eth7")));
    d.reconfigure(vec![settings("eth7")]).await.unwrap();
    assert_eq!(
        json(&d)["interfaces"][0]["igmp"]["groups"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Changed settings restart the instances: the state goes.
    let mut changed = settings("eth7");
    changed.igmp.as_mut().unwrap().robustness = 3;
    assert!(!d.ifaces[0].runs(&changed));
    d.reconfigure(vec![changed]).await.unwrap();
    assert_eq!(
        json(&d)["interfaces"][0]["igmp"]["groups"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert_eq!(json(&d)["interfaces"][0]["igmp"]["robustness"], 3);
}

#[tokio::test]
async fn findings_are_evaluated_at_most_once_a_second() {
    let mut d = daemon();
    d.update_findings(Instant::ZERO);
    assert_eq!(d.findings.due_ms(), Some(1_000));
    d.update_findings(Instant::from_millis(500));
    assert_eq!(d.findings.due_ms(), Some(1_000));
}

/// A daemon whose interface holds `joins` as if the kernel had accepted them (no socket:
/// a unit test must not make the test host's kernel join anything).
fn joined_daemon(joins: &[&str]) -> QueryDaemon {
    let mut d = daemon();
    let joins: Vec<_> = joins.iter().map(|j| j.parse().unwrap()).collect();
    d.ifaces[0].host = HostJoins::joined(&joins, IFINDEX);
    d.set_running(0, Instant::ZERO, true);
    d
}

fn groups(s: &serde_json::Value, proto: &str) -> Vec<serde_json::Value> {
    s["interfaces"][0][proto]["groups"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn the_boxs_own_joins_answer_its_own_queries_and_never_expire() {
    let mut d = joined_daemon(&["239.1.1.1", "10.0.0.9/232.1.1.1", "ff3e::1234"]);
    // The startup general query was answered by the box itself, from its own address.
    let s = json(&d);
    let g4 = groups(&s, "igmp");
    assert_eq!(g4.len(), 2, "{s:#}");
    let asm = g4.iter().find(|g| g["group"] == "239.1.1.1").unwrap();
    assert_eq!(asm["filter_mode"], "exclude");
    assert_eq!(asm["last_reporter"], "10.0.0.5");
    let ssm = g4.iter().find(|g| g["group"] == "232.1.1.1").unwrap();
    assert_eq!(ssm["filter_mode"], "include");
    assert_eq!(ssm["sources"][0]["address"], "10.0.0.9");
    let g6 = groups(&s, "mld");
    assert_eq!(g6[0]["group"], "ff3e::1234");
    assert_eq!(g6[0]["last_reporter"], "fe80::7");
    // Ten query intervals later (each general query answered), still members.
    let mut now = Instant::ZERO;
    for _ in 0..2_000 {
        match d.next_deadline() {
            Some(t) if t.as_millis() <= 10 * 125_000 => now = t,
            _ => break,
        }
        d.poll(now);
    }
    assert!(now.as_millis() > 9 * 125_000, "the querier kept querying");
    let s = json(&d);
    assert_eq!(groups(&s, "igmp").len(), 2, "{s:#}");
    assert_eq!(groups(&s, "mld").len(), 1, "{s:#}");
    let j = &s["interfaces"][0]["joins"];
    assert_eq!(j[0]["group"], "239.1.1.1");
    assert_eq!(j[0]["state"], "joined");
    assert_eq!(j[1]["source"], "10.0.0.9");
    assert!(j[0].get("source").is_none());
}

#[tokio::test]
async fn another_hosts_leave_does_not_end_the_boxs_membership() {
    let mut d = joined_daemon(&["239.1.1.1"]);
    let group: Ipv4Addr = "239.1.1.1".parse().unwrap();
    let t = Instant::from_millis(1_000);
    d.handle_frame(t, igmp("10.0.0.9", IgmpRepr::V2Report { group }));
    d.handle_frame(t, igmp("10.0.0.9", IgmpRepr::V2Leave { group }));
    // The last member queries go out and the box answers them: the group stays, with
    // no more group-specific queries than the leave asked for.
    let sent_before = d.ifaces[0]
        .igmp
        .as_ref()
        .unwrap()
        .seg
        .instance()
        .queries_sent();
    while let Some(next) = d.next_deadline().filter(|n| n.as_millis() < 20_000) {
        d.poll(next);
    }
    let s = json(&d);
    let g = groups(&s, "igmp");
    assert_eq!(g.len(), 1, "{s:#}");
    assert_eq!(g[0]["last_reporter"], "10.0.0.5");
    let specific = d.ifaces[0]
        .igmp
        .as_ref()
        .unwrap()
        .seg
        .instance()
        .queries_sent()
        - sent_before;
    // Robustness 2: two group-specific queries, and the startup burst's last general one.
    assert!(specific <= 3, "{specific} queries");
}

#[tokio::test]
async fn another_queriers_queries_are_answered_for_the_box_too() {
    let mut d = joined_daemon(&["10.0.0.9/232.1.1.1"]);
    let q = IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 100, 2, 125));
    d.handle_frame(Instant::from_millis(10), igmp("10.0.0.1", q));
    let s = json(&d);
    assert_eq!(s["interfaces"][0]["igmp"]["role"], "non-querier");
    // As non-querier for ten minutes: only the winner's general queries keep it.
    for n in 1..=5u64 {
        let t = Instant::from_millis(n * 125_000);
        d.poll(t);
        let q = IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 100, 2, 125));
        d.handle_frame(t, igmp("10.0.0.1", q));
    }
    let s = json(&d);
    let g = groups(&s, "igmp");
    assert_eq!(g.len(), 1, "{s:#}");
    assert_eq!(g[0]["sources"][0]["address"], "10.0.0.9");
}
