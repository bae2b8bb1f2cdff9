//! The classic BPF programs that let only IGMP, MLD (and PIM) frames reach userspace, for
//! a socket on one interface or for the capture ring on every port of a bridge.

use socket2::SockFilter;

use crate::sys;

/// Which frames the BPF filter lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// IPv4 IGMP, and IPv6 whose first next header is Hop-by-Hop followed by ICMPv6 (how
    /// every MLD message travels, RFC 9777 §5).
    IgmpMld,
    /// The same plus PIM over IPv4 and IPv6 (router-port detection).
    IgmpMldPim,
}

// Classic BPF opcodes (<linux/filter.h>).
const LDW_ABS: u16 = 0x20;
const LDH_ABS: u16 = 0x28;
const LDB_ABS: u16 = 0x30;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;

/// One classic BPF instruction (struct sock_filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u16,
    jt: u8,
    jf: u8,
    k: u32,
}

/// Ancillary loads (SKF_AD_OFF + SKF_AD_PKTTYPE / SKF_AD_IFINDEX): the packet type and
/// the receiving interface instead of packet bytes.
const AD_PKTTYPE: u32 = 0xffff_f000 + 4;
const AD_IFINDEX: u32 = 0xffff_f000 + 8;
/// Most ports the ring's filter names one by one (a conditional jump reaches 255
/// instructions); beyond that the filter takes every interface and the snooper ignores
/// frames from non-ports.
const MAX_FILTER_PORTS: usize = 250;

impl Filter {
    /// The program for the kernel.
    pub fn program(self) -> Vec<SockFilter> {
        to_kernel(self.insns())
    }

    /// The program for a socket bound to every interface (the capture ring): frames that
    /// arrive on one of `ports`, not outgoing ones (our own forwarded reports, and what
    /// the bridge floods out of the other ports), and then the frames of `self`. Frames
    /// delivered up to the bridge device itself do not arrive on a port.
    pub fn on_ports(self, ports: &[u32]) -> Vec<SockFilter> {
        to_kernel(self.port_insns(ports))
    }

    fn port_insns(self, ports: &[u32]) -> Vec<Insn> {
        let f = |code, jt, jf, k| Insn { code, jt, jf, k };
        if ports.is_empty() {
            return vec![f(RET_K, 0, 0, 0)];
        }
        let named = if ports.len() <= MAX_FILTER_PORTS {
            ports
        } else {
            &[]
        };
        let n = named.len();
        // 0: packet type; 1: outgoing -> REJECT; 2: ifindex; 3..3+n: a port -> BODY;
        // 3+n: REJECT; BODY after it. Without names: 0, 1, then BODY at 2.
        let mut p = vec![
            f(LDW_ABS, 0, 0, AD_PKTTYPE),
            f(JEQ_K, 0, 0, u32::from(sys::PACKET_OUTGOING)),
        ];
        if n == 0 {
            // Outgoing -> the body's REJECT, which is its last instruction.
            let body = self.insns();
            p[1].jt = (body.len() - 1) as u8;
            p.extend(body);
            return p;
        }
        p[1].jt = (n + 1) as u8;
        p.push(f(LDW_ABS, 0, 0, AD_IFINDEX));
        for (i, port) in named.iter().enumerate() {
            p.push(f(JEQ_K, (n - i) as u8, 0, *port));
        }
        p.push(f(RET_K, 0, 0, 0));
        p.extend(self.insns());
        p
    }

