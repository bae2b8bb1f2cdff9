//! The config file of `igmpd run` (TOML). Every flag of `igmpd query` and `igmpd snoop`
//! has a key of the same name (underscores for dashes). Precedence, highest first:
//! `[bridge.NAME.vlan.VID]` > `[interface.NAME]` / `[bridge.NAME]` > `[defaults]` > the
//! built-in defaults (the flags' defaults).
//!
//! ```toml
//! control_socket = "/run/igmpd/igmpd.sock"
//! control_group = "netadmin"
//! [defaults]
//! query_interval = "60s"
//! [interface.eth1]
//! igmp_version = 2
//! [bridge.br0]
//! querier = true
//! router_ports = ["p1"]
//! [bridge.br0.vlan.10]
//! robustness = 3
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use igmpd_querier::core::Config;
use igmpd_querier::shell::InterfaceSettings;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::ProtocolArgs;

/// Default config path.
pub const DEFAULT_PATH: &str = "/etc/igmpd/igmpd.toml";

/// A duration written as in the flags: "125s", "500ms", "1m30s".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::duration::parse(&s)
            .map(Dur)
            .map_err(serde::de::Error::custom)
    }
}

/// The protocol options, each unset unless written: one layer of the precedence chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Options {
    igmp_version: Option<u8>,
    mld_version: Option<u8>,
    no_igmp: Option<bool>,
    no_mld: Option<bool>,
    query_interval: Option<Dur>,
    query_response_interval: Option<Dur>,
    robustness: Option<u8>,
    last_member_query_interval: Option<Dur>,
    last_member_query_count: Option<u8>,
    startup_query_interval: Option<Dur>,
    startup_query_count: Option<u8>,
    passive: Option<bool>,
}

impl Options {
    /// `self` over `lower`: every key set here wins.
    fn over(&self, lower: &Options) -> Options {
        macro_rules! pick {
            ($($f:ident),*) => { Options { $($f: self.$f.or(lower.$f)),* } };
        }
        pick!(
            igmp_version,
            mld_version,
            no_igmp,
            no_mld,
            query_interval,
            query_response_interval,
            robustness,
            last_member_query_interval,
            last_member_query_count,
            startup_query_interval,
            startup_query_count,
            passive
        )
    }

    /// The per-family configs, checked like the flags are.
    fn configs(&self) -> Result<(Option<Config>, Option<Config>)> {
        let b = Builtin::get();
        let p = ProtocolArgs {
            igmp_version: self.igmp_version.unwrap_or(b.igmp_version),
            mld_version: self.mld_version.unwrap_or(b.mld_version),
            no_mld: self.no_mld.unwrap_or(false),
            no_igmp: self.no_igmp.unwrap_or(false),
            query_interval: self.query_interval.map_or(b.query_interval, |d| d.0),
            query_response_interval: self
                .query_response_interval
                .map_or(b.query_response_interval, |d| d.0),
            robustness: self.robustness.unwrap_or(b.robustness),
            last_member_query_interval: self
                .last_member_query_interval
                .map_or(b.last_member_query_interval, |d| d.0),
            last_member_query_count: self.last_member_query_count,
        };
        for (v, name, max) in [
            (p.igmp_version, "igmp_version", 3),
            (p.mld_version, "mld_version", 2),
        ] {
            if v == 0 || v > max {
                anyhow::bail!("{name} must be 1..={max}, not {v}");
            }
        }
        crate::query::configs(
            &p,
            self.startup_query_interval.map(|d| d.0),
            self.startup_query_count,
            self.passive.unwrap_or(false),
        )
    }
}

/// The built-in defaults: those of the `query` flags, read from the clap definition so the
/// two cannot differ.
struct Builtin(ProtocolArgs);

impl Builtin {
    fn get() -> ProtocolArgs {
        use clap::Parser;
        #[derive(Parser)]
        struct P {
            #[command(flatten)]
            p: ProtocolArgs,
        }
        Builtin(P::parse_from(["igmpd"]).p).0
    }
}

