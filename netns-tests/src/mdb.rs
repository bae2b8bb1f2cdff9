//! The bridge's multicast database as `bridge -j -d -s mdb show` reports it, typed.

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::cmd;

/// `temp` (learned or added with a timer) or `permanent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MdbState {
    /// Ages out unless refreshed.
    Temp,
    /// Never ages out.
    Permanent,
}

/// IGMPv3/MLDv2 filter mode of a port group (RFC 3376 §6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterMode {
    /// Forward only the listed sources.
    Include,
    /// Forward all sources except those listed with a zero timer.
    Exclude,
}

/// One source of a port group's `source_list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdbSource {
    /// The source address.
    pub address: IpAddr,
    /// Time left on the source timer (zero for sources excluded in EXCLUDE mode).
    pub timer: Option<Duration>,
}

/// One MDB entry: a group (or source-group) on one port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdbEntry {
    /// The bridge (`dev`).
    pub bridge: String,
    /// The port: a bridge port's name, or the bridge itself for its own host joins.
    pub port: String,
    /// The group address (`grp`).
    pub group: IpAddr,
    /// The source of an (S,G) entry (`src`); `None` for (*,G).
    pub source: Option<IpAddr>,
    /// `temp` or `permanent`.
    pub state: MdbState,
    /// Time left before a temp entry ages out, when the kernel reports one.
    pub timer: Option<Duration>,
    /// Who installed the entry (`kernel`, `static`, or a number/name for userspace).
    pub protocol: Option<String>,
    /// IGMPv3/MLDv2 filter mode, when the kernel reports one.
    pub filter_mode: Option<FilterMode>,
    /// IGMPv3/MLDv2 sources of a (*,G) entry.
    pub source_list: Vec<MdbSource>,
    /// Flags such as `offload`, `fast_leave`, `added_by_star_ex`, `blocked`.
    pub flags: Vec<String>,
    /// The VLAN, with VLAN-aware bridges.
    pub vid: Option<u16>,
}

/// `(major, minor)` of the running kernel.
fn kernel_version() -> (u32, u32) {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut n = r
        .split(|c: char| !c.is_ascii_digit())
        .map(|x| x.parse().unwrap_or(0));
    (n.next().unwrap_or(0), n.next().unwrap_or(0))
}

/// The kernel takes a protocol, a filter mode and a source list on userspace MDB entries
/// (6.3, `net/bridge/br_mdb.c`): the tests' own oracle, from the kernel's history, beside
/// igmpd's probe.
pub fn kernel_has_source_lists() -> bool {
    kernel_version() >= (6, 3)
}

/// How `bridge -d mdb show` names the protocol of igmpd's entries: `73`, or `static` on
/// kernels that keep no protocol for userspace entries (before 6.3).
pub fn igmpd_protocol() -> &'static str {
    if kernel_has_source_lists() {
        "73"
    } else {
        "static"
    }
}

impl MdbEntry {
    /// True for a (*,G) entry of `group` on `port`.
    pub fn is_star_g(&self, port: &str, group: IpAddr) -> bool {
        self.source.is_none() && self.port == port && self.group == group
    }
}

/// A multicast router port (`router` section of the dump).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterPort {
    /// The bridge.
    pub bridge: String,
    /// The port.
    pub port: String,
    /// Time left for a learned router port.
    pub timer: Option<Duration>,
    /// `temp`, `permanent`, ... as iproute2 prints it.
    pub kind: Option<String>,
}

/// A whole `bridge -j -d -s mdb show` dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdbDump {
    /// Group entries.
    pub entries: Vec<MdbEntry>,
    /// Router ports.
    pub routers: Vec<RouterPort>,
}

/// Dumps the MDB of `bridge` in namespace `ns` (`bridge -n NS -j -d -s mdb show dev BR`).
pub fn dump(ns: &str, bridge: &str) -> Result<Vec<MdbEntry>> {
    Ok(dump_all(ns, bridge)?.entries)
}

/// Like [`dump`], with the router ports too.
pub fn dump_all(ns: &str, bridge: &str) -> Result<MdbDump> {
    let out = cmd::run_ok(
        &[
            "bridge", "-n", ns, "-j", "-d", "-s", "mdb", "show", "dev", bridge,
        ],
        None,
    )?;
    parse(&out).with_context(|| format!("parse MDB dump: {out}"))
}

/// The (*,G) entry of `group` on `port`, if any.
pub fn find(entries: &[MdbEntry], port: &str, group: IpAddr) -> Option<MdbEntry> {
    entries.iter().find(|e| e.is_star_g(port, group)).cloned()
}

/// Parses the JSON that `bridge -j -d [-s] mdb show` prints.
pub fn parse(json: &str) -> Result<MdbDump> {
    let mut dump = MdbDump::default();
    if json.trim().is_empty() {
        return Ok(dump);
    }
    let v: Value = serde_json::from_str(json)?;
    let Value::Array(sections) = v else {
        bail!("top level is not an array");
    };
    for section in &sections {
        if let Some(Value::Array(entries)) = section.get("mdb") {
            for e in entries {
                dump.entries.push(parse_entry(e)?);
            }
        }
        if let Some(Value::Object(routers)) = section.get("router") {
            for (bridge, ports) in routers {
                for p in ports.as_array().into_iter().flatten() {
                    dump.routers.push(RouterPort {
                        bridge: bridge.clone(),
                        port: str_field(p, "port")?.to_owned(),
                        timer: opt_timer(p, "timer")?,
                        kind: p.get("type").and_then(Value::as_str).map(str::to_owned),
                    });
                }
            }
        }
    }
    Ok(dump)
}

