//! Core events -> the runtime's `igmpd monitor` events ([`igmpd_runtime::events`]), for both
//! daemons: `igmpd query`'s shell and the snooper's (which uses the querier's core for its
//! bridge-level querier and per-port memberships).

use std::net::IpAddr;

use igmpd_runtime::events::{Event as Monitored, Family, Kind, Place};

use crate::core::membership::{Change, Removal};
use crate::core::{Event, Proto};

/// The event family of `proto`.
pub fn family(proto: Proto) -> Family {
    match proto {
        Proto::Igmp => Family::Ipv4,
        Proto::Mld => Family::Ipv6,
    }
}

/// `join` (with the reporter as `host`), `leave` or `expiry` (with the reason): of the
/// group for an any-source (EXCLUDE) record, of each source for an INCLUDE record (an
/// INCLUDE record's end is the group's `leave` or `expiry`, without `source`: all its
/// sources went with it). None for the changes that are no event (forwarding and
/// compatibility changes within a record).
pub fn membership<A: Copy + Into<IpAddr>>(
    place: &Place,
    change: &Change<A>,
    host: impl FnOnce(A) -> Option<A>,
) -> Option<Monitored> {
    Some(match change {
        Change::GroupAdded {
            group,
            any_source: true,
        } => joined(place, (*group).into(), None, host(*group).map(Into::into)),
        Change::SourceAdded { group, source } => joined(
            place,
            (*group).into(),
            Some((*source).into()),
            host(*group).map(Into::into),
        ),
        Change::GroupRemoved { group, reason } => removed(place, (*group).into(), *reason),
        Change::SourceRemoved {
            group,
            source,
            reason,
        } => removed(place, (*group).into(), *reason).with_source(Some((*source).into())),
        Change::GroupAdded { .. } | Change::Forwarding { .. } | Change::Compat { .. } => {
            return None
        }
    })
}

/// `join` of `group` (and `source`), reported by `host`.
pub fn joined(
    place: &Place,
    group: IpAddr,
    source: Option<IpAddr>,
    host: Option<IpAddr>,
) -> Monitored {
    Monitored::membership(Kind::Join, place.clone(), group)
        .with_source(source)
        .with_host(host)
}

/// `leave` or `expiry` of `group` for `reason`.
pub fn removed(place: &Place, group: IpAddr, reason: Removal) -> Monitored {
    let kind = if reason.is_leave() {
        Kind::Leave
    } else {
        Kind::Expiry
    };
    Monitored::membership(kind, place.clone(), group).with_reason(reason.name())
}

/// `querier-elected` (from igmpd's `address`) or `querier-lost` (to the winner); None for
/// the other instance events (version fallbacks; membership changes go through
/// [`membership`]).
pub fn querier<A: Copy + Into<IpAddr>>(
    place: &Place,
    proto: Proto,
    e: &Event<A>,
    address: Option<A>,
) -> Option<Monitored> {
    match e {
        Event::Elected => Some(Monitored::querier(
            true,
            place.clone(),
            family(proto),
            address.map(Into::into),
        )),
        Event::LostElection { querier } => Some(Monitored::querier(
            false,
            place.clone(),
            family(proto),
            Some((*querier).into()),
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn changes_map_to_their_events_and_the_rest_to_none() {
        let place = Place::Interface("eth0".into());
        let g: Ipv4Addr = "239.1.1.1".parse().unwrap();
        let h: Ipv4Addr = "10.0.0.2".parse().unwrap();
        let added = |any_source| Change::GroupAdded {
            group: g,
            any_source,
        };
        let join = membership(&place, &added(true), |_| Some(h)).unwrap();
        assert_eq!(join.kind, Kind::Join);
        assert_eq!(join.host, Some(h.into()));
        // An INCLUDE record's joins are its sources'.
        assert!(membership(&place, &added(false), |_| Some(h)).is_none());
        let s: Ipv4Addr = "10.0.0.5".parse().unwrap();
        let ssm = Change::SourceAdded {
            group: g,
            source: s,
        };
        let join = membership(&place, &ssm, |_| Some(h)).unwrap();
        assert_eq!((join.kind, join.source), (Kind::Join, Some(s.into())));
        let ssm_gone = Change::SourceRemoved {
            group: g,
            source: s,
            reason: Removal::Expired,
        };
        let gone = membership(&place, &ssm_gone, |_| None).unwrap();
        assert_eq!((gone.kind, gone.source), (Kind::Expiry, Some(s.into())));
        let gone = |reason| {
            membership(&place, &Change::GroupRemoved { group: g, reason }, |_| None).unwrap()
        };
        let left = gone(Removal::Left { queried: true });
        assert_eq!(
            (left.kind, left.reason),
            (Kind::Leave, Some("last-member-query"))
        );
        let expired = gone(Removal::Expired);
        assert_eq!(
            (expired.kind, expired.reason),
            (Kind::Expiry, Some("timeout"))
        );
        assert!(membership(&place, &Change::Forwarding { group: g }, |_| None).is_none());
        let won = querier(&place, Proto::Igmp, &Event::<Ipv4Addr>::Elected, Some(h)).unwrap();
        assert_eq!(
            (won.kind, won.querier),
            (Kind::QuerierElected, Some(h.into()))
        );
        let lost = querier(
            &place,
            Proto::Mld,
            &Event::LostElection { querier: h },
            None,
        );
        assert_eq!(lost.unwrap().role, Some("non-querier"));
        let older = Event::OlderQuerier {
            gen: crate::core::Generation::V2,
            from: Some(h),
        };
        assert!(querier(&place, Proto::Igmp, &older, None).is_none());
    }
}
