//! `mcast-member`: a multicast host application for igmpd's end-to-end tests.
//!
//! Runs inside a host namespace (`ip netns exec HOST mcast-member --interface eth0`) and
//! makes that host's own kernel join, leave and filter groups on the interface, so the
//! kernel sends the IGMP/MLD reports and answers queries itself. It holds every membership
//! until told otherwise, and exits on `quit`, on end of stdin, or when killed.
//!
//! Protocol: one command per line on stdin, one reply line per command on stdout, either
//! `ok`, `ok VALUE` or `err MESSAGE`. The first line printed is `ready`. A reply means the
//! setsockopt (or send) has returned, i.e. the kernel has queued the resulting report.
//!
//! ```text
//! join GROUP                  ASM join (IP_ADD_MEMBERSHIP / IPV6_ADD_MEMBERSHIP)
//! leave GROUP                 drop every membership of GROUP (closes its socket)
//! join-source GROUP SOURCE    SSM INCLUDE join (MCAST_JOIN_SOURCE_GROUP)
//! leave-source GROUP SOURCE   MCAST_LEAVE_SOURCE_GROUP
//! block GROUP SOURCE          EXCLUDE SOURCE after `join GROUP` (MCAST_BLOCK_SOURCE)
//! unblock GROUP SOURCE        MCAST_UNBLOCK_SOURCE
//! listen PORT                 count UDP datagrams arriving on PORT (IPv4 and IPv6)
//! count PORT                  -> ok N: datagrams counted on PORT so far
//! send GROUP PORT COUNT       send COUNT datagrams to GROUP:PORT out of the interface
//! mrd-advertise SRC SECONDS   send one IGMP Multicast Router Advertisement (RFC 4286) from
//!                             SRC to 224.0.0.106 with that advertisement interval (raw
//!                             socket, whole IPv4 header with Router Alert, TTL 1)
//! ipv4 HEX                    send the IPv4 packet HEX (whole header: a forged query, a
//!                             PIM hello) to its destination out of the interface (raw)
//! flood-igmp GROUP COUNT      send COUNT IGMPv2 reports as fast as the socket takes them,
//!                             for COUNT consecutive groups from GROUP on, each from its
//!                             own spoofed source in 10.128.0.0/9 -> ok SECONDS
//! quit                        -> ok, then exit
//! ```
//!
//! Each group has its own socket holding its memberships. Datagrams are counted on
//! separate sockets bound to the port: with IP_MULTICAST_ALL/IPV6_MULTICAST_ALL at their
//! default (on), those receive every group this host has joined on the port, so the count
//! measures what the host as a whole accepts (the kernel's per-interface source filters
//! still apply).

mod ffi;

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

struct Member {
    ifname: String,
    ifindex: u32,
    groups: HashMap<IpAddr, Socket>,
    counters: HashMap<u16, Arc<AtomicU64>>,
    senders: HashMap<bool, Socket>,
}

type Reply = Result<Option<String>, String>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ifname = match args.as_slice() {
        [_, flag, name] if flag == "--interface" => name.clone(),
        _ => {
            eprintln!("usage: mcast-member --interface IFNAME  (commands on stdin)");
            std::process::exit(2);
        }
    };
    let ifindex = match std::fs::read_to_string(format!("/sys/class/net/{ifname}/ifindex"))
        .map_err(|e| e.to_string())
        .and_then(|s| s.trim().parse::<u32>().map_err(|e| e.to_string()))
    {
        Ok(i) => i,
        Err(e) => {
            eprintln!("mcast-member: no interface {ifname}: {e}");
            std::process::exit(1);
        }
    };
    let mut m = Member {
        ifname,
        ifindex,
        groups: HashMap::new(),
        counters: HashMap::new(),
        senders: HashMap::new(),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if writeln!(out, "ready").and_then(|()| out.flush()).is_err() {
        return;
    }
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        let quit = words[0] == "quit";
        let reply = if quit { Ok(None) } else { m.command(&words) };
        let text = match reply {
            Ok(None) => "ok".to_owned(),
            Ok(Some(v)) => format!("ok {v}"),
            Err(e) => format!("err {}", e.replace('\n', " ")),
        };
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() || quit {
            break;
        }
    }
}

fn ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|e| format!("bad address {s:?}: {e}"))
}

fn num<T: std::str::FromStr>(s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad number {s:?}"))
}

fn same_family(a: IpAddr, b: IpAddr) -> Result<(), String> {
    if a.is_ipv4() == b.is_ipv4() {
        Ok(())
    } else {
        Err(format!("{a} and {b} are of different families"))
    }
}

