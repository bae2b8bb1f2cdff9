//! What an untrusted access port may do: the port's [`PortPolicy`] (limits, router and
//! querier guard, the group ACL, a report rate, Router Alert) and the state it needs
//! ([`PortState`]: counters, the token bucket, ACL hits, what the findings name).
//!
//! Bounds that hold without any configuration (each generous enough that no legitimate LAN
//! meets it; see `docs/architecture.md`):
//! - memberships per port: `max_groups`, else the bridge's MDB entry limit but at least
//!   [`DEFAULT_MAX_GROUPS`] (memberships the MDB has no room for wait for room);
//! - sources per group record: `max_sources`, else [`DEFAULT_MAX_SOURCES`];
//! - a PIM hello's holdtime: at most [`MAX_PIM_HOLD`] (0xffff meant "for ever");
//! - what the findings remember per port: [`KEPT`] rogue sources and denied joins.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use igmpd_querier::core::Instant;

/// The fewest memberships a port may hold without `max_groups`: the bridge's MDB entry
/// limit, but at least this many (memberships beyond what the MDB has room for wait for
/// room; this bounds how many wait). As the kernel, which bounds a port only by the
/// bridge's `mcast_hash_max` unless `mcast_max_groups` is set.
pub const DEFAULT_MAX_GROUPS: usize = 4096;

/// Sources a group record of a port may hold unless `max_sources` says otherwise: an
/// IGMPv3 report in one 1500-byte frame names at most 366, and the kernel's own snooping
/// keeps no more than a few per group in practice.
pub const DEFAULT_MAX_SOURCES: usize = 1024;

/// The longest a PIM hello makes its port a router port (RFC 7761 §4.3.1 allows 0xffff,
/// "never time out"; a neighbor that stays sends hellos every Hello_Period, 30 s).
pub const MAX_PIM_HOLD: Duration = Duration::from_secs(3600);

/// Rogue query sources and denied joins remembered per port for the findings.
pub const KEPT: usize = 8;

/// An address prefix: `239.255.0.0/16`, `ff02::fb` (a host: the full length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    addr: IpAddr,
    len: u8,
}

impl Prefix {
    /// Parses `ADDR` or `ADDR/LEN`; the address's host bits must be clear.
    pub fn parse(s: &str) -> Result<Prefix, String> {
        let (a, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s}: not an IP address or prefix"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("{s}: prefix length must be 0..={max}"))?,
        };
        let p = Prefix { addr, len };
        if p.network() != addr {
            return Err(format!(
                "{s}: host bits are set (the prefix is {})",
                Prefix {
                    addr: p.network(),
                    len
                }
            ));
        }
        Ok(p)
    }

    fn bits(a: IpAddr) -> (u128, u8) {
        match a {
            IpAddr::V4(a) => (u128::from(u32::from(a)) << 96, 32),
            IpAddr::V6(a) => (u128::from(a), 128),
        }
    }

    fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        }
    }

    /// The address with its host bits cleared (addresses sit in the top bits of a u128).
    fn network(&self) -> IpAddr {
        let (b, _) = Self::bits(self.addr);
        let n = b & Self::mask(self.len);
        match self.addr {
            IpAddr::V4(_) => IpAddr::V4(((n >> 96) as u32).into()),
            IpAddr::V6(_) => IpAddr::V6(n.into()),
        }
    }

    /// IPv4 (else IPv6).
    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether every address of the prefix is multicast (in 224.0.0.0/4 or ff00::/8).
    pub fn is_multicast(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => a.is_multicast() && self.len >= 4,
            IpAddr::V6(a) => a.is_multicast() && self.len >= 8,
        }
    }

    /// Whether `a` is in the prefix (never across families).
    pub fn contains(&self, a: IpAddr) -> bool {
        if a.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        let (x, _) = Self::bits(a);
        let (y, _) = Self::bits(self.addr);
        let m = Self::mask(self.len);
        x & m == y & m
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.len == max {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.len)
        }
    }
}

/// What an ACL rule (or the default) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AclAction {
    /// Learn and forward the join.
    #[default]
    Permit,
    /// Neither learn nor forward it.
    Deny,
}

impl AclAction {
    /// "permit" or "deny".
    pub fn name(self) -> &'static str {
        match self {
            AclAction::Permit => "permit",
            AclAction::Deny => "deny",
        }
    }
}

