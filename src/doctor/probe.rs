//! `--probe`: ask actively. Make this port a router port on snooping switches (so the
//! hosts' reports reach it), find the LAN's live hosts, query them, and name those that
//! are alive but answer nothing. What it sends is listed in the output.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::Result;
use igmpd_netlink::Monitor;
use igmpd_packet::PacketSocket;
use igmpd_querier::core::{Finding, Instant, Severity};
use igmpd_wire::frame::{Ipv4Header, Ipv6Header};
use igmpd_wire::{igmp, mrd, Frame, IgmpQuery, IgmpRepr, IgmpVersion, MldRepr, MrdRepr};
use tokio::io::unix::AsyncFd;

use super::capture::Heard;
use super::{Clock, Iface};

/// Max Resp Time of the probe's own IGMP query.
const PROBE_MAX_RESP: Duration = Duration::from_secs(2);
/// Largest subnet the probe scans for live hosts.
const MAX_SCAN: u32 = 1024;
/// How long the doctor listens at least after probing: the answers to its query.
pub const LEAST_LISTEN: Duration = Duration::from_secs(4);

/// What the probe sent.
pub struct Probe {
    /// Each thing sent, for the report.
    pub sent: Vec<String>,
    /// When its query went out.
    pub(super) query_at: Instant,
}

/// A host the probe found alive (in the neighbour cache), and what it answered.
pub struct LiveHost {
    /// Its IPv4 address if it has one, else its first.
    pub address: String,
    /// Its MAC address, `aa:bb:...`.
    pub mac: String,
    /// It sent IGMP reports.
    pub answered_igmp: bool,
    /// It sent MLD reports.
    pub answered_mld: bool,
    /// It sent queries.
    pub querier: bool,
}

/// Sends the probe: router advertisements, the address scan, a general query.
pub async fn send(sock: &AsyncFd<PacketSocket>, iface: &Iface, clock: &Clock) -> Result<Probe> {
    let mut sent = Vec::new();
    advertise(sock.get_ref(), iface, &mut sent)?;
    scan(iface, &mut sent)?;
    // Give the switch a moment to install the router port from the advertisement.
    tokio::time::sleep(Duration::from_millis(200)).await;
    query(sock.get_ref(), iface, &mut sent)?;
    Ok(Probe {
        sent,
        query_at: clock.now(),
    })
}

/// RFC 4286 advertisements: a snooping switch makes this port a router port, so the
/// hosts' reports reach us. They take no part in the querier election.
fn advertise(sock: &PacketSocket, iface: &Iface, sent: &mut Vec<String>) -> Result<()> {
    let src4 = iface
        .v4
        .first()
        .map(|a| a.0)
        .unwrap_or(Ipv4Addr::UNSPECIFIED);
    let adv = MrdRepr::Advertisement {
        advertisement_interval: 20,
        query_interval: 0,
        robustness: 0,
    };
    let igmp = Frame::igmp(
        iface.mac,
        None,
        Ipv4Header::igmp(src4, mrd::ALL_SNOOPERS_V4),
        IgmpRepr::Mrd(adv),
    );
    let igmp = (
        igmp,
        format!(
            "an IGMP Multicast Router Advertisement (RFC 4286) to {}",
            mrd::ALL_SNOOPERS_V4
        ),
    );
    let mld = iface.v6_ll.map(|ll| {
        let ip = Ipv6Header::mld(ll, mrd::ALL_SNOOPERS_V6);
        let f = Frame::mld(iface.mac, None, ip, MldRepr::Mrd(adv));
        let what = format!(
            "an MLD Multicast Router Advertisement to {}",
            mrd::ALL_SNOOPERS_V6
        );
        (f, what)
    });
    for (frame, what) in std::iter::once(igmp).chain(mld) {
        sock.send(&frame.to_bytes())?;
        sent.push(what);
    }
    Ok(())
}