    /// The program. Offsets are into the untagged frame: the kernel strips 802.1Q tags
    /// before packet sockets see the frame (the VID arrives in PACKET_AUXDATA).
    fn insns(self) -> Vec<Insn> {
        let f = |code, jt, jf, k| Insn { code, jt, jf, k };
        let pim = self == Filter::IgmpMldPim;
        // Jump offsets count instructions to skip; ACCEPT and REJECT are the last two.
        let mut p = vec![
            f(LDH_ABS, 0, 0, 12),        // 0: EtherType
            f(JEQ_K, 0, 3, 0x0800),      // 1: IPv4? else 5
            f(LDB_ABS, 0, 0, 23),        // 2: IPv4 protocol
            f(JEQ_K, 0, 0, 2),           // 3: IGMP -> ACCEPT (patched)
            f(JEQ_K, 0, 0, 103),         // 4: PIM -> ACCEPT/REJECT (patched)
            f(JEQ_K, 0, 0, 0x86dd),      // 5: IPv6? else REJECT (patched)
            f(LDB_ABS, 0, 0, 20),        // 6: IPv6 next header
            f(JEQ_K, 1, 0, 0),           // 7: Hop-by-Hop -> 9
            f(JEQ_K, 0, 0, 103),         // 8: PIM -> ACCEPT/REJECT (patched)
            f(LDB_ABS, 0, 0, 54),        // 9: next header after HbH
            f(JEQ_K, 0, 0, 58),          // 10: ICMPv6 -> ACCEPT (patched)
            f(RET_K, 0, 0, 0x0004_0000), // 11: ACCEPT
            f(RET_K, 0, 0, 0),           // 12: REJECT
        ];
        const ACCEPT: usize = 11;
        const REJECT: usize = 12;
        let to = |from: usize, target: usize| (target - from - 1) as u8;
        p[3] = f(JEQ_K, to(3, ACCEPT), 0, 2);
        p[4] = if pim {
            f(JEQ_K, to(4, ACCEPT), to(4, REJECT), 103)
        } else {
            f(JEQ_K, to(4, REJECT), to(4, REJECT), 103)
        };
        p[5] = f(JEQ_K, 0, to(5, REJECT), 0x86dd);
        p[8] = if pim {
            f(JEQ_K, to(8, ACCEPT), to(8, REJECT), 103)
        } else {
            f(JEQ_K, to(8, REJECT), to(8, REJECT), 103)
        };
        p[10] = f(JEQ_K, to(10, ACCEPT), to(10, REJECT), 58);
        p
    }
}