/// One rule: joins of `group` (from `source`, when given) get `action`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclRule {
    /// Permit or deny.
    pub action: AclAction,
    /// The groups it applies to.
    pub group: Prefix,
    /// The sources it applies to: a rule with a source matches only source-specific
    /// joins (INCLUDE records); an any-source join is not "from" any one source.
    pub source: Option<Prefix>,
}

/// The entry of `list` that `same` finds, or a `fresh` one added at the end (the oldest
/// goes when there are [`KEPT`] already).
fn recent<T>(list: &mut Vec<T>, same: impl Fn(&T) -> bool, fresh: impl FnOnce() -> T) -> &mut T {
    let i = match list.iter().position(same) {
        Some(i) => i,
        None => {
            if list.len() >= KEPT {
                list.remove(0);
            }
            list.push(fresh());
            list.len() - 1
        }
    };
    &mut list[i]
}

/// What a port does when a new membership would exceed `max_groups`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LimitAction {
    /// Refuse the new one.
    #[default]
    Deny,
    /// Drop the port's membership whose last report is oldest, take the new one.
    Replace,
}

impl LimitAction {
    /// "deny" or "replace".
    pub fn name(self) -> &'static str {
        match self {
            LimitAction::Deny => "deny",
            LimitAction::Replace => "replace",
        }
    }
}

/// The rules of one port (`[bridge.B]` for every port, `[bridge.B.port.P]` over it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PortPolicy {
    /// Memberships the port may hold, every VLAN and family counted together (None: the
    /// bridge's MDB entry limit, at least [`DEFAULT_MAX_GROUPS`]).
    pub max_groups: Option<usize>,
    /// Sources per group record (None: [`DEFAULT_MAX_SOURCES`]).
    pub max_sources: Option<usize>,
    /// At `max_groups`: refuse or replace.
    pub limit_action: LimitAction,
    /// Queries, PIM hellos and MRD from this port are dropped: it never becomes a router
    /// port nor takes part in the election.
    pub router_guard: bool,
    /// First match wins.
    pub acl: Vec<AclRule>,
    /// When no rule matches.
    pub acl_default: AclAction,
    /// Reports per second (a token bucket with a second's worth of burst).
    pub max_report_rate: Option<u32>,
    /// Reports and queries without Router Alert are dropped (RFC 9776 §4 requires it on
    /// IGMPv3 messages; older hosts may omit it, so off by default, as in FRR).
    pub require_router_alert: bool,
    /// A leave ends the port's membership at once when no other host on the port is
    /// known to be in the group ([`Membership::fast_leave`](igmpd_querier::core::Membership::fast_leave)).
    pub fast_leave: bool,
    /// The port's `mcast_flood` while igmpd runs (unregistered multicast may leave
    /// through it); None: left as it is. Set and restored by the shell.
    pub flood_unregistered: Option<bool>,
    /// The port also gets every report forwarded, as a router port would (a downstream
    /// snooping switch).
    pub flood_reports: bool,
}

impl PortPolicy {
    /// The membership limit of the port on a bridge whose MDB takes `entry_limit` keys.
    pub fn groups_limit(&self, entry_limit: usize) -> usize {
        self.max_groups
            .unwrap_or(entry_limit.max(DEFAULT_MAX_GROUPS))
    }

    /// The source limit per group record.
    pub fn sources_limit(&self) -> usize {
        self.max_sources.unwrap_or(DEFAULT_MAX_SOURCES)
    }

    /// The first rule matching (group, source): its index (None: the default) and action.
    fn verdict(&self, group: IpAddr, source: Option<IpAddr>) -> (Option<usize>, AclAction) {
        for (i, r) in self.acl.iter().enumerate() {
            let src_ok = match (r.source, source) {
                (None, _) => true,
                (Some(p), Some(s)) => p.contains(s),
                (Some(_), None) => false,
            };
            if src_ok && r.group.contains(group) {
                return (Some(i), r.action);
            }
        }
        (None, self.acl_default)
    }

    fn filters(&self) -> bool {
        !self.acl.is_empty() || self.acl_default == AclAction::Deny
    }
}

