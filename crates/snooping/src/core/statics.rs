//! Static groups: memberships an operator configured on a port (`static_groups` in the
//! config, `igmpd static add`), written to the MDB like learned ones but never expiring,
//! counted against no limit (neither the port's `max_groups` nor its share of the MDB near
//! the limit), and merged with what the port's hosts report: the entry forwards what
//! either wants (a static (*,G) forwards every source; a static (S,G) adds S to a learned
//! INCLUDE list and takes S out of a learned EXCLUDE list).
//!
//! The core keeps each port's static groups whether or not the port is up; they are in the
//! MDB while the port is up in the bridge (and, with a VLAN, in that VLAN). A static group
//! without a VLAN on a VLAN-filtering bridge is in the port's PVID, where its untagged
//! hosts' joins would be; one with a VLAN on a bridge that does not filter VLANs is not
//! written (such a bridge has no VLANs: an entry with a vid would never match).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::domain::{Shared, Slot};
use super::snooper::Snooper;
use super::{EntryFilter, EntryKey, StaticGroup, StaticSources};

/// What an entry forwards given what its hosts want (`learned`) and its static groups:
/// every source either wants. Without source filtering (`filtering` false: the bridge looks
/// up no (S,G) entries) a static (S,G) is a plain (*,G), as a learned one is.
pub(super) fn merge(
    learned: Option<EntryFilter>,
    statics: Option<&StaticSources>,
    filtering: bool,
) -> Option<EntryFilter> {
    let Some(st) = statics.filter(|s| !s.is_empty()) else {
        return learned;
    };
    if st.contains(&None) || !filtering {
        return Some(EntryFilter::Any);
    }
    let wanted = st.iter().flatten().copied();
    Some(match learned {
        None => EntryFilter::Include(wanted.collect()),
        Some(EntryFilter::Any) => EntryFilter::Any,
        Some(EntryFilter::Include(mut s)) => {
            s.extend(wanted);
            s.sort_unstable();
            s.dedup();
            EntryFilter::Include(s)
        }
        Some(EntryFilter::Exclude(mut y)) => {
            let st: BTreeSet<IpAddr> = wanted.collect();
            y.retain(|b| !st.contains(b));
            if y.is_empty() {
                EntryFilter::Any
            } else {
                EntryFilter::Exclude(y)
            }
        }
    })
}

impl Shared {
    /// `learned` with `key`'s static groups merged in.
    pub(super) fn with_statics(
        &self,
        key: &EntryKey,
        learned: Option<EntryFilter>,
    ) -> Option<EntryFilter> {
        let filtering = match key.group {
            IpAddr::V4(_) => Ipv4Addr::source_filtering(&self.cfg),
            IpAddr::V6(_) => Ipv6Addr::source_filtering(&self.cfg),
        };
        if self.flood.keys.contains(key) {
            // A flooded group forwards every source (see `flood`).
            return Some(EntryFilter::Any);
        }
        merge(learned, self.static_keys.get(key), filtering)
    }

    /// The keys of static and flooded groups' entries.
    pub(super) fn written_keys(&self) -> Vec<EntryKey> {
        let statics = self.static_keys.keys();
        statics.chain(&self.flood.keys).copied().collect()
    }

    /// The bridge went down: no static or flooded entry is in the MDB (the flooded groups
    /// heard of stay, written again when the bridge is back).
    pub(super) fn clear_written(&mut self) {
        self.static_keys.clear();
        self.flood.keys.clear();
    }

    /// The MDB keys the static groups of every port up make now, with their sources.
    fn effective_statics(&self) -> BTreeMap<EntryKey, StaticSources> {
        let mut out: BTreeMap<EntryKey, StaticSources> = BTreeMap::new();
        for (port, list) in &self.statics {
            if !self.bridge_up || !self.ports.contains(port) {
                continue;
            }
            for s in list {
                let family_on = match s.group {
                    IpAddr::V4(_) => self.cfg.igmp.is_some(),
                    IpAddr::V6(_) => self.cfg.mld.is_some(),
                };
                let vid = match (self.cfg.vlan_filtering, s.vid) {
                    (false, 0) => 0,
                    // No VLANs on this bridge: an entry with a vid would match nothing.
                    (false, _) => continue,
                    (true, 0) => match self.port_vlans.get(port) {
                        Some(v) => match v.pvid {
                            Some(p) => p,
                            None => continue,
                        },
                        None => 0,
                    },
                    (true, v) => v,
                };
                if !family_on || !self.port_in_vlan(*port, vid) {
                    continue;
                }
                let key = EntryKey {
                    port: *port,
                    vid,
                    group: s.group,
                };
                out.entry(key).or_default().insert(s.source);
            }
        }
        out
    }
}

impl Snooper {
    /// `port`'s static groups (replacing the ones it had); written now where the port is
    /// up.
    pub fn set_port_statics(&mut self, port: u32, groups: BTreeSet<StaticGroup>) {
        if groups.is_empty() {
            self.sh.statics.remove(&port);
        } else {
            self.sh.statics.insert(port, groups);
        }
        self.restatic();
    }