/// Finds the live hosts: the kernel resolves every address of the subnet (ARP), and every
/// IPv6 node answers an echo to all-nodes.
fn scan(iface: &Iface, sent: &mut Vec<String>) -> Result<()> {
    let Some((a, len)) = iface.v4.first().copied() else {
        return Ok(());
    };
    let n = 1u32 << (32 - u32::from(len.min(32)));
    if n > MAX_SCAN || len >= 31 {
        sent.push(format!(
            "no address scan: the subnet /{len} is larger than {MAX_SCAN} addresses"
        ));
        return Ok(());
    }
    let base = u32::from(a) & !(n - 1);
    let udp = std::net::UdpSocket::bind((a, 0))?;
    let mut count = 0;
    for i in 1..n - 1 {
        let t = Ipv4Addr::from(base + i);
        if t != a {
            let _ = udp.send_to(b"", (t, 9));
            count += 1;
        }
    }
    sent.push(format!("{count} empty UDP datagrams to port 9 (discard) so the kernel resolves every address of {}/{len} by ARP", Ipv4Addr::from(base)));
    Ok(())
}

/// An IGMPv3 general query from 0.0.0.0: hosts answer it, and a query from the
/// unspecified address never wins the election (RFC 9776 §6.6.2).
fn query(sock: &PacketSocket, iface: &Iface, sent: &mut Vec<String>) -> Result<()> {
    let q = IgmpRepr::Query(IgmpQuery::general(
        IgmpVersion::V3,
        PROBE_MAX_RESP.as_millis() as u32,
        2,
        125,
    ));
    let f = Frame::igmp(
        iface.mac,
        None,
        Ipv4Header::igmp(Ipv4Addr::UNSPECIFIED, igmp::ALL_SYSTEMS),
        q,
    );
    sock.send(&f.to_bytes())?;
    sent.push(format!(
        "an IGMPv3 general query from 0.0.0.0 (Max Resp {} s; a query from 0.0.0.0 never wins the querier election)",
        PROBE_MAX_RESP.as_secs()
    ));
    Ok(())
}

impl Probe {
    /// The live hosts on `iface` and what they answered by `end`; a `host-silent` finding
    /// for each that answered nothing although the query's response time has passed.
    pub async fn live_hosts(
        &self,
        monitor: &Monitor,
        iface: &Iface,
        heard: &Heard,
        end: Instant,
        findings: &mut Vec<Finding>,
    ) -> Vec<LiveHost> {
        let neigh = monitor.neighbours(iface.ifindex).await.unwrap_or_default();
        let mut by_mac: BTreeMap<[u8; 6], Vec<IpAddr>> = BTreeMap::new();
        for (a, m) in neigh {
            if m != iface.mac {
                by_mac.entry(m).or_default().push(a);
            }
        }
        let waited = end.saturating_since(self.query_at) >= PROBE_MAX_RESP;
        let mut live = Vec::new();
        for (mac, addrs) in &by_mac {
            let (igmp_ok, mld_ok) = heard.answered.get(mac).copied().unwrap_or_default();
            let host = LiveHost {
                address: addrs
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or(addrs.first())
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                mac: mac_str(mac),
                answered_igmp: igmp_ok,
                answered_mld: mld_ok,
                querier: heard.queriers.contains(mac),
            };
            if waited && !igmp_ok && !mld_ok && !host.querier {
                findings.push(host_silent(&iface.name, &host));
            }
            live.push(host);
        }
        live
    }
}

fn host_silent(iface: &str, host: &LiveHost) -> Finding {
    let (name, mac) = (&host.address, &host.mac);
    Finding {
        code: "host-silent",
        severity: Severity::Error,
        iface: iface.to_string(),
        host: Some(name.clone()),
        group: None,
        message: format!("host {name} ({mac}) is alive on the LAN (it answers address resolution) but answered no IGMP and no MLD query: a snooping switch forgets its groups and it stops receiving multicast (a host without any group and with IPv6 off would look the same)"),
        hint: format!("on {name}: let IGMP and MLD queries in (nftables: `ip protocol igmp accept` and `icmpv6 type mld-listener-query accept` in the input chain), then check with `igmpd doctor IFACE` there"),
    }
}

fn mac_str(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    #[test]
    fn macs_are_lowercase_hex_with_colons() {
        assert_eq!(
            super::mac_str(&[2, 0, 0xab, 0, 0, 0x1f]),
            "02:00:ab:00:00:1f"
        );
    }
}
