//! Protocol variables (RFC 9776 §8, RFC 9777 §9), their defaults and the values derived
//! from them.

use std::time::Duration;

/// IGMP (IPv4) or MLD (IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// IGMP.
    Igmp,
    /// MLD.
    Mld,
}

impl Proto {
    /// "igmp" or "mld".
    pub fn name(self) -> &'static str {
        match self {
            Proto::Igmp => "igmp",
            Proto::Mld => "mld",
        }
    }
}

/// A protocol generation, the same for both families:
/// `V1` is IGMPv1 (no leaves; MLD has none), `V2` is IGMPv2 or MLDv1 (leaves, no
/// sources), `V3` is IGMPv3 or MLDv2 (source filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Generation {
    /// IGMPv1.
    V1,
    /// IGMPv2 / MLDv1.
    V2,
    /// IGMPv3 / MLDv2.
    V3,
}

impl Generation {
    /// The version number users know: IGMP 1/2/3, MLD 1/2.
    pub fn version(self, proto: Proto) -> u8 {
        match (proto, self) {
            (Proto::Igmp, Generation::V1) => 1,
            (Proto::Igmp, Generation::V2) => 2,
            (Proto::Igmp, Generation::V3) => 3,
            (Proto::Mld, Generation::V1 | Generation::V2) => 1,
            (Proto::Mld, Generation::V3) => 2,
        }
    }

    /// The generation of a user-facing version number, if that version exists.
    pub fn from_version(proto: Proto, v: u8) -> Option<Self> {
        match (proto, v) {
            (Proto::Igmp, 1) => Some(Generation::V1),
            (Proto::Igmp, 2) | (Proto::Mld, 1) => Some(Generation::V2),
            (Proto::Igmp, 3) | (Proto::Mld, 2) => Some(Generation::V3),
            _ => None,
        }
    }
}

/// What the operator configured for one family on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// IGMP or MLD.
    pub proto: Proto,
    /// Highest version to query with.
    pub version: Generation,
    /// Query Interval (RFC 9776 §8.2), default 125 s.
    pub query_interval: Duration,
    /// Query Response Interval (§8.3), default 10 s.
    pub query_response_interval: Duration,
    /// Robustness Variable (§8.1), default 2.
    pub robustness: u8,
    /// Last Member Query Interval (§8.8), default 1 s.
    pub last_member_query_interval: Duration,
    /// Last Member Query Count (§8.9); None means the robustness variable.
    pub last_member_query_count: Option<u8>,
    /// Startup Query Interval (§8.6); None means a quarter of the query interval.
    pub startup_query_interval: Option<Duration>,
    /// Startup Query Count (§8.7); None means the robustness variable.
    pub startup_query_count: Option<u8>,
    /// Track state and election, never send.
    pub passive: bool,
}