/// A `[bridge.NAME]` section: the [`Options`] keys (listed again: serde's flatten cannot
/// deny unknown keys) and the snooping ones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BridgeSection {
    igmp_version: Option<u8>,
    mld_version: Option<u8>,
    no_igmp: Option<bool>,
    no_mld: Option<bool>,
    query_interval: Option<Dur>,
    query_response_interval: Option<Dur>,
    robustness: Option<u8>,
    last_member_query_interval: Option<Dur>,
    last_member_query_count: Option<u8>,
    startup_query_interval: Option<Dur>,
    startup_query_count: Option<u8>,
    querier: Option<bool>,
    #[serde(default)]
    router_ports: Vec<String>,
    raise_hash_max: Option<u32>,
    #[serde(default)]
    vlan: BTreeMap<u16, Spanned<Options>>,
}

impl BridgeSection {
    fn options(&self) -> Options {
        Options {
            igmp_version: self.igmp_version,
            mld_version: self.mld_version,
            no_igmp: self.no_igmp,
            no_mld: self.no_mld,
            query_interval: self.query_interval,
            query_response_interval: self.query_response_interval,
            robustness: self.robustness,
            last_member_query_interval: self.last_member_query_interval,
            last_member_query_count: self.last_member_query_count,
            startup_query_interval: self.startup_query_interval,
            startup_query_count: self.startup_query_count,
            passive: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    control_socket: Option<PathBuf>,
    control_group: Option<String>,
    #[serde(default)]
    defaults: Options,
    #[serde(default)]
    interface: BTreeMap<String, Spanned<Options>>,
    #[serde(default)]
    bridge: BTreeMap<String, Spanned<BridgeSection>>,
}

/// One snooped bridge, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Bridge {
    /// Bridge name.
    pub name: String,
    /// IGMP settings of the bridge (None: not snooped).
    pub igmp: Option<Config>,
    /// MLD settings.
    pub mld: Option<Config>,
    /// Run the querier on the bridge.
    pub querier: bool,
    /// Configured router ports.
    pub router_ports: Vec<String>,
    /// Raise mcast_hash_max at start.
    pub raise_hash_max: Option<u32>,
    /// Per-VLAN settings that differ from the bridge's: (IGMP, MLD) per VID.
    pub vlans: BTreeMap<u16, (Option<Config>, Option<Config>)>,
}

/// A checked config file.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Control socket path, if the file says.
    pub control_socket: Option<PathBuf>,
    /// The admin group's name, if any.
    pub control_group: Option<String>,
    /// Querier interfaces, sorted by name.
    pub interfaces: Vec<InterfaceSettings>,
    /// Snooped bridges, sorted by name.
    pub bridges: Vec<Bridge>,
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset.min(src.len())].matches('\n').count() + 1
}

/// The dotted key at `offset`: the last `[table]` header before it and the key of its line.
fn key_at(src: &str, offset: usize) -> String {
    let before = &src[..offset.min(src.len())];
    let header = before
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && l.ends_with(']'))
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
        })
        .next_back();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = src[line_start..].lines().next().unwrap_or("");
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| !k.starts_with('['));
    match (header, key) {
        (Some(h), Some(k)) => format!("{h}.{k}"),
        (Some(h), None) => h,
        (None, Some(k)) => k,
        (None, None) => String::new(),
    }
}