    /// The flooded groups' entries in the MDB now (see `flood`).
    pub fn flood_entries(&self) -> impl Iterator<Item = &EntryKey> {
        self.sh.flood.keys.iter()
    }

    /// Whether `group` is in the flood list.
    pub fn is_flood_group(&self, group: IpAddr) -> bool {
        self.sh.is_flood_group(group)
    }

    /// The static groups in the MDB now, by key, with their sources (None: every source).
    pub fn static_entries(&self) -> impl Iterator<Item = (&EntryKey, &StaticSources)> {
        self.sh.static_keys.iter()
    }

    /// Brings the MDB in line with the static groups after they, the ports, the VLANs or
    /// the source filtering changed: each key whose static part changed is written anew
    /// from its learned membership merged with its static groups.
    pub(super) fn restatic(&mut self) {
        let new = self.sh.effective_statics();
        let old = std::mem::take(&mut self.sh.static_keys);
        let new_flood = self.sh.effective_flood();
        let old_flood = std::mem::take(&mut self.sh.flood.keys);
        let mut changed: BTreeSet<EntryKey> = old_flood
            .symmetric_difference(&new_flood)
            .copied()
            .collect();
        changed.extend(
            old.iter()
                .filter(|(k, s)| new.get(k) != Some(s))
                .map(|(k, _)| *k)
                .chain(
                    new.iter()
                        .filter(|(k, s)| old.get(k) != Some(s))
                        .map(|(k, _)| *k),
                ),
        );
        let exempt = |k: &EntryKey| new.contains_key(k) || new_flood.contains(k);
        for k in old.keys().chain(&old_flood).filter(|k| !exempt(k)) {
            self.sh.mdb.set_exempt(*k, false);
        }
        for k in new.keys().chain(&new_flood) {
            self.sh.mdb.set_exempt(*k, true);
        }
        self.sh.static_keys = new;
        self.sh.flood.keys = new_flood;
        for key in changed {
            self.refresh_key(key);
        }
    }

    /// Writes `key` as its learned membership and static groups want it.
    pub(super) fn refresh_key(&mut self, key: EntryKey) {
        let learned = match key.group {
            IpAddr::V4(g) => self.learned::<Ipv4Addr>(&key, g),
            IpAddr::V6(g) => self.learned::<Ipv6Addr>(&key, g),
        };
        let want = self.sh.with_statics(&key, learned);
        self.sh.set_desired(key, want);
    }

    fn learned<A: Slot>(&self, key: &EntryKey, group: A) -> Option<EntryFilter> {
        let d = self.vlans.get(&key.vid).and_then(A::domain)?;
        let m = d.ports.get(&key.port)?;
        self.sh.desired(m, &group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn sources(list: &[Option<&str>]) -> StaticSources {
        list.iter().map(|s| s.map(ip)).collect()
    }

    #[test]
    fn merge_forwards_what_either_wants() {
        let s1 = sources(&[Some("10.0.0.1")]);
        let any = sources(&[None]);
        assert_eq!(merge(None, None, true), None);
        assert_eq!(
            merge(None, Some(&s1), true),
            Some(EntryFilter::Include(vec![ip("10.0.0.1")]))
        );
        assert_eq!(merge(None, Some(&s1), false), Some(EntryFilter::Any));
        assert_eq!(merge(None, Some(&any), true), Some(EntryFilter::Any));
        assert_eq!(
            merge(
                Some(EntryFilter::Include(vec![ip("10.0.0.2")])),
                Some(&s1),
                true
            ),
            Some(EntryFilter::Include(vec![ip("10.0.0.1"), ip("10.0.0.2")]))
        );
        assert_eq!(
            merge(
                Some(EntryFilter::Exclude(vec![ip("10.0.0.1"), ip("10.0.0.3")])),
                Some(&s1),
                true
            ),
            Some(EntryFilter::Exclude(vec![ip("10.0.0.3")]))
        );
        assert_eq!(
            merge(
                Some(EntryFilter::Exclude(vec![ip("10.0.0.1")])),
                Some(&s1),
                true
            ),
            Some(EntryFilter::Any)
        );
        assert_eq!(
            merge(Some(EntryFilter::Any), Some(&s1), true),
            Some(EntryFilter::Any)
        );
    }

    #[test]
    fn checks_what_the_operator_wrote() {
        let g = |group: &str, source: Option<&str>, vid| StaticGroup {
            group: ip(group),
            source: source.map(ip),
            vid,
        };
        assert!(g("239.1.1.1", None, 0).check().is_ok());
        assert!(g("232.1.1.1", Some("10.0.0.5"), 10).check().is_ok());
        assert!(g("ff3e::1", Some("2001:db8::1"), 0).check().is_ok());
        assert!(g("10.0.0.1", None, 0).check().is_err());
        assert!(g("224.0.0.5", None, 0).check().is_err());
        assert!(g("ff02::1", None, 0).check().is_err());
        assert!(g("239.1.1.1", Some("2001:db8::1"), 0).check().is_err());
        assert!(g("239.1.1.1", Some("239.1.1.2"), 0).check().is_err());
        assert!(g("239.1.1.1", None, 4095).check().is_err());
    }
}