/// Settings that make no sense together; the message names the flags involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Robustness 0 would expire every membership at once.
    #[error("robustness must be at least 1")]
    ZeroRobustness,
    /// RFC 9776 §8.3: the response interval must be shorter than the query interval.
    #[error("query response interval ({response:?}) must be shorter than the query interval ({query:?})")]
    ResponseNotBelowInterval {
        /// The response interval.
        response: Duration,
        /// The query interval.
        query: Duration,
    },
    /// A zero duration where a period is needed.
    #[error("{0} must be greater than zero")]
    Zero(&'static str),
    /// A count of 0 where at least one is needed.
    #[error("{0} must be at least 1")]
    ZeroCount(&'static str),
    /// A value beyond what the protocol fields can carry.
    #[error("{what} {value:?} is more than the protocol can carry ({max:?})")]
    TooLarge {
        /// The setting.
        what: &'static str,
        /// Its value.
        value: Duration,
        /// The largest accepted.
        max: Duration,
    },
    /// MLD has versions 1 and 2 only.
    #[error("{proto} has no version {version}")]
    NoSuchVersion {
        /// The family.
        proto: &'static str,
        /// The version asked for.
        version: u8,
    },
}

impl Config {
    /// RFC defaults for `proto` at its newest version.
    pub fn new(proto: Proto) -> Self {
        Config {
            proto,
            version: Generation::V3,
            query_interval: Duration::from_secs(125),
            query_response_interval: Duration::from_secs(10),
            robustness: 2,
            last_member_query_interval: Duration::from_secs(1),
            last_member_query_count: None,
            startup_query_interval: None,
            startup_query_count: None,
            passive: false,
        }
    }

    /// Rejects combinations that make no sense (clear errors, never a silent clamp).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.robustness == 0 {
            return Err(ConfigError::ZeroRobustness);
        }
        for (what, d) in [
            ("query interval", self.query_interval),
            ("query response interval", self.query_response_interval),
            (
                "last member query interval",
                self.last_member_query_interval,
            ),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Zero(what));
            }
        }
        if self.startup_query_interval.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::Zero("startup query interval"));
        }
        if self.last_member_query_count == Some(0) {
            return Err(ConfigError::ZeroCount("last member query count"));
        }
        if self.startup_query_count == Some(0) {
            return Err(ConfigError::ZeroCount("startup query count"));
        }
        if self.query_response_interval >= self.query_interval {
            return Err(ConfigError::ResponseNotBelowInterval {
                response: self.query_response_interval,
                query: self.query_interval,
            });
        }
        // Largest Max Resp: IGMPv3 code 0xff = 3174.4 s; IGMPv2 255 = 25.5 s; MLD 8387.584 s
        // (v2) or 65.535 s (v1). Larger values would be silently cut on the wire.
        let max_resp = match (self.proto, self.version) {
            (Proto::Igmp, Generation::V3) => Duration::from_millis(3_174_400),
            (Proto::Igmp, _) => Duration::from_millis(25_500),
            (Proto::Mld, Generation::V3) => Duration::from_millis(8_387_584),
            (Proto::Mld, _) => Duration::from_millis(65_535),
        };
        for (what, d) in [
            ("query response interval", self.query_response_interval),
            (
                "last member query interval",
                self.last_member_query_interval,
            ),
        ] {
            if d > max_resp {
                return Err(ConfigError::TooLarge {
                    what,
                    value: d,
                    max: max_resp,
                });
            }
        }
        // QQIC carries at most 31744 s.
        let max_qi = Duration::from_secs(31_744);
        if self.query_interval > max_qi {
            return Err(ConfigError::TooLarge {
                what: "query interval",
                value: self.query_interval,
                max: max_qi,
            });
        }
        if self.proto == Proto::Mld && self.version == Generation::V1 {
            return Err(ConfigError::NoSuchVersion {
                proto: "MLD",
                version: 0,
            });
        }
        Ok(())
    }

    /// Last Member Query Count.
    pub fn lmqc(&self) -> u8 {
        self.last_member_query_count.unwrap_or(self.robustness)
    }

    /// Startup Query Interval (§8.6): a quarter of the query interval by default.
    pub fn startup_interval(&self) -> Duration {
        self.startup_query_interval
            .unwrap_or(self.query_interval / 4)
    }

    /// Startup Query Count (§8.7): the robustness variable by default.
    pub fn startup_count(&self) -> u8 {
        self.startup_query_count.unwrap_or(self.robustness)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_rfc_values_and_valid() {
        let c = Config::new(Proto::Igmp);
        c.validate().unwrap();
        assert_eq!(c.lmqc(), 2);
        assert_eq!(c.startup_interval(), Duration::from_millis(31_250));
        assert_eq!(c.startup_count(), 2);
    }

    #[test]
    fn nonsense_is_rejected() {
        let mut c = Config::new(Proto::Igmp);
        c.robustness = 0;
        assert_eq!(c.validate(), Err(ConfigError::ZeroRobustness));
        let mut c = Config::new(Proto::Igmp);
        c.query_response_interval = c.query_interval;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::ResponseNotBelowInterval { .. })
        ));
        let mut c = Config::new(Proto::Igmp);
        c.version = Generation::V2;
        c.query_response_interval = Duration::from_secs(30);
        assert!(matches!(c.validate(), Err(ConfigError::TooLarge { .. })));
        c.version = Generation::V3;
        c.validate().unwrap();
    }

    #[test]
    fn versions_map_both_ways() {
        for p in [Proto::Igmp, Proto::Mld] {
            for g in [Generation::V2, Generation::V3] {
                assert_eq!(Generation::from_version(p, g.version(p)), Some(g));
            }
        }
        assert_eq!(Generation::from_version(Proto::Mld, 3), None);
    }
}
