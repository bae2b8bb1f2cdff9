//! The nftables table that stops the kernel bridge from learning memberships while its
//! snooping stays on (MDB writes need it).
//!
//! Bridge family, prerouting, priority -300, on the bridge's ports (the set `ports` of
//! their ifindexes; `nft list set` shows their names. `meta ibrname` needs
//! nft_meta_bridge, which kernels may lack): IGMP other than queries, and MLD reports and
//! dones, are dropped (MLD behind a Hop-by-Hop header matches too). Every frame through
//! the bridge passes this hook, so the cheap protocol tests come first, and the port test
//! looks up a 4-byte key (a set of interface names cost a 16-byte copy and hash per frame:
//! in a re-join flood the chain was 18% of the receiving CPU). Queries pass, so the kernel
//! keeps its querier and router-port logic; PIM and MLD's MRD (ICMPv6 151-153) pass,
//! IGMP's MRD (types 0x30-0x32) does not: igmpd learns router ports from its own capture
//! and sets the port's `mcast_router` itself. AF_PACKET taps on the ports see every frame
//! before this hook.
//!
//! Written over igmpd's own nf_tables socket ([`igmpd_netlink::nftables`]), not with
//! `nft`: the table is created with the owner flag, so that the kernel deletes it when
//! igmpd dies however it dies, and the kernel's own snooping learns again at once (a table
//! left behind by a SIGKILL used to stop all learning on the bridge until igmpd ran
//! again). The same rules as `nft list table bridge igmpd_snoop_BRIDGE` prints.

use std::time::Duration;

use igmpd_netlink::nftables::{
    Base, Expr, MetaKey, NftSocket, Ruleset, Set, FAMILY_BRIDGE, HOOK_BRIDGE_PREROUTING,
    TYPE_ICMP6_TYPE, TYPE_IFINDEX,
};
use tracing::warn;

use super::SnoopDaemon;

/// How long a port's removal waits before it leaves the port set: `ip link del BRIDGE`
/// removes every port before the bridge goes; if it does, the table keeps the old ports
/// until the bridge comes back, so that the kernel does not learn on the recreated
/// bridge's ports before igmpd snoops them again.
pub(super) const NFT_PORT_GONE_DELAY: Duration = Duration::from_millis(500);

/// The table's name for `bridge`: `igmpd_snoop_` and [`bridge_token`].
pub fn table_name(bridge: &str) -> String {
    format!("igmpd_snoop_{}", bridge_token(bridge))
}

/// `bridge` as a token for names of tables and files, unique per bridge name: the name
/// itself when it is all ASCII letters and digits (`br0`); otherwise with every other
/// character replaced by `_` and a hash of the whole name appended, so that `br-lan` and
/// `br_lan` (interface names may hold almost any byte) never share a table or a state
/// file. A name without `_` cannot meet a hashed one, which always has one.
pub fn bridge_token(bridge: &str) -> String {
    if !bridge.is_empty() && bridge.chars().all(|c| c.is_ascii_alphanumeric()) {
        return bridge.to_owned();
    }
    let clean: String = bridge
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    // FNV-1a, 64 bits: stable across releases and machines (std's hasher is not).
    let hash = bridge.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{clean}_{hash:016x}")
}

/// ICMPv6 types of MLD reports and dones: v1 report, done, v2 report.
const MLD_REPORTS: [u8; 3] = [131, 132, 143];
/// ICMPv6 types a guarded port may not send: MLD query, MRD advertisement, solicitation,
/// termination (RFC 4286).
const MLD_GUARDED: [u8; 4] = [130, 151, 152, 153];

