//! `igmpd doctor IFACE [--duration DUR] [--probe] [--json]`: from any host of a LAN, find
//! why multicast stops: no querier, a 0.0.0.0 querier, queriers fighting, this host's own
//! firewall dropping queries, and (with --probe) the hosts that are alive but never answer.
//!
//! It listens with AF_PACKET, which sees queries before the local firewall does and sees
//! this host's own reports going out, so "the query arrived but the kernel never answered"
//! is a fact, not a guess. It reads this host's memberships from /proc and its firewall
//! rules from nft / iptables to say which rule is to blame.
//!
//! The steps of [`diagnose`], one module each: [`capture`] (listen), [`memberships`]
//! (this host's groups), [`probe`] (with --probe), [`findings`] (with [`firewall`]),
//! [`render`] (the report).

mod capture;
mod findings;
mod firewall;
mod memberships;
mod probe;
mod render;

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use igmpd_netlink::{Monitor, SystemEvent};
use igmpd_querier::adapter as codec;
use igmpd_querier::core::{Instant, Severity};

use crate::cli::DoctorArgs;
use capture::Heard;
use findings::Answered;
use render::Report;

/// Runs the doctor; returns the exit status: 0 nothing wrong, 1 a warning or error found.
pub async fn diagnose(args: &DoctorArgs) -> Result<u8> {
    let monitor = Monitor::new().context("opening rtnetlink")?;
    let iface = Iface::resolve(&monitor, &args.iface).await?;
    if !iface.up {
        bail!("{} is down", iface.name);
    }
    let sock = capture::open(&iface)?;
    let clock = Clock::start();
    let groups = memberships::local(&iface.name);
    let mut heard = Heard::default();
    let (probe, least) = if args.probe {
        let p = probe::send(&sock, &iface, &clock).await?;
        (Some(p), probe::LEAST_LISTEN)
    } else {
        (None, Duration::from_secs(1))
    };
    heard
        .listen(&sock, &clock, args.duration, least, &groups)
        .await?;
    let end = clock.now();

    let answered = Answered::by(&heard, end);
    let mut found = findings::of(&heard, &groups, answered, &iface.name, end);
    let live = match &probe {
        Some(p) => {
            p.live_hosts(&monitor, &iface, &heard, end, &mut found)
                .await
        }
        None => Vec::new(),
    };
    findings::sort(&mut found);

    let report = Report {
        iface: &iface,
        listened: end.saturating_since(Instant::ZERO),
        heard: &heard,
        groups: &groups,
        answered,
        findings: &found,
        probe: probe.as_ref().map(|p| (p, live.as_slice())),
    };
    let doc = report.json();
    let out = if args.json {
        serde_json::to_string_pretty(&doc)?
    } else {
        render::text(&doc)
    };
    let _ = writeln!(std::io::stdout().lock(), "{}", out.trim_end());
    Ok(u8::from(
        found.iter().any(|f| f.severity >= Severity::Warning),
    ))
}

/// The doctor's time: core instants since it started listening (the observers' epoch).
struct Clock(tokio::time::Instant);

impl Clock {
    fn start() -> Clock {
        Clock(tokio::time::Instant::now())
    }

    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn now(&self) -> Instant {
        Instant::from_millis(self.elapsed().as_millis() as u64)
    }
}

/// The interface examined.
struct Iface {
    name: String,
    ifindex: u32,
    mac: [u8; 6],
    up: bool,
    /// IPv4 addresses with their prefix lengths, sorted.
    v4: Vec<(Ipv4Addr, u8)>,
    /// The lowest IPv6 link-local address.
    v6_ll: Option<Ipv6Addr>,
}

impl Iface {
    async fn resolve(monitor: &Monitor, name: &str) -> Result<Iface> {
        let events = monitor
            .dump()
            .await
            .context("reading interfaces over netlink")?;
        let (ifindex, mac, up) = events
            .iter()
            .find_map(|e| match e {
                SystemEvent::Link {
                    ifindex,
                    name: n,
                    up,
                    mac,
                } if n == name => Some((*ifindex, mac.unwrap_or([0; 6]), *up)),
                _ => None,
            })
            .with_context(|| format!("no such interface: {name}"))?;
        let mut v4 = Vec::new();
        let mut v6_ll = None;
        for e in &events {
            if let SystemEvent::Address {
                ifindex: i,
                addr,
                prefix_len,
                present: true,
                usable: true,
            } = e
            {
                if *i != ifindex {
                    continue;
                }
                match addr {
                    IpAddr::V4(a) => v4.push((*a, *prefix_len)),
                    IpAddr::V6(a) if codec::is_link_local(a) => {
                        v6_ll = Some(v6_ll.map_or(*a, |o: Ipv6Addr| o.min(*a)))
                    }
                    IpAddr::V6(_) => {}
                }
            }
        }
        v4.sort();
        Ok(Iface {
            name: name.to_string(),
            ifindex,
            mac,
            up,
            v4,
            v6_ll,
        })
    }
}
