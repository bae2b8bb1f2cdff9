//! Election, startup burst, periodic and specific queries, QRV/QQIC adoption, querier
//! version fallback, proxy and passive modes, link and address changes: all in virtual
//! time.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{a, ms, secs};
use crate::core::config::{Config, Generation, Proto};
use crate::core::instance::{Action, Event, Instance, QueryIn, QueryOut, Role};
use crate::core::membership::{Change, Removal, Report};
use crate::core::time::Instant;

fn t(ms_: u64) -> Instant {
    Instant::from_millis(ms_)
}

struct H {
    i: Instance<Ipv4Addr>,
    log: Vec<(u64, Action<Ipv4Addr>)>,
    now: u64,
}

impl H {
    fn new(cfg: Config, addr: Option<&str>) -> Self {
        let mut h = H {
            i: Instance::new(cfg, addr.map(a)),
            log: vec![],
            now: 0,
        };
        let acts = h.i.link_up(t(0));
        h.record(acts);
        h
    }

    fn record(&mut self, acts: Vec<Action<Ipv4Addr>>) {
        let now = self.now;
        self.log.extend(acts.into_iter().map(|x| (now, x)));
    }

    /// Advances virtual time to `until`, polling at every deadline like the shell.
    fn run_until(&mut self, until: u64) {
        while let Some(d) = self.i.next_deadline() {
            if d > t(until) {
                break;
            }
            self.now = d.as_millis();
            let acts = self.i.poll(d);
            self.record(acts);
        }
        self.now = until;
    }

    fn query(&mut self, at: u64, from: &str, q: QueryIn<Ipv4Addr>) {
        self.run_until(at);
        let acts = self
            .i
            .handle_query(t(at), Some(a(from)).filter(|x| !x.is_unspecified()), &q);
        self.record(acts);
    }

    fn report(&mut self, at: u64, from: &str, r: Report<Ipv4Addr>) {
        self.run_until(at);
        let acts = self.i.handle_report(t(at), Some(a(from)), &r);
        self.record(acts);
    }

    fn sent(&self) -> Vec<(u64, QueryOut<Ipv4Addr>)> {
        self.log
            .iter()
            .filter_map(|(at, x)| match x {
                Action::Send(q) => Some((*at, q.clone())),
                _ => None,
            })
            .collect()
    }

    fn general_times(&self) -> Vec<u64> {
        self.sent()
            .into_iter()
            .filter(|(_, q)| q.group.is_none())
            .map(|(at, _)| at)
            .collect()
    }

    fn events(&self) -> Vec<(u64, Event<Ipv4Addr>)> {
        self.log
            .iter()
            .filter_map(|(at, x)| match x {
                Action::Event(e) => Some((*at, e.clone())),
                _ => None,
            })
            .collect()
    }
}

fn general(gen: Generation) -> QueryIn<Ipv4Addr> {
    QueryIn {
        gen,
        group: None,
        sources: vec![],
        s_flag: false,
        qrv: if gen == Generation::V3 { 2 } else { 0 },
        qqi: (gen == Generation::V3).then_some(secs(125)),
        max_resp: secs(10),
    }
}

fn cfg() -> Config {
    Config::new(Proto::Igmp)
}

/// Other Querier Present Interval with defaults: 2 x 125 s + 10 s / 2.
const OQPI: u64 = 255_000;

#[test]
fn startup_burst_then_every_query_interval() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.run_until(600_000);
    // Startup Query Count 2 at Startup Query Interval 31.25 s, then every 125 s.
    assert_eq!(
        h.general_times(),
        vec![0, 31_250, 156_250, 281_250, 406_250, 531_250]
    );
    let (_, q) = &h.sent()[0];
    assert_eq!(
        (q.gen, q.src, q.qrv, q.qqi, q.max_resp),
        (Generation::V3, Some(a("10.0.0.5")), 2, secs(125), secs(10))
    );
    assert_eq!(h.i.role(), Role::Querier);
    assert_eq!(h.events()[0], (0, Event::Elected));
}

#[test]
fn configured_startup_count_and_interval() {
    let mut c = cfg();
    c.startup_query_count = Some(4);
    c.startup_query_interval = Some(secs(1));
    c.query_interval = secs(10);
    c.query_response_interval = secs(2);
    let mut h = H::new(c, Some("10.0.0.5"));
    h.run_until(25_000);
    assert_eq!(h.general_times(), vec![0, 1000, 2000, 3000, 13_000, 23_000]);
}

