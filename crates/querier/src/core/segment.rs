//! One querier [`Instance`] and the [`Observer`] of the same link, fed by one call: every
//! query and report heard (and every query we send) reaches both, so the two can never
//! disagree about what was seen. Used per interface by `igmpd query` and per VLAN and
//! family by the snooper's bridge-level querier.

use std::fmt::{Debug, Display};
use std::hash::Hash;

use super::config::{Config, Generation};
use super::instance::{Action, Instance, QueryIn, QueryOut, Role};
use super::membership::Report;
use super::observer::{Finding, Observer};
use super::time::Instant;

/// A querier instance and the observer of its link.
#[derive(Debug, Clone)]
pub struct Segment<A> {
    inst: Instance<A>,
    obs: Observer<A>,
}

impl<A: Ord + Copy + Hash + Debug + Display> Segment<A> {
    /// A new instance with `config` (and `address`, if known), observing from `now`.
    pub fn new(config: Config, address: Option<A>, now: Instant) -> Self {
        let proto = config.proto;
        Segment {
            inst: Instance::new(config, address),
            obs: Observer::new(proto, now),
        }
    }

    /// The querier instance.
    pub fn instance(&self) -> &Instance<A> {
        &self.inst
    }

    /// The querier instance, for the inputs that are not heard on the wire (timers, link
    /// and address changes).
    pub fn instance_mut(&mut self) -> &mut Instance<A> {
        &mut self.inst
    }

    /// What was heard on the link.
    pub fn observer(&self) -> &Observer<A> {
        &self.obs
    }

    /// A query from `src` (None: the unspecified address) was heard: the observer notes
    /// it, the instance takes part in the election (RFC 9776 §6.6, RFC 9777 §7.6).
    pub fn query(&mut self, now: Instant, src: Option<A>, q: &QueryIn<A>) -> Vec<Action<A>> {
        self.obs.query(now, src, q, false);
        let acts = self.inst.handle_query(now, src, q);
        self.obs
            .prune_queriers(now, self.inst.other_querier_present_interval());
        acts
    }

    /// A report (of message version `gen`) from `src` was heard: the observer notes it;
    /// the instance acts on it only when `answer` (a passive snooper, or a group the
    /// kernel does not snoop, only observes).
    pub fn report(
        &mut self,
        now: Instant,
        src: Option<A>,
        r: &Report<A>,
        gen: Generation,
        answer: bool,
    ) -> Vec<Action<A>> {
        self.obs.report(now, src, r, gen);
        if answer {
            self.inst.handle_report(now, src, r)
        } else {
            Vec::new()
        }
    }

    /// The instance sent `q`: the observer sees our own query as the hosts do.
    pub fn sent(&mut self, now: Instant, q: &QueryOut<A>) {
        self.obs.query(now, q.src, &QueryIn::from(q), true);
    }

    /// The observer's findings, judged with the instance's Other Querier Present Interval;
    /// nothing while the link is down. `we_may_query`: this instance is allowed to query
    /// (it does when its role says so).
    pub fn findings(&self, now: Instant, iface: &str, we_may_query: bool) -> Vec<Finding> {
        if !self.inst.link_is_up() {
            return Vec::new();
        }
        let we_query = we_may_query
            && matches!(
                self.inst.role(),
                Role::Querier | Role::Proxy | Role::NonQuerier
            );
        self.obs.findings(
            now,
            iface,
            self.inst.other_querier_present_interval(),
            we_query,
        )
    }
}