fn parse_entry(e: &Value) -> Result<MdbEntry> {
    let state = match str_field(e, "state")? {
        "temp" => MdbState::Temp,
        "permanent" => MdbState::Permanent,
        other => bail!("unknown state {other:?}"),
    };
    let filter_mode = match e.get("filter_mode").and_then(Value::as_str) {
        None => None,
        Some("include") => Some(FilterMode::Include),
        Some("exclude") => Some(FilterMode::Exclude),
        Some(other) => bail!("unknown filter_mode {other:?}"),
    };
    let mut source_list = Vec::new();
    for s in e
        .get("source_list")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        source_list.push(MdbSource {
            address: addr_field(s, "address")?,
            timer: opt_timer(s, "timer")?,
        });
    }
    Ok(MdbEntry {
        bridge: str_field(e, "dev")?.to_owned(),
        port: str_field(e, "port")?.to_owned(),
        group: addr_field(e, "grp")?,
        source: e.get("src").map(|_| addr_field(e, "src")).transpose()?,
        state,
        timer: opt_timer(e, "timer")?,
        protocol: e.get("protocol").and_then(Value::as_str).map(str::to_owned),
        filter_mode,
        source_list,
        flags: e
            .get("flags")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        vid: e
            .get("vid")
            .and_then(Value::as_u64)
            .and_then(|v| u16::try_from(v).ok()),
    })
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("missing string field {key:?} in {v}"))
}

fn addr_field(v: &Value, key: &str) -> Result<IpAddr> {
    let s = str_field(v, key)?;
    s.parse().with_context(|| format!("bad address {s:?}"))
}

/// iproute2 prints timers as seconds with two decimals, padded: `"   4.32"`.
fn opt_timer(v: &Value, key: &str) -> Result<Option<Duration>> {
    match v.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let secs: f64 = s
                .trim()
                .parse()
                .with_context(|| format!("bad timer {s:?}"))?;
            Ok(Some(Duration::from_secs_f64(secs.max(0.0))))
        }
        Some(Value::Number(n)) => Ok(n.as_f64().map(|s| Duration::from_secs_f64(s.max(0.0)))),
        Some(other) => bail!("bad timer {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_entries_and_bridge_own_groups() {
        let json = r#"[{"mdb":[{"index":2,"dev":"br0","port":"p1","grp":"239.1.1.1","state":"temp","filter_mode":"exclude","protocol":"kernel","flags":[],"timer":"   4.56"},{"index":2,"dev":"br0","port":"br0","grp":"ff02::6a","state":"temp","flags":[],"timer":"   3.71"}],"router":{}}]"#;
        let d = parse(json).unwrap();
        assert_eq!(d.entries.len(), 2);
        let e = &d.entries[0];
        assert_eq!(e.port, "p1");
        assert_eq!(e.group, "239.1.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(e.state, MdbState::Temp);
        assert_eq!(e.filter_mode, Some(FilterMode::Exclude));
        assert_eq!(e.protocol.as_deref(), Some("kernel"));
        assert_eq!(e.timer, Some(Duration::from_millis(4560)));
        assert!(e.is_star_g("p1", e.group));
        assert_eq!(d.entries[1].filter_mode, None);
        assert!(d.routers.is_empty());
    }

    #[test]
    fn parses_sources_vid_and_routers() {
        let json = r#"[{"mdb":[{"index":3,"dev":"br0","port":"p2","grp":"232.1.1.1","src":"10.0.0.5","state":"permanent","flags":["added_by_star_ex"],"vid":5},{"index":3,"dev":"br0","port":"p2","grp":"232.1.1.1","state":"temp","filter_mode":"include","source_list":[{"address":"10.0.0.5","timer":"   3.00"}],"protocol":"kernel","flags":[]}],"router":{"br0":[{"port":"p3","timer":"  10.00","type":"temp"}]}}]"#;
        let d = parse(json).unwrap();
        assert_eq!(d.entries[0].source, Some("10.0.0.5".parse().unwrap()));
        assert_eq!(d.entries[0].state, MdbState::Permanent);
        assert_eq!(d.entries[0].vid, Some(5));
        assert_eq!(d.entries[0].flags, vec!["added_by_star_ex".to_owned()]);
        assert_eq!(d.entries[1].source_list.len(), 1);
        assert_eq!(
            d.entries[1].source_list[0].timer,
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            d.routers,
            vec![RouterPort {
                bridge: "br0".into(),
                port: "p3".into(),
                timer: Some(Duration::from_secs(10)),
                kind: Some("temp".into()),
            }]
        );
    }

    #[test]
    fn empty_dump_is_empty() {
        assert_eq!(parse("").unwrap(), MdbDump::default());
        assert_eq!(parse("[]").unwrap(), MdbDump::default());
    }
}
