use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use igmpd_wire::RecordType;

use super::*;
use crate::core::Generation;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn parses_groups_and_source_groups_of_both_families() {
    let j: HostJoin = "239.1.1.1".parse().unwrap();
    assert_eq!((j.group, j.source), (ip("239.1.1.1"), None));
    let j: HostJoin = "10.0.0.5/232.1.1.1".parse().unwrap();
    assert_eq!((j.group, j.source), (ip("232.1.1.1"), Some(ip("10.0.0.5"))));
    assert_eq!(j.to_string(), "10.0.0.5/232.1.1.1");
    let j: HostJoin = "ff3e::1234".parse().unwrap();
    assert_eq!((j.group, j.source), (ip("ff3e::1234"), None));
    let j: HostJoin = "2001:db8::5/ff3e::1234".parse().unwrap();
    assert_eq!(j.source, Some(ip("2001:db8::5")));
    assert_eq!(j.to_string(), "2001:db8::5/ff3e::1234");
}

#[test]
fn refuses_what_is_no_join_with_a_reason() {
    let e = |s: &str| s.parse::<HostJoin>().unwrap_err();
    assert_eq!(e("x"), JoinError::NotAnAddress("x".into()));
    assert_eq!(e("10.0.0.5/"), JoinError::NotAnAddress(String::new()));
    assert_eq!(e("/239.1.1.1"), JoinError::NotAnAddress(String::new()));
    assert_eq!(e("10.1.1.1"), JoinError::NotMulticast(ip("10.1.1.1")));
    assert_eq!(
        e("239.1.1.1/10.0.0.5"),
        JoinError::NotMulticast(ip("10.0.0.5"))
    );
    assert_eq!(e("224.0.0.1"), JoinError::NeverReported(ip("224.0.0.1")));
    assert_eq!(e("ff02::1"), JoinError::NeverReported(ip("ff02::1")));
    assert_eq!(e("ff01::5"), JoinError::NeverReported(ip("ff01::5")));
    assert_eq!(
        e("239.1.1.2/232.1.1.1"),
        JoinError::SourceNotUnicast(ip("239.1.1.2"))
    );
    assert_eq!(
        e("0.0.0.0/232.1.1.1"),
        JoinError::SourceNotUnicast(ip("0.0.0.0"))
    );
    assert_eq!(
        e("255.255.255.255/232.1.1.1"),
        JoinError::SourceNotUnicast(ip("255.255.255.255"))
    );
    assert_eq!(
        e("2001:db8::5/232.1.1.1"),
        JoinError::FamilyMismatch {
            src: ip("2001:db8::5"),
            group: ip("232.1.1.1")
        }
    );
    assert!(e("10.0.0.5/ff3e::1").to_string().contains("one family"));
}

#[test]
fn a_list_holds_each_join_once_and_one_mode_per_group() {
    let j = |s: &str| s.parse::<HostJoin>().unwrap();
    assert_eq!(
        check_list(&[
            j("10.0.0.5/232.1.1.1"),
            j("10.0.0.6/232.1.1.1"),
            j("239.1.1.1")
        ]),
        Ok(())
    );
    assert_eq!(
        check_list(&[j("239.1.1.1"), j("239.1.1.1")]),
        Err(JoinListError::Duplicate(j("239.1.1.1")))
    );
    assert_eq!(
        check_list(&[j("239.1.1.1"), j("10.0.0.5/239.1.1.1")]),
        Err(JoinListError::MixedModes(ip("239.1.1.1")))
    );
}

fn query(group: Option<&str>, sources: &[&str]) -> QueryIn<Ipv4Addr> {
    QueryIn {
        gen: Generation::V3,
        group: group.map(a),
        sources: sources.iter().map(|s| a(s)).collect(),
        s_flag: false,
        qrv: 2,
        qqi: None,
        max_resp: Duration::from_secs(10),
    }
}