/// Parses and checks `src` (read from `file`). Errors are `file:line: key: message` lines.
pub fn parse(file: &str, src: &str) -> Result<RunConfig, Vec<String>> {
    let f: File = toml::from_str(src).map_err(|e| {
        let (line, key) = e.span().map_or((0, String::new()), |s| {
            (line_of(src, s.start), key_at(src, s.start))
        });
        let key = if key.is_empty() {
            String::new()
        } else {
            format!(" {key}:")
        };
        vec![format!("{file}:{line}:{key} {}", e.message().trim())]
    })?;
    let mut errors = Vec::new();
    let mut err = |span: std::ops::Range<usize>, key: &str, e: anyhow::Error| {
        errors.push(format!("{file}:{}: {key}: {e:#}", line_of(src, span.start)));
    };
    let global = f.defaults.clone();
    let mut interfaces = Vec::new();
    for (name, o) in &f.interface {
        match o.get_ref().over(&global).configs() {
            Ok((igmp, mld)) => interfaces.push(InterfaceSettings {
                name: name.clone(),
                igmp,
                mld,
            }),
            Err(e) => err(o.span(), &format!("interface.{name}"), e),
        }
    }
    let mut bridges = Vec::new();
    for (name, b) in &f.bridge {
        let sec = b.get_ref();
        let querier = sec.querier.unwrap_or(false);
        // As in `igmpd snoop`: without a querier the bridge's instances are passive.
        let mut bo = sec.options().over(&global);
        bo.passive = Some(!querier);
        let (igmp, mld) = match bo.configs() {
            Ok(c) => c,
            Err(e) => {
                err(b.span(), &format!("bridge.{name}"), e);
                continue;
            }
        };
        let mut vlans = BTreeMap::new();
        for (vid, v) in &sec.vlan {
            if !(1..=4094).contains(vid) {
                err(
                    v.span(),
                    &format!("bridge.{name}.vlan.{vid}"),
                    anyhow::anyhow!("a VLAN ID is 1..=4094"),
                );
                continue;
            }
            let mut vo = v.get_ref().over(&bo);
            vo.passive = Some(!querier);
            match vo.configs() {
                Ok(c) => {
                    vlans.insert(*vid, c);
                }
                Err(e) => err(v.span(), &format!("bridge.{name}.vlan.{vid}"), e),
            }
        }
        bridges.push(Bridge {
            name: name.clone(),
            igmp,
            mld,
            querier,
            router_ports: sec.router_ports.clone(),
            raise_hash_max: sec.raise_hash_max,
            vlans,
        });
    }
    if let Some(g) = &f.control_group {
        if let Err(e) = crate::control::resolve_group(g) {
            errors.push(format!("{file}: control_group: {e:#}"));
        }
    }
    if interfaces.is_empty() && bridges.is_empty() && errors.is_empty() {
        errors.push(format!(
            "{file}: nothing to run: add an [interface.NAME] or a [bridge.NAME] section"
        ));
    }
    if errors.is_empty() {
        Ok(RunConfig {
            control_socket: f.control_socket,
            control_group: f.control_group,
            interfaces,
            bridges,
        })
    } else {
        Err(errors)
    }
}

/// Reads and checks the file at `path`.
pub fn load(path: &Path) -> Result<RunConfig, Vec<String>> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| vec![format!("{name}: {e}")])?;
    parse(&name, &src)
}

