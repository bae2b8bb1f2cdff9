//! Diagnosis of one segment: who queries, who answers, who went silent.
//!
//! An [`Observer`] sees every query and report on a segment (the querier feeds it what it
//! receives and what it sends; `igmpd doctor` feeds it what it captures) and turns what it
//! saw into [`Finding`]s. Pure and sans-IO like the rest of the core: time comes in as an
//! argument.
//!
//! Finding codes are a contract with users and scripts: new ones may be added, none renamed.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Display;
use std::hash::Hash;
use std::time::Duration;

use super::config::{Generation, Proto};
use super::instance::{adoptable, QueryIn, ADOPTABLE_QQI, ADOPTABLE_QRV};
use super::membership::Report;
use super::time::Instant;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; nothing is broken.
    Info,
    /// Something is wrong or fragile.
    Warning,
    /// Multicast is (or will be) lost.
    Error,
}

impl Severity {
    /// "info", "warning" or "error".
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One diagnosis: what was seen (`message`) and what to change (`hint`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable code, e.g. `member-silent`.
    pub code: &'static str,
    /// Severity.
    pub severity: Severity,
    /// Interface it was seen on.
    pub iface: String,
    /// The host concerned, if one.
    pub host: Option<String>,
    /// The group concerned, if one.
    pub group: Option<String>,
    /// What was seen.
    pub message: String,
    /// What to change.
    pub hint: String,
}

impl Finding {
    /// `snooping-without-querier`: a Linux bridge snoops `proto` on `iface` and no querier
    /// with an address was heard (for `heard_for`, when known): its ports' memberships
    /// expire after the membership interval and multicast to the members stops. Raised by
    /// `igmpd snoop` without `--querier` and by the doctor on a snooping bridge.
    pub fn snooping_without_querier(
        iface: &str,
        proto: Proto,
        heard_for: Option<Duration>,
    ) -> Finding {
        let p = match proto {
            Proto::Igmp => "IGMP",
            Proto::Mld => "MLD",
        };
        let during = heard_for.map_or(String::new(), |d| format!(" for {} s", d.as_secs()));
        Finding {
            code: "snooping-without-querier",
            severity: Severity::Error,
            iface: iface.into(),
            host: None,
            group: None,
            message: format!(
                "{iface} snoops {p} but no {p} querier with an address was heard{during}: memberships expire after the membership interval (260 s by default) and multicast to the members stops"
            ),
            hint: format!(
                "run `igmpd snoop {iface} --querier` (or `igmpd query {iface}`), or enable a querier on the LAN: the router's {p} querier, or the bridge's own from an address (`ip link set {iface} type bridge mcast_querier 1 mcast_query_use_ifaddr 1` with an address on the bridge)"
            ),
        }
    }

    /// A key that identifies "the same finding" across evaluations (to log it once).
    pub fn key(&self) -> (String, &'static str, Option<String>, Option<String>) {
        (
            self.iface.clone(),
            self.code,
            self.host.clone(),
            self.group.clone(),
        )
    }
}

/// A querier as seen on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerierSeen<A> {
    /// Its source address; None for 0.0.0.0 (or ::).
    pub address: Option<A>,
    /// Version of its latest general query.
    pub gen: Generation,
    /// QRV it announced (0 if none).
    pub qrv: u8,
    /// Query interval it announced, if any.
    pub qqi: Option<Duration>,
    /// Max Resp Time of its general queries.
    pub max_resp: Duration,
    /// General queries seen.
    pub general_queries: u64,
    /// Times of its recent general queries (newest last, a few kept).
    pub recent: Vec<Instant>,
    /// When it was last heard.
    pub last_seen: Instant,
    /// True when this is us.
    pub ours: bool,
}

/// A reporting host.
#[derive(Debug, Clone)]
pub struct HostSeen<A> {
    /// Last report of any kind.
    pub last_report: Instant,
    /// Groups it reported (joins and current-state), minus groups it left. A hash set:
    /// every captured report touches it.
    pub groups: HashSet<A>,
    /// Version of its latest report.
    pub gen: Generation,
}

/// How many hosts are remembered at most (the oldest are forgotten first, an eighth at a
/// time: one sort per 512 new hosts instead of a scan of all per new host).
const MAX_HOSTS: usize = 4096;
/// How many groups are remembered per host (a host that joins more is still served by the
/// membership state; only the diagnosis stops listing them).
const MAX_HOST_GROUPS: usize = 64;
/// How many query sources are remembered at most, besides those pruned after the Other
/// Querier Present Interval (a LAN has one querier and a few candidates).
const MAX_QUERIERS: usize = 64;
/// How many recent query times are kept per querier.
const RECENT: usize = 8;
/// Slack after a query's response window before a host counts as not answering: hosts
/// answer within Max Resp Time, plus transmission and scheduling delay.
const GRACE: Duration = Duration::from_millis(500);

