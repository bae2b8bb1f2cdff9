//! What the doctor concludes from what it heard: the observers' findings (no querier, a
//! 0.0.0.0 querier, queriers fighting, ...), this host's own unanswered queries with the
//! firewall rule to blame, and a snooping bridge without a querier. (`host-silent` is the
//! probe's.)

use std::time::Duration;

use igmpd_querier::core::{Finding, Instant, Proto, Severity};

use super::capture::Heard;
use super::firewall;
use super::memberships::Local;

/// Whether this host answered the general queries it received, per family (see
/// `capture::Family::answered`).
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    /// IGMP.
    pub v4: Option<bool>,
    /// MLD.
    pub v6: Option<bool>,
}

impl Answered {
    /// As heard by `end`.
    pub fn by(heard: &Heard, end: Instant) -> Answered {
        Answered {
            v4: heard.v4.answered(end),
            v6: heard.v6.answered(end),
        }
    }
}

/// The findings on `iface` from what was heard by `end` (the end of listening).
pub fn of(
    heard: &Heard,
    groups: &Local,
    answered: Answered,
    iface: &str,
    end: Instant,
) -> Vec<Finding> {
    // Listening started at the observers' epoch: a querier heard of is one still present.
    let present = end
        .saturating_since(Instant::ZERO)
        .max(Duration::from_millis(1));
    let mut findings = heard.v4.obs.findings(end, iface, present, false);
    findings.extend(heard.v6.obs.findings(end, iface, present, false));
    // This host's own kernel: did it answer the queries it received?
    for (v6, answered, groups) in [
        (false, answered.v4, strings(&groups.v4)),
        (true, answered.v6, strings(&groups.v6)),
    ] {
        if answered == Some(false) && !groups.is_empty() {
            findings.push(blocked_locally(v6, iface, &groups));
        }
    }
    // A Linux bridge with snooping and nobody querying forgets every membership.
    if is_snooping_bridge(iface) && heard.v4.obs.queriers().all(|q| q.address.is_none()) {
        findings.retain(|f| f.code != "no-querier");
        findings.push(Finding::snooping_without_querier(iface, Proto::Igmp, None));
    }
    findings
}

fn strings<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

/// Errors first, then by code.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.code.cmp(b.code)));
}

/// Queries of one family arrive and this host, a member of `groups`, never answers them:
/// the local firewall's verdict says why.
fn blocked_locally(v6: bool, iface: &str, groups: &[String]) -> Finding {
    let (code, what) = if v6 {
        ("mld-blocked-locally", "MLD")
    } else {
        ("igmp-blocked-locally", "IGMP")
    };
    let verdict = firewall::check(&firewall::Probe {
        v6,
        iface: iface.to_string(),
    });
    let (cause, hint) = match &verdict {
        firewall::Verdict::Dropped(c) => (format!(": the {} drops them", c.describe()), c.fix(v6)),
        firewall::Verdict::Unknown(why) => (format!("; the firewall may explain it: {why}"), format!("make sure {what} queries are accepted on {iface} before any drop rule")),
        firewall::Verdict::Accepted => (
            "; no local firewall rule explains it (check `sysctl net.ipv4.conf.IFACE.force_igmp_version`, rp_filter, or another filter such as a bridge or ebtables rule)".to_string(),
            format!("capture on {iface} (`tcpdump -ni {iface} igmp`) to see which side drops the answers"),
        ),
    };
    Finding {
        code,
        severity: Severity::Error,
        iface: iface.to_string(),
        host: None,
        group: (groups.len() == 1).then(|| groups[0].clone()),
        message: format!(
            "{what} queries arrive on {iface}, but this host's kernel never answered them although it is a member of {}{cause}",
            groups.join(", ")
        ),
        hint,
    }
}

fn is_snooping_bridge(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/bridge/multicast_snooping"))
        .is_ok_and(|s| s.trim() == "1")
}
