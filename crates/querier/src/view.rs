//! Core state as the typed status documents of `igmpd status` (igmpd-runtime's
//! [`status`](igmpd_runtime::status) records). Pure: used by the `igmpd query` shell and
//! by the snooper for its bridge-level queriers.

use std::collections::BTreeMap;
use std::fmt::{Debug, Display};
use std::hash::Hash;
use std::net::IpAddr;

use igmpd_runtime::status::{FamilyStatus, FindingDoc, GroupStatus, SourceStatus};

use crate::core::{Finding, GroupView, Instance, Instant, Proto};

impl From<&Finding> for FindingDoc {
    fn from(f: &Finding) -> Self {
        FindingDoc {
            code: f.code,
            severity: f.severity.name(),
            iface: f.iface.clone(),
            message: f.message.clone(),
            hint: f.hint.clone(),
            host: f.host.clone(),
            group: f.group.clone(),
        }
    }
}

/// Milliseconds from `now` until `t` (0 when past).
pub fn ms_until(now: Instant, t: Instant) -> u64 {
    t.saturating_since(now).as_millis() as u64
}

/// A group's source records with the time left on each (0: no timer running).
pub fn sources_status<A: Copy + Into<IpAddr>>(
    g: &GroupView<'_, A>,
    now: Instant,
) -> Vec<SourceStatus> {
    g.sources
        .iter()
        .map(|(s, t)| SourceStatus {
            address: (*s).into(),
            expires_in_ms: t.map_or(0, |t| ms_until(now, t)),
        })
        .collect()
}

/// The querier section of one instance: election, timers in use and its groups (without
/// per-host report times: `reporters` is None), in the membership's own order
/// ([`StatusDoc::sort`](igmpd_runtime::status::StatusDoc::sort) orders them).
pub fn instance_status<A>(
    inst: &Instance<A>,
    now: Instant,
    proto: Proto,
    drops: BTreeMap<&'static str, u64>,
) -> FamilyStatus
where
    A: Ord + Copy + Hash + Debug + Display + Into<IpAddr>,
{
    let ms = |t: Instant| ms_until(now, t);
    FamilyStatus {
        version: inst.effective_version().version(proto),
        configured_version: inst.config().version.version(proto),
        role: inst.role().name(),
        address: inst.address().map(|a| a.to_string()),
        querier_address: inst.querier_address().map(|a| a.to_string()),
        other_querier_expires_in_ms: inst.other_querier_expires().map_or(0, ms),
        robustness: inst.robustness(),
        query_interval_ms: inst.query_interval().as_millis() as u64,
        queries_sent: inst.queries_sent(),
        drops,
        groups: inst
            .membership()
            .groups_unordered()
            .map(|g| GroupStatus {
                group: g.group.into(),
                filter_mode: g.mode.name(),
                sources: sources_status(&g, now),
                last_reporter: g.last_reporter.map(Into::into),
                reporters: None,
                compat_version: g.compat.version(proto),
                expires_in_ms: g.expires.map_or(0, ms),
            })
            .collect(),
    }
}
