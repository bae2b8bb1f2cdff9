//! The test bed: one switch namespace with a snooping bridge and host namespaces on its
//! ports (the lab library), set up for the kernel or for igmpd.

use std::net::Ipv4Addr;
use std::time::Duration;

use anyhow::{Context, Result};
use igmpd_netns_tests::{BridgeConfig, IgmpVersion, Igmpd, Lab};
use serde_json::Value;

use crate::opts::Opts;
use crate::sender::parse_mac;

/// Who snoops: the kernel (its querier on) or `igmpd snoop --querier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Kernel,
    Igmpd,
}

impl Mode {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Kernel => "kernel",
            Mode::Igmpd => "igmpd",
        }
    }
}

/// `mcast_hash_max` of the bench bridge: room for the 10 000 groups of the largest run.
const HASH_MAX: u32 = 16384;

/// A scenario's topology, torn down on drop.
pub(crate) struct Bed {
    lab: Lab,
    /// `igmpd snoop` in the switch namespace (`Mode::Igmpd`).
    pub(crate) daemon: Option<Igmpd>,
    /// Its arguments, to start it again (the restart scenario).
    pub(crate) args: Vec<String>,
    /// Host "a"'s bridge port.
    pub(crate) port_ifindex: u32,
    /// Host "a"'s MAC and IPv4 address, the frames' source.
    pub(crate) src_mac: [u8; 6],
    pub(crate) src_ip: Ipv4Addr,
}

/// One switch with a sender host "a" (and a spare host "b"), kernel querier on for
/// `Mode::Kernel`, `igmpd snoop --querier` for `Mode::Igmpd`.
pub(crate) fn bed(opts: &Opts, mode: Mode, lmi: Duration, extra: &[&str]) -> Result<Bed> {
    bed_with(opts, mode, lmi, extra, false, HASH_MAX)
}

/// The kernel's default `mcast_hash_max`.
pub(crate) const DEFAULT_HASH_MAX: u32 = 4096;

/// [`bed`], with igmpd snooping MLD too when `mld` (the flood scenario floods both), and
/// the bridge's `mcast_hash_max` at `hash_max`.
pub(crate) fn bed_with(
    opts: &Opts,
    mode: Mode,
    lmi: Duration,
    extra: &[&str],
    mld: bool,
    hash_max: u32,
) -> Result<Bed> {
    let kernel = mode == Mode::Kernel;
    let cfg = BridgeConfig::snooping()
        .querier(kernel)
        .query_use_ifaddr(true)
        .igmp_version(IgmpVersion::V3)
        .last_member_interval(lmi)
        .last_member_count(2);
    let lab = Lab::builder()
        .bridge(cfg)
        .bridge_ipv4(true)
        .hosts(&["a", "b"])
        .build()?;
    let sw = lab.switch().netns();
    let hm = hash_max.to_string();
    sw.ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_hash_max",
        &hm,
        "mcast_stats_enabled",
        "1",
    ])?;
    let mut args = Vec::new();
    let daemon = if kernel {
        None
    } else {
        let lmi_s = format!("{}ms", lmi.as_millis());
        let igmpd = opts.igmpd.to_str().context("igmpd path")?;
        let _ = igmpd;
        let mut a = vec!["snoop", "br0", "--querier"];
        if !mld {
            a.push("--no-mld");
        }
        a.extend_from_slice(&["--last-member-query-interval", &lmi_s]);
        a.extend_from_slice(extra);
        args = a.iter().map(|s| s.to_string()).collect();
        let d = Igmpd::spawn(sw, &opts.igmpd, &a)?;
        // Settle: the startup query went out and the nft table is in place.
        std::thread::sleep(Duration::from_millis(300));
        Some(d)
    };
    let h = lab.host("a");
    Ok(Bed {
        port_ifindex: h.port_ifindex(),
        src_mac: parse_mac(h.mac())?,
        src_ip: h.ipv4(),
        daemon,
        args,
        lab,
    })
}

impl Bed {
    /// The lab (hosts, switch, MDB).
    pub(crate) fn lab(&self) -> &Lab {
        &self.lab
    }
    pub(crate) fn host_ns(&self) -> String {
        self.lab.host("a").ns_name().to_owned()
    }
    pub(crate) fn sw_ns(&self) -> String {
        self.lab.switch().ns_name().to_owned()
    }
    /// Host "b": its namespace.
    pub(crate) fn victim_ns(&self) -> String {
        self.lab.host("b").ns_name().to_owned()
    }
    /// Host "b": its bridge port's ifindex, MAC and IPv4 address.
    pub(crate) fn victim(&self) -> (u32, [u8; 6], Ipv4Addr) {
        let h = self.lab.host("b");
        (
            h.port_ifindex(),
            parse_mac(h.mac()).unwrap_or([2, 0, 0, 0, 0, 0xb]),
            h.ipv4(),
        )
    }
    /// Every entry of the MDB (both families, every port).
    pub(crate) fn mdb_total(&self) -> Result<usize> {
        Ok(self.lab.mdb()?.len())
    }
    /// Whether the bridge still snoops (the kernel turns it off at `mcast_hash_max`).
    pub(crate) fn snooping_on(&self) -> Result<bool> {
        let info = self.lab.switch().bridge_info()?;
        Ok(info.get("mcast_snooping").and_then(Value::as_u64) == Some(1))
    }
    /// Entries of port p1 in one dump (kernel-learned or igmpd-owned depending on mode).
    pub(crate) fn mdb_count(&self) -> Result<usize> {
        let port = self.lab.host("a").port().to_owned();
        let e = self.lab.mdb()?;
        Ok(e.iter()
            .filter(|e| e.port == port && e.group.is_ipv4())
            .filter(|e| match &self.daemon {
                None => e.protocol.as_deref().is_none_or(|p| p == "kernel"),
                Some(_) => e.protocol.as_deref() != Some("kernel"),
            })
            .count())
    }
    pub(crate) fn status(&self) -> Result<Value> {
        self.daemon.as_ref().context("no igmpd")?.status()
    }
    pub(crate) fn counter(&self, name: &str) -> Result<u64> {
        let s = self.status()?;
        s["bridges"][0]["counters"][name]
            .as_u64()
            .with_context(|| format!("status has no counter {name}: {s}"))
    }
    /// The bridge's count of IGMPv2 reports received on port p1 (mcast_stats_enabled).
    pub(crate) fn kernel_v2_reports(&self) -> Result<u64> {
        let port = self.lab.host("a").port().to_owned();
        let out = self.lab.switch().netns().exec_ok(&[
            "ip",
            "-j",
            "link",
            "xstats",
            "type",
            "bridge_slave",
            "dev",
            &port,
        ])?;
        let v: Value = serde_json::from_str(&out).context("xstats JSON")?;
        find_key(&v, "igmp_reports")
            .and_then(|x| x.get("rx_v2"))
            .and_then(Value::as_u64)
            .with_context(|| format!("no igmp_reports.rx_v2 in xstats: {out}"))
    }
}

fn find_key<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    match v {
        Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|x| find_key(x, key))),
        Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}
