//! The querier's protocol events as log lines (fields: `iface`, `proto`, `group`, ...).

use tracing::{debug, info, warn};

use crate::core::membership::Change;
use crate::core::{Event, Proto};

pub(super) fn event<A: std::fmt::Display + std::fmt::Debug>(
    iface: &str,
    proto: Proto,
    e: &Event<A>,
) {
    let p = proto.name();
    match e {
        Event::Elected => info!(iface, proto = p, "elected querier"),
        Event::LostElection { querier } => {
            info!(iface, proto = p, querier = %querier, "lost election: another querier has a lower address")
        }
        Event::OlderQuerier { gen, from } => {
            warn!(iface, proto = p, version = gen.version(proto), from = ?from.as_ref().map(ToString::to_string), "older-version querier present: falling back to its version")
        }
        Event::VersionRestored { gen } => info!(
            iface,
            proto = p,
            version = gen.version(proto),
            "no older querier left: configured version restored"
        ),
        Event::Membership(Change::GroupAdded { group, .. }) => {
            info!(iface, proto = p, group = %group, "group added")
        }
        Event::Membership(Change::SourceAdded { group, source }) => {
            debug!(iface, proto = p, group = %group, source = %source, "source added")
        }
        Event::Membership(Change::SourceRemoved {
            group,
            source,
            reason,
        }) => {
            debug!(iface, proto = p, group = %group, source = %source, reason = reason.name(), "source removed")
        }
        Event::Membership(Change::GroupRemoved { group, reason }) => {
            info!(iface, proto = p, group = %group, reason = reason.name(), "group removed")
        }
        Event::Membership(Change::Compat { group, mode }) => {
            info!(iface, proto = p, group = %group, version = mode.version(proto), "host compatibility mode")
        }
        Event::Membership(Change::Forwarding { group }) => {
            debug!(iface, proto = p, group = %group, "forwarding state changed")
        }
    }
}
