//! RFC 9776 §6.4 state tables row by row, timers (§6.3, §6.5), specific-query
//! retransmissions and the S flag (§6.6.3), timer lowering on queries (§6.6.1) and host
//! compatibility modes (§7.3.2).

use std::net::Ipv4Addr;

use igmpd_wire::RecordType::{self, *};

use super::{a, ms, secs};
use crate::core::config::Generation;
use crate::core::membership::{
    Change, FilterMode, Forwarding, Membership, Removal, Report, SpecificQuery, Timing,
};
use crate::core::time::Instant;

const G: &str = "239.1.1.1";

fn timing(querier: bool) -> Timing {
    Timing {
        gmi: secs(260),
        lmqi: secs(1),
        lmqc: 2,
        older_host_present: secs(260),
        querier: querier.then_some(Generation::V3),
    }
}

fn t(ms_: u64) -> Instant {
    Instant::from_millis(ms_)
}

struct M {
    m: Membership<Ipv4Addr>,
    timing: Timing,
    changes: Vec<Change<Ipv4Addr>>,
    queries: Vec<SpecificQuery<Ipv4Addr>>,
}

impl M {
    fn new(querier: bool) -> Self {
        M {
            m: Membership::new(),
            timing: timing(querier),
            changes: vec![],
            queries: vec![],
        }
    }

    fn rec(&mut self, now: u64, rt: RecordType, srcs: &[&str]) -> &mut Self {
        let r = Report::Record(rt, a(G), srcs.iter().map(|s| a(s)).collect());
        self.m.report(
            t(now),
            &self.timing,
            Some(a("10.0.0.50")),
            &r,
            &mut self.changes,
        );
        self.poll(now)
    }

    fn msg(&mut self, now: u64, r: Report<Ipv4Addr>) -> &mut Self {
        self.m.report(
            t(now),
            &self.timing,
            Some(a("10.0.0.51")),
            &r,
            &mut self.changes,
        );
        self.poll(now)
    }

    fn poll(&mut self, now: u64) -> &mut Self {
        self.m
            .poll(t(now), &self.timing, &mut self.changes, &mut self.queries);
        self
    }

    /// Polls at every deadline up to `until`, like the shell does.
    fn run_until(&mut self, until: u64) -> &mut Self {
        while let Some(d) = self.m.next_deadline() {
            if d > t(until) {
                break;
            }
            self.poll(d.as_millis());
        }
        self
    }

    fn mode(&self) -> Option<FilterMode> {
        self.m.group(&a(G)).map(|g| g.mode)
    }

