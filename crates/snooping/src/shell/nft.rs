//! The nftables table that stops the kernel bridge from learning memberships while its
//! snooping stays on (MDB writes need it).
//!
//! Bridge family, prerouting, priority -300, on the bridge's ports (the set `ports` of
//! their ifindexes; `nft list set` shows their names. `meta ibrname` needs
//! nft_meta_bridge, which kernels may lack): IGMP other than queries, and MLD reports and
//! dones, are dropped (MLD behind a Hop-by-Hop header matches too). Every frame through
//! the bridge passes this hook, so the cheap protocol tests come first, and the port test
//! looks up a 4-byte key (a set of interface names cost a 16-byte copy and hash per frame:
//! in a re-join flood the chain was 18% of the receiving CPU). Queries pass, so the kernel keeps its querier and router-port logic; PIM
//! and MLD's MRD (ICMPv6 151-153) pass, IGMP's MRD (types 0x30-0x32) does not: igmpd learns
//! router ports from its own capture and sets the port's `mcast_router` itself. AF_PACKET
//! taps on the ports see every frame before this hook.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

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

/// The ruleset that (re)creates the table atomically: one transaction that creates it
/// (so the delete cannot fail), deletes it and creates it anew for `ports` (ifindexes;
/// numbers, not names, so a port that disappears meanwhile cannot fail the load).
///
/// `guarded` (ports with `router_guard`): their queries, PIM (IP protocol 103) and MRD
/// (IGMP types 0x30-0x32 are dropped on every port already; ICMPv6 151-153) are dropped
/// too, so the kernel neither floods them nor makes the port a router port.
pub fn ruleset(bridge: &str, ports: &[u32], guarded: &[u32]) -> String {
    let t = table_name(bridge);
    let elements = |set: &[u32]| {
        if set.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = set.iter().map(u32::to_string).collect();
            format!(" elements = {{ {} }};", list.join(", "))
        }
    };
    let (elements, guard_elements) = (elements(ports), elements(guarded));
    format!(
        "table bridge {t}\n\
         delete table bridge {t}\n\
         table bridge {t} {{\n\
         \x20 comment \"igmpd snoop {bridge}: the kernel must not learn memberships; igmpd does\"\n\
         \x20 set ports {{ type iface_index;{elements} }}\n\
         \x20 set guarded {{ type iface_index;{guard_elements} }}\n\
         \x20 chain prerouting {{\n\
         \x20   type filter hook prerouting priority -300; policy accept;\n\
         \x20   ip protocol igmp igmp type != membership-query meta iif @ports counter drop\n\
         \x20   meta l4proto ipv6-icmp icmpv6 type {{ mld-listener-report, mld-listener-done, mld2-listener-report }} meta iif @ports counter drop\n\
         \x20   ip protocol igmp meta iif @guarded counter drop\n\
         \x20   meta l4proto ipv6-icmp icmpv6 type {{ mld-listener-query, 151, 152, 153 }} meta iif @guarded counter drop\n\
         \x20   meta l4proto 103 meta iif @guarded counter drop\n\
         \x20 }}\n\
         }}\n"
    )
}

fn run_nft(input: &str) -> std::io::Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot run nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    // nft answers in milliseconds; never wait forever.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            return if status.success() {
                Ok(())
            } else {
                Err(std::io::Error::other(format!(
                    "nft failed ({status}): {}",
                    err.trim()
                )))
            };
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("nft did not finish within 10 s"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Creates or replaces the table for `ports` (ifindexes).
pub fn install(bridge: &str, ports: &[u32], guarded: &[u32]) -> std::io::Result<()> {
    run_nft(&ruleset(bridge, ports, guarded))
}

/// Deletes the table (no error if it is not there).
pub fn remove(bridge: &str) -> std::io::Result<()> {
    let t = table_name(bridge);
    run_nft(&format!("table bridge {t}\ndelete table bridge {t}\n"))
}

impl SnoopDaemon {
    /// The table for the current ports, now (a failure is logged: the old table stays).
    pub(super) fn reinstall_nft(&mut self) {
        self.nft_due = None;
        if let Err(e) = install(
            &self.settings.bridge,
            &self.port_ifindexes(),
            &self.guarded_ports(),
        ) {
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
        assert!(
            r.contains("set ports { type iface_index; elements = { 4, 17 }; }"),
            "{r}"
        );
        assert!(
            r.contains("set guarded { type iface_index; elements = { 17 }; }"),
            "{r}"
        );
        assert!(
            r.contains("meta l4proto 103 meta iif @guarded counter drop"),
            "{r}"
        );
        assert!(r.contains("meta iif @ports counter drop"), "{r}");
        assert!(r.contains("igmp type != membership-query"), "{r}");
        assert!(r.contains("priority -300"), "{r}");
        assert!(!ruleset("br0", &[], &[]).contains("elements"));
    }
}
