//! MDB writes the kernel refused, written again with back-off.
//!
//! A refused add (the port's `mcast_max_groups`, the bridge's hash limit, a port that is
//! going away) used to wait for the membership's next change, which for a steady member
//! may be never: the host is a member and receives nothing. Each refused key is written
//! again from the membership as it is then, 1 s after the first refusal, then 2, 4, ... up
//! to 60 s apart, for as long as it is refused and wanted; each refusal is counted. While a
//! key has been refused within the last [`FAILING_FOR`], finding `mdb-write-failing`
//! names the bridge, the port, the group and the kernel's error.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use igmpd_querier::core::{Finding, Instant, Severity};

use super::domain::Slot;
use super::mdb::retry::{delay, Retry, FAILING_FOR, MAX_KEYS};
use super::snooper::Snooper;
use super::EntryKey;

impl Snooper {
    /// A write of `key` the kernel refused with `error`: the entry's kernel state is
    /// unknown; it is written again after a delay that doubles with each refusal in a row.
    pub fn mdb_write_failed(&mut self, now: Instant, key: &EntryKey, error: &str) {
        self.sh.mdb.write_failed(key);
        let r = &mut self.retries;
        r.refused_total += 1;
        if !r.keys.contains_key(key) && r.keys.len() >= MAX_KEYS {
            return;
        }
        let e = r.keys.entry(*key).or_insert(Retry {
            refusals: 0,
            due: None,
            last: now,
            error: String::new(),
        });
        e.refusals = e.refusals.saturating_add(1);
        e.due = Some(now + delay(e.refusals));
        e.last = now;
        e.error = error.to_owned();
    }

    /// Writes every refused key that is due again, from its membership as it is now
    /// (nothing if the membership went); forgets keys refused no more for [`FAILING_FOR`].
    pub(super) fn poll_retries(&mut self, now: Instant) {
        // Runs at every poll of the core: nothing to do in the common case.
        if self.retries.keys.is_empty() {
            return;
        }
        let due: Vec<EntryKey> = self
            .retries
            .keys
            .iter()
            .filter(|(_, r)| r.due.is_some_and(|t| t <= now))
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let want = match key.group {
                IpAddr::V4(g) => self.desired_of::<Ipv4Addr>(&key, g),
                IpAddr::V6(g) => self.desired_of::<Ipv6Addr>(&key, g),
            };
            match want {
                Some(w) => {
                    if let Some(r) = self.retries.keys.get_mut(&key) {
                        r.due = None;
                    }
                    self.sh.set_desired(key, Some(w));
                }
                None => {
                    self.retries.keys.remove(&key);
                }
            }
        }
        self.retries
            .keys
            .retain(|_, r| r.due.is_some() || r.last + FAILING_FOR > now);
    }

    /// What `key`'s membership wants written now (None: no membership, or nothing to
    /// forward).
    fn desired_of<A: Slot>(&self, key: &EntryKey, group: A) -> Option<super::EntryFilter> {
        let d = A::domain(self.vlans.get(&key.vid)?)?;
        let m = d.ports.get(&key.port)?;
        self.sh.desired(m, &group)
    }

    /// Finding `mdb-write-failing` per port with keys refused within [`FAILING_FOR`]:
    /// bridge, port, a group, the error and how many are failing. `name` gives a port's name.
    pub fn retry_findings(
        &self,
        now: Instant,
        bridge: &str,
        name: impl Fn(u32) -> String,
    ) -> Vec<Finding> {
        let mut per_port: BTreeMap<u32, (usize, &EntryKey, &Retry)> = BTreeMap::new();
        for (k, r) in &self.retries.keys {
            if r.last + FAILING_FOR <= now {
                continue;
            }
            per_port
                .entry(k.port)
                .and_modify(|e| e.0 += 1)
                .or_insert((1, k, r));
        }
        per_port
            .into_iter()
            .map(|(port, (n, k, r))| {
                let port = name(port);
                let vlan = if k.vid == 0 {
                    String::new()
                } else {
                    format!(" in VLAN {}", k.vid)
                };
                Finding {
                    code: "mdb-write-failing",
                    severity: Severity::Error,
                    iface: bridge.to_owned(),
                    message: format!(
                        "the kernel refuses the MDB entry of {} on {bridge} port {port}{vlan} ({}; {n} entr{} failing, {} refusals in a row): members there receive nothing",
                        k.group,
                        r.error,
                        if n == 1 { "y" } else { "ies" },
                        r.refusals
                    ),
                    hint: format!(
                        "see why the kernel refuses it (a port's mcast_max_groups, the bridge's mcast_hash_max: ip -d link show {port}); igmpd writes it again every minute at most"
                    ),
                    host: None,
                    group: Some(k.group.to_string()),
                }
            })
            .collect()
    }
}
