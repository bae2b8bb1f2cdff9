//! The state tables of RFC 9776 §6.4.1 and §6.4.2 (RFC 9777 §7.4), row by row, and the
//! specific queries they schedule (§6.6.3): what [`Membership::report`](super::Membership::report)
//! and [`Membership::poll`](super::Membership::poll) apply to one group.

use igmpd_wire::RecordType;

use super::group::{Group, Source};
use super::{FilterMode, SpecificQuery, Timing};
use crate::core::config::Generation;
use crate::core::time::Instant;

/// The rows of RFC 9776 §6.4.1 (current-state records) and §6.4.2 (filter-mode-change and
/// source-list-change records). `b` is the record's source list.
pub(super) fn apply_record<A: Ord + Copy>(
    group: &mut Group<A>,
    now: Instant,
    timing: &Timing,
    t: RecordType,
    b: &[A],
) {
    let gmi = now + timing.gmi;
    let in_b = |a: &A| b.contains(a);
    match (group.mode, t) {
        // INCLUDE (A) + IS_IN (B) or ALLOW (B) -> INCLUDE (A+B); (B)=GMI.
        (FilterMode::Include, RecordType::ModeIsInclude | RecordType::AllowNew) => {
            set_gmi(group, b, gmi)
        }
        // INCLUDE (A) + IS_EX (B) -> EXCLUDE (A*B, B-A); (B-A)=0; Delete (A-B); Group Timer=GMI.
        // INCLUDE (A) + TO_EX (B) -> the same, plus Send Q(G,A*B).
        (FilterMode::Include, RecordType::ModeIsExclude | RecordType::ChangeToExclude) => {
            group.sources.retain(|a, _| in_b(a));
            let a_and_b: Vec<A> = group.sources.keys().copied().collect();
            for s in b {
                group.sources.entry(*s).or_insert(Source {
                    timer: None,
                    rexmit: 0,
                });
            }
            group.mode = FilterMode::Exclude;
            group.group_timer = gmi;
            if t == RecordType::ChangeToExclude {
                send_q_sources(group, now, timing, &a_and_b);
            }
        }
        // INCLUDE (A) + BLOCK (B) -> INCLUDE (A); Send Q(G,A*B).
        (FilterMode::Include, RecordType::BlockOld) => {
            let a_and_b: Vec<A> = b
                .iter()
                .copied()
                .filter(|s| group.sources.contains_key(s))
                .collect();
            send_q_sources(group, now, timing, &a_and_b);
        }
        // INCLUDE (A) + TO_IN (B) -> INCLUDE (A+B); (B)=GMI; Send Q(G,A-B).
        (FilterMode::Include, RecordType::ChangeToInclude) => {
            let a_minus_b: Vec<A> = group.sources.keys().copied().filter(|a| !in_b(a)).collect();
            set_gmi(group, b, gmi);
            send_q_sources(group, now, timing, &a_minus_b);
        }
        // EXCLUDE (X,Y) + IS_IN (A) or ALLOW (A) -> EXCLUDE (X+A, Y-A); (A)=GMI.
        (FilterMode::Exclude, RecordType::ModeIsInclude | RecordType::AllowNew) => {
            set_gmi(group, b, gmi)
        }
        // EXCLUDE (X,Y) + IS_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=GMI; Delete (X-A);
        // Delete (Y-A); Group Timer=GMI.
        (FilterMode::Exclude, RecordType::ModeIsExclude) => {
            group.sources.retain(|a, _| in_b(a));
            for s in b {
                group.sources.entry(*s).or_insert(Source {
                    timer: Some(gmi),
                    rexmit: 0,
                });
            }
            group.group_timer = gmi;
        }
        // EXCLUDE (X,Y) + BLOCK (A) -> EXCLUDE (X+(A-Y), Y); (A-X-Y)=Group Timer;
        // Send Q(G,A-Y).
        (FilterMode::Exclude, RecordType::BlockOld) => {
            add_at_group_timer(group, b);
            let a_minus_y = running(group, b);
            send_q_sources(group, now, timing, &a_minus_y);
        }
        // EXCLUDE (X,Y) + TO_EX (A) -> EXCLUDE (A-Y, Y*A); (A-X-Y)=Group Timer;
        // Delete (X-A); Delete (Y-A); Send Q(G,A-Y); Group Timer=GMI.
        (FilterMode::Exclude, RecordType::ChangeToExclude) => {
            group.sources.retain(|a, _| in_b(a));
            add_at_group_timer(group, b);
            let a_minus_y = running(group, b);
            send_q_sources(group, now, timing, &a_minus_y);
            group.group_timer = gmi;
        }
        // EXCLUDE (X,Y) + TO_IN (A) -> EXCLUDE (X+A, Y-A); (A)=GMI; Send Q(G,X-A);
        // Send Q(G).
        (FilterMode::Exclude, RecordType::ChangeToInclude) => {
            let x_minus_a: Vec<A> = group
                .sources
                .iter()
                .filter(|(a, s)| s.timer.is_some() && !in_b(a))
                .map(|(a, _)| *a)
                .collect();
            set_gmi(group, b, gmi);
            send_q_sources(group, now, timing, &x_minus_a);
            send_q_group(group, now, timing);
        }
        (_, RecordType::Unknown(_)) => {}
    }
}