    /// (source, timer end in ms or None for zero), sorted.
    fn sources(&self) -> Vec<(Ipv4Addr, Option<u64>)> {
        self.m
            .group(&a(G))
            .map(|g| {
                g.sources
                    .iter()
                    .map(|(s, t)| (*s, t.map(|x| x.as_millis())))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn group_timer(&self) -> Option<u64> {
        self.m
            .group(&a(G))
            .and_then(|g| g.expires)
            .map(|x| x.as_millis())
    }

    fn take_queries(&mut self) -> Vec<(Vec<Ipv4Addr>, bool)> {
        self.queries
            .drain(..)
            .map(|q| (q.sources, q.s_flag))
            .collect()
    }
}

fn srcs(list: &[(&str, Option<u64>)]) -> Vec<(Ipv4Addr, Option<u64>)> {
    let mut v: Vec<_> = list.iter().map(|(s, t)| (a(s), *t)).collect();
    v.sort();
    v
}

const GMI: u64 = 260_000;
const LMQT: u64 = 2_000;

/// EXCLUDE (X={s1,s2}, Y={s3,s4}) built at t=0.
fn exclude_x12_y34(querier: bool) -> M {
    let mut m = M::new(querier);
    m.rec(0, ModeIsInclude, &["10.0.0.1", "10.0.0.2"]);
    m.rec(
        0,
        ModeIsExclude,
        &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
    );
    assert_eq!(m.mode(), Some(FilterMode::Exclude));
    m.take_queries();
    m.changes.clear();
    m
}

// ---- §6.4.1 current-state records ----

#[test]
fn include_is_in_adds_sources_with_gmi() {
    let mut m = M::new(true);
    m.rec(0, ModeIsInclude, &["10.0.0.1"])
        .rec(1000, ModeIsInclude, &["10.0.0.2"]);
    assert_eq!(m.mode(), Some(FilterMode::Include));
    assert_eq!(
        m.sources(),
        srcs(&[("10.0.0.1", Some(GMI)), ("10.0.0.2", Some(1000 + GMI))])
    );
    assert!(m.take_queries().is_empty());
}

#[test]
fn include_is_ex_switches_to_exclude_keeping_common_sources() {
    let mut m = M::new(true);
    m.rec(0, ModeIsInclude, &["10.0.0.1", "10.0.0.2"]).rec(
        5000,
        ModeIsExclude,
        &["10.0.0.2", "10.0.0.3"],
    );
    assert_eq!(m.mode(), Some(FilterMode::Exclude));
    // X = A*B keeps its timer, Y = B-A has timer 0, A-B is deleted, Group Timer = GMI.
    assert_eq!(
        m.sources(),
        srcs(&[("10.0.0.2", Some(GMI)), ("10.0.0.3", None)])
    );
    assert_eq!(m.group_timer(), Some(5000 + GMI));
    assert!(
        m.take_queries().is_empty(),
        "current-state records send no queries"
    );
}

#[test]
fn exclude_is_in_moves_sources_to_the_requested_list() {
    let mut m = exclude_x12_y34(true);
    m.rec(7000, ModeIsInclude, &["10.0.0.3", "10.0.0.5"]);
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.1", Some(GMI)),
            ("10.0.0.2", Some(GMI)),
            ("10.0.0.3", Some(7000 + GMI)),
            ("10.0.0.4", None),
            ("10.0.0.5", Some(7000 + GMI))
        ])
    );
    assert_eq!(m.group_timer(), Some(GMI));
}

#[test]
fn exclude_is_ex_replaces_the_lists() {
    let mut m = exclude_x12_y34(true);
    m.rec(9000, ModeIsExclude, &["10.0.0.2", "10.0.0.4", "10.0.0.5"]);
    // A-Y = {2 (kept), 5 (GMI)}, Y*A = {4}; X-A = {1} and Y-A = {3} deleted.
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.2", Some(GMI)),
            ("10.0.0.4", None),
            ("10.0.0.5", Some(9000 + GMI))
        ])
    );
    assert_eq!(m.group_timer(), Some(9000 + GMI));
}

// ---- §6.4.2 filter-mode-change and source-list-change records ----

#[test]
fn include_allow_adds_sources() {
    let mut m = M::new(true);
    m.rec(0, AllowNew, &["10.0.0.1"])
        .rec(10, AllowNew, &["10.0.0.2"]);
    assert_eq!(
        m.sources(),
        srcs(&[("10.0.0.1", Some(GMI)), ("10.0.0.2", Some(10 + GMI))])
    );
}

#[test]
fn include_block_queries_the_blocked_known_sources() {
    let mut m = M::new(true);
    m.rec(0, ModeIsInclude, &["10.0.0.1", "10.0.0.2"]).rec(
        3000,
        BlockOld,
        &["10.0.0.2", "10.0.0.3"],
    );
    assert_eq!(m.mode(), Some(FilterMode::Include));
    // Send Q(G,A*B): only 10.0.0.2, its timer lowered to LMQT.
    assert_eq!(m.take_queries(), vec![(vec![a("10.0.0.2")], false)]);
    assert_eq!(
        m.sources(),
        srcs(&[("10.0.0.1", Some(GMI)), ("10.0.0.2", Some(3000 + LMQT))])
    );
    // One retransmission after LMQI, then the source expires and is removed.
    m.run_until(3000 + LMQT);
    assert_eq!(m.take_queries(), vec![(vec![a("10.0.0.2")], false)]);
    assert_eq!(m.sources(), srcs(&[("10.0.0.1", Some(GMI))]));
}