fn to_kernel(insns: Vec<Insn>) -> Vec<SockFilter> {
    insns
        .into_iter()
        .map(|i| SockFilter::new(i.code, i.jt, i.jf, i.k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use igmpd_wire::frame::{Ipv4Header, Ipv6Header};
    use igmpd_wire::pim::PimHello;
    use igmpd_wire::{
        igmp, mld, Frame, IgmpQuery, IgmpRepr, IgmpVersion, MldQuery, MldRepr, MldVersion,
    };

    /// A classic BPF interpreter for the opcodes the filter uses, to test the program.
    fn run(insns: &[Insn], pkt: &[u8]) -> u32 {
        run_on(insns, pkt, 0, 0)
    }

    /// The same for a frame of packet type `pkttype` arriving on `ifindex`.
    fn run_on(insns: &[Insn], pkt: &[u8], pkttype: u8, ifindex: u32) -> u32 {
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            // Out of the program: the kernel's checker refuses such programs.
            let i = insns[pc];
            match i.code {
                LDW_ABS => {
                    acc = match i.k {
                        AD_PKTTYPE => u32::from(pkttype),
                        AD_IFINDEX => ifindex,
                        k => panic!("ancillary load {k:#x}"),
                    }
                }
                LDH_ABS => {
                    let k = i.k as usize;
                    let Some(b) = pkt.get(k..k + 2) else { return 0 };
                    acc = u32::from(u16::from_be_bytes([b[0], b[1]]));
                }
                LDB_ABS => {
                    let Some(b) = pkt.get(i.k as usize) else {
                        return 0;
                    };
                    acc = u32::from(*b);
                }
                JEQ_K => {
                    pc += usize::from(if acc == i.k { i.jt } else { i.jf });
                }
                RET_K => return i.k,
                c => panic!("opcode {c:#x}"),
            }
            pc += 1;
        }
    }

    /// IGMP, MLD, PIM, UDP and a neighbour solicitation.
    fn frames() -> [Vec<u8>; 5] {
        let mac = [2, 0, 0, 0, 0, 1];
        let igmp = Frame::igmp(
            mac,
            None,
            Ipv4Header::igmp("10.0.0.1".parse().unwrap(), igmp::ALL_SYSTEMS),
            IgmpRepr::Query(IgmpQuery::general(IgmpVersion::V3, 1000, 2, 125)),
        )
        .to_bytes();
        let mld = Frame::mld(
            mac,
            None,
            Ipv6Header::mld("fe80::1".parse().unwrap(), mld::ALL_NODES),
            MldRepr::Query(MldQuery::general(MldVersion::V2, 1000, 2, 125)),
        )
        .to_bytes();
        let pim = {
            let ip = Ipv4Header {
                router_alert: false,
                ..Ipv4Header::igmp(
                    "10.0.0.1".parse().unwrap(),
                    igmpd_wire::pim::ALL_PIM_ROUTERS_V4,
                )
            };
            Frame {
                ethernet: igmpd_wire::EthernetHeader::multicast(mac, ip.dst.into(), None),
                packet: igmpd_wire::Packet::PimHelloV4 {
                    ip,
                    hello: PimHello {
                        holdtime: Some(105),
                    },
                },
            }
            .to_bytes()
        };
        // UDP in IPv4 and a neighbour solicitation (ICMPv6 without Hop-by-Hop).
        let mut udp = igmp.clone();
        udp[14 + 9] = 17;
        let mut ns = vec![0u8; 14 + 40 + 24];
        ns[12] = 0x86;
        ns[13] = 0xdd;
        ns[14] = 0x60;
        ns[14 + 6] = 58;
        [igmp, mld, pim, udp, ns]
    }

    #[test]
    fn filter_passes_igmp_and_mld_only() {
        let [igmp, mld, pim, udp, ns] = frames();
        let p = Filter::IgmpMld.insns();
        assert_ne!(run(&p, &igmp), 0);
        assert_ne!(run(&p, &mld), 0);
        assert_eq!(run(&p, &pim), 0);
        assert_eq!(run(&p, &udp), 0);
        assert_eq!(run(&p, &ns), 0);
        assert_eq!(run(&p, &[0u8; 10]), 0);
    }

    #[test]
    fn pim_filter_adds_pim() {
        let [igmp, mld, pim, udp, ns] = frames();
        let p = Filter::IgmpMldPim.insns();
        assert_ne!(run(&p, &igmp), 0);
        assert_ne!(run(&p, &mld), 0);
        assert_ne!(run(&p, &pim), 0);
        assert_eq!(run(&p, &udp), 0);
        assert_eq!(run(&p, &ns), 0);
    }

    #[test]
    fn ring_filter_takes_ports_only_and_never_outgoing_frames() {
        let [igmp, mld, pim, udp, _] = frames();
        let out = sys::PACKET_OUTGOING;
        let ports = [7u32, 9, 12];
        let p = Filter::IgmpMldPim.port_insns(&ports);
        for port in ports {
            assert_ne!(run_on(&p, &igmp, 2, port), 0, "igmp on {port}");
            assert_ne!(run_on(&p, &mld, 2, port), 0);
            assert_ne!(run_on(&p, &pim, 2, port), 0);
            assert_eq!(run_on(&p, &udp, 2, port), 0);
            assert_eq!(run_on(&p, &igmp, out, port), 0, "outgoing on {port}");
        }
        // The bridge device, another interface.
        assert_eq!(run_on(&p, &igmp, 2, 3), 0);
        assert_eq!(run_on(&p, &igmp, 0, 8), 0);
        // No ports: nothing.
        assert_eq!(run_on(&Filter::IgmpMld.port_insns(&[]), &igmp, 2, 7), 0);
    }

    #[test]
    fn ring_filter_jumps_stay_inside_the_program_for_any_port_count() {
        let [igmp, _, _, udp, _] = frames();
        for n in [1usize, 2, 100, MAX_FILTER_PORTS, MAX_FILTER_PORTS + 1, 1000] {
            let ports: Vec<u32> = (100..100 + n as u32).collect();
            let p = Filter::IgmpMld.port_insns(&ports);
            for (at, i) in p.iter().enumerate() {
                if i.code == JEQ_K {
                    assert!(
                        at + 1 + usize::from(i.jt.max(i.jf)) < p.len(),
                        "n {n} at {at}"
                    );
                }
            }
            for port in [100, 99 + n as u32] {
                assert_ne!(run_on(&p, &igmp, 2, port), 0, "n {n} port {port}");
                assert_eq!(run_on(&p, &igmp, sys::PACKET_OUTGOING, port), 0);
                assert_eq!(run_on(&p, &udp, 2, port), 0);
            }
            if n <= MAX_FILTER_PORTS {
                assert_eq!(run_on(&p, &igmp, 2, 99), 0, "n {n}");
            }
        }
    }
}
