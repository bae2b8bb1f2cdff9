//! This host's memberships, from /proc/net/igmp and /proc/net/igmp6.

use std::net::{Ipv4Addr, Ipv6Addr};

use igmpd_wire::{igmp, mld};

/// The groups this host is a member of on one interface, sorted, without the
/// all-nodes/all-systems groups that are never reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Local {
    /// IGMP groups.
    pub v4: Vec<Ipv4Addr>,
    /// MLD groups.
    pub v6: Vec<Ipv6Addr>,
}

/// This host's memberships on `ifname` (none where /proc cannot be read).
pub fn local(ifname: &str) -> Local {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    Local {
        v4: igmp_groups(&read("/proc/net/igmp"), ifname),
        v6: igmp6_groups(&read("/proc/net/igmp6"), ifname),
    }
}

/// The groups of `ifname` in /proc/net/igmp: a line per device, then its groups indented.
fn igmp_groups(text: &str, ifname: &str) -> Vec<Ipv4Addr> {
    let mut v4 = Vec::new();
    let mut current = false;
    for line in text.lines().skip(1) {
        if !line.starts_with('\t') && !line.starts_with(' ') {
            // "2\teth0      :     2      V3"
            current = line
                .split_whitespace()
                .nth(1)
                .map(|n| n.trim_end_matches(':'))
                == Some(ifname);
            continue;
        }
        if !current {
            continue;
        }
        if let Some(hex) = line.split_whitespace().next() {
            if let Ok(v) = u32::from_str_radix(hex, 16) {
                // The kernel prints the address in host byte order.
                let a = Ipv4Addr::from(v.to_le_bytes());
                if a != igmp::ALL_SYSTEMS {
                    v4.push(a);
                }
            }
        }
    }
    v4.sort();
    v4.dedup();
    v4
}

/// The groups of `ifname` in /proc/net/igmp6: a line per group.
fn igmp6_groups(text: &str, ifname: &str) -> Vec<Ipv6Addr> {
    let mut v6 = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || f[1] != ifname || f[2].len() != 32 {
            continue;
        }
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&f[2][2 * i..2 * i + 2], 16).unwrap_or(0);
        }
        let a = Ipv6Addr::from(b);
        // ff02::1 is never reported (RFC 9777 §6), nor are interface-local groups.
        if a != mld::ALL_NODES && a.segments()[0] & 0xff0f != 0xff01 {
            v6.push(a);
        }
    }
    v6.sort();
    v6.dedup();
    v6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_groups_of_one_device_from_proc_net_igmp() {
        let text = "Idx\tDevice    :  Count Querier\tGroup    Users Timer\tReporter\n\
            1\tlo        :     1      V3\n\
            \t\t\t\t010000E0     1 0:00000000\t\t0\n\
            2\teth0      :     3      V3\n\
            \t\t\t\t010114EF     1 0:00000000\t\t0\n\
            \t\t\t\t010000E0     1 0:00000000\t\t0\n\
            \t\t\t\t010114EF     1 0:00000000\t\t0\n\
            3\teth1      :     1      V2\n\
            \t\t\t\t020114EF     1 0:00000000\t\t0\n";
        let g: Ipv4Addr = "239.20.1.1".parse().unwrap();
        assert_eq!(igmp_groups(text, "eth0"), [g]);
        assert_eq!(
            igmp_groups(text, "eth1"),
            ["239.20.1.2".parse::<Ipv4Addr>().unwrap()]
        );
        assert!(igmp_groups(text, "lo").is_empty());
        assert!(igmp_groups("", "eth0").is_empty());
    }

    #[test]
    fn reads_the_groups_of_one_device_from_proc_net_igmp6() {
        let text = "1    lo              ff020000000000000000000000000001     1 0000000C 0\n\
            2    eth0            ff0200000000000000000001ff123456     1 00000004 0\n\
            2    eth0            ff020000000000000000000000000001     1 0000000C 0\n\
            2    eth0            ff010000000000000000000000000001     1 0000000C 0\n\
            2    eth0            ff0e0000000000000000000000000123     1 00000004 0\n\
            3    eth1            ff0e0000000000000000000000000124     1 00000004 0\n";
        let want: Vec<Ipv6Addr> = ["ff02::1:ff12:3456", "ff0e::123"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(igmp6_groups(text, "eth0"), want);
        assert!(igmp6_groups(text, "lo").is_empty());
    }
}
