//! One querier: one family (IGMP or MLD) on one interface.
//!
//! Election (RFC 9776 §6.6.2, RFC 9777 §7.6.2), the startup burst and periodic general
//! queries (§8.6, §8.7, §8.2), specific queries (§6.6.3), adoption of the elected
//! querier's QRV and QQIC (§4.1.6, §4.1.7), querier version fallback when older queriers
//! are present (§7.3.1), and the membership state of [`super::membership`].

use std::fmt::Debug;
use std::hash::Hash;
use std::time::Duration;

use super::config::{Config, Generation, Proto};
use super::membership::{Change, Membership, Report, SpecificQuery, Timing};
use super::time::Instant;

pub use super::query::{adoptable, QueryIn, QueryOut, ADOPTABLE_QQI, ADOPTABLE_QRV};

/// This router's part in the election, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Elected: sends general queries from its own address.
    Querier,
    /// Elected by default but without an address: queries from 0.0.0.0 and yields to any
    /// querier with an address. IGMP only.
    Proxy,
    /// Another router with a lower address is the querier.
    NonQuerier,
    /// Configured never to query; tracks state and the election.
    Passive,
    /// Cannot take part: the link is down, or (MLD) there is no link-local address.
    Inactive,
}

impl Role {
    /// The name used in status output.
    pub fn name(self) -> &'static str {
        match self {
            Role::Querier => "querier",
            Role::Proxy => "proxy",
            Role::NonQuerier => "non-querier",
            Role::Passive => "passive",
            Role::Inactive => "inactive",
        }
    }
}

/// Something worth a log line or a status change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<A> {
    /// This router became the querier (at start, on takeover, or after an address change).
    Elected,
    /// A router with a lower address is querier now.
    LostElection {
        /// Its address.
        querier: A,
    },
    /// An older-version querier was heard; queries fall back to that version.
    OlderQuerier {
        /// The older version's generation.
        gen: Generation,
        /// Who sent it (None for 0.0.0.0).
        from: Option<A>,
    },
    /// No older querier remains; queries use the configured version again.
    VersionRestored {
        /// The version now used.
        gen: Generation,
    },
    /// Membership state changed.
    Membership(Change<A>),
}

/// What the core asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<A> {
    /// Send this query on the interface.
    Send(QueryOut<A>),
    /// Log or publish this event.
    Event(Event<A>),
}

/// The elected other querier, while its Other Querier Present timer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OtherQuerier<A> {
    address: A,
    expires: Instant,
    qrv: u8,
    qqi: Option<Duration>,
}

/// One querier instance.
#[derive(Debug, Clone)]
pub struct Instance<A> {
    config: Config,
    /// Our address: IPv4 primary or IPv6 link-local. None: no address.
    address: Option<A>,
    link_up: bool,
    other: Option<OtherQuerier<A>>,
    general_at: Option<Instant>,
    startup_left: u8,
    /// Older Version Querier Present timers for v1 and v2 queriers (§7.3.1).
    older_v1: Option<Instant>,
    older_v2: Option<Instant>,
    membership: Membership<A>,
    queries_sent: u64,
}