/// Everything seen on one segment for one family.
#[derive(Debug, Clone)]
pub struct Observer<A> {
    proto: Proto,
    queriers: BTreeMap<Option<A>, QuerierSeen<A>>,
    hosts: BTreeMap<A, HostSeen<A>>,
    started: Instant,
    /// Newest report version seen recently, and when.
    newest_report: Option<(Generation, Instant)>,
}

impl<A: Ord + Copy + Hash + Display> Observer<A> {
    /// Starts observing at `now`.
    pub fn new(proto: Proto, now: Instant) -> Self {
        Observer {
            proto,
            queriers: BTreeMap::new(),
            hosts: BTreeMap::new(),
            started: now,
            newest_report: None,
        }
    }

    /// A query from `src` (None: unspecified address). `ours` marks queries we sent.
    pub fn query(&mut self, now: Instant, src: Option<A>, q: &QueryIn<A>, ours: bool) {
        if q.group.is_some() {
            // Specific queries say nothing about who the querier is or who answers.
            return;
        }
        if !self.queriers.contains_key(&src) && self.queriers.len() >= MAX_QUERIERS {
            if let Some(oldest) = self
                .queriers
                .values()
                .min_by_key(|q| q.last_seen)
                .map(|q| q.address)
            {
                self.queriers.remove(&oldest);
            }
        }
        let e = self.queriers.entry(src).or_insert_with(|| QuerierSeen {
            address: src,
            gen: q.gen,
            qrv: q.qrv,
            qqi: q.qqi,
            max_resp: q.max_resp,
            general_queries: 0,
            recent: Vec::new(),
            last_seen: now,
            ours,
        });
        e.gen = q.gen;
        e.qrv = q.qrv;
        e.qqi = q.qqi;
        e.max_resp = q.max_resp;
        e.general_queries += 1;
        e.last_seen = now;
        e.ours = ours;
        e.recent.push(now);
        if e.recent.len() > RECENT {
            e.recent.remove(0);
        }
    }

    /// A report from `reporter`; `gen` is the message's version.
    pub fn report(&mut self, now: Instant, reporter: Option<A>, r: &Report<A>, gen: Generation) {
        let Some(h) = reporter else { return };
        if self
            .newest_report
            .is_none_or(|(g, t)| gen >= g || now.saturating_since(t) > Duration::from_secs(600))
        {
            self.newest_report = Some((gen, now));
        }
        if !self.hosts.contains_key(&h) && self.hosts.len() >= MAX_HOSTS {
            let mut by_age: Vec<(Instant, A)> = self
                .hosts
                .iter()
                .map(|(a, s)| (s.last_report, *a))
                .collect();
            by_age.sort_unstable();
            for (_, a) in by_age.iter().take(MAX_HOSTS / 8) {
                self.hosts.remove(a);
            }
        }
        let e = self.hosts.entry(h).or_insert_with(|| HostSeen {
            last_report: now,
            groups: HashSet::new(),
            gen,
        });
        e.last_report = now;
        e.gen = gen;
        use igmpd_wire::RecordType::*;
        match r {
            Report::V1(g) | Report::V2(g) => {
                if e.groups.len() < MAX_HOST_GROUPS {
                    e.groups.insert(*g);
                }
            }
            Report::Leave(g) => {
                e.groups.remove(g);
            }
            Report::Record(t, g, s) => match t {
                ModeIsExclude | ChangeToExclude | ModeIsInclude | AllowNew
                    if !(matches!(t, ModeIsInclude) && s.is_empty())
                        && e.groups.len() < MAX_HOST_GROUPS =>
                {
                    e.groups.insert(*g);
                }
                ChangeToInclude | ModeIsInclude if s.is_empty() => {
                    e.groups.remove(g);
                }
                _ => {}
            },
        }
    }

    /// Forgets the query sources not heard for `keep` (the Other Querier Present
    /// Interval): a source seen once, or a spoofed one, does not stay for ever.
    pub fn prune_queriers(&mut self, now: Instant, keep: Duration) {
        self.queriers.retain(|_, q| q.last_seen + keep > now);
    }

    /// Queriers seen, lowest address first (0.0.0.0 first of all).
    pub fn queriers(&self) -> impl Iterator<Item = &QuerierSeen<A>> {
        self.queriers.values()
    }

    /// Reporting hosts.
    pub fn hosts(&self) -> impl Iterator<Item = (&A, &HostSeen<A>)> {
        self.hosts.iter()
    }

