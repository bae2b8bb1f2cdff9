//! The bridge's multicast settings.

use std::time::Duration;

/// IGMP version the bridge's querier speaks (`mcast_igmp_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgmpVersion {
    /// IGMPv2 queries (the kernel's default).
    V2,
    /// IGMPv3 queries.
    V3,
}

/// MLD version the bridge's querier speaks (`mcast_mld_version`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MldVersion {
    /// MLDv1 queries (the kernel's default).
    V1,
    /// MLDv2 queries.
    V2,
}

/// Multicast settings of the lab's bridge, as `ip link add/set BR type bridge ...` takes
/// them. `None` leaves the kernel default. Durations are rounded to the centiseconds
/// iproute2 expects. Snooping (`mcast_snooping 1`) is always on.
///
/// The kernel raises query and startup-query intervals below 1 s to 1 s.
///
/// Kernel 6.18 fact: snooping forwards by the MDB only from one Max Response Delay after a
/// querier appears; until then every group is flooded. Enabling `mcast_querier` arms that
/// delay with the response interval in force at that moment, and the kernel applies
/// `mcast_querier` before `mcast_query_response_interval` within one request. So the lab
/// (and [`Switch::set_bridge`](crate::Switch::set_bridge)) applies `querier` in a second request, after the timers:
/// with [`BridgeConfig::fast_querier`] forwarding by the MDB starts about 1 s after the
/// bridge comes up instead of 10 s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BridgeConfig {
    /// `mcast_querier`: the bridge sends general queries itself.
    pub querier: Option<bool>,
    /// `mcast_query_use_ifaddr`: queries from the bridge's IPv4 address instead of 0.0.0.0.
    pub query_use_ifaddr: Option<bool>,
    /// `mcast_query_interval`.
    pub query_interval: Option<Duration>,
    /// `mcast_query_response_interval` (Max Resp Time of general queries).
    pub query_response_interval: Option<Duration>,
    /// `mcast_membership_interval`: a learned port group ages out this long after the
    /// last report.
    pub membership_interval: Option<Duration>,
    /// `mcast_querier_interval`: Other Querier Present interval.
    pub querier_interval: Option<Duration>,
    /// `mcast_last_member_interval`.
    pub last_member_interval: Option<Duration>,
    /// `mcast_last_member_count`.
    pub last_member_count: Option<u32>,
    /// `mcast_startup_query_interval`.
    pub startup_query_interval: Option<Duration>,
    /// `mcast_startup_query_count`.
    pub startup_query_count: Option<u32>,
    /// `mcast_igmp_version`.
    pub igmp_version: Option<IgmpVersion>,
    /// `mcast_mld_version`.
    pub mld_version: Option<MldVersion>,
}

impl BridgeConfig {
    /// Snooping on, everything else at kernel defaults (no querier: the kernel then floods
    /// all multicast, even groups it has MDB entries for).
    pub fn snooping() -> BridgeConfig {
        BridgeConfig::default()
    }

    /// The bridge is the querier, from its IPv4 address, with short timers: IGMPv3/MLDv2,
    /// query interval 2 s, response interval 1 s, membership interval 5 s, startup queries
    /// 2 × 1 s, last member 2 × 1 s.
    pub fn fast_querier() -> BridgeConfig {
        BridgeConfig {
            querier: Some(true),
            query_use_ifaddr: Some(true),
            query_interval: Some(Duration::from_secs(2)),
            query_response_interval: Some(Duration::from_secs(1)),
            membership_interval: Some(Duration::from_secs(5)),
            querier_interval: None,
            last_member_interval: Some(Duration::from_secs(1)),
            last_member_count: Some(2),
            startup_query_interval: Some(Duration::from_secs(1)),
            startup_query_count: Some(2),
            igmp_version: Some(IgmpVersion::V3),
            mld_version: Some(MldVersion::V2),
        }
    }

