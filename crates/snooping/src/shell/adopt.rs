//! What is in the MDB when snooping starts: igmpd's own entries (left by an earlier igmpd:
//! SIGKILL, or a clean exit's temporary entries) are adopted by the core; every other entry
//! is left alone and counted against the bridge's hash limit. igmpd's own are those with its
//! protocol value, or, on kernels whose entries carry none (before 6.3), those its state
//! file lists (see `state`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use futures::TryStreamExt;
use igmpd_netlink::mdb::{FilterMode, MdbItem, MdbState};
use igmpd_querier::core::Instant;

use super::state::{SavedEntry, SavedState};
use super::{nl, SnoopDaemon, StartError, MDB_PROTO};
use crate::core::{EntryFilter, EntryKey};

/// The MDB keys igmpd may use on a bridge with `hash_max` when `foreign` keys are someone
/// else's. The kernel keeps only a few hundred keys free of its hash limit for entries it
/// learns itself (the bridge's own joins) or others add: igmpd stays this far below.
pub(super) fn entry_limit(hash_max: u32, foreign: usize) -> usize {
    let reserve = (hash_max as usize / 64).max(16);
    (hash_max as usize).saturating_sub(reserve + foreign)
}

impl SnoopDaemon {
    /// Dumps the MDB of `bridge`: igmpd's entries become the core's, the others lower its
    /// entry limit. Returns how many were adopted.
    pub(super) async fn adopt_entries(
        &mut self,
        bridge: u32,
        now: Instant,
    ) -> Result<u64, StartError> {
        let items: Vec<MdbItem> = self
            .handle
            .mdb()
            .dump()
            .bridge(bridge)
            .execute()
            .try_collect()
            .await
            .map_err(nl)?;
        let mut foreign = BTreeSet::new();
        let mut adopted = 0;
        let listed: BTreeSet<SavedEntry> = self.saved.entries.iter().copied().collect();
        // Listed entries of this dump, regrouped as the core writes them.
        let mut found = SavedState::default();
        let mut found_permanent = BTreeMap::new();
        for item in items {
            let MdbItem::Entry(e) = item else { continue };
            let Some(group) = e.group.ip() else { continue };
            let saved = SavedEntry {
                port: e.port,
                vid: e.vid,
                group,
                source: e.source,
            };
            if e.protocol != Some(MDB_PROTO) && listed.contains(&saved) {
                found.entries.push(saved);
                let key = EntryKey {
                    port: e.port,
                    vid: e.vid,
                    group,
                };
                let permanent = e.state == MdbState::Permanent;
                *found_permanent.entry(key).or_insert(permanent) &= permanent;
                continue;
            }
            if e.protocol != Some(MDB_PROTO) {
                foreign.insert((e.vid, group, e.source));
                continue;
            }
            if e.source.is_some() {
                // The kernel's (S,G) children of our (*,G) entries.
                continue;
            }
            let sources: Vec<IpAddr> = e.sources.iter().map(|s| s.address).collect();
            let filter = match (e.filter_mode, sources.is_empty()) {
                (Some(FilterMode::Include), _) => EntryFilter::Include(sources),
                (_, false) => EntryFilter::Exclude(sources),
                _ => EntryFilter::Any,
            };
            let key = EntryKey {
                port: e.port,
                vid: e.vid,
                group,
            };
            self.snooper
                .adopt(now, key, filter, e.state == MdbState::Permanent);
            adopted += 1;
        }
        for (key, filter) in found.entry_filters() {
            let permanent = found_permanent.get(&key).copied().unwrap_or(false);
            self.snooper.adopt(now, key, filter, permanent);
            adopted += 1;
        }
        self.foreign_keys = foreign.len();
        let hash_max = self.bridge.as_ref().map_or(4096, |b| b.hash_max);
        self.snooper
            .set_entry_limit(entry_limit(hash_max, self.foreign_keys));
        self.adopted += adopted;
        Ok(adopted)
    }
}

#[cfg(test)]
mod tests {
    use super::entry_limit;

    #[test]
    fn the_limit_keeps_a_reserve_below_hash_max_and_room_for_others() {
        assert_eq!(entry_limit(4096, 0), 4096 - 64);
        assert_eq!(entry_limit(512, 0), 512 - 16);
        assert_eq!(entry_limit(4096, 100), 4096 - 64 - 100);
        assert_eq!(entry_limit(16, 10), 0);
    }
}
