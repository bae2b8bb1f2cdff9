//! Listening. AF_PACKET sees queries before the local firewall does and sees this host's
//! own reports going out, so "the query arrived but the kernel never answered" is a fact,
//! not a guess.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::Result;
use igmpd_packet::{Filter, PacketSocket};
use igmpd_querier::adapter::{self as codec, Input};
use igmpd_querier::core::{Generation, Instant, Observer, Proto};
use igmpd_wire::frame::Packet;
use igmpd_wire::{IgmpRepr, MldRepr};
use tokio::io::unix::AsyncFd;

use super::memberships::Local;
use super::{Clock, Iface};

/// The longest the doctor listens by default: one default query interval plus a response.
const DEFAULT_CAP: Duration = Duration::from_secs(130);
/// After a query's Max Resp Time, how long its answers may still take to be seen.
const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// The capture socket on `iface`: IGMP and MLD, both directions.
pub fn open(iface: &Iface) -> Result<AsyncFd<PacketSocket>> {
    let sock = PacketSocket::open(iface.ifindex, Filter::IgmpMld).map_err(|e| {
        if e.raw_os_error() == Some(libc::EPERM) {
            anyhow::anyhow!(
                "cannot listen on {}: {e} (needs CAP_NET_RAW: run as root)",
                iface.name
            )
        } else {
            anyhow::anyhow!("cannot listen on {}: {e}", iface.name)
        }
    })?;
    Ok(sock.into_async()?)
}

/// One family as the doctor heard it.
pub struct Family<A> {
    /// The queriers and hosts on the wire.
    pub obs: Observer<A>,
    /// When this host sent reports, and for which groups.
    pub sent: Vec<(Instant, BTreeSet<IpAddr>)>,
}

/// What a message made of its sender.
enum Sender {
    Querier,
    Reporter,
}

impl<A: Ord + Copy + Hash + Display> Family<A> {
    /// Observes from the start of listening, so that "how long was nothing heard" is the
    /// whole listening time.
    fn new(proto: Proto) -> Self {
        Family {
            obs: Observer::new(proto, Instant::ZERO),
            sent: Vec::new(),
        }
    }

    /// The times of the general queries whose response window closed by `now`.
    fn closed_queries(&self, now: Instant) -> impl Iterator<Item = Instant> + '_ {
        self.obs.queriers().flat_map(move |q| {
            q.recent
                .iter()
                .filter(move |t| **t + q.max_resp + ANSWER_GRACE <= now)
                .copied()
        })
    }

    /// Some(true) when this host answered a general query whose window closed, Some(false)
    /// when such queries arrived and it sent nothing after them, None when no query arrived.
    pub fn answered(&self, now: Instant) -> Option<bool> {
        let first = self.closed_queries(now).min()?;
        Some(self.sent.iter().any(|(t, _)| *t >= first))
    }

    /// A query from another host, or a report (this host's own, outgoing, or another's).
    fn hear(
        &mut self,
        t: Instant,
        src: Option<A>,
        input: Input<A>,
        gen: Generation,
        outgoing: bool,
        groups: impl FnOnce() -> BTreeSet<IpAddr>,
    ) -> Option<Sender> {
        match input {
            Input::Query(q) if !outgoing => {
                self.obs.query(t, src, &q, false);
                Some(Sender::Querier)
            }
            Input::Reports(_) if outgoing => {
                self.sent.push((t, groups()));
                None
            }
            Input::Reports(rs) => {
                for r in &rs {
                    self.obs.report(t, src, r, gen);
                }
                Some(Sender::Reporter)
            }
            _ => None,
        }
    }
}

/// Everything heard while listening.
pub struct Heard {
    /// IGMP.
    pub v4: Family<Ipv4Addr>,
    /// MLD.
    pub v6: Family<Ipv6Addr>,
    /// Who answered, by source MAC: (IGMP, MLD) reports seen (for --probe).
    pub answered: BTreeMap<[u8; 6], (bool, bool)>,
    /// Queriers do not hear their own queries, so they never answer them: not silent hosts.
    pub queriers: BTreeSet<[u8; 6]>,
}

impl Default for Heard {
    fn default() -> Heard {
        Heard {
            v4: Family::new(Proto::Igmp),
            v6: Family::new(Proto::Mld),
            answered: BTreeMap::new(),
            queriers: BTreeSet::new(),
        }
    }
}