impl<A: Ord + Copy + Hash + Debug> Instance<A> {
    /// A new instance; nothing happens until [`Instance::link_up`].
    pub fn new(config: Config, address: Option<A>) -> Self {
        Instance {
            config,
            address,
            link_up: false,
            other: None,
            general_at: None,
            startup_left: 0,
            older_v1: None,
            older_v2: None,
            membership: Membership::new(),
            queries_sent: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Our address as the core knows it.
    pub fn address(&self) -> Option<A> {
        self.address
    }

    /// The membership state.
    pub fn membership(&self) -> &Membership<A> {
        &self.membership
    }

    /// General and specific queries sent so far.
    pub fn queries_sent(&self) -> u64 {
        self.queries_sent
    }

    /// True between [`Instance::link_up`] and [`Instance::link_down`].
    pub fn link_is_up(&self) -> bool {
        self.link_up
    }

    /// Current role.
    pub fn role(&self) -> Role {
        if !self.link_up {
            Role::Inactive
        } else if self.config.passive {
            Role::Passive
        } else if self.other.is_some() {
            Role::NonQuerier
        } else if self.address.is_some() {
            Role::Querier
        } else if self.config.proto == Proto::Igmp {
            Role::Proxy
        } else {
            // MLD queries must come from a link-local address (RFC 9777 §5.1.14).
            Role::Inactive
        }
    }

    /// The elected querier's address: ours when we are querier, the other one's when not,
    /// None when nobody with an address is elected.
    pub fn querier_address(&self) -> Option<A> {
        match self.other {
            Some(o) => Some(o.address),
            None if matches!(self.role(), Role::Querier) => self.address,
            None => None,
        }
    }

    /// When the Other Querier Present timer ends, if it runs.
    pub fn other_querier_expires(&self) -> Option<Instant> {
        self.other.map(|o| o.expires)
    }

    /// The version queries go out with now: the configured one, or an older one while an
    /// older querier is present (§7.3.1).
    pub fn effective_version(&self) -> Generation {
        let mut g = self.config.version;
        if self.older_v2.is_some() {
            g = g.min(Generation::V2);
        }
        if self.older_v1.is_some() {
            g = g.min(Generation::V1);
        }
        g
    }

    /// Robustness in use: the elected other querier's QRV when it sent one (§4.1.6).
    pub fn robustness(&self) -> u8 {
        match self.other {
            Some(o) if o.qrv != 0 => o.qrv,
            _ => self.config.robustness,
        }
    }

    /// Query interval in use: the elected other querier's QQI when it sent one (§4.1.7).
    pub fn query_interval(&self) -> Duration {
        match self.other {
            Some(OtherQuerier { qqi: Some(q), .. }) => q,
            _ => self.config.query_interval,
        }
    }

    /// Group Membership Interval (§8.4).
    pub fn group_membership_interval(&self) -> Duration {
        self.query_interval() * u32::from(self.robustness()) + self.config.query_response_interval
    }

    /// Other Querier Present Interval (§8.5).
    pub fn other_querier_present_interval(&self) -> Duration {
        self.query_interval() * u32::from(self.robustness())
            + self.config.query_response_interval / 2
    }

    fn sends(&self) -> bool {
        matches!(self.role(), Role::Querier | Role::Proxy)
    }

    fn timing(&self) -> Timing {
        let gen = self.effective_version();
        Timing {
            gmi: self.group_membership_interval(),
            lmqi: self.config.last_member_query_interval,
            lmqc: self
                .config
                .last_member_query_count
                .unwrap_or(self.robustness()),
            older_host_present: self.group_membership_interval(),
            // IGMPv1 has no group-specific queries (leaves are ignored, §7.3.1).
            querier: (self.sends() && gen >= Generation::V2).then_some(gen),
        }
    }

    /// The link came up (or the instance starts): query as querier with a startup burst
    /// (§8.6, §8.7) until a lower address is heard.
    pub fn link_up(&mut self, now: Instant) -> Vec<Action<A>> {
        self.link_up = true;
        self.other = None;
        let mut out = Vec::new();
        if self.sends() {
            self.startup_left = self.config.startup_count();
            self.general_at = Some(now);
            out.push(Action::Event(Event::Elected));
        }
        self.run(now, &mut out);
        out
    }

    /// The link went down: members cannot be reached, so their state goes; the election
    /// starts over when the link returns.
    pub fn link_down(&mut self, _now: Instant) -> Vec<Action<A>> {
        self.link_up = false;
        self.other = None;
        self.general_at = None;
        self.startup_left = 0;
        self.older_v1 = None;
        self.older_v2 = None;
        let mut changes = Vec::new();
        self.membership.clear(&mut changes);
        changes
            .into_iter()
            .map(|c| Action::Event(Event::Membership(c)))
            .collect()
    }

    /// Our address changed (added, removed, replaced): re-run the election with it.
    pub fn set_address(&mut self, now: Instant, address: Option<A>) -> Vec<Action<A>> {
        if address == self.address {
            return Vec::new();
        }
        let was_sending = self.sends();
        self.address = address;
        let mut out = Vec::new();
        if !self.link_up {
            return out;
        }
        // A new lowest address wins at once; an address that is no longer lower than the
        // other querier's changes nothing until that querier's timer runs out.
        if let (Some(o), Some(mine)) = (self.other, address) {
            if mine < o.address {
                self.other = None;
            }
        }
        if self.sends() {
            if !was_sending {
                out.push(Action::Event(Event::Elected));
            }
            // Announce the new source address at once so other routers re-elect.
            self.general_at = Some(now);
        } else {
            self.general_at = None;
        }
        self.run(now, &mut out);
        out
    }

    /// A query from `src` (None for 0.0.0.0 or ::) arrived.
    pub fn handle_query(&mut self, now: Instant, src: Option<A>, q: &QueryIn<A>) -> Vec<Action<A>> {
        let mut out = Vec::new();
        if !self.link_up || (src.is_some() && src == self.address) {
            // Our own query looped back, or an address clash: not another querier.
            return out;
        }
        let oqpi = self.other_querier_present_interval();
        // §7.3.1: an IGMPv1 query or an IGMPv2 general query (MLDv1 general query) means
        // an older querier is present; fall back to its version while it is.
        if q.gen < self.config.version && (q.group.is_none() || q.gen == Generation::V1) {
            let slot = if q.gen == Generation::V1 {
                &mut self.older_v1
            } else {
                &mut self.older_v2
            };
            if slot.is_none() {
                out.push(Action::Event(Event::OlderQuerier {
                    gen: q.gen,
                    from: src,
                }));
            }
            *slot = Some(now + oqpi);
        }
        // §6.6.2: a query from a lower address makes that router the querier. A query from
        // 0.0.0.0 never wins; any address beats ours when we have none (proxy).
        if let Some(from) = src {
            let lower_than_us = self.address.is_none_or(|mine| from < mine);
            let current = self.other.map(|o| o.address);
            if lower_than_us && current.is_none_or(|c| from <= c) {
                let was_sending = self.sends();
                // Timers outside a sane range are not adopted (see [`ADOPTABLE_QQI`]).
                let (qrv_ok, qqi_ok) = adoptable(q.qrv, q.qqi);
                self.other = Some(OtherQuerier {
                    address: from,
                    expires: now + Duration::ZERO,
                    qrv: if qrv_ok { q.qrv } else { 0 },
                    qqi: q.qqi.filter(|d| !d.is_zero() && qqi_ok),
                });
                // The timer uses the adopted values (§8.5 with §4.1.6/§4.1.7).
                let oqpi = self.other_querier_present_interval();
                if let Some(o) = self.other.as_mut() {
                    o.expires = now + oqpi;
                }
                if current != Some(from) && !self.config.passive {
                    out.push(Action::Event(Event::LostElection { querier: from }));
                }
                if was_sending {
                    self.general_at = None;
                    self.startup_left = 0;
                }
            }
        }
        // §6.6.1: a received query with the S flag clear lowers the timers it names.
        if let (Some(g), false) = (q.group, q.s_flag) {
            let timing = self.timing();
            self.membership.lower_on_query(now, &timing, g, &q.sources);
        }
        self.run(now, &mut out);
        out
    }

    /// A report, leave or record from `reporter` (None for 0.0.0.0 or ::) arrived.
    pub fn handle_report(
        &mut self,
        now: Instant,
        reporter: Option<A>,
        report: &Report<A>,
    ) -> Vec<Action<A>> {
        let mut out = Vec::new();
        if !self.link_up {
            return out;
        }
        // §7.3.1: "When in IGMPv1 mode, routers MUST ... ignore Leave Group messages".
        if matches!(report, Report::Leave(_)) && self.effective_version() == Generation::V1 {
            return out;
        }
        let timing = self.timing();
        let mut changes = Vec::new();
        self.membership
            .report(now, &timing, reporter, report, &mut changes);
        out.extend(
            changes
                .into_iter()
                .map(|c| Action::Event(Event::Membership(c))),
        );
        self.run(now, &mut out);
        out
    }

    /// Runs every timer due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Action<A>> {
        let mut out = Vec::new();
        self.run(now, &mut out);
        out
    }

    /// A general query to send now, outside the schedule (the next periodic one stays
    /// when it was due): when an operator flushes the memberships, or a port comes up on
    /// a snooping bridge, so that hosts report within a Query Response Interval instead of
    /// at the next periodic query (RFC 4541 §2.1.1 on topology changes). None unless this
    /// instance is the querier (or queries as a proxy) on a link that is up.
    pub fn general_query_now(&mut self) -> Option<QueryOut<A>> {
        (self.link_up && self.sends()).then(|| self.general_query())
    }

    /// A general query from the unspecified address, for a snooping switch that is not
    /// the querier to make hosts report at once: IGMP only (RFC 4541 §2.1.1 lets a
    /// switch send such queries; with source 0.0.0.0 they take no part in the election).
    /// None for MLD, whose queries need a link-local source (RFC 9777 §5.1.14) and would
    /// take part in it, and while the link is down.
    pub fn proxy_query(&self) -> Option<QueryOut<A>> {
        if !self.link_up || self.config.proto != Proto::Igmp {
            return None;
        }
        Some(QueryOut {
            gen: self.effective_version(),
            src: None,
            group: None,
            sources: Vec::new(),
            s_flag: false,
            qrv: self.robustness().min(7),
            qqi: self.query_interval(),
            max_resp: self.config.query_response_interval,
        })
    }

    /// When [`Instance::poll`] next has work.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next = self.membership.next_deadline();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        };
        consider(self.other.map(|o| o.expires));
        consider(self.older_v1);
        consider(self.older_v2);
        if self.sends() {
            consider(self.general_at);
        }
        next
    }