fn joins() -> BTreeMap<Ipv4Addr, HostState<Ipv4Addr>> {
    states([
        (a("239.1.1.1"), None),
        (a("232.1.1.1"), Some(a("10.0.0.5"))),
        (a("232.1.1.1"), Some(a("10.0.0.6"))),
    ])
}

#[test]
fn answers_queries_as_the_member_part_would() {
    let st = joins();
    // General query: every group's current state.
    assert_eq!(
        answer(&st, &query(None, &[])),
        vec![
            Report::Record(
                RecordType::ModeIsInclude,
                a("232.1.1.1"),
                vec![a("10.0.0.5"), a("10.0.0.6")]
            ),
            Report::Record(RecordType::ModeIsExclude, a("239.1.1.1"), vec![]),
        ]
    );
    // Group-specific: that group only; a group not joined: nothing.
    assert_eq!(
        answer(&st, &query(Some("239.1.1.1"), &[])),
        vec![Report::Record(
            RecordType::ModeIsExclude,
            a("239.1.1.1"),
            vec![]
        )]
    );
    assert!(answer(&st, &query(Some("239.9.9.9"), &[])).is_empty());
    // Group-and-source-specific: INCLUDE answers the intersection, EXCLUDE {} every
    // queried source; an empty intersection is no answer.
    assert_eq!(
        answer(&st, &query(Some("232.1.1.1"), &["10.0.0.6", "10.0.0.7"])),
        vec![Report::Record(
            RecordType::ModeIsInclude,
            a("232.1.1.1"),
            vec![a("10.0.0.6")]
        )]
    );
    assert!(answer(&st, &query(Some("232.1.1.1"), &["10.0.0.7"])).is_empty());
    assert_eq!(
        answer(&st, &query(Some("239.1.1.1"), &["10.0.0.7"])),
        vec![Report::Record(
            RecordType::ModeIsInclude,
            a("239.1.1.1"),
            vec![a("10.0.0.7")]
        )]
    );
}

#[test]
fn an_any_source_join_wins_over_source_joins_of_the_same_group() {
    let st = states([
        (a("232.1.1.1"), Some(a("10.0.0.5"))),
        (a("232.1.1.1"), None),
    ]);
    assert_eq!(st.get(&a("232.1.1.1")), Some(&HostState::Any));
}

#[test]
fn changes_follow_the_state_change_table() {
    let none = BTreeMap::new();
    let st = joins();
    assert_eq!(
        changes(&none, &st),
        vec![
            Report::Record(
                RecordType::AllowNew,
                a("232.1.1.1"),
                vec![a("10.0.0.5"), a("10.0.0.6")]
            ),
            Report::Record(RecordType::ChangeToExclude, a("239.1.1.1"), vec![]),
        ]
    );
    // Leaving everything: BLOCK the sources, TO_IN {} the any-source group.
    assert_eq!(
        changes(&st, &none),
        vec![
            Report::Record(
                RecordType::BlockOld,
                a("232.1.1.1"),
                vec![a("10.0.0.5"), a("10.0.0.6")]
            ),
            Report::Record(RecordType::ChangeToInclude, a("239.1.1.1"), vec![]),
        ]
    );
    let fewer = states([
        (a("232.1.1.1"), Some(a("10.0.0.6"))),
        (a("239.1.1.1"), None),
    ]);
    assert_eq!(
        changes(&st, &fewer),
        vec![Report::Record(
            RecordType::BlockOld,
            a("232.1.1.1"),
            vec![a("10.0.0.5")]
        )]
    );
    assert!(changes(&st, &st).is_empty());
}

#[test]
fn ipv6_states_work_alike() {
    let g: Ipv6Addr = "ff3e::1234".parse().unwrap();
    let s: Ipv6Addr = "2001:db8::5".parse().unwrap();
    let st = states([(g, Some(s))]);
    assert_eq!(st.get(&g), Some(&HostState::Include([s].into())));
}