impl Heard {
    /// Listens on `sock` for `duration`, or by default until a general query of each
    /// family with local groups was seen and answered or not (at least `least`, at most
    /// [`DEFAULT_CAP`]).
    pub async fn listen(
        &mut self,
        sock: &AsyncFd<PacketSocket>,
        clock: &Clock,
        duration: Option<Duration>,
        least: Duration,
        groups: &Local,
    ) -> Result<()> {
        let mut buf = vec![0u8; 65_536];
        loop {
            let elapsed = clock.elapsed();
            let done = match duration {
                Some(d) => elapsed >= d,
                None => {
                    elapsed >= DEFAULT_CAP
                        || (elapsed >= least && self.answered_enough(groups, clock.now()))
                }
            };
            if done {
                return Ok(());
            }
            let remaining = duration
                .unwrap_or(DEFAULT_CAP)
                .saturating_sub(elapsed)
                .min(Duration::from_millis(250));
            let Ok(guard) = tokio::time::timeout(remaining, sock.readable()).await else {
                continue;
            };
            let mut guard = guard?;
            loop {
                match guard.get_inner().recv(&mut buf) {
                    Ok(Some(info)) => {
                        let outgoing = info.pkttype == libc::PACKET_OUTGOING;
                        self.frame(&buf[..info.len], outgoing, clock.now());
                    }
                    Ok(None) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }

    /// One captured frame, heard at `t`.
    pub(super) fn frame(&mut self, bytes: &[u8], outgoing: bool, t: Instant) {
        let Ok(frame) = igmpd_wire::parse_ethernet(bytes) else {
            return;
        };
        let (sender, proto) = match &frame.packet {
            Packet::Igmp { ip, igmp } => {
                let src = (!ip.src.is_unspecified()).then_some(ip.src);
                let gen = codec::igmp_report_gen(igmp);
                let input = codec::igmp_input(igmp);
                let groups = || report_groups_igmp(igmp);
                let sender = self.v4.hear(t, src, input, gen, outgoing, groups);
                (sender, Proto::Igmp)
            }
            Packet::Mld { ip, mld } => {
                let src = (!ip.src.is_unspecified()).then_some(ip.src);
                let gen = codec::mld_report_gen(mld);
                // A query must come from a link-local address (RFC 9777 §5.1.14).
                let input = match codec::mld_input(mld) {
                    Input::Query(_) if !codec::is_link_local(&ip.src) => Input::Ignored,
                    input => input,
                };
                let groups = || report_groups_mld(mld);
                let sender = self.v6.hear(t, src, input, gen, outgoing, groups);
                (sender, Proto::Mld)
            }
            _ => return,
        };
        let mac = frame.ethernet.src;
        match (sender, proto) {
            (Some(Sender::Querier), _) => {
                self.queriers.insert(mac);
            }
            (Some(Sender::Reporter), Proto::Igmp) => self.answered.entry(mac).or_default().0 = true,
            (Some(Sender::Reporter), Proto::Mld) => self.answered.entry(mac).or_default().1 = true,
            (None, _) => {}
        }
    }

    /// Stop early once every family with local groups saw a general query and its
    /// response window closed (so "answered or not" is known).
    fn answered_enough(&self, groups: &Local, now: Instant) -> bool {
        let closed4 = self.v4.closed_queries(now).next().is_some();
        let closed6 = self.v6.closed_queries(now).next().is_some();
        (groups.v4.is_empty() || closed4)
            && (groups.v6.is_empty() || closed6)
            && (closed4 || closed6)
    }
}

fn report_groups_igmp(r: &IgmpRepr) -> BTreeSet<IpAddr> {
    match r {
        IgmpRepr::V1Report { group } | IgmpRepr::V2Report { group } => [IpAddr::V4(*group)].into(),
        IgmpRepr::V3Report { records } => records.iter().map(|r| IpAddr::V4(r.group)).collect(),
        _ => BTreeSet::new(),
    }
}

fn report_groups_mld(r: &MldRepr) -> BTreeSet<IpAddr> {
    match r {
        MldRepr::V1Report { group } => [IpAddr::V6(*group)].into(),
        MldRepr::V2Report { records } => records.iter().map(|r| IpAddr::V6(r.group)).collect(),
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use igmpd_wire::frame::{Ipv4Header, Ipv6Header};
    use igmpd_wire::{igmp, mld, Frame, IgmpQuery, IgmpVersion, MldQuery, MldVersion};

    pub const ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 1];
    pub const HOST: [u8; 6] = [2, 0, 0, 0, 0, 2];
    pub const ME: [u8; 6] = [2, 0, 0, 0, 0, 3];
    const ROUTER6: [u8; 6] = [2, 0, 0, 0, 0, 4];

    fn v4(mac: [u8; 6], src: &str, dst: Ipv4Addr, repr: IgmpRepr) -> Vec<u8> {
        let ip = Ipv4Header::igmp(src.parse().unwrap(), dst);
        Frame::igmp(mac, None, ip, repr).to_bytes()
    }

    fn v6(mac: [u8; 6], src: &str, repr: MldRepr) -> Vec<u8> {
        let ip = Ipv6Header::mld(src.parse().unwrap(), mld::ALL_NODES);
        Frame::mld(mac, None, ip, repr).to_bytes()
    }

    fn ms(t: u64) -> Instant {
        Instant::from_millis(t)
    }

    /// A LAN heard for a while: a querier of each family (Max Resp 1 s), a host answering
    /// both, this host answering IGMP for 239.1.1.2, an MLD query from a global address.
    pub fn lan() -> Heard {
        let mut h = Heard::default();
        let q4 = IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 1000, 2, 125));
        let q6 = MldRepr::Query(MldQuery::general(MldVersion::V2, 1000, 2, 125));
        let g1: Ipv4Addr = "239.1.1.1".parse().unwrap();
        let g2: Ipv4Addr = "239.1.1.2".parse().unwrap();
        let frames: [(Vec<u8>, bool, u64); 7] = [
            (v4(ROUTER, "10.0.0.1", igmp::ALL_SYSTEMS, q4), false, 10),
            (
                v4(HOST, "10.0.0.2", g1, IgmpRepr::V2Report { group: g1 }),
                false,
                110,
            ),
            (
                v4(ME, "10.0.0.3", g2, IgmpRepr::V2Report { group: g2 }),
                true,
                210,
            ),
            (v6(ROUTER6, "2001:db8::1", q6.clone()), false, 260),
            (v6(ROUTER6, "fe80::1", q6), false, 310),
            (
                v6(
                    HOST,
                    "fe80::2",
                    MldRepr::V1Report {
                        group: "ff0e::1".parse().unwrap(),
                    },
                ),
                false,
                400,
            ),
            (vec![0xff; 20], false, 510),
        ];
        for (bytes, outgoing, t) in frames {
            h.frame(&bytes, outgoing, ms(t));
        }
        h
    }

    #[test]
    fn tells_queriers_reporters_and_this_hosts_own_reports_apart() {
        let h = lan();
        assert_eq!(h.queriers, [ROUTER, ROUTER6].into());
        assert_eq!(h.answered, [(HOST, (true, true))].into());
        let g2: IpAddr = "239.1.1.2".parse().unwrap();
        assert_eq!(h.v4.sent, [(ms(210), [g2].into())]);
        assert!(h.v6.sent.is_empty());
        let q6: Vec<_> = h.v6.obs.queriers().map(|q| q.address).collect();
        assert_eq!(
            q6,
            [Some("fe80::1".parse().unwrap())],
            "the global source is no querier"
        );
    }

    #[test]
    fn knows_whether_this_host_answered_once_the_response_window_closed() {
        let h = lan();
        let groups = Local {
            v4: vec!["239.1.1.2".parse().unwrap()],
            v6: vec![],
        };
        // Queried at 10 ms, Max Resp 1 s and the grace: the window closes at 1.51 s.
        assert_eq!(
            (h.v4.answered(ms(1509)), h.v6.answered(ms(1509))),
            (None, None)
        );
        assert!(!h.answered_enough(&groups, ms(1509)));
        assert_eq!(h.v4.answered(ms(1510)), Some(true));
        assert!(h.answered_enough(&groups, ms(1510)));
        // MLD: queried at 310 ms, nothing sent since.
        assert_eq!(h.v6.answered(ms(1810)), Some(false));
        let both = Local {
            v6: vec!["ff0e::9".parse().unwrap()],
            ..groups
        };
        assert!(!h.answered_enough(&both, ms(1809)));
        assert!(h.answered_enough(&both, ms(1810)));
    }
}
