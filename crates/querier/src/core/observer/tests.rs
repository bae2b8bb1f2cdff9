use std::net::Ipv4Addr;

use super::*;

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

fn gq(gen: Generation) -> QueryIn<Ipv4Addr> {
    QueryIn {
        gen,
        group: None,
        sources: vec![],
        s_flag: false,
        qrv: 2,
        qqi: Some(Duration::from_secs(2)),
        max_resp: Duration::from_secs(1),
    }
}

const PRESENT: Duration = Duration::from_millis(4500);

fn codes(f: &[Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.code).collect()
}

#[test]
fn silent_member_is_named_while_others_answer() {
    let mut o = Observer::new(Proto::Igmp, t(0));
    let g = a("239.20.0.1");
    o.report(t(100), Some(a("10.0.0.2")), &Report::V2(g), Generation::V2);
    o.report(t(100), Some(a("10.0.0.3")), &Report::V2(g), Generation::V2);
    for round in 1..=3u64 {
        let q = round * 2000;
        o.query(t(q), Some(a("10.0.0.1")), &gq(Generation::V3), true);
        // Only .2 answers.
        o.report(
            t(q + 300),
            Some(a("10.0.0.2")),
            &Report::Record(igmpd_wire::RecordType::ModeIsExclude, g, vec![]),
            Generation::V3,
        );
    }
    let f = o.findings(t(3 * 2000 + 1600), "eth0", PRESENT, true);
    assert_eq!(codes(&f), vec!["member-silent"], "{f:#?}");
    assert_eq!(f[0].host.as_deref(), Some("10.0.0.3"));
    assert_eq!(f[0].group.as_deref(), Some("239.20.0.1"));
    assert!(f[0].hint.contains("ip protocol igmp accept"));
    // It answers again: the finding clears.
    o.report(t(8000), Some(a("10.0.0.3")), &Report::V2(g), Generation::V2);
    assert!(o
        .findings(t(8100), "eth0", PRESENT, true)
        .iter()
        .all(|f| f.code != "member-silent"));
}

#[test]
fn one_missed_query_is_not_yet_silence() {
    let mut o = Observer::new(Proto::Igmp, t(0));
    let g = a("239.1.1.1");
    o.report(t(100), Some(a("10.0.0.3")), &Report::V2(g), Generation::V2);
    o.query(t(2000), Some(a("10.0.0.1")), &gq(Generation::V3), true);
    o.report(t(2200), Some(a("10.0.0.2")), &Report::V2(g), Generation::V2);
    assert!(!codes(&o.findings(t(3600), "eth0", PRESENT, true)).contains(&"member-silent"));
}

#[test]
fn no_querier_after_the_present_interval() {
    let o: Observer<Ipv4Addr> = Observer::new(Proto::Igmp, t(0));
    assert!(
        o.findings(t(1000), "eth0", PRESENT, false).is_empty(),
        "too early to tell"
    );
    assert_eq!(
        codes(&o.findings(t(5000), "eth0", PRESENT, false)),
        vec!["no-querier"]
    );
    assert!(
        o.findings(t(5000), "eth0", PRESENT, true).is_empty(),
        "we are the querier"
    );
}

#[test]
fn only_zero_source_queries() {
    let mut o = Observer::new(Proto::Igmp, t(0));
    o.query(t(1000), None, &gq(Generation::V3), false);
    o.query(t(3000), None, &gq(Generation::V3), false);
    assert_eq!(
        codes(&o.findings(t(5000), "br0", PRESENT, false)),
        vec!["querier-zero-source"]
    );
}

#[test]
fn two_queriers_fighting() {
    let mut o = Observer::new(Proto::Igmp, t(0));
    for i in 0..3u64 {
        o.query(t(i * 2000), Some(a("10.0.0.1")), &gq(Generation::V3), true);
        o.query(
            t(i * 2000 + 500),
            Some(a("10.0.0.9")),
            &gq(Generation::V3),
            false,
        );
    }
    let f = o.findings(t(5000), "eth0", PRESENT, true);
    assert_eq!(codes(&f), vec!["multiple-queriers"]);
    assert!(f[0].message.contains("10.0.0.1") && f[0].message.contains("10.0.0.9"));
}

#[test]
fn v2_querier_with_v3_reports_is_a_mismatch() {
    let mut o = Observer::new(Proto::Igmp, t(0));
    o.query(t(0), Some(a("10.0.0.1")), &gq(Generation::V2), false);
    o.report(
        t(300),
        Some(a("10.0.0.2")),
        &Report::Record(
            igmpd_wire::RecordType::ModeIsExclude,
            a("239.1.1.1"),
            vec![],
        ),
        Generation::V3,
    );
    let f = o.findings(t(400), "eth0", PRESENT, false);
    assert_eq!(codes(&f), vec!["querier-version-mismatch"]);
    assert_eq!(f[0].severity, Severity::Warning);
}
