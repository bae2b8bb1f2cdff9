//! What an operator asks of the running snooper: static groups added and deleted at
//! runtime (`igmpd static`; kept in the state file until deleted, so that they survive a
//! restart) beside the configured ones (`static_groups`), and `igmpd flush`.

use std::collections::BTreeSet;

use igmpd_runtime::control::{FlushRequest, StaticRequest};
use igmpd_runtime::events::Event;
use tracing::info;

use super::SnoopDaemon;
use crate::core::StaticGroup;

impl SnoopDaemon {
    /// `name`'s static groups: the configured ones and those added at runtime.
    fn statics_of(&self, name: &str) -> BTreeSet<StaticGroup> {
        let mut set = self
            .settings
            .static_groups
            .get(name)
            .cloned()
            .unwrap_or_default();
        if let Some(r) = self.runtime_statics.get(name) {
            set.extend(r.iter().copied());
        }
        set
    }

    /// Gives the core the static groups of the port `ifindex` called `name`.
    pub(super) fn apply_statics(&mut self, ifindex: u32, name: &str) {
        let set = self.statics_of(name);
        self.snooper.set_port_statics(ifindex, set);
    }

    fn check_bridge(&self, bridge: &str) -> Result<(), String> {
        if bridge == self.settings.bridge {
            Ok(())
        } else {
            Err(igmpd_runtime::control::no_bridges(bridge))
        }
    }

    /// `igmpd static add|del`.
    pub(super) fn static_request(&mut self, r: StaticRequest) -> Result<String, String> {
        self.check_bridge(&r.bridge)?;
        let g = StaticGroup {
            group: r.group,
            source: r.source,
            vid: r.vid,
        };
        g.check()?;
        let what = describe(&r);
        let port = self.ports.iter().find(|(_, p)| p.name == r.port);
        let ifindex = port.map(|(i, _)| *i);
        if r.add {
            if ifindex.is_none() {
                return Err(format!("{} is not a port of {}", r.port, r.bridge));
            }
            let configured = self
                .settings
                .static_groups
                .get(&r.port)
                .is_some_and(|s| s.contains(&g));
            if configured
                || !self
                    .runtime_statics
                    .entry(r.port.clone())
                    .or_default()
                    .insert(g)
            {
                return Err(format!("{what} is a static group already"));
            }
        } else {
            let removed = self
                .runtime_statics
                .get_mut(&r.port)
                .is_some_and(|s| s.remove(&g));
            if !removed {
                let configured = self
                    .settings
                    .static_groups
                    .get(&r.port)
                    .is_some_and(|s| s.contains(&g));
                return Err(if configured {
                    format!("{what} is in the config file: delete it there and reload")
                } else {
                    format!("{what} is no static group")
                });
            }
            if self
                .runtime_statics
                .get(&r.port)
                .is_some_and(BTreeSet::is_empty)
            {
                self.runtime_statics.remove(&r.port);
            }
        }
        // On disk before the kernel has it: a restart after a crash still knows it.
        self.save_state();
        if let Some(i) = ifindex {
            self.apply_statics(i, &r.port);
        }
        let verb = if r.add { "added" } else { "deleted" };
        info!(bridge = %r.bridge, port = %r.port, group = %r.group, source = ?r.source, vid = r.vid, "static group {verb}");
        self.monitor.emit(|| {
            Event::static_entry(
                r.add,
                &self.place,
                r.port.as_str().into(),
                r.vid,
                r.group,
                r.source,
            )
        });
        Ok(format!("static group {what} {verb}"))
    }

    /// `igmpd flush`.
    pub(super) fn flush_request(&mut self, r: FlushRequest) -> Result<String, String> {
        self.check_bridge(&r.bridge)?;
        if !self.active {
            return Err(format!("{} is not being snooped now (down?)", r.bridge));
        }
        let port = match &r.port {
            Some(name) => Some(
                self.ports
                    .iter()
                    .find(|(_, p)| p.name == *name)
                    .map(|(i, _)| *i)
                    .ok_or_else(|| format!("{name} is not a port of {}", r.bridge))?,
            ),
            None => None,
        };
        let now = self.now();
        let done = self.snooper.flush(now, port, r.group);
        info!(bridge = %r.bridge, port = ?r.port, group = ?r.group, memberships = done.memberships, queries = done.queries, "flushed");
        let asked = if done.queries > 0 {
            "a general query asks the hosts to report again"
        } else {
            "hosts report again at the querier's next query"
        };
        Ok(format!(
            "{} learned membership{} forgotten; {asked}",
            done.memberships,
            if done.memberships == 1 { "" } else { "s" }
        ))
    }
}

fn describe(r: &StaticRequest) -> String {
    let mut s = match r.source {
        Some(src) => format!("({src}, {})", r.group),
        None => r.group.to_string(),
    };
    if r.vid != 0 {
        s.push_str(&format!(" vlan {}", r.vid));
    }
    format!("{s} on {}", r.port)
}