/// `igmpd check-config`.
pub fn check(path: &Path) -> Result<()> {
    match load(path) {
        Ok(c) => {
            println!(
                "{}: ok ({} interface(s), {} bridge(s))",
                path.display(),
                c.interfaces.len(),
                c.bridges.len()
            );
            Ok(())
        }
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::bail!("{}: {} error(s)", path.display(), errors.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use igmpd_querier::core::Generation;

    fn ok(src: &str) -> RunConfig {
        parse("t.toml", src).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn errs(src: &str) -> Vec<String> {
        parse("t.toml", src).expect_err("should be rejected")
    }

    #[test]
    fn built_in_defaults_are_the_flags_defaults() {
        let c = ok("[interface.eth0]\n");
        let i = &c.interfaces[0];
        let g = i.igmp.as_ref().unwrap();
        assert_eq!(g.version, Generation::V3);
        assert_eq!(g.query_interval, Duration::from_secs(125));
        assert_eq!(g.query_response_interval, Duration::from_secs(10));
        assert_eq!(g.robustness, 2);
        assert!(!g.passive);
        assert_eq!(
            i.mld
                .as_ref()
                .unwrap()
                .version
                .version(igmpd_querier::core::Proto::Mld),
            2
        );
    }

    #[test]
    fn precedence_vlan_over_bridge_over_defaults_over_builtin() {
        let c = ok(r#"
[defaults]
query_interval = "60s"
robustness = 3
igmp_version = 2

[interface.eth0]
robustness = 4

[interface.eth1]

[bridge.br0]
querier = true
robustness = 5
router_ports = ["p1", "p2"]
raise_hash_max = 8192

[bridge.br0.vlan.10]
query_interval = "30s"
"#);
        let eth0 = c.interfaces[0].igmp.as_ref().unwrap();
        assert_eq!(
            (eth0.robustness, eth0.query_interval),
            (4, Duration::from_secs(60))
        );
        assert_eq!(eth0.version, Generation::V2);
        let eth1 = c.interfaces[1].igmp.as_ref().unwrap();
        assert_eq!(eth1.robustness, 3);
        // Built-in where nobody says: the response interval.
        assert_eq!(eth1.query_response_interval, Duration::from_secs(10));
        let br = &c.bridges[0];
        assert!(br.querier);
        assert_eq!(br.router_ports, ["p1", "p2"]);
        assert_eq!(br.raise_hash_max, Some(8192));
        let bi = br.igmp.as_ref().unwrap();
        assert_eq!(
            (bi.robustness, bi.query_interval, bi.passive),
            (5, Duration::from_secs(60), false)
        );
        let v = br.vlans[&10].0.as_ref().unwrap();
        assert_eq!(
            (v.robustness, v.query_interval, v.version),
            (5, Duration::from_secs(30), Generation::V2)
        );
    }

    #[test]
    fn bridge_without_querier_is_passive_and_families_can_be_off() {
        let c = ok("[bridge.br0]\nno_mld = true\n");
        assert!(c.bridges[0].igmp.as_ref().unwrap().passive);
        assert!(c.bridges[0].mld.is_none());
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = errs("[defaults]\nquery_interval = \"10s\"\n\n[interface.eth0]\nrobustnes = 2\n");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("t.toml:5: interface.eth0.robustnes:"),
            "{e:?}"
        );
        assert!(e[0].contains("unknown field"), "{e:?}");
    }

    #[test]
    fn bad_duration_names_line_and_key() {
        let e = errs("[interface.eth0]\nquery_interval = \"10\"\n");
        assert!(
            e[0].starts_with("t.toml:2: interface.eth0.query_interval:"),
            "{e:?}"
        );
    }

    #[test]
    fn invalid_combination_names_the_section() {
        let e = errs(
            "[interface.eth0]\n\n[interface.eth1]\nquery_interval = \"5s\"\nquery_response_interval = \"10s\"\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].starts_with("t.toml:3: interface.eth1:"), "{e:?}");
    }

    #[test]
    fn bad_version_and_vlan_and_empty_file_are_rejected() {
        assert!(errs("[interface.eth0]\nigmp_version = 4\n")[0].contains("igmp_version"));
        assert!(errs("[bridge.br0.vlan.4095]\n")[0].contains("vlan.4095"));
        assert!(errs("")[0].contains("nothing to run"));
        assert!(errs("[interface.e]\nno_igmp = true\nno_mld = true\n")[0].contains("nothing"));
    }

    /// One key at every layer: the highest layer that writes it wins, and a layer that
    /// does not write it falls through to the next one down.
    #[test]
    fn each_layer_wins_over_the_layers_below() {
        let robustness = |src: &str| {
            let c = ok(src);
            let i = c
                .interfaces
                .first()
                .map(|i| i.igmp.as_ref().unwrap().robustness);
            let b = c.bridges.first().map(|b| {
                let v = b.vlans.get(&10).map(|v| v.0.as_ref().unwrap().robustness);
                (b.igmp.as_ref().unwrap().robustness, v)
            });
            (i, b)
        };
        let all = "[interface.eth0]\n[bridge.br0]\n[bridge.br0.vlan.10]\n";
        assert_eq!(robustness(all), (Some(2), Some((2, Some(2)))));
        let defaults = format!("[defaults]\nrobustness = 3\n{all}");
        assert_eq!(robustness(&defaults), (Some(3), Some((3, Some(3)))));
        assert_eq!(
            robustness(
                "[defaults]\nrobustness = 3\n[interface.eth0]\nrobustness = 4\n[bridge.br0]\nrobustness = 5\n[bridge.br0.vlan.10]\n"
            ),
            (Some(4), Some((5, Some(5))))
        );
        assert_eq!(
            robustness(
                "[defaults]\nrobustness = 3\n[bridge.br0]\n[bridge.br0.vlan.10]\nrobustness = 6\n"
            ),
            (None, Some((3, Some(6))))
        );
        // A boolean written false overrides a lower layer's true.
        let c =
            ok("[defaults]\nno_mld = true\n[interface.eth0]\nno_mld = false\n[interface.eth1]\n");
        assert!(c.interfaces[0].mld.is_some() && c.interfaces[1].mld.is_none());
        // `passive` is the queriers' own: a bridge's instances are passive unless it queries.
        let c = ok("[defaults]\npassive = true\n[interface.eth0]\n[bridge.br0]\nquerier = true\n[bridge.br0.vlan.10]\npassive = true\n");
        assert!(c.interfaces[0].igmp.as_ref().unwrap().passive);
        assert!(!c.bridges[0].igmp.as_ref().unwrap().passive);
        assert!(!c.bridges[0].vlans[&10].0.as_ref().unwrap().passive);
    }

    /// The per-family configs `igmpd query IFACE FLAGS...` runs with.
    fn query_flags(flags: &[&str]) -> (Option<Config>, Option<Config>) {
        use clap::Parser;
        let argv = ["igmpd", "query", "eth0"].iter().chain(flags);
        let crate::Command::Query(a) = crate::Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        crate::query::configs(
            &a.protocol,
            a.startup_query_interval,
            a.startup_query_count,
            a.passive,
        )
        .unwrap()
    }

    /// `igmpd snoop BRIDGE FLAGS...` as the [`Bridge`] a config section resolves to.
    fn snoop_flags(flags: &[&str]) -> Bridge {
        use clap::Parser;
        let argv = ["igmpd", "snoop", "br0"].iter().chain(flags);
        let crate::Command::Snoop(a) = crate::Cli::try_parse_from(argv).unwrap().command else {
            unreachable!()
        };
        let (igmp, mld) = crate::query::configs(&a.protocol, None, None, !a.querier).unwrap();
        Bridge {
            name: a.bridge,
            igmp,
            mld,
            querier: a.querier,
            router_ports: a.router_port,
            raise_hash_max: a.raise_hash_max,
            vlans: BTreeMap::new(),
        }
    }

    /// Every key with a value, and the flags that say the same.
    const SAME: &[(&str, &str, &[&str])] = &[
        ("igmp_version", "2", &["--igmp-version", "2"]),
        ("mld_version", "1", &["--mld-version", "1"]),
        ("no_igmp", "true", &["--no-igmp"]),
        ("no_mld", "true", &["--no-mld"]),
        ("query_interval", "\"1m\"", &["--query-interval", "1m"]),
        (
            "query_response_interval",
            "\"2.5s\"",
            &["--query-response-interval", "2.5s"],
        ),
        ("robustness", "4", &["--robustness", "4"]),
        (
            "last_member_query_interval",
            "\"300ms\"",
            &["--last-member-query-interval", "300ms"],
        ),
        (
            "last_member_query_count",
            "3",
            &["--last-member-query-count", "3"],
        ),
        (
            "startup_query_interval",
            "\"7s\"",
            &["--startup-query-interval", "7s"],
        ),
        ("startup_query_count", "5", &["--startup-query-count", "5"]),
        ("passive", "true", &["--passive"]),
        ("querier", "true", &["--querier"]),
        (
            "router_ports",
            "[\"p1\", \"p2\"]",
            &["--router-port", "p1", "--router-port", "p2"],
        ),
        ("raise_hash_max", "8192", &["--raise-hash-max", "8192"]),
    ];

    /// A key in `[interface.NAME]` means what its flag means to `igmpd query`, and in
    /// `[bridge.NAME]` what it means to `igmpd snoop`.
    #[test]
    fn each_key_means_what_its_flag_means() {
        let snoop_only = ["querier", "router_ports", "raise_hash_max"];
        for (key, value, flags) in SAME {
            if !snoop_only.contains(key) {
                let c = ok(&format!("[interface.eth0]\n{key} = {value}\n"));
                let i = &c.interfaces[0];
                assert_eq!((i.igmp.clone(), i.mld.clone()), query_flags(flags), "{key}");
            }
            // Startup queries have no `snoop` flags; passive is not a bridge key.
            if !key.starts_with("startup_") && *key != "passive" {
                let c = ok(&format!("[bridge.br0]\n{key} = {value}\n"));
                assert_eq!(c.bridges[0], snoop_flags(flags), "{key}");
            }
        }
        // And nothing written is what no flag means.
        let c = ok("[interface.eth0]\n[bridge.br0]\n");
        let i = &c.interfaces[0];
        assert_eq!((i.igmp.clone(), i.mld.clone()), query_flags(&[]));
        assert_eq!(c.bridges[0], snoop_flags(&[]));
    }

    #[test]
    fn shipped_example_is_accepted() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/igmpd.toml");
        let c = load(&path).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!c.interfaces.is_empty() && !c.bridges.is_empty());
    }
}