/// The table for `ports` (ifindexes; numbers, not names, so a port that disappears
/// meanwhile cannot fail the load).
///
/// `guarded` (ports with `router_guard`): their queries, PIM (IP protocol 103) and MRD
/// (IGMP types 0x30-0x32 are dropped on every port already; ICMPv6 151-153) are dropped
/// too, so the kernel neither floods them nor makes the port a router port.
pub fn ruleset(bridge: &str, ports: &[u32], guarded: &[u32]) -> Ruleset {
    let ifindexes = |name: &str, set: &[u32]| Set {
        name: name.into(),
        key_type: TYPE_IFINDEX,
        key_len: 4,
        // `meta iif` loads the ifindex in host order.
        host_order: true,
        elements: set.iter().map(|i| i.to_ne_bytes().to_vec()).collect(),
    };
    let icmp6 = |name: &str, types: &[u8]| Set {
        name: name.into(),
        key_type: TYPE_ICMP6_TYPE,
        key_len: 1,
        host_order: false,
        elements: types.iter().map(|t| vec![*t]).collect(),
    };
    let eq = |data: &[u8]| Expr::Cmp {
        eq: true,
        data: data.to_vec(),
    };
    let first_byte = |base| Expr::Payload {
        base,
        offset: 0,
        len: 1,
    };
    // ip protocol igmp: EtherType IPv4 (network order), IP protocol 2.
    let igmp = [
        Expr::Meta(MetaKey::Protocol),
        eq(&[0x08, 0x00]),
        Expr::Payload {
            base: Base::Network,
            offset: 9,
            len: 1,
        },
        eq(&[2]),
    ];
    // meta l4proto ipv6-icmp: after any extension headers (MLD has Hop-by-Hop).
    let icmp6_proto = [Expr::Meta(MetaKey::L4Proto), eq(&[58])];
    let from = |set: &str| {
        [
            Expr::Meta(MetaKey::Iif),
            Expr::Lookup(set.into()),
            Expr::Counter,
            Expr::Drop,
        ]
    };
    let rule = |parts: &[&[Expr]]| parts.concat();
    Ruleset {
        family: FAMILY_BRIDGE,
        table: table_name(bridge),
        comment: format!("igmpd snoop {bridge}: the kernel must not learn memberships; igmpd does"),
        chain: "prerouting".into(),
        hook: HOOK_BRIDGE_PREROUTING,
        priority: -300,
        sets: vec![
            ifindexes("ports", ports),
            ifindexes("guarded", guarded),
            icmp6("mld_reports", &MLD_REPORTS),
            icmp6("mld_guarded", &MLD_GUARDED),
        ],
        rules: vec![
            // IGMP other than queries (type 0x11) from the ports.
            rule(&[
                &igmp,
                &[
                    first_byte(Base::Transport),
                    Expr::Cmp {
                        eq: false,
                        data: vec![0x11],
                    },
                ],
                &from("ports"),
            ]),
            rule(&[
                &icmp6_proto,
                &[
                    first_byte(Base::Transport),
                    Expr::Lookup("mld_reports".into()),
                ],
                &from("ports"),
            ]),
            rule(&[&igmp, &from("guarded")]),
            rule(&[
                &icmp6_proto,
                &[
                    first_byte(Base::Transport),
                    Expr::Lookup("mld_guarded".into()),
                ],
                &from("guarded"),
            ]),
            rule(&[
                &[Expr::Meta(MetaKey::L4Proto), eq(&[103])],
                &from("guarded"),
            ]),
        ],
    }
}

/// igmpd's socket for the table, and the bridge it is for.
#[derive(Debug)]
pub(super) struct NftTable {
    sock: NftSocket,
    bridge: String,
}

impl NftTable {
    /// A socket for `bridge`'s table, in the calling thread's network namespace.
    pub(super) fn open(bridge: &str) -> std::io::Result<NftTable> {
        Ok(NftTable {
            sock: NftSocket::open()?,
            bridge: bridge.to_owned(),
        })
    }