    fn run(&mut self, now: Instant, out: &mut Vec<Action<A>>) {
        if !self.link_up {
            return;
        }
        // §6.6.2: when the Other Querier Present timer expires, take over.
        if let Some(o) = self.other {
            if o.expires <= now {
                self.other = None;
                if self.sends() {
                    out.push(Action::Event(Event::Elected));
                    self.general_at = Some(now);
                }
            }
        }
        let before = self.effective_version();
        if self.older_v1.is_some_and(|t| t <= now) {
            self.older_v1 = None;
        }
        if self.older_v2.is_some_and(|t| t <= now) {
            self.older_v2 = None;
        }
        let after = self.effective_version();
        if after > before {
            out.push(Action::Event(Event::VersionRestored { gen: after }));
        }
        let timing = self.timing();
        let mut changes = Vec::new();
        let mut specific = Vec::new();
        self.membership
            .poll(now, &timing, &mut changes, &mut specific);
        out.extend(
            changes
                .into_iter()
                .map(|c| Action::Event(Event::Membership(c))),
        );
        for q in specific {
            if let Some(sq) = self.specific_query(q) {
                out.push(Action::Send(sq));
            }
        }
        if self.sends() && self.general_at.is_some_and(|t| t <= now) {
            out.push(Action::Send(self.general_query()));
            let next = if self.startup_left > 0 {
                self.startup_left -= 1;
                if self.startup_left > 0 {
                    self.config.startup_interval()
                } else {
                    self.config.query_interval
                }
            } else {
                self.config.query_interval
            };
            self.general_at = Some(now + next);
        }
    }

    fn general_query(&mut self) -> QueryOut<A> {
        self.queries_sent += 1;
        QueryOut {
            gen: self.effective_version(),
            src: self.address,
            group: None,
            sources: Vec::new(),
            s_flag: false,
            qrv: if self.config.robustness > 7 {
                0
            } else {
                self.config.robustness
            },
            qqi: self.config.query_interval,
            max_resp: self.config.query_response_interval,
        }
    }

    fn specific_query(&mut self, q: SpecificQuery<A>) -> Option<QueryOut<A>> {
        let gen = self.effective_version();
        // Only a v3 query can name sources; a v1 querier sends no specific queries.
        if gen == Generation::V1 || (gen < Generation::V3 && !q.sources.is_empty()) {
            return None;
        }
        self.queries_sent += 1;
        Some(QueryOut {
            gen,
            src: self.address,
            group: Some(q.group),
            sources: q.sources,
            s_flag: q.s_flag && gen == Generation::V3,
            qrv: if self.robustness() > 7 {
                0
            } else {
                self.robustness()
            },
            qqi: self.query_interval(),
            max_resp: self.config.last_member_query_interval,
        })
    }
}
