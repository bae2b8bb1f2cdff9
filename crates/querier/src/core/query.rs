//! A query as received (after the wire codec) and as sent (before it), and which of an
//! elected querier's timers (QRV, QQIC) are adopted.

use std::time::Duration;

use super::config::Generation;

/// The QRV an elected querier's query may make us adopt (RFC 9776 §4.1.6): 1 is legal
/// but "SHOULD NOT" be used (one lost report drops a member), and a forged query could set
/// it; outside this range the query still counts for the election, but our own
/// robustness stays in use (and the observer raises `querier-timers-ignored`).
pub const ADOPTABLE_QRV: std::ops::RangeInclusive<u8> = 2..=7;
/// The query interval (QQIC, §4.1.7) we adopt: 1 s to 1 hour. QQIC reaches 31 744 s,
/// which with QRV 7 made every membership last 62 hours.
pub const ADOPTABLE_QQI: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);

/// Whether a query's QRV and QQI are ones we adopt (absent ones are: nothing is adopted).
pub fn adoptable(qrv: u8, qqi: Option<Duration>) -> (bool, bool) {
    (
        qrv == 0 || ADOPTABLE_QRV.contains(&qrv),
        qqi.is_none_or(|d| d.is_zero() || ADOPTABLE_QQI.contains(&d)),
    )
}

/// A query as received, after the wire codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryIn<A> {
    /// The query's version, by its format.
    pub gen: Generation,
    /// None for a general query.
    pub group: Option<A>,
    /// Sources of a group-and-source-specific query.
    pub sources: Vec<A>,
    /// Suppress Router-Side Processing (always clear for v1/v2 queries).
    pub s_flag: bool,
    /// Querier's Robustness Variable; 0 when absent.
    pub qrv: u8,
    /// Querier's Query Interval from QQIC; None when absent or zero.
    pub qqi: Option<Duration>,
    /// Max Resp Time.
    pub max_resp: Duration,
}

/// A query to send. The shell encodes it for the family and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryOut<A> {
    /// Format to use.
    pub gen: Generation,
    /// Source address; None means the unspecified address (0.0.0.0 proxy query).
    pub src: Option<A>,
    /// None for a general query.
    pub group: Option<A>,
    /// Sources of a group-and-source-specific query.
    pub sources: Vec<A>,
    /// Suppress Router-Side Processing.
    pub s_flag: bool,
    /// Robustness to announce (0 when above 7, RFC 9776 §4.1.6).
    pub qrv: u8,
    /// Query interval to announce.
    pub qqi: Duration,
    /// Max Resp Time.
    pub max_resp: Duration,
}

impl<A: Copy> From<&QueryOut<A>> for QueryIn<A> {
    /// What a query we send looks like to a host (and to our own observer): QRV and QQI
    /// exist only in version-3 (IGMPv3/MLDv2) queries.
    fn from(q: &QueryOut<A>) -> Self {
        let v3 = q.gen == Generation::V3;
        QueryIn {
            gen: q.gen,
            group: q.group,
            sources: q.sources.clone(),
            s_flag: q.s_flag,
            qrv: if v3 { q.qrv } else { 0 },
            qqi: v3.then_some(q.qqi),
            max_resp: q.max_resp,
        }
    }
}