#[test]
fn include_to_ex_switches_mode_and_queries_common_sources() {
    let mut m = M::new(true);
    m.rec(0, ModeIsInclude, &["10.0.0.1", "10.0.0.2"]).rec(
        4000,
        ChangeToExclude,
        &["10.0.0.2", "10.0.0.3"],
    );
    assert_eq!(m.mode(), Some(FilterMode::Exclude));
    assert_eq!(m.take_queries(), vec![(vec![a("10.0.0.2")], false)]);
    assert_eq!(
        m.sources(),
        srcs(&[("10.0.0.2", Some(4000 + LMQT)), ("10.0.0.3", None)])
    );
    assert_eq!(m.group_timer(), Some(4000 + GMI));
}

#[test]
fn include_to_in_refreshes_new_list_and_queries_the_dropped_sources() {
    let mut m = M::new(true);
    m.rec(0, ModeIsInclude, &["10.0.0.1", "10.0.0.2"]).rec(
        2000,
        ChangeToInclude,
        &["10.0.0.2", "10.0.0.3"],
    );
    assert_eq!(m.take_queries(), vec![(vec![a("10.0.0.1")], false)]);
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.1", Some(2000 + LMQT)),
            ("10.0.0.2", Some(2000 + GMI)),
            ("10.0.0.3", Some(2000 + GMI))
        ])
    );
}

#[test]
fn exclude_allow_unblocks_and_adds() {
    let mut m = exclude_x12_y34(true);
    m.rec(100, AllowNew, &["10.0.0.4", "10.0.0.9"]);
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.1", Some(GMI)),
            ("10.0.0.2", Some(GMI)),
            ("10.0.0.3", None),
            ("10.0.0.4", Some(100 + GMI)),
            ("10.0.0.9", Some(100 + GMI))
        ])
    );
    assert_eq!(
        m.changes,
        vec![Change::Forwarding { group: a(G) }],
        "unblocking 10.0.0.4 changes forwarding"
    );
}

#[test]
fn exclude_block_adds_new_sources_with_the_group_timer_and_queries_a_minus_y() {
    let mut m = exclude_x12_y34(true);
    m.rec(500, BlockOld, &["10.0.0.1", "10.0.0.3", "10.0.0.6"]);
    // (A-X-Y)=Group Timer: 10.0.0.6 gets GMI (the group timer set at 0). Send Q(G,A-Y):
    // 10.0.0.1 and 10.0.0.6, lowered to LMQT.
    assert_eq!(
        m.take_queries(),
        vec![(vec![a("10.0.0.1"), a("10.0.0.6")], false)]
    );
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.1", Some(500 + LMQT)),
            ("10.0.0.2", Some(GMI)),
            ("10.0.0.3", None),
            ("10.0.0.4", None),
            ("10.0.0.6", Some(500 + LMQT))
        ])
    );
    // Unanswered: after LMQT both become excluded (timer zero) in EXCLUDE mode.
    m.run_until(500 + LMQT);
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.1", None),
            ("10.0.0.2", Some(GMI)),
            ("10.0.0.3", None),
            ("10.0.0.4", None),
            ("10.0.0.6", None)
        ])
    );
}

#[test]
fn exclude_to_ex_replaces_lists_queries_and_resets_group_timer() {
    let mut m = exclude_x12_y34(true);
    m.rec(8000, ChangeToExclude, &["10.0.0.2", "10.0.0.4", "10.0.0.5"]);
    assert_eq!(
        m.take_queries(),
        vec![(vec![a("10.0.0.2"), a("10.0.0.5")], false)]
    );
    // 10.0.0.5 got the old group timer (GMI from t=0), then Q lowered both to LMQT.
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.2", Some(8000 + LMQT)),
            ("10.0.0.4", None),
            ("10.0.0.5", Some(8000 + LMQT))
        ])
    );
    assert_eq!(m.group_timer(), Some(8000 + GMI));
}

