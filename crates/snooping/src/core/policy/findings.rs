//! The findings of a port's policy state.

use std::net::IpAddr;
use std::time::Duration;

use igmpd_querier::core::observer::{Finding, Severity};
use igmpd_querier::core::Instant;

use super::PortState;

/// How long a refusal, a guard drop or a denied join stays a finding after the last one.
pub const FINDING_HOLD: Duration = Duration::from_secs(300);
/// Denied joins of one host and group before `denied-join` names them (a host that asks
/// again and again, not one stray report).
pub const DENIED_REPEATS: u64 = 3;

/// The findings of one port's policy state: `port-group-limit`, `rogue-querier`,
/// `rogue-router` and `denied-join`, each for [`FINDING_HOLD`] after it last happened.
/// `port` is the port's name, `bridge` the bridge's.
pub fn findings(st: &PortState, now: Instant, bridge: &str, port: &str) -> Vec<Finding> {
    let recent = |t: Instant| t + FINDING_HOLD > now;
    let family = |a: &IpAddr| if a.is_ipv4() { "IGMP" } else { "MLD" };
    let host =
        |h: &Option<IpAddr>| h.map_or_else(|| "an unnamed host".to_owned(), |h| h.to_string());
    let mut out = Vec::new();
    if let Some(h) = st.limit_hit.as_ref().filter(|h| recent(h.at)) {
        out.push(Finding {
            code: "port-group-limit",
            severity: Severity::Warning,
            iface: port.into(),
            host: h.host.map(|a| a.to_string()),
            group: Some(h.group.to_string()),
            message: format!(
                "port {port} of {bridge} holds its limit of {} memberships: {} asked for {} and was refused ({} refused so far)",
                h.limit,
                host(&h.host),
                h.group,
                st.counters.refused
            ),
            hint: format!("if the port needs more, raise max_groups in [bridge.{bridge}.port.{port}] (or limit_action = \"replace\" to keep the newest); otherwise find the host that joins so many groups"),
        });
    }
    for r in st.rogues.iter().filter(|r| recent(r.last)) {
        let (code, what) = match r.kind {
            "querier" => ("rogue-querier", "queries"),
            _ => ("rogue-router", "router announcements (PIM hellos, MRD)"),
        };
        out.push(Finding {
            code,
            severity: Severity::Warning,
            iface: port.into(),
            host: Some(r.source.to_string()),
            group: None,
            message: format!(
                "{} {what} from {} arrived on the guarded port {port} of {bridge} and were dropped ({} so far): the port stays an access port and {} takes no part in the election",
                family(&r.source),
                r.source,
                r.count,
                r.source
            ),
            hint: format!("find what at {} sends them (a host running a querier or a router); if a router really is behind {port}, remove router_guard for it", r.source),
        });
    }
    for d in st
        .denied
        .iter()
        .filter(|d| recent(d.last) && d.count >= DENIED_REPEATS)
    {
        out.push(Finding {
            code: "denied-join",
            severity: Severity::Info,
            iface: port.into(),
            host: d.host.map(|a| a.to_string()),
            group: Some(d.group.to_string()),
            message: format!(
                "{} on port {port} of {bridge} keeps asking for {} ({} times), which the port's ACL denies",
                host(&d.host),
                d.group,
                d.count
            ),
            hint: format!("if {} should receive {}, permit it in the acl of [bridge.{bridge}] or [bridge.{bridge}.port.{port}]", host(&d.host), d.group),
        });
    }
    out
}
