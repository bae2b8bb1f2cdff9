//! The membership events `igmpd monitor` shows, in virtual time: a join names its host, a
//! leave after the querier's group-specific query is a leave, silence is an expiry, and a
//! flood of re-joins is no event at all.

use super::*;

fn port_groups(s: &mut Snooper) -> Vec<(u32, bool, Why)> {
    s.drain()
        .filter_map(|o| match o {
            Output::Event(SnoopEvent::PortGroup {
                port, added, why, ..
            }) => Some((port, added, why)),
            _ => None,
        })
        .collect()
}

#[test]
fn joins_leaves_and_expiries_are_events_and_re_joins_are_not() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 0, P1, &query("10.0.0.9", None));
    rx(&mut s, 10, P2, &join("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 10, P3, &join("10.0.0.3", "239.1.1.2"));
    let host = |h: &str| Why::Joined {
        host: Some(h.parse().unwrap()),
        any_source: true,
    };
    assert_eq!(
        port_groups(&mut s),
        [(P2, true, host("10.0.0.1")), (P3, true, host("10.0.0.3"))]
    );
    // 1000 re-joins that change nothing: no event.
    for i in 0..1000 {
        rx(&mut s, 20 + i, P2, &join("10.0.0.1", "239.1.1.1"));
    }
    assert_eq!(port_groups(&mut s), []);
    // P2's host leaves; the querier's Q(G) goes unanswered: a leave.
    rx(&mut s, 1100, P2, &leave("10.0.0.1", "239.1.1.1"));
    rx(&mut s, 1200, P1, &query("10.0.0.9", Some("239.1.1.1")));
    run_until(&mut s, 2500);
    let left = Why::Removed(Removal::Left { queried: true });
    assert_eq!(port_groups(&mut s), [(P2, false, left)]);
    // P3's host goes silent: its group expires after GMI (5 s).
    run_until(&mut s, 6000);
    assert_eq!(
        port_groups(&mut s),
        [(P3, false, Why::Removed(Removal::Expired))]
    );
}

fn port_sources(s: &mut Snooper) -> Vec<(String, bool)> {
    s.drain()
        .filter_map(|o| match o {
            Output::Event(SnoopEvent::PortSource { source, added, .. }) => {
                Some((source.to_string(), added))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn an_include_records_sources_come_and_go_one_by_one() {
    let mut s = snooper(cfg(true));
    let g = "232.1.1.1";
    rx(
        &mut s,
        10,
        P1,
        &v3("10.0.0.1", RecordType::AllowNew, g, &["10.9.0.1"]),
    );
    assert_eq!(port_sources(&mut s), [("10.9.0.1".into(), true)]);
    rx(
        &mut s,
        20,
        P1,
        &v3(
            "10.0.0.1",
            RecordType::AllowNew,
            g,
            &["10.9.0.1", "10.9.0.2"],
        ),
    );
    assert_eq!(port_sources(&mut s), [("10.9.0.2".into(), true)]);
    // Re-reports of the same sources: nothing.
    for i in 0..100 {
        rx(
            &mut s,
            30 + i,
            P1,
            &v3(
                "10.0.0.1",
                RecordType::ModeIsInclude,
                g,
                &["10.9.0.1", "10.9.0.2"],
            ),
        );
    }
    assert_eq!(port_sources(&mut s), []);
    // The host blocks one: after the group-and-source queries, it goes; the other stays.
    rx(
        &mut s,
        200,
        P1,
        &v3("10.0.0.1", RecordType::BlockOld, g, &["10.9.0.1"]),
    );
    run_until(&mut s, 1500);
    let out: Vec<Output> = s.drain().collect();
    let gone: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Output::Event(SnoopEvent::PortSource {
                source,
                added: false,
                why,
                ..
            }) => Some((source.to_string(), *why)),
            _ => None,
        })
        .collect();
    assert_eq!(
        gone,
        [(
            "10.9.0.1".into(),
            Why::Removed(Removal::Left { queried: true })
        )]
    );
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Event(SnoopEvent::PortGroup { added: false, .. }))));
}