#[test]
fn exclude_to_in_queries_sources_and_group_and_lowers_group_timer() {
    let mut m = exclude_x12_y34(true);
    m.rec(1000, ChangeToInclude, &["10.0.0.2", "10.0.0.3"]);
    // Send Q(G,X-A) = {10.0.0.1}; Send Q(G).
    let q = m.take_queries();
    assert!(q.contains(&(vec![], false)), "{q:?}");
    assert!(q.contains(&(vec![a("10.0.0.1")], false)), "{q:?}");
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.1", Some(1000 + LMQT)),
            ("10.0.0.2", Some(1000 + GMI)),
            ("10.0.0.3", Some(1000 + GMI)),
            ("10.0.0.4", None)
        ])
    );
    assert_eq!(m.group_timer(), Some(1000 + LMQT));
    // No answer: the group timer expires and the group becomes INCLUDE with the sources
    // whose timers still run (§6.5).
    m.run_until(1000 + LMQT);
    assert_eq!(m.mode(), Some(FilterMode::Include));
    assert_eq!(
        m.sources(),
        srcs(&[
            ("10.0.0.2", Some(1000 + GMI)),
            ("10.0.0.3", Some(1000 + GMI))
        ])
    );
}

// ---- timers, retransmissions, S flag ----

#[test]
fn v2_leave_with_no_other_member_removes_group_after_last_member_queries() {
    let mut m = M::new(true);
    m.msg(0, Report::V2(a(G)));
    assert_eq!(m.mode(), Some(FilterMode::Exclude));
    m.msg(10_000, Report::Leave(a(G)));
    assert_eq!(m.take_queries(), vec![(vec![], false)]);
    m.run_until(10_999);
    assert!(m.take_queries().is_empty());
    m.run_until(11_000);
    assert_eq!(
        m.take_queries(),
        vec![(vec![], false)],
        "LMQC=2: one retransmission after LMQI"
    );
    assert!(m.mode().is_some());
    m.run_until(12_000);
    assert_eq!(m.mode(), None, "group removed at LMQT");
    assert!(m.changes.contains(&Change::GroupRemoved {
        group: a(G),
        reason: Removal::Left { queried: true }
    }));
}

#[test]
fn answered_group_specific_query_keeps_group_and_sets_s_flag_on_retransmission() {
    let mut m = M::new(true);
    m.msg(0, Report::V2(a(G)));
    m.msg(10_000, Report::Leave(a(G)));
    m.take_queries();
    // Another member answers: group timer back to GMI; the retransmission carries S=1.
    m.msg(10_300, Report::V2(a(G)));
    m.run_until(11_000);
    assert_eq!(m.take_queries(), vec![(vec![], true)]);
    m.run_until(20_000);
    assert_eq!(m.mode(), Some(FilterMode::Exclude));
    assert_eq!(m.group_timer(), Some(10_300 + GMI));
}

#[test]
fn source_retransmissions_split_by_s_flag() {
    let mut m = M::new(true);
    m.rec(0, ModeIsInclude, &["10.0.0.1", "10.0.0.2"]);
    m.rec(1000, BlockOld, &["10.0.0.1", "10.0.0.2"]);
    assert_eq!(
        m.take_queries(),
        vec![(vec![a("10.0.0.1"), a("10.0.0.2")], false)]
    );
    // 10.0.0.2 is still wanted by another host.
    m.rec(1500, AllowNew, &["10.0.0.2"]);
    m.run_until(2000);
    assert_eq!(
        m.take_queries(),
        vec![(vec![a("10.0.0.1")], false), (vec![a("10.0.0.2")], true)]
    );
    m.run_until(3000);
    assert_eq!(m.sources(), srcs(&[("10.0.0.2", Some(1500 + GMI))]));
}

#[test]
fn include_sources_expire_one_by_one_then_the_group() {
    let mut m = M::new(true);
    m.rec(0, ModeIsInclude, &["10.0.0.1"])
        .rec(1000, AllowNew, &["10.0.0.2"]);
    m.changes.clear();
    m.run_until(GMI);
    assert_eq!(m.sources(), srcs(&[("10.0.0.2", Some(1000 + GMI))]));
    assert_eq!(
        m.changes,
        vec![
            Change::SourceRemoved {
                group: a(G),
                source: a("10.0.0.1"),
                reason: Removal::Expired
            },
            Change::Forwarding { group: a(G) }
        ]
    );
    m.run_until(1000 + GMI);
    assert_eq!(m.mode(), None);
}