#[test]
fn lower_address_takes_over_and_we_resume_when_it_disappears() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.query(40_000, "10.0.0.2", general(Generation::V3));
    assert_eq!(h.i.role(), Role::NonQuerier);
    assert_eq!(h.i.querier_address(), Some(a("10.0.0.2")));
    assert!(h.events().contains(&(
        40_000,
        Event::LostElection {
            querier: a("10.0.0.2")
        }
    )));
    // The querier keeps querying for a while, then goes silent at 165 s.
    h.query(165_000, "10.0.0.2", general(Generation::V3));
    h.run_until(165_000 + OQPI - 1);
    assert_eq!(
        h.general_times(),
        vec![0, 31_250],
        "silent while another querier is present"
    );
    h.run_until(165_000 + OQPI + 1);
    assert_eq!(h.i.role(), Role::Querier);
    assert_eq!(h.general_times(), vec![0, 31_250, 165_000 + OQPI]);
    assert!(h.events().contains(&(165_000 + OQPI, Event::Elected)));
}

#[test]
fn higher_address_query_does_not_win() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.query(1000, "10.0.0.9", general(Generation::V3));
    assert_eq!(h.i.role(), Role::Querier);
    assert_eq!(h.i.querier_address(), Some(a("10.0.0.5")));
}

#[test]
fn equal_address_is_treated_as_our_own_query() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.query(1000, "10.0.0.5", general(Generation::V3));
    assert_eq!(h.i.role(), Role::Querier);
}

#[test]
fn zero_source_query_never_wins() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.query(1000, "0.0.0.0", general(Generation::V3));
    assert_eq!(h.i.role(), Role::Querier);
    assert!(h.i.other_querier_expires().is_none());
}

#[test]
fn proxy_without_address_queries_from_zero_and_yields_to_any_address() {
    let mut h = H::new(cfg(), None);
    assert_eq!(h.i.role(), Role::Proxy);
    assert_eq!(h.sent()[0].1.src, None, "a proxy query comes from 0.0.0.0");
    h.query(5000, "192.168.255.254", general(Generation::V3));
    assert_eq!(h.i.role(), Role::NonQuerier);
    h.run_until(200_000);
    assert_eq!(
        h.general_times(),
        vec![0],
        "the burst stops: a real querier exists"
    );
}

#[test]
fn two_queriers_the_lower_of_which_leaves_then_a_lower_one_appears() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.query(1000, "10.0.0.3", general(Generation::V3));
    // A querier lower still replaces the current one; a higher one does not.
    h.query(2000, "10.0.0.1", general(Generation::V3));
    assert_eq!(h.i.querier_address(), Some(a("10.0.0.1")));
    h.query(3000, "10.0.0.3", general(Generation::V3));
    assert_eq!(h.i.querier_address(), Some(a("10.0.0.1")));
    // Its timer runs from its own last query.
    assert_eq!(h.i.other_querier_expires(), Some(t(2000 + OQPI)));
}

#[test]
fn non_querier_adopts_qrv_and_qqi_of_the_querier() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    let q = QueryIn {
        qrv: 3,
        qqi: Some(secs(60)),
        ..general(Generation::V3)
    };
    h.query(1000, "10.0.0.1", q);
    assert_eq!(h.i.robustness(), 3);
    assert_eq!(h.i.query_interval(), secs(60));
    // Timers use the adopted values: OQPI = 3 x 60 + 5 s, GMI = 3 x 60 + 10 s.
    assert_eq!(h.i.other_querier_expires(), Some(t(1000 + 185_000)));
    h.report(2000, "10.0.0.20", Report::V2(a("239.1.1.1")));
    let g = h.i.membership().group(&a("239.1.1.1")).unwrap();
    assert_eq!(g.expires, Some(t(2000 + 190_000)));
    // QRV 0 and QQIC 0 mean "use your defaults".
    let q = QueryIn {
        qrv: 0,
        qqi: None,
        ..general(Generation::V3)
    };
    h.query(3000, "10.0.0.1", q);
    assert_eq!((h.i.robustness(), h.i.query_interval()), (2, secs(125)));
}

#[test]
fn our_address_becoming_lowest_wins_at_once() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.query(1000, "10.0.0.2", general(Generation::V3));
    let acts = h.i.set_address(t(2000), Some(a("10.0.0.1")));
    h.now = 2000;
    h.record(acts);
    assert_eq!(h.i.role(), Role::Querier);
    assert!(
        h.general_times().contains(&2000),
        "announces itself at once"
    );
    assert_eq!(h.sent().last().unwrap().1.src, Some(a("10.0.0.1")));
}

#[test]
fn losing_the_address_makes_a_proxy_which_keeps_querying_alone() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    let acts = h.i.set_address(t(1000), None);
    h.now = 1000;
    h.record(acts);
    assert_eq!(h.i.role(), Role::Proxy);
    assert_eq!(
        h.sent().last().unwrap(),
        &(
            1000,
            QueryOut {
                src: None,
                ..h.sent().last().unwrap().1.clone()
            }
        )
    );
}