impl Member {
    fn command(&mut self, w: &[&str]) -> Reply {
        match *w {
            ["join", g] => self.join(ip(g)?).map(|()| None),
            ["leave", g] => self.leave(ip(g)?).map(|()| None),
            ["join-source", g, s] => self
                .source_op(ip(g)?, ip(s)?, libc::MCAST_JOIN_SOURCE_GROUP)
                .map(|()| None),
            ["leave-source", g, s] => self
                .source_op(ip(g)?, ip(s)?, libc::MCAST_LEAVE_SOURCE_GROUP)
                .map(|()| None),
            ["block", g, s] => self
                .source_op(ip(g)?, ip(s)?, libc::MCAST_BLOCK_SOURCE)
                .map(|()| None),
            ["unblock", g, s] => self
                .source_op(ip(g)?, ip(s)?, libc::MCAST_UNBLOCK_SOURCE)
                .map(|()| None),
            ["listen", p] => self.listen(num(p)?).map(|()| None),
            ["count", p] => {
                let c = self
                    .counters
                    .get(&num(p)?)
                    .ok_or_else(|| format!("not listening on {p}"))?;
                Ok(Some(c.load(Ordering::SeqCst).to_string()))
            }
            ["send", g, p, n] => self.send(ip(g)?, num(p)?, num(n)?).map(|()| None),
            ["mrd-advertise", src, secs] => {
                self.mrd_advertise(num(src)?, num(secs)?).map(|()| None)
            }
            ["ipv4", hex] => self.send_ipv4(&unhex(hex)?).map(|()| None),
            ["flood-igmp", g, n] => self.flood_igmp(num(g)?, num(n)?).map(Some),
            _ => Err(format!("unknown command {:?}", w.join(" "))),
        }
    }

    fn group_socket(&mut self, group: IpAddr) -> Result<&Socket, String> {
        if !group.is_multicast() {
            return Err(format!("{group} is not a multicast address"));
        }
        match self.groups.entry(group) {
            Entry::Occupied(o) => Ok(o.into_mut()),
            Entry::Vacant(v) => {
                let domain = if group.is_ipv4() {
                    Domain::IPV4
                } else {
                    Domain::IPV6
                };
                let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
                    .map_err(|e| format!("socket: {e}"))?;
                Ok(v.insert(s))
            }
        }
    }