    /// Sets `mcast_querier`.
    pub fn querier(mut self, on: bool) -> Self {
        self.querier = Some(on);
        self
    }
    /// Sets `mcast_query_use_ifaddr`.
    pub fn query_use_ifaddr(mut self, on: bool) -> Self {
        self.query_use_ifaddr = Some(on);
        self
    }
    /// Sets `mcast_query_interval`.
    pub fn query_interval(mut self, d: Duration) -> Self {
        self.query_interval = Some(d);
        self
    }
    /// Sets `mcast_query_response_interval`.
    pub fn query_response_interval(mut self, d: Duration) -> Self {
        self.query_response_interval = Some(d);
        self
    }
    /// Sets `mcast_membership_interval`.
    pub fn membership_interval(mut self, d: Duration) -> Self {
        self.membership_interval = Some(d);
        self
    }
    /// Sets `mcast_querier_interval`.
    pub fn querier_interval(mut self, d: Duration) -> Self {
        self.querier_interval = Some(d);
        self
    }
    /// Sets `mcast_last_member_interval`.
    pub fn last_member_interval(mut self, d: Duration) -> Self {
        self.last_member_interval = Some(d);
        self
    }
    /// Sets `mcast_last_member_count`.
    pub fn last_member_count(mut self, n: u32) -> Self {
        self.last_member_count = Some(n);
        self
    }
    /// Sets `mcast_startup_query_interval`.
    pub fn startup_query_interval(mut self, d: Duration) -> Self {
        self.startup_query_interval = Some(d);
        self
    }
    /// Sets `mcast_startup_query_count`.
    pub fn startup_query_count(mut self, n: u32) -> Self {
        self.startup_query_count = Some(n);
        self
    }
    /// Sets `mcast_igmp_version`.
    pub fn igmp_version(mut self, v: IgmpVersion) -> Self {
        self.igmp_version = Some(v);
        self
    }
    /// Sets `mcast_mld_version`.
    pub fn mld_version(mut self, v: MldVersion) -> Self {
        self.mld_version = Some(v);
        self
    }

    /// The `type bridge` arguments for `ip link add/set`, e.g.
    /// `["mcast_snooping", "1", "mcast_query_interval", "200", ...]`, in one list (see the
    /// type's docs for why the lab sends `mcast_querier` separately).
    pub fn ip_link_args(&self) -> Vec<String> {
        fn cs(d: Duration) -> String {
            ((d.as_millis() + 5) / 10).to_string()
        }
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        let mut a: Vec<(&str, String)> = vec![("mcast_snooping", "1".to_owned())];
        let c = self;
        if let Some(v) = c.querier {
            a.push(("mcast_querier", flag(v)));
        }
        if let Some(v) = c.query_use_ifaddr {
            a.push(("mcast_query_use_ifaddr", flag(v)));
        }
        if let Some(v) = c.query_interval {
            a.push(("mcast_query_interval", cs(v)));
        }
        if let Some(v) = c.query_response_interval {
            a.push(("mcast_query_response_interval", cs(v)));
        }
        if let Some(v) = c.membership_interval {
            a.push(("mcast_membership_interval", cs(v)));
        }
        if let Some(v) = c.querier_interval {
            a.push(("mcast_querier_interval", cs(v)));
        }
        if let Some(v) = c.last_member_interval {
            a.push(("mcast_last_member_interval", cs(v)));
        }
        if let Some(v) = c.last_member_count {
            a.push(("mcast_last_member_count", v.to_string()));
        }
        if let Some(v) = c.startup_query_interval {
            a.push(("mcast_startup_query_interval", cs(v)));
        }
        if let Some(v) = c.startup_query_count {
            a.push(("mcast_startup_query_count", v.to_string()));
        }
        if let Some(v) = c.igmp_version {
            let v = match v {
                IgmpVersion::V2 => "2",
                IgmpVersion::V3 => "3",
            };
            a.push(("mcast_igmp_version", v.to_owned()));
        }
        if let Some(v) = c.mld_version {
            let v = match v {
                MldVersion::V1 => "1",
                MldVersion::V2 => "2",
            };
            a.push(("mcast_mld_version", v.to_owned()));
        }
        a.into_iter().flat_map(|(k, v)| [k.to_owned(), v]).collect()
    }

    /// [`BridgeConfig::ip_link_args`] split in two requests: everything but
    /// `mcast_querier`, then `mcast_querier` alone (if set).
    pub(super) fn ip_link_args_querier_last(&self) -> (Vec<String>, Option<Vec<String>>) {
        let rest = BridgeConfig {
            querier: None,
            ..self.clone()
        };
        let querier = self.querier.map(|q| {
            vec![
                "mcast_querier".to_owned(),
                if q { "1" } else { "0" }.to_owned(),
            ]
        });
        (rest.ip_link_args(), querier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_args_are_centiseconds() {
        let a = BridgeConfig::fast_querier().ip_link_args().join(" ");
        assert!(a.starts_with("mcast_snooping 1 mcast_querier 1 mcast_query_use_ifaddr 1"));
        assert!(a.contains("mcast_query_interval 200"));
        assert!(a.contains("mcast_query_response_interval 100"));
        assert!(a.contains("mcast_membership_interval 500"));
        assert!(a.contains("mcast_igmp_version 3 mcast_mld_version 2"));
        assert_eq!(
            BridgeConfig::snooping().ip_link_args(),
            ["mcast_snooping", "1"]
        );
        let odd = BridgeConfig::snooping().query_interval(Duration::from_millis(1234));
        assert_eq!(odd.ip_link_args()[3], "123");
    }
}
