use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::*;

fn br() -> Place {
    Place::Bridge("br0".into())
}

fn at(e: Event) -> Event {
    // 2026-12-04T21:42:34.123Z
    Event {
        time: UNIX_EPOCH + Duration::from_millis(1_796_420_554_123),
        ..e
    }
}

fn json(e: &Event) -> Value {
    let mut out = Vec::new();
    e.write_json(&mut out);
    assert_eq!(out.last(), Some(&b'\n'), "one line");
    assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
    serde_json::from_slice(&out).expect("valid JSON")
}

fn text(e: &Event) -> String {
    let mut out = Vec::new();
    e.write_text(&mut out);
    String::from_utf8(out).unwrap()
}

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One event of every kind, as the emit sites build them.
fn every_kind() -> Vec<Event> {
    let g = addr("239.1.1.1");
    let port: Arc<str> = "p1".into();
    vec![
        Event::membership(Kind::Join, br(), g)
            .with_port(port.clone())
            .with_host(Some(addr("10.0.0.2"))),
        Event::membership(Kind::Leave, br(), g)
            .with_port(port.clone())
            .with_vid(10)
            .with_reason("last-member-query"),
        Event::membership(
            Kind::Expiry,
            Place::Interface("eth0".into()),
            addr("ff0e::1"),
        )
        .with_reason("timeout"),
        Event::static_entry(
            true,
            &br(),
            port.clone(),
            10,
            addr("232.1.1.1"),
            Some(addr("10.0.0.5")),
        ),
        Event::static_entry(false, &br(), port.clone(), 0, g, None),
        Event::querier(
            true,
            Place::Interface("eth0".into()),
            Family::Ipv4,
            Some(addr("10.0.0.1")),
        ),
        Event::querier(false, br(), Family::Ipv6, Some(addr("fe80::1"))),
        Event::router_port(true, "br0".into(), port.clone(), 0),
        Event::router_port(false, "br0".into(), port, 20),
        Event::finding(
            true,
            br(),
            FindingInfo {
                code: "no-querier",
                severity: "warning",
                message: "no \"querier\"\nheard".into(),
            },
        ),
        Event::finding(
            false,
            br(),
            FindingInfo {
                code: "no-querier",
                severity: "warning",
                message: "gone".into(),
            },
        ),
    ]
}

#[test]
fn every_kind_encodes_as_one_json_object_with_only_its_fields() {
    let names: Vec<&str> = every_kind().iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "join",
            "leave",
            "expiry",
            "static-add",
            "static-del",
            "querier-elected",
            "querier-lost",
            "router-port-up",
            "router-port-down",
            "finding-raised",
            "finding-cleared"
        ]
    );
    let docs: Vec<Value> = every_kind().into_iter().map(|e| json(&at(e))).collect();
    for d in &docs {
        assert_eq!(d["time"], "2026-12-04T21:42:34.123Z");
        let o = d.as_object().unwrap();
        assert!(o.values().all(|v| !v.is_null()), "no nulls: {d}");
        assert!(
            o.contains_key("bridge") ^ o.contains_key("interface"),
            "{d}"
        );
    }
    let keys = |d: &Value| d.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        docs[0],
        serde_json::json!({"time": "2026-12-04T21:42:34.123Z", "event": "join", "bridge": "br0",
            "port": "p1", "group": "239.1.1.1", "host": "10.0.0.2", "family": "ipv4"})
    );
    assert_eq!(docs[1]["vid"], 10);
    assert_eq!(docs[1]["reason"], "last-member-query");
    assert_eq!(
        docs[2],
        serde_json::json!({"time": "2026-12-04T21:42:34.123Z", "event": "expiry",
            "interface": "eth0", "group": "ff0e::1", "family": "ipv6", "reason": "timeout"})
    );
    assert_eq!(docs[3]["source"], "10.0.0.5");
    assert_eq!(docs[3]["vid"], 10);
    assert!(docs[4].get("source").is_none() && docs[4].get("vid").is_none());
    assert_eq!(docs[5]["querier"], "10.0.0.1");
    assert_eq!(docs[5]["role"], "querier");
    assert_eq!(docs[5]["family"], "ipv4");
    assert_eq!(docs[6]["role"], "non-querier");
    assert_eq!(docs[6]["family"], "ipv6");
    assert_eq!(keys(&docs[7]), ["bridge", "event", "port", "time"]);
    assert_eq!(docs[8]["vid"], 20);
    assert_eq!(docs[9]["code"], "no-querier");
    assert_eq!(docs[9]["severity"], "warning");
    assert_eq!(docs[9]["message"], "no \"querier\"\nheard");
    assert_eq!(docs[10]["event"], "finding-cleared");
}