#[test]
fn exclude_group_timer_expiry_without_sources_deletes_group() {
    let mut m = M::new(true);
    m.rec(0, ModeIsExclude, &[]);
    m.run_until(GMI - 1);
    assert!(m.mode().is_some());
    m.run_until(GMI);
    assert_eq!(m.mode(), None);
}

#[test]
fn forwarding_reflects_mode_and_lists() {
    let m = exclude_x12_y34(true);
    assert_eq!(
        m.m.forwarding(&a(G)),
        Some(Forwarding::Exclude(vec![a("10.0.0.3"), a("10.0.0.4")]))
    );
    let mut m = M::new(true);
    m.rec(0, ModeIsInclude, &["10.0.0.9"]);
    assert_eq!(
        m.m.forwarding(&a(G)),
        Some(Forwarding::Include(vec![a("10.0.0.9")]))
    );
}

#[test]
fn refresh_without_change_reports_no_forwarding_change() {
    let mut m = M::new(true);
    m.rec(0, ModeIsExclude, &[]);
    m.changes.clear();
    m.rec(1000, ModeIsExclude, &[]);
    assert!(m.changes.is_empty(), "{:?}", m.changes);
}

// ---- non-querier: timers follow the querier's queries (§6.6.1) ----

#[test]
fn non_querier_does_not_lower_on_leave_but_on_the_queriers_query() {
    let mut m = M::new(false);
    m.msg(0, Report::V2(a(G)));
    m.msg(5000, Report::Leave(a(G)));
    assert!(m.take_queries().is_empty());
    assert_eq!(
        m.group_timer(),
        Some(GMI),
        "a non-querier waits for the querier"
    );
    let timing = m.timing;
    m.m.lower_on_query(t(5100), &timing, a(G), &[]);
    assert_eq!(m.group_timer(), Some(5100 + LMQT));
    m.run_until(5100 + LMQT);
    assert_eq!(m.mode(), None);
}

#[test]
fn received_group_and_source_query_lowers_only_named_sources() {
    let mut m = M::new(false);
    m.rec(0, ModeIsInclude, &["10.0.0.1", "10.0.0.2"]);
    let timing = m.timing;
    m.m.lower_on_query(t(100), &timing, a(G), &[a("10.0.0.2")]);
    assert_eq!(
        m.sources(),
        srcs(&[("10.0.0.1", Some(GMI)), ("10.0.0.2", Some(100 + LMQT))])
    );
    // Lowering never raises: a second query later keeps the earlier deadline.
    m.m.lower_on_query(t(1500), &timing, a(G), &[a("10.0.0.2")]);
    assert_eq!(m.sources()[1].1, Some(100 + LMQT));
}

// ---- §7.3.2 host compatibility ----

#[test]
fn v2_host_puts_group_in_v2_mode_where_block_and_to_ex_sources_are_ignored() {
    let mut m = M::new(true);
    m.msg(0, Report::V2(a(G)));
    assert_eq!(m.m.group(&a(G)).unwrap().compat, Generation::V2);
    m.rec(1000, BlockOld, &["10.0.0.1"]);
    assert!(m.take_queries().is_empty());
    m.rec(2000, ChangeToExclude, &["10.0.0.1"]);
    assert_eq!(m.sources(), vec![], "TO_EX source list ignored in v2 mode");
    // When the v2 host stops reporting, the mode returns to v3.
    m.changes.clear();
    m.run_until(GMI);
    assert_eq!(m.m.group(&a(G)).unwrap().compat, Generation::V3);
    assert!(
        m.changes.contains(&Change::Compat {
            group: a(G),
            mode: Generation::V3
        }),
        "{:?}",
        m.changes
    );
}

#[test]
fn v1_host_mode_ignores_leaves_and_to_in() {
    let mut m = M::new(true);
    m.msg(0, Report::V1(a(G)));
    assert_eq!(m.m.group(&a(G)).unwrap().compat, Generation::V1);
    m.msg(1000, Report::Leave(a(G)));
    m.rec(1000, ChangeToInclude, &[]);
    assert!(m.take_queries().is_empty());
    assert_eq!(m.group_timer(), Some(GMI));
}