/// Counters of one port, shown in status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortCounters {
    /// New memberships refused at `max_groups` (or the default bound).
    pub refused: u64,
    /// Memberships dropped for a new one (`limit_action = "replace"`).
    pub replaced: u64,
    /// Sources not taken at `max_sources`.
    pub refused_sources: u64,
    /// Joins (records or sources) denied by the ACL.
    pub denied: u64,
    /// Queries, PIM hellos and MRD messages dropped by `router_guard`.
    pub guard_drops: u64,
    /// Reports over `max_report_rate`.
    pub rate_drops: u64,
    /// Reports and queries without Router Alert (`require_router_alert`).
    pub router_alert_drops: u64,
    /// Queries with a TTL / hop limit other than 1 or a destination other than the RFC's.
    pub bad_queries: u64,
}

/// A router announcement (query, PIM hello, MRD) the guard dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rogue {
    /// "querier" (a query) or "router" (PIM, MRD).
    pub kind: &'static str,
    /// Its source address.
    pub source: IpAddr,
    /// Messages dropped.
    pub count: u64,
    /// When last.
    pub last: Instant,
}

/// A host's join the ACL denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The host (None: 0.0.0.0 or ::).
    pub host: Option<IpAddr>,
    /// The group.
    pub group: IpAddr,
    /// Times denied.
    pub count: u64,
    /// When last.
    pub last: Instant,
}

/// The last membership refused at the limit, for the finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    /// Who asked.
    pub host: Option<IpAddr>,
    /// For what.
    pub group: IpAddr,
    /// The limit.
    pub limit: usize,
    /// When.
    pub at: Instant,
}

/// The state a port's policy needs.
#[derive(Debug, Clone, Default)]
pub struct PortState {
    /// Counters.
    pub counters: PortCounters,
    /// Hits per ACL rule, then one for the default.
    pub acl_hits: Vec<u64>,
    /// Memberships the port holds (every VLAN and family).
    pub groups: usize,
    /// The guard's drops by source (at most [`KEPT`], the latest).
    pub rogues: Vec<Rogue>,
    /// Denied joins (at most [`KEPT`], the latest).
    pub denied: Vec<Denied>,
    /// The last refusal at the limit.
    pub limit_hit: Option<LimitHit>,
    /// Token bucket: tokens in thousandths, and when last filled.
    tokens: u64,
    filled: Option<Instant>,
    /// With `limit_action = "replace"`: (last report, vid, group) of every membership,
    /// oldest first, and each membership's entry in it.
    lru: BTreeSet<(Instant, u16, IpAddr)>,
    last: HashMap<(u16, IpAddr), Instant>,
}

impl PortState {
    /// Takes a token for one report; false when the port is over `rate` reports/s (the
    /// bucket holds a second's worth).
    pub(super) fn take_token(&mut self, now: Instant, rate: u32) -> bool {
        let cap = u64::from(rate) * 1000;
        let elapsed = self
            .filled
            .map_or(u64::MAX, |t| now.saturating_since(t).as_millis() as u64);
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(u64::from(rate)))
            .min(cap);
        self.filled = Some(now);
        if self.tokens >= 1000 {
            self.tokens -= 1000;
            true
        } else {
            false
        }
    }

    /// Notes a guard drop from `source`.
    pub(super) fn rogue(&mut self, now: Instant, kind: &'static str, source: IpAddr) {
        self.counters.guard_drops += 1;
        let fresh = || Rogue {
            kind,
            source,
            count: 0,
            last: now,
        };
        let r = recent(
            &mut self.rogues,
            |r| r.source == source && r.kind == kind,
            fresh,
        );
        r.count += 1;
        r.last = now;
    }

    fn deny(&mut self, now: Instant, host: Option<IpAddr>, group: IpAddr) {
        self.counters.denied += 1;
        let fresh = || Denied {
            host,
            group,
            count: 0,
            last: now,
        };
        let d = recent(
            &mut self.denied,
            |d| d.host == host && d.group == group,
            fresh,
        );
        d.count += 1;
        d.last = now;
    }

    fn hit(&mut self, rules: usize, rule: Option<usize>) {
        if self.acl_hits.len() != rules + 1 {
            self.acl_hits.resize(rules + 1, 0);
        }
        self.acl_hits[rule.unwrap_or(rules)] += 1;
    }

    /// A report for (vid, group) at `now` (replace mode only).
    pub(super) fn touch(&mut self, now: Instant, vid: u16, group: IpAddr) {
        if let Some(t) = self.last.insert((vid, group), now) {
            self.lru.remove(&(t, vid, group));
        }
        self.lru.insert((now, vid, group));
    }

    /// (vid, group) ended.
    pub(super) fn forget(&mut self, vid: u16, group: IpAddr) {
        if let Some(t) = self.last.remove(&(vid, group)) {
            self.lru.remove(&(t, vid, group));
        }
    }

    /// The membership heard from longest ago (replace mode).
    pub(super) fn oldest(&self) -> Option<(u16, IpAddr)> {
        self.lru.first().map(|(_, v, g)| (*v, *g))
    }
}

