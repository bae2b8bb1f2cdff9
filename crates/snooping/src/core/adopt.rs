//! Adoption at start: MDB entries igmpd left (its protocol value) become memberships with
//! a fresh group membership interval, refreshed by hosts that still report (RFC 9776
//! §6.4.1 rows from an empty record recreate their state), removed when they do not.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_querier::core::membership::Change;
use igmpd_querier::core::{Instant, Report};
use igmpd_wire::RecordType;

use super::domain::Slot;
use super::snooper::{vlan_entry, Snooper};
use super::{EntryFilter, EntryKey};

impl Snooper {
    /// An MDB entry with igmpd's protocol value found at start (left by an earlier run):
    /// it keeps forwarding, and becomes a membership with a fresh group membership
    /// interval, refreshed by hosts that still report and removed when they do not.
    pub fn adopt(&mut self, now: Instant, key: EntryKey, filter: EntryFilter, permanent: bool) {
        if !self.sh.ports.contains(&key.port) {
            // Not a port we know (gone, or down): delete it.
            self.sh.mdb.adopt(key, filter, permanent);
            self.sh.set_desired(key, None);
            return;
        }
        self.sh.mdb.adopt(key, filter.clone(), permanent);
        match key.group {
            IpAddr::V4(g) => self.adopt_in::<Ipv4Addr>(now, key, g, &filter),
            IpAddr::V6(g) => self.adopt_in::<Ipv6Addr>(now, key, g, &filter),
        }
    }

    fn adopt_in<A: Slot>(&mut self, now: Instant, key: EntryKey, g: A, filter: &EntryFilter) {
        let srcs: Vec<A> = filter
            .sources()
            .iter()
            .filter_map(|s| A::from_ip(*s))
            .collect();
        // The record that recreates the entry's state (RFC 9776 §6.4.1 rows from an empty
        // record): IS_IN(A) -> INCLUDE(A); IS_EX(Y) -> EXCLUDE({}, Y); IS_EX({}) -> (*,G).
        let record = match filter {
            EntryFilter::Include(_) => Report::Record(RecordType::ModeIsInclude, g, srcs),
            EntryFilter::Exclude(_) | EntryFilter::Any => {
                Report::Record(RecordType::ModeIsExclude, g, srcs)
            }
        };
        let vlan = vlan_entry(&mut self.vlans, &mut self.sh, now, key.vid);
        let Some(d) = A::domain_mut(vlan) else {
            // Family not snooped now: the entry goes.
            self.sh.set_desired(key, None);
            return;
        };
        let timing = d.port_timing();
        let m = d.ports.entry(key.port).or_default();
        let mut changes = Vec::new();
        m.report(now, &timing, None, &record, &mut changes);
        // Adopted entries are not news: only write if the state differs (a temporary entry
        // becomes permanent). They count against the port's limit all the same.
        let before = changes.len();
        changes.retain(|c| !matches!(c, Change::GroupAdded { .. }));
        let st = self.sh.port_state.entry(key.port).or_default();
        st.groups += before - changes.len();
        // Nor are their sources (no `join` for what an earlier igmpd had learned).
        changes.retain(|c| !matches!(c, Change::SourceAdded { .. }));
        if self.sh.cfg.policy.of(key.port).limit_action == super::policy::LimitAction::Replace {
            st.touch(now, key.vid, key.group);
        }
        // What the kernel heard before igmpd ran counts as heard for the flood list.
        self.sh.heard_flood_group(key.vid, key.group);
        self.sh.apply_changes(key.vid, key.port, m, &mut changes);
    }
}