    fn join(&mut self, group: IpAddr) -> Result<(), String> {
        if self.groups.contains_key(&group) {
            return Err(format!("{group} already has a socket; leave it first"));
        }
        let ifindex = self.ifindex;
        let s = self.group_socket(group)?;
        let r = match group {
            IpAddr::V4(g) => s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(ifindex)),
            IpAddr::V6(g) => s.join_multicast_v6(&g, ifindex),
        };
        if let Err(e) = r {
            self.groups.remove(&group);
            return Err(format!("join {group}: {e}"));
        }
        Ok(())
    }

    fn leave(&mut self, group: IpAddr) -> Result<(), String> {
        // Closing the socket drops all its memberships, as a host application exiting would.
        self.groups
            .remove(&group)
            .map(drop)
            .ok_or_else(|| format!("{group} not joined"))
    }

    fn source_op(&mut self, group: IpAddr, source: IpAddr, op: libc::c_int) -> Result<(), String> {
        same_family(group, source)?;
        let fresh = !self.groups.contains_key(&group);
        let ifindex = self.ifindex;
        let s = self.group_socket(group)?;
        let r = ffi::group_source_op(s, op, ifindex, group, source);
        if let Err(e) = r {
            if fresh {
                self.groups.remove(&group);
            }
            return Err(format!(
                "{op_name} {group} {source}: {e}",
                op_name = op_name(op)
            ));
        }
        Ok(())
    }

    fn listen(&mut self, port: u16) -> Result<(), String> {
        if self.counters.contains_key(&port) {
            return Err(format!("already listening on {port}"));
        }
        let counter = Arc::new(AtomicU64::new(0));
        let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
        let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        for addr in [v4, v6] {
            let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
                .map_err(|e| format!("socket: {e}"))?;
            if addr.is_ipv6() {
                s.set_only_v6(true)
                    .map_err(|e| format!("IPV6_V6ONLY: {e}"))?;
            }
            s.set_reuse_address(true)
                .map_err(|e| format!("SO_REUSEADDR: {e}"))?;
            s.bind(&SockAddr::from(addr))
                .map_err(|e| format!("bind {addr}: {e}"))?;
            let c = Arc::clone(&counter);
            let sock: std::net::UdpSocket = s.into();
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while sock.recv(&mut buf).is_ok() {
                    c.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        self.counters.insert(port, counter);
        Ok(())
    }

    fn sender(&mut self, v6: bool) -> Result<&Socket, String> {
        let ifname = self.ifname.clone();
        let ifindex = self.ifindex;
        match self.senders.entry(v6) {
            Entry::Occupied(o) => Ok(o.into_mut()),
            Entry::Vacant(slot) => {
                let domain = if v6 { Domain::IPV6 } else { Domain::IPV4 };
                let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
                    .map_err(|e| format!("socket: {e}"))?;
                // Route lookups for the multicast destination use the interface.
                s.bind_device(Some(ifname.as_bytes()))
                    .map_err(|e| format!("SO_BINDTODEVICE: {e}"))?;
                if v6 {
                    s.set_multicast_if_v6(ifindex)
                        .map_err(|e| format!("IPV6_MULTICAST_IF: {e}"))?;
                    s.set_multicast_hops_v6(1)
                        .map_err(|e| format!("IPV6_MULTICAST_HOPS: {e}"))?;
                    s.set_multicast_loop_v6(false)
                        .map_err(|e| format!("IPV6_MULTICAST_LOOP: {e}"))?;
                } else {
                    s.set_multicast_ttl_v4(1)
                        .map_err(|e| format!("IP_MULTICAST_TTL: {e}"))?;
                    s.set_multicast_loop_v4(false)
                        .map_err(|e| format!("IP_MULTICAST_LOOP: {e}"))?;
                }
                Ok(slot.insert(s))
            }
        }
    }

    /// RFC 4286 §4.1: an advertisement to All-Snoopers, built by igmpd-wire and sent with
    /// IP_HDRINCL so that it carries the Router Alert option.
    fn mrd_advertise(&mut self, src: Ipv4Addr, interval_s: u8) -> Result<(), String> {
        use igmpd_wire::frame::{Frame, Ipv4Header};
        use igmpd_wire::{mrd, IgmpRepr, MrdRepr};
        let adv = MrdRepr::Advertisement {
            advertisement_interval: interval_s,
            query_interval: 0,
            robustness: 0,
        };
        let frame = Frame::igmp(
            [0; 6],
            None,
            Ipv4Header::igmp(src, mrd::ALL_SNOOPERS_V4),
            IgmpRepr::Mrd(adv),
        )
        .to_bytes();
        // Without the 14-byte Ethernet header: the IPv4 packet.
        self.send_ipv4(frame.get(14..).ok_or("short frame")?)
    }

    /// A flood of IGMPv2 reports for `count` groups from `first` on, each from a spoofed
    /// source (a host trying to grow a snooping switch's state). Returns the seconds taken.
    fn flood_igmp(&mut self, first: Ipv4Addr, count: u32) -> Result<String, String> {
        use igmpd_wire::frame::{Frame, Ipv4Header};
        use igmpd_wire::IgmpRepr;
        let s = self.raw_v4()?;
        let t0 = std::time::Instant::now();
        for i in 0..count {
            let group = Ipv4Addr::from(u32::from(first).wrapping_add(i));
            let src = Ipv4Addr::from(0x0a80_0000 | (i & 0x007f_ffff));
            let frame = Frame::igmp(
                [0; 6],
                None,
                Ipv4Header::igmp(src, group),
                IgmpRepr::V2Report { group },
            )
            .to_bytes();
            send_raw(&s, frame.get(14..).ok_or("short frame")?)?;
        }
        Ok(format!("{:.3}", t0.elapsed().as_secs_f64()))
    }

    /// Sends a whole IPv4 packet (its own header) to its destination address.
    fn send_ipv4(&mut self, packet: &[u8]) -> Result<(), String> {
        send_raw(&self.raw_v4()?, packet)
    }

    /// A raw IPv4 socket (whole header included) bound to the interface.
    fn raw_v4(&self) -> Result<Socket, String> {
        let s = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )
        .map_err(|e| format!("raw socket: {e}"))?;
        s.set_header_included_v4(true)
            .map_err(|e| format!("IP_HDRINCL: {e}"))?;
        s.bind_device(Some(self.ifname.as_bytes()))
            .map_err(|e| format!("SO_BINDTODEVICE: {e}"))?;
        Ok(s)
    }

    fn send(&mut self, group: IpAddr, port: u16, count: u32) -> Result<(), String> {
        if !group.is_multicast() {
            return Err(format!("{group} is not a multicast address"));
        }
        let s = self.sender(group.is_ipv6())?;
        let dest = SockAddr::from(SocketAddr::new(group, port));
        for seq in 0..count {
            let payload = format!("igmpd-netns-test {seq}");
            let mut tries = 0;
            loop {
                match s.send_to(payload.as_bytes(), &dest) {
                    Ok(_) => break,
                    // A full qdisc or socket buffer: back off briefly, bounded.
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) && tries < 100 => {
                        tries += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(e) => return Err(format!("send to {group}:{port}: {e}")),
                }
            }
        }
        Ok(())
    }
}

fn op_name(op: libc::c_int) -> &'static str {
    match op {
        libc::MCAST_JOIN_SOURCE_GROUP => "join-source",
        libc::MCAST_LEAVE_SOURCE_GROUP => "leave-source",
        libc::MCAST_BLOCK_SOURCE => "block",
        libc::MCAST_UNBLOCK_SOURCE => "unblock",
        _ => "source-op",
    }
}

/// Hex digits to bytes.
fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 != 0 {
        return Err("odd number of hex digits".into());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("not hex: {s}")))
        .collect()
}

/// Sends a whole IPv4 packet on `s` to its destination address.
fn send_raw(s: &Socket, packet: &[u8]) -> Result<(), String> {
    let dst: [u8; 4] = packet
        .get(16..20)
        .and_then(|d| d.try_into().ok())
        .ok_or("not an IPv4 packet")?;
    let dst = SockAddr::from(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(dst)), 0));
    s.send_to(packet, &dst)
        .map_err(|e| format!("send the IPv4 packet: {e}"))?;
    Ok(())
}
