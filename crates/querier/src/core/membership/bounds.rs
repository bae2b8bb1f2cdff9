//! What a host's report may make a record hold: its sources, at most a limit.

use std::hash::Hash;

use super::Membership;

impl<A: Ord + Copy + Hash> Membership<A> {
    /// Keeps in `sources` those that `group`'s record may take with at most `max` source
    /// records: the ones it has already, then new ones in order until it is full. Returns
    /// how many were dropped. One lookup per source: O(sources × log(record)).
    pub fn admit_sources(&self, group: &A, sources: &mut Vec<A>, max: usize) -> usize {
        let have = self.groups.get(group).map(|g| &g.sources);
        let mut room = max.saturating_sub(have.map_or(0, |s| s.len()));
        let before = sources.len();
        sources.retain(|s| {
            if have.is_some_and(|h| h.contains_key(s)) {
                true
            } else if room > 0 {
                room -= 1;
                true
            } else {
                false
            }
        });
        before - sources.len()
    }
}