#[test]
fn last_reporter_and_reporters_are_tracked_and_pruned() {
    let mut m = M::new(true);
    m.msg(0, Report::V2(a(G)));
    m.rec(1000, ModeIsExclude, &[]);
    let g = m.m.group(&a(G)).unwrap();
    assert_eq!(g.last_reporter, Some(a("10.0.0.50")));
    assert_eq!(
        g.reporters,
        vec![(a("10.0.0.50"), t(1000)), (a("10.0.0.51"), t(0))]
    );
    m.msg(200_000, Report::V2(a(G)));
    // Reporters older than a membership interval are pruned when the group is touched.
    m.msg(GMI + 1500, Report::V2(a(G)));
    let g = m.m.group(&a(G)).unwrap();
    assert_eq!(
        g.reporters,
        vec![(a("10.0.0.51"), t(GMI + 1500))],
        "10.0.0.50 went silent"
    );
    let _ = ms(0);
}

#[test]
fn reports_within_the_refile_slack_keep_an_early_queue_entry_and_expiry_stays_exact() {
    // GMI 260 s: the slack is min(GMI/32, 1 s) = 1 s.
    let mut m = M::new(false);
    m.msg(0, Report::V2(a(G)));
    assert_eq!(m.m.next_deadline(), Some(t(GMI)));
    // A flood of re-joins within the slack: the queue keeps the first deadline, a lower
    // bound of the real one, never later.
    for now in (1..=900).step_by(3) {
        m.msg(now, Report::V2(a(G)));
    }
    assert_eq!(m.m.next_deadline(), Some(t(GMI)));
    assert_eq!(m.group_timer(), Some(GMI + 898));
    // A report that moves the deadline by more than the slack re-files it exactly.
    m.msg(5_000, Report::V2(a(G)));
    assert_eq!(m.m.next_deadline(), Some(t(GMI + 5_000)));
    // Re-joins that stop: the entry comes due early once, the poll changes nothing and
    // re-files it at the real deadline, where the group goes.
    m.msg(5_500, Report::V2(a(G)));
    assert_eq!(m.m.next_deadline(), Some(t(GMI + 5_000)));
    m.changes.clear();
    m.run_until(GMI + 5_499);
    assert!(m.changes.is_empty(), "{:?}", m.changes);
    assert_eq!(m.mode(), Some(FilterMode::Exclude));
    assert_eq!(m.m.next_deadline(), Some(t(GMI + 5_500)));
    m.run_until(GMI + 5_500);
    assert_eq!(m.mode(), None);
    assert_eq!(
        m.changes,
        vec![Change::GroupRemoved {
            group: a(G),
            reason: Removal::Expired
        }]
    );
    // Earlier deadlines always re-file at once: a leave's last-member query time.
    let mut m = M::new(true);
    m.msg(0, Report::V2(a(G)));
    m.msg(100, Report::Leave(a(G)));
    assert_eq!(m.m.next_deadline(), Some(t(1_100)));
}

/// Hosts spoofing new groups meet a bound: at MAX_GROUPS records a report of a new group
/// is dropped and counted, while the records there are still refreshed.
#[test]
fn new_groups_stop_at_the_bound_and_are_counted_while_known_ones_refresh() {
    use crate::core::membership::MAX_GROUPS;
    let mut m = M::new(false);
    let first = u32::from(a("239.0.0.1"));
    let v2 = |i: u32| Report::V2(Ipv4Addr::from(first + i));
    for i in 0..MAX_GROUPS as u32 {
        m.m.report(t(0), &m.timing, None, &v2(i), &mut m.changes);
    }
    assert_eq!(m.m.len(), MAX_GROUPS);
    m.changes.clear();
    m.m.report(
        t(10),
        &m.timing,
        None,
        &v2(MAX_GROUPS as u32),
        &mut m.changes,
    );
    assert_eq!((m.m.len(), m.m.refused_groups()), (MAX_GROUPS, 1));
    assert!(m.changes.is_empty());
    // A known group is refreshed: its timer moves.
    m.m.report(t(1000), &m.timing, None, &v2(7), &mut m.changes);
    let g = m.m.group(&Ipv4Addr::from(first + 7)).unwrap();
    assert_eq!(g.expires, Some(t(1000) + secs(260)));
    assert_eq!(m.m.refused_groups(), 1);
}