#[test]
fn older_v2_querier_makes_us_query_v2_until_it_is_gone() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    // A v2 querier with a higher address: it does not win, but we fall back (§7.3.1).
    h.query(1000, "10.0.0.9", general(Generation::V2));
    assert!(h.events().contains(&(
        1000,
        Event::OlderQuerier {
            gen: Generation::V2,
            from: Some(a("10.0.0.9"))
        }
    )));
    h.run_until(40_000);
    let last = h.sent().last().unwrap().1.clone();
    assert_eq!(
        (last.gen, h.i.effective_version()),
        (Generation::V2, Generation::V2)
    );
    h.run_until(1000 + OQPI);
    assert_eq!(h.i.effective_version(), Generation::V3);
    assert!(h.events().iter().any(|(_, e)| *e
        == Event::VersionRestored {
            gen: Generation::V3
        }));
}

#[test]
fn v1_querier_mode_ignores_leaves_and_sends_no_specific_queries() {
    let mut c = cfg();
    c.version = Generation::V1;
    let mut h = H::new(c, Some("10.0.0.5"));
    h.report(1000, "10.0.0.20", Report::V1(a("239.1.1.1")));
    h.report(2000, "10.0.0.20", Report::Leave(a("239.1.1.1")));
    h.run_until(5000);
    assert!(h.sent().iter().all(|(_, q)| q.group.is_none()));
    assert!(h.i.membership().group(&a("239.1.1.1")).is_some());
}

#[test]
fn leave_triggers_last_member_queries_then_removal() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.report(1000, "10.0.0.20", Report::V2(a("239.1.1.1")));
    h.report(5000, "10.0.0.20", Report::Leave(a("239.1.1.1")));
    h.run_until(8000);
    let specific: Vec<(u64, Option<Ipv4Addr>, Generation, Duration)> = h
        .sent()
        .into_iter()
        .filter(|(_, q)| q.group.is_some())
        .map(|(at, q)| (at, q.group, q.gen, q.max_resp))
        .collect();
    // The group is in IGMPv2 compatibility mode, but the querier is v3: v3 format (a v2
    // host reads it as a v2 query), Max Resp = Last Member Query Interval.
    assert_eq!(
        specific,
        vec![
            (5000, Some(a("239.1.1.1")), Generation::V3, secs(1)),
            (6000, Some(a("239.1.1.1")), Generation::V3, secs(1))
        ]
    );
    assert!(h.events().contains(&(
        7000,
        Event::Membership(Change::GroupRemoved {
            group: a("239.1.1.1"),
            reason: Removal::Left { queried: true }
        })
    )));
}

#[test]
fn group_specific_query_from_the_querier_lowers_our_timer() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.query(1000, "10.0.0.1", general(Generation::V3));
    h.report(2000, "10.0.0.20", Report::V2(a("239.1.1.1")));
    h.report(3000, "10.0.0.20", Report::Leave(a("239.1.1.1")));
    assert!(
        h.sent().iter().all(|(at, _)| *at < 1000),
        "a non-querier sends nothing"
    );
    let gsq = QueryIn {
        group: Some(a("239.1.1.1")),
        max_resp: secs(1),
        ..general(Generation::V3)
    };
    h.query(3100, "10.0.0.1", gsq);
    h.run_until(5100);
    assert!(
        h.i.membership().group(&a("239.1.1.1")).is_none(),
        "gone at LMQT after the querier's query"
    );
}

#[test]
fn passive_tracks_state_and_election_but_never_sends() {
    let mut c = cfg();
    c.passive = true;
    let mut h = H::new(c, Some("10.0.0.5"));
    h.report(1000, "10.0.0.20", Report::V2(a("239.1.1.1")));
    h.report(2000, "10.0.0.20", Report::Leave(a("239.1.1.1")));
    h.query(3000, "10.0.0.1", general(Generation::V3));
    h.run_until(400_000);
    assert!(h.sent().is_empty());
    assert_eq!(h.i.role(), Role::Passive);
}

#[test]
fn link_down_drops_state_and_link_up_restarts_the_burst() {
    let mut h = H::new(cfg(), Some("10.0.0.5"));
    h.report(1000, "10.0.0.20", Report::V2(a("239.1.1.1")));
    let acts = h.i.link_down(t(2000));
    assert!(
        acts.contains(&Action::Event(Event::Membership(Change::GroupRemoved {
            group: a("239.1.1.1"),
            reason: Removal::Cleared
        })))
    );
    assert_eq!(h.i.role(), Role::Inactive);
    assert_eq!(h.i.next_deadline(), None, "no wake-ups while down");
    h.now = 10_000;
    let acts = h.i.link_up(t(10_000));
    h.record(acts);
    assert!(h.general_times().contains(&10_000));
}

#[test]
fn robustness_above_seven_is_announced_as_zero() {
    let mut c = cfg();
    c.robustness = 9;
    let h = H::new(c, Some("10.0.0.5"));
    assert_eq!(h.sent()[0].1.qrv, 0);
    let _ = ms(0);
}

#[test]
fn mld_without_link_local_cannot_query() {
    let mut i: Instance<std::net::Ipv6Addr> = Instance::new(Config::new(Proto::Mld), None);
    let acts = i.link_up(t(0));
    assert!(acts.is_empty());
    assert_eq!(i.role(), Role::Inactive);
}