mod acl;
mod findings;

pub use self::acl::{filter_report, Filtered};
pub use self::findings::{findings, DENIED_REPEATS, FINDING_HOLD};

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Three rules: deny 239.255/16, permit 232/8 from 10.1/16, permit 239/8; `default`
    /// for the rest (also the core's tests' ACL).
    pub(crate) fn example_acl(default: AclAction) -> PortPolicy {
        PortPolicy {
            acl: vec![
                AclRule {
                    action: AclAction::Deny,
                    group: Prefix::parse("239.255.0.0/16").unwrap(),
                    source: None,
                },
                AclRule {
                    action: AclAction::Permit,
                    group: Prefix::parse("232.0.0.0/8").unwrap(),
                    source: Some(Prefix::parse("10.1.0.0/16").unwrap()),
                },
                AclRule {
                    action: AclAction::Permit,
                    group: Prefix::parse("239.0.0.0/8").unwrap(),
                    source: None,
                },
            ],
            acl_default: default,
            ..PortPolicy::default()
        }
    }

    #[test]
    fn prefixes_parse_and_match() {
        let p = Prefix::parse("239.255.0.0/16").unwrap();
        assert!(p.contains("239.255.3.4".parse().unwrap()));
        assert!(!p.contains("239.254.3.4".parse().unwrap()));
        assert!(!p.contains("ff02::fb".parse().unwrap()));
        let h = Prefix::parse("ff02::fb").unwrap();
        assert!(h.contains("ff02::fb".parse().unwrap()));
        assert!(!h.contains("ff02::fc".parse().unwrap()));
        assert_eq!(h.to_string(), "ff02::fb");
        assert!(Prefix::parse("0.0.0.0/0")
            .unwrap()
            .contains("224.1.1.1".parse().unwrap()));
        assert!(Prefix::parse("239.1.1.1/8")
            .unwrap_err()
            .contains("239.0.0.0/8"));
        assert!(Prefix::parse("239.1.1.0/33").is_err());
        assert!(Prefix::parse("nope").is_err());
        assert!(Prefix::parse("ff00::/8")
            .unwrap()
            .contains("ff3e::1".parse().unwrap()));
    }

    #[test]
    fn token_bucket_allows_a_seconds_worth_then_the_rate() {
        let mut st = PortState::default();
        let t0 = Instant::from_millis(1000);
        let ok = (0..20).filter(|_| st.take_token(t0, 10)).count();
        assert_eq!(ok, 10, "a full bucket holds a second's worth");
        // 100 ms later: one more token.
        let t1 = Instant::from_millis(1100);
        assert!(st.take_token(t1, 10));
        assert!(!st.take_token(t1, 10));
    }

    #[test]
    fn first_match_wins_and_source_rules_skip_any_source_joins() {
        let pol = example_acl(AclAction::Deny);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            pol.verdict(ip("239.255.1.1"), None),
            (Some(0), AclAction::Deny)
        );
        assert_eq!(
            pol.verdict(ip("239.1.1.1"), None),
            (Some(2), AclAction::Permit)
        );
        assert_eq!(
            pol.verdict(ip("232.1.1.1"), Some(ip("10.1.2.3"))),
            (Some(1), AclAction::Permit)
        );
        assert_eq!(
            pol.verdict(ip("232.1.1.1"), Some(ip("10.2.2.3"))),
            (None, AclAction::Deny)
        );
        assert_eq!(pol.verdict(ip("232.1.1.1"), None), (None, AclAction::Deny));
    }
}