    /// The elected querier as hosts see it: the lowest non-zero source heard within
    /// `present` (the other querier present interval).
    fn elected(&self, now: Instant, present: Duration) -> Option<&QuerierSeen<A>> {
        self.queriers
            .values()
            .filter(|q| q.address.is_some() && q.last_seen + present > now)
            .min_by_key(|q| q.address)
    }

    /// General query times whose response window has closed, from every querier.
    fn closed_rounds(&self, now: Instant) -> Vec<Instant> {
        let mut v: Vec<Instant> = self
            .queriers
            .values()
            .flat_map(|q| {
                q.recent
                    .iter()
                    .filter(move |t| **t + q.max_resp + GRACE <= now)
                    .copied()
            })
            .collect();
        v.sort();
        v.dedup_by(|a, b| a.saturating_since(*b) < Duration::from_millis(200));
        v
    }

    /// The findings for what was seen up to `now`. `present` is the Other Querier Present
    /// Interval (how long a silent querier still counts); `we_query` is true when this
    /// observer's owner is an active querier (then "no querier" cannot apply).
    pub fn findings(
        &self,
        now: Instant,
        iface: &str,
        present: Duration,
        we_query: bool,
    ) -> Vec<Finding> {
        let mut out = Vec::new();
        let p = self.proto;
        let (pname, query_word) = match p {
            Proto::Igmp => ("IGMP", "IGMP"),
            Proto::Mld => ("MLD", "MLD"),
        };
        let recent: Vec<&QuerierSeen<A>> = self
            .queriers
            .values()
            .filter(|q| q.last_seen + present > now)
            .collect();
        let named: Vec<&QuerierSeen<A>> = recent
            .iter()
            .copied()
            .filter(|q| q.address.is_some())
            .collect();
        // no-querier / querier-zero-source
        if !we_query && now.saturating_since(self.started) >= present && named.is_empty() {
            if recent.iter().any(|q| q.address.is_none()) {
                out.push(Finding {
                    code: "querier-zero-source",
                    severity: Severity::Warning,
                    iface: iface.into(),
                    host: None,
                    group: None,
                    message: format!("only {pname} queries from the unspecified address were seen: many hosts and switches ignore them, so memberships may expire"),
                    hint: format!(
                        "give the querier an address (Linux bridge: an address on the bridge and `ip link set BRIDGE type bridge mcast_query_use_ifaddr 1`), or run `igmpd query {iface}`"
                    ),
                });
            } else {
                out.push(Finding {
                    code: "no-querier",
                    severity: Severity::Error,
                    iface: iface.into(),
                    host: None,
                    group: None,
                    message: format!("no {query_word} querier was heard for {}: snooping switches expire memberships and multicast stops about 260 s after each join", fmt_dur(now.saturating_since(self.started).min(present))),
                    hint: format!("run a querier: `igmpd query {iface}` (or enable the router's {pname} querier)"),
                });
            }
        }
        // multiple-queriers: two or more addresses keep sending general queries.
        let fighting: Vec<&QuerierSeen<A>> = named
            .iter()
            .copied()
            .filter(|q| q.recent.iter().filter(|t| **t + present > now).count() >= 2)
            .filter(|q| {
                let qi = q.qqi.unwrap_or(Duration::from_secs(125));
                q.recent
                    .last()
                    .is_some_and(|t| *t + qi * 2 + q.max_resp > now)
            })
            .collect();
        if fighting.len() >= 2 {
            let names: Vec<String> = fighting
                .iter()
                .map(|q| q.address.map(|a| a.to_string()).unwrap_or_default())
                .collect();
            out.push(Finding {
                code: "multiple-queriers",
                severity: Severity::Warning,
                iface: iface.into(),
                host: None,
                group: None,
                message: format!("{} {pname} queriers keep querying: {} (the election should leave one; a querier that does not yield to a lower address, or one that cannot hear the others, causes this)", names.len(), names.join(", ")),
                hint: "check that every querier hears the others' queries (firewalls, VLANs) and runs a standard election; stop all but one".into(),
            });
        }
        // querier-timers-ignored: a querier announces a robustness or interval we do not
        // adopt (a misconfigured router, or a forged query).
        for q in &named {
            let (qrv_ok, qqi_ok) = adoptable(q.qrv, q.qqi);
            if qrv_ok && qqi_ok || q.ours {
                continue;
            }
            let from = q.address.map(|a| a.to_string()).unwrap_or_default();
            let qqi = q.qqi.map_or(0, |d| d.as_secs());
            out.push(Finding {
                code: "querier-timers-ignored",
                severity: Severity::Warning,
                iface: iface.into(),
                host: Some(from.clone()),
                group: None,
                message: format!(
                    "the {pname} querier {from} announces robustness {} and query interval {qqi} s; outside {}..={} and {}..={} s they are not adopted (they would set every membership's lifetime), the configured timers stay in use",
                    q.qrv,
                    ADOPTABLE_QRV.start(),
                    ADOPTABLE_QRV.end(),
                    ADOPTABLE_QQI.start().as_secs(),
                    ADOPTABLE_QQI.end().as_secs(),
                ),
                hint: format!("configure {from}'s querier with a robustness of 2..7 and a query interval of 1..3600 s; if no router should query here, find the host that sends these queries (`igmpd status` names the port) and guard its port (`router_guard = true`)"),
            });
        }
        // querier-version-mismatch
        if let Some(q) = self.elected(now, present) {
            let querier_v = q.gen.version(p);
            if let Some((g, t)) = self.newest_report {
                if t + present > now && g > q.gen {
                    out.push(Finding {
                        code: "querier-version-mismatch",
                        severity: Severity::Warning,
                        iface: iface.into(),
                        host: None,
                        group: None,
                        message: format!(
                            "the {pname} querier {} sends version {querier_v} queries but hosts send version {} reports",
                            q.address.map(|a| a.to_string()).unwrap_or_default(),
                            g.version(p)
                        ),
                        hint: format!("run the querier at version {} (igmpd: --{}-version {}), or check hosts' forced versions", g.version(p), p.name(), g.version(p)),
                    });
                }
            }
            let older: Vec<String> = self
                .hosts
                .iter()
                .filter(|(_, h)| {
                    h.gen < q.gen && h.last_report + present > now && !h.groups.is_empty()
                })
                .map(|(a, h)| format!("{a} (v{})", h.gen.version(p)))
                .collect();
            if !older.is_empty() {
                out.push(Finding {
                    code: "querier-version-mismatch",
                    severity: Severity::Info,
                    iface: iface.into(),
                    host: None,
                    group: None,
                    message: format!("hosts answer the version {querier_v} querier with older reports: {}; source filters do not apply to the groups they join", older.join(", ")),
                    hint: "if these hosts can run the querier's version, unset their forced version (sysctl net.ipv4.conf.IF.force_igmp_version / net.ipv6.conf.IF.force_mld_version = 0)".into(),
                });
            }
        }
        // member-silent: a host that reported groups stopped answering while others answer.
        let rounds = self.closed_rounds(now);
        // Every host's last report, sorted: "how many others answered after t" is one
        // binary search, not a scan of every host per host.
        let mut last_reports: Vec<Instant> = self.hosts.values().map(|h| h.last_report).collect();
        last_reports.sort_unstable();
        for (h, s) in &self.hosts {
            if s.groups.is_empty() {
                continue;
            }
            let missed: Vec<&Instant> = rounds.iter().filter(|t| **t > s.last_report).collect();
            if missed.len() < 2 {
                continue;
            }
            let Some(latest) = missed.last() else {
                continue;
            };
            // This host's own last report is before `latest` (it missed that round).
            let others = last_reports.len() - last_reports.partition_point(|t| *t <= **latest);
            if others == 0 {
                continue;
            }
            let mut groups: Vec<A> = s.groups.iter().copied().collect();
            groups.sort_unstable();
            let groups: Vec<String> = groups.iter().map(ToString::to_string).collect();
            let hint = match p {
                Proto::Igmp => format!("on {h}: let IGMP in (nftables: `ip protocol igmp accept` in the input chain; iptables: `-A INPUT -p igmp -j ACCEPT`); `igmpd doctor IFACE` on that host shows the rule that drops it"),
                Proto::Mld => format!("on {h}: let MLD queries in (nftables: `icmpv6 type mld-listener-query accept` in the input chain; ip6tables: `-A INPUT -p icmpv6 --icmpv6-type 130 -j ACCEPT`); `igmpd doctor IFACE` on that host shows the rule that drops it"),
            };
            out.push(Finding {
                code: "member-silent",
                severity: Severity::Error,
                iface: iface.into(),
                host: Some(h.to_string()),
                group: (groups.len() == 1).then(|| groups[0].clone()),
                message: format!(
                    "host {h} joined {} but has not answered the last {} {pname} general queries (last report {} ago) while {others} other host{} still answer: its memberships expire and it stops receiving",
                    groups.join(", "),
                    missed.len(),
                    fmt_dur(now.saturating_since(s.last_report)),
                    if others == 1 { "" } else { "s" }
                ),
                hint,
            });
        }
        out
    }
}

fn fmt_dur(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 10_000 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests;