/// "(A-X-Y)=Group Timer" in EXCLUDE mode: sources of `a` not yet recorded get the group
/// timer's value.
fn add_at_group_timer<A: Ord + Copy>(group: &mut Group<A>, a: &[A]) {
    let gt = group.group_timer;
    for s in a {
        group.sources.entry(*s).or_insert(Source {
            timer: Some(gt),
            rexmit: 0,
        });
    }
}

/// "A-Y" in EXCLUDE mode: the sources of `a` whose timers run (Y, the excluded ones, have
/// none).
fn running<A: Ord + Copy>(group: &Group<A>, a: &[A]) -> Vec<A> {
    a.iter()
        .copied()
        .filter(|s| group.sources.get(s).is_some_and(|x| x.timer.is_some()))
        .collect()
}

/// "(B)=GMI": sources in `b` get the timer `gmi`, created if missing.
pub(super) fn set_gmi<A: Ord + Copy>(group: &mut Group<A>, b: &[A], gmi: Instant) {
    for s in b {
        let e = group.sources.entry(*s).or_insert(Source {
            timer: None,
            rexmit: 0,
        });
        e.timer = Some(gmi);
    }
}

/// "Send Q(G)" (§6.6.3.1): when querier, lower the group timer to LMQT and schedule
/// [LMQC] group-specific queries starting now.
pub(super) fn send_q_group<A: Ord + Copy>(group: &mut Group<A>, now: Instant, timing: &Timing) {
    if timing.querier.is_none() || timing.lmqc == 0 {
        return;
    }
    group.group_timer = group.group_timer.min(now + timing.lmqt());
    group.group_rexmit = timing.lmqc;
    group.rexmit_at = Some(now);
}

/// "Send Q(G,S)" (§6.6.3.2): when an IGMPv3/MLDv2 querier, lower the sources' timers to
/// LMQT and schedule [LMQC] group-and-source-specific queries for them starting now.
pub(super) fn send_q_sources<A: Ord + Copy>(
    group: &mut Group<A>,
    now: Instant,
    timing: &Timing,
    sources: &[A],
) {
    if timing.querier != Some(Generation::V3) || sources.is_empty() || timing.lmqc == 0 {
        return;
    }
    let to = now + timing.lmqt();
    for s in sources {
        group.lower_source(*s, to, timing.lmqc);
    }
    group.rexmit_at = Some(now);
}

/// Sends the due specific queries of one group and schedules the next ones.
///
/// §6.6.3.1: a group-specific query carries the S flag when the group timer is above
/// LMQT. §6.6.3.2: sources with pending retransmissions are split into those whose timers
/// are above LMQT (a query with S set) and the others (S clear).
pub(super) fn send_retransmissions<A: Ord + Copy>(
    group: &mut Group<A>,
    g: A,
    now: Instant,
    timing: &Timing,
    queries: &mut Vec<SpecificQuery<A>>,
) {
    let lmqt_at = now + timing.lmqt();
    if group.group_rexmit > 0 {
        group.group_rexmit -= 1;
        queries.push(SpecificQuery {
            group: g,
            sources: Vec::new(),
            s_flag: group.mode == FilterMode::Exclude && group.group_timer > lmqt_at,
        });
    }
    let mut with_s = Vec::new();
    let mut without_s = Vec::new();
    for (a, s) in group.sources.iter_mut() {
        if s.rexmit == 0 {
            continue;
        }
        s.rexmit -= 1;
        match s.timer {
            Some(t) if t > lmqt_at => with_s.push(*a),
            Some(_) => without_s.push(*a),
            None => s.rexmit = 0,
        }
    }
    if !without_s.is_empty() {
        queries.push(SpecificQuery {
            group: g,
            sources: without_s,
            s_flag: false,
        });
    }
    if !with_s.is_empty() {
        queries.push(SpecificQuery {
            group: g,
            sources: with_s,
            s_flag: true,
        });
    }
    let more = group.group_rexmit > 0 || group.sources.values().any(|s| s.rexmit > 0);
    group.rexmit_at = more.then(|| now + timing.lmqi);
}
