//! Fast leave (a snooping port's `fast_leave`): whether a host's leave may end a group
//! record at once because no other host is known to be in it.

use std::hash::Hash;

use igmpd_wire::RecordType;

use super::{group, Change, Membership, Removal, Report};
use crate::core::config::Generation;

impl<A: Ord + Copy + Hash> Membership<A> {
    /// Fast leave (a snooping port's `fast_leave`): `host`'s leave of `group` deletes the
    /// record at once, without last-member queries, when no other host is known to be in
    /// it: none is remembered (the list was not full, so none was evicted), and, where
    /// hosts may suppress reports (IGMPv1/v2, MLDv1 compatibility mode, RFC 9776 §7.3.2),
    /// no other host ever reported it. Otherwise nothing happens here and the leave takes
    /// the normal way (§6.4.2). Returns whether the record went.
    pub fn fast_leave(&mut self, group: A, host: Option<A>, changes: &mut Vec<Change<A>>) -> bool {
        let (Some(host), Some(g)) = (host, self.groups.get(&group)) else {
            return false;
        };
        let suppressing = g.compat() != Generation::V3;
        if g.reporters.any_other(&host)
            || g.reporters.0.len() >= group::MAX_REPORTERS
            || (suppressing && g.shared)
        {
            return false;
        }
        self.remove(group);
        changes.push(Change::GroupRemoved {
            group,
            reason: Removal::Left { queried: false },
        });
        true
    }
}

/// A report that says its host left the group: an IGMPv2 Leave / MLDv1 Done, or a
/// TO_IN({}) record (RFC 9776 §5.1: "leaving the group").
pub fn is_group_leave<A>(r: &Report<A>) -> bool {
    match r {
        Report::Leave(_) => true,
        Report::Record(RecordType::ChangeToInclude, _, s) => s.is_empty(),
        _ => false,
    }
}