#[test]
fn text_lines_read_like_ip_monitor() {
    let lines: Vec<String> = every_kind().into_iter().map(|e| text(&at(e))).collect();
    assert_eq!(
        lines[0],
        "2026-12-04T21:42:34.123Z join bridge br0 port p1 group 239.1.1.1 host 10.0.0.2 family ipv4\n"
    );
    assert_eq!(
        lines[1],
        "2026-12-04T21:42:34.123Z leave bridge br0 port p1 vid 10 group 239.1.1.1 family ipv4 reason last-member-query\n"
    );
    assert_eq!(
        lines[9],
        "2026-12-04T21:42:34.123Z finding-raised bridge br0 code no-querier severity warning message \"no \\\"querier\\\"\\nheard\"\n"
    );
    assert!(lines.iter().all(|l| l.matches('\n').count() == 1));
}

#[test]
fn time_is_rfc3339_utc_with_milliseconds() {
    let t = |ms: u64| {
        let mut out = Vec::new();
        write_time(UNIX_EPOCH + Duration::from_millis(ms), &mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(t(951_782_400_007), "2000-02-29T00:00:00.007Z");
    assert_eq!(t(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
}

#[test]
fn nothing_is_built_without_a_listener() {
    let bus = Events::new();
    let mut built = 0;
    bus.emit(|| {
        built += 1;
        Event::new(Kind::Join, br())
    });
    assert_eq!(built, 0);
    let mut sub = bus.subscribe();
    bus.emit(|| {
        built += 1;
        Event::new(Kind::Join, br())
    });
    assert_eq!(built, 1);
    assert!(matches!(sub.try_next(), Some(Next::Event(e)) if e.kind == Kind::Join));
    assert!(sub.try_next().is_none());
    drop(sub);
    assert!(!bus.listening());
}

#[test]
fn a_slow_client_is_dropped_and_the_others_see_everything() {
    let bus = Events::with_queue(8);
    let mut slow = bus.subscribe();
    let mut fast = bus.subscribe();
    let mut seen = 0;
    for i in 0..100u16 {
        // Never blocks, however far behind `slow` is.
        bus.emit(|| Event::new(Kind::Join, br()).with_vid(i));
        while let Some(Next::Event(e)) = fast.try_next() {
            assert_eq!(e.vid, seen);
            seen += 1;
        }
    }
    assert_eq!(seen, 100);
    assert!(matches!(slow.try_next(), Some(Next::Dropped(92))));
    // A third client subscribing later is not affected either.
    let mut late = bus.subscribe();
    bus.emit(|| Event::new(Kind::Leave, br()));
    assert!(matches!(late.try_next(), Some(Next::Event(e)) if e.kind == Kind::Leave));
    assert!(matches!(fast.try_next(), Some(Next::Event(e)) if e.kind == Kind::Leave));
}

#[test]
fn clients_see_the_end_of_the_daemon() {
    let bus = Events::new();
    let mut sub = bus.subscribe();
    drop(bus);
    assert!(matches!(sub.try_next(), Some(Next::Closed)));
}