// ---- why a group went (igmpd monitor's leave and expiry) ----

fn removals(m: &M) -> Vec<Removal> {
    m.changes
        .iter()
        .filter_map(|c| match c {
            Change::GroupRemoved { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[test]
fn removal_reasons_tell_a_leave_from_a_timeout() {
    const GMI: u64 = 260_000;
    // Nobody reports again: the timers ran out.
    let mut m = M::new(true);
    m.msg(0, Report::V2(a(G)));
    m.run_until(GMI);
    assert_eq!(removals(&m), [Removal::Expired]);
    // A leave, then the last-member queries go unanswered.
    let mut m = M::new(true);
    m.msg(0, Report::V2(a(G)));
    m.msg(1_000, Report::Leave(a(G)));
    m.run_until(4_000);
    assert_eq!(removals(&m), [Removal::Left { queried: true }]);
    // A leave answered by another member, which then goes silent: a timeout.
    let mut m = M::new(true);
    m.msg(0, Report::V2(a(G)));
    m.msg(1_000, Report::Leave(a(G)));
    m.msg(1_500, Report::V2(a(G)));
    m.run_until(1_500 + GMI);
    assert_eq!(removals(&m), [Removal::Expired]);
    // INCLUDE mode: blocking the last source ends the record with the report (querier:
    // after the group-and-source queries; a non-querier at once).
    let mut m = M::new(false);
    m.rec(0, AllowNew, &["10.0.0.5"]);
    m.rec(1_000, BlockOld, &["10.0.0.5"]);
    m.run_until(1_000 + GMI);
    assert_eq!(removals(&m).len(), 1);
    assert!(removals(&m)[0].is_leave(), "{:?}", removals(&m));
    // A snooping port (non-querier): the querier's group-specific query lowers the
    // timers; their end is a leave.
    let mut m = M::new(false);
    m.msg(0, Report::V2(a(G)));
    m.m.lower_on_query(t(1_000), &timing(false), a(G), &[]);
    m.run_until(4_000);
    assert_eq!(removals(&m), [Removal::Left { queried: true }]);
    // Re-joins that change nothing are no changes at all.
    let mut m = M::new(false);
    m.msg(0, Report::V2(a(G)));
    m.changes.clear();
    for now in (100..10_000).step_by(100) {
        m.msg(now, Report::V2(a(G)));
    }
    assert!(m.changes.is_empty(), "{:?}", m.changes);
    assert_eq!(m.m.last_reporter(&a(G)), Some(a("10.0.0.51")));
}

#[test]
fn an_include_record_reports_its_sources_as_they_come_and_go() {
    let mut m = M::new(false);
    m.rec(0, AllowNew, &["10.0.0.5", "10.0.0.6"]);
    assert_eq!(
        m.changes[..3],
        [
            Change::GroupAdded {
                group: a(G),
                any_source: false
            },
            Change::SourceAdded {
                group: a(G),
                source: a("10.0.0.5")
            },
            Change::SourceAdded {
                group: a(G),
                source: a("10.0.0.6")
            },
        ]
    );
    m.changes.clear();
    // 10.0.0.6 is refreshed, 10.0.0.5 is not: at its timer's end it goes alone.
    m.rec(100_000, ModeIsInclude, &["10.0.0.6"]);
    assert!(m.changes.is_empty(), "{:?}", m.changes);
    m.run_until(260_000);
    assert_eq!(
        m.changes,
        [
            Change::SourceRemoved {
                group: a(G),
                source: a("10.0.0.5"),
                reason: Removal::Expired
            },
            Change::Forwarding { group: a(G) }
        ]
    );
    // An EXCLUDE record is one any-source join.
    let mut m = M::new(false);
    m.msg(0, Report::V2(a(G)));
    assert_eq!(
        m.changes[0],
        Change::GroupAdded {
            group: a(G),
            any_source: true
        }
    );
}