    /// Creates or replaces the table for `ports` (ifindexes).
    pub(super) fn install(&mut self, ports: &[u32], guarded: &[u32]) -> std::io::Result<()> {
        let owned_before = self.sock.owned();
        self.sock
            .install(&ruleset(&self.bridge, ports, guarded))
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::EPERM) {
                    std::io::Error::other(format!(
                        "the table {} belongs to another running igmpd (one igmpd per bridge)",
                        table_name(&self.bridge)
                    ))
                } else {
                    e
                }
            })?;
        if owned_before.is_none() && self.sock.owned() == Some(false) {
            warn!(bridge = %self.bridge, "this kernel has no nftables table owner flag: if igmpd dies without cleaning up, run igmpd cleanup {}", self.bridge);
        }
        Ok(())
    }

    /// Whether the kernel deletes the table when igmpd dies (None: not installed).
    pub(super) fn owned(&self) -> Option<bool> {
        self.sock.owned()
    }

    /// Deletes the table (no error if it is not there).
    pub(super) fn remove(&mut self) -> std::io::Result<()> {
        self.sock.remove(FAMILY_BRIDGE, &table_name(&self.bridge))
    }
}

/// Whether `bridge`'s table exists (anyone's).
pub fn table_exists(bridge: &str) -> std::io::Result<bool> {
    NftSocket::open()?.table_exists(FAMILY_BRIDGE, &table_name(bridge))
}

/// Deletes `bridge`'s table wherever it came from (`igmpd cleanup`): one left by an igmpd
/// on a kernel without the owner flag. An owned one belongs to a running igmpd and stays
/// (EPERM).
pub fn remove_table(bridge: &str) -> std::io::Result<()> {
    NftSocket::open()?.remove(FAMILY_BRIDGE, &table_name(bridge))
}

impl SnoopDaemon {
    /// The table for the current ports, now (a failure is logged: the old table stays).
    pub(super) fn reinstall_nft(&mut self) {
        self.nft_due = None;
        let (ports, guarded) = (self.port_ifindexes(), self.guarded_ports());
        if let Err(e) = self.nft.install(&ports, &guarded) {
            warn!(bridge = %self.settings.bridge, error = %e, "cannot update the nftables table");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised_and_rules_drop_reports_only() {
        assert_eq!(table_name("br0"), "igmpd_snoop_br0");
        let lan = table_name("br-lan.10");
        assert!(lan.starts_with("igmpd_snoop_br_lan_10_"), "{lan}");
        assert_eq!(lan.len(), "igmpd_snoop_br_lan_10_".len() + 16, "{lan}");
        assert_eq!(lan, table_name("br-lan.10"), "stable");
        // Names that sanitise alike stay apart.
        let names = ["br-lan", "br_lan", "br.lan", "brlan", "br lan"];
        let tokens: std::collections::BTreeSet<String> =
            names.iter().map(|n| bridge_token(n)).collect();
        assert_eq!(tokens.len(), names.len(), "{tokens:?}");
        let r = ruleset("br0", &[4, 17], &[17]);
        assert_eq!(r.table, "igmpd_snoop_br0");
        assert_eq!((r.hook, r.priority), (HOOK_BRIDGE_PREROUTING, -300));
        let set = |n: &str| {
            r.sets
                .iter()
                .find(|s| s.name == n)
                .unwrap()
                .elements
                .clone()
        };
        assert_eq!(
            set("ports"),
            [4u32.to_ne_bytes().to_vec(), 17u32.to_ne_bytes().to_vec()]
        );
        assert_eq!(set("guarded"), [17u32.to_ne_bytes().to_vec()]);
        // Reports only on the ports: queries (0x11) pass.
        assert!(r.rules[0].contains(&Expr::Cmp {
            eq: false,
            data: vec![0x11]
        }));
        assert!(r
            .rules
            .iter()
            .all(|x| x.ends_with(&[Expr::Counter, Expr::Drop])));
        let on = |set: &str| {
            r.rules
                .iter()
                .filter(|x| x.contains(&Expr::Lookup(set.into())))
                .count()
        };
        assert_eq!((on("ports"), on("guarded")), (2, 3));
        assert!(ruleset("br0", &[], &[]).sets[0].elements.is_empty());
    }
}
