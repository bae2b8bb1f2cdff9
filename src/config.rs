//! The config file of `igmpd run` (TOML). Every option flag of `igmpd query` and
//! `igmpd snoop` is a key of the same name (underscores for dashes; the repeatable
//! `--router-port` is the list `router_ports`); `--control-socket` is the top-level
//! `control_socket`, `--metrics-listen` the top-level `metrics_listen`. Flags and keys are one definition, the option groups of `crate::cli`;
//! a section here is a set of those groups. Precedence, highest first:
//! `[bridge.NAME.vlan.VID]` > `[interface.NAME]` / `[bridge.NAME]` > `[defaults]` > the
//! built-in defaults (the flags' defaults).
//!
//! ```toml
//! control_socket = "/run/igmpd/igmpd.sock"
//! control_group = "netadmin"
//! metrics_listen = "127.0.0.1:9654"
//! [defaults]
//! query_interval = "60s"
//! [interface.eth1]
//! igmp_version = 2
//! join = ["239.1.1.1", "10.0.0.5/232.1.1.1"]
//! [bridge.br0]
//! querier = true
//! router_ports = ["p1"]
//! [bridge.br0.vlan.10]
//! robustness = 3
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use igmpd_querier::shell::InterfaceSettings;
use serde::Deserialize;
use toml::Spanned;

use crate::cli::{
    HostLayer, MetricsLayer, PassiveLayer, PolicyLayer, ProtocolLayer, SnoopingLayer, StartupLayer,
    IGMP_VERSIONS, MLD_VERSIONS,
};
use crate::options::{section, Layer};
use crate::settings::{self, AclEntry, Bridge, Families, PortFlags, StaticEntry};

section! {
    /// `[defaults]` and `[bridge.NAME.vlan.VID]` (and `[interface.NAME]`'s): the options of
    /// `igmpd query`, each unset unless written; one layer of the precedence chain.
    struct Options { protocol: ProtocolLayer, startup: StartupLayer, passive: PassiveLayer }
}

section! {
    /// `[interface.NAME]`: the options of `igmpd query` (a layer over `[defaults]`) and the
    /// interface's host joins (`join`).
    struct InterfaceSection {
        protocol: ProtocolLayer, startup: StartupLayer, passive: PassiveLayer, host: HostLayer
    }
}

impl InterfaceSection {
    fn options(&self) -> Options {
        Options {
            protocol: self.protocol.clone(),
            startup: self.startup.clone(),
            passive: self.passive.clone(),
        }
    }
}

section! {
    /// `[bridge.NAME]`: the options of `igmpd snoop`, the startup queries (when it
    /// queries), every port's policy (`router_guard` and `acl` with the policy options),
    /// and its VLANs' and ports' sections.
    struct BridgeSection {
        protocol: ProtocolLayer, startup: StartupLayer, snooping: SnoopingLayer,
        policy: PolicyLayer;
        router_guard: Option<bool>,
        fast_leave: Option<bool>,
        flood_unregistered: Option<bool>,
        flood_reports: Option<bool>,
        acl: Option<Vec<Spanned<AclEntry>>>,
        vlan: BTreeMap<u16, Spanned<VlanSection>>,
        port: BTreeMap<String, Spanned<PortSection>>
    }
}

section! {
    /// `[bridge.NAME.port.PORT]`: one port's policy (each key not written here is the
    /// bridge's) and its static groups.
    struct PortSection {
        policy: PolicyLayer;
        router_guard: Option<bool>,
        fast_leave: Option<bool>,
        flood_unregistered: Option<bool>,
        flood_reports: Option<bool>,
        acl: Option<Vec<Spanned<AclEntry>>>,
        static_groups: Option<Vec<Spanned<StaticEntry>>>
    }
}

/// The rules of an `acl` list, each error at its entry's line.
fn acl_rules(
    list: &[Spanned<AclEntry>],
    key: &str,
    err: &mut impl FnMut(std::ops::Range<usize>, &str, anyhow::Error),
) -> Option<Vec<igmpd_snooping::core::policy::AclRule>> {
    let mut rules = Vec::new();
    let mut ok = true;
    for e in list {
        match e.get_ref().rule() {
            Ok(r) => rules.push(r),
            Err(x) => {
                err(e.span(), key, x);
                ok = false;
            }
        }
    }
    ok.then_some(rules)
}

section! {
    /// `[bridge.NAME.vlan.VID]`: the options of `igmpd query` for the VLAN's querier, and
    /// `querier_address`: its source (an IPv4 address, an IPv6 link-local one, or a list
    /// of one of each) where the VLAN has no interface of its own (`br0.10`).
    struct VlanSection {
        protocol: ProtocolLayer, startup: StartupLayer, passive: PassiveLayer;
        querier_address: Option<AddressList>
    }
}

/// One address or a list of them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub(crate) enum AddressList {
    One(std::net::IpAddr),
    Many(Vec<std::net::IpAddr>),
}

impl VlanSection {
    fn options(&self) -> Options {
        Options {
            protocol: self.protocol.clone(),
            startup: self.startup.clone(),
            passive: self.passive.clone(),
        }
    }

    /// `querier_address` as (IPv4, IPv6 link-local): at most one of each, IPv6 link-local
    /// (RFC 9777 §5.1.14: MLD queries come from one).
    fn addresses(&self) -> Result<Option<igmpd_snooping::core::VlanAddresses>> {
        let list = match &self.querier_address {
            None => return Ok(None),
            Some(AddressList::One(a)) => vec![*a],
            Some(AddressList::Many(v)) => v.clone(),
        };
        let (mut v4, mut v6) = (None, None);
        for a in list {
            match a {
                std::net::IpAddr::V4(a) if v4.replace(a).is_some() => {
                    anyhow::bail!("querier_address: one IPv4 address at most")
                }
                std::net::IpAddr::V6(a) if !igmpd_querier::adapter::is_link_local(&a) => {
                    anyhow::bail!("querier_address: {a} is not link-local (MLD queries come from a link-local address, RFC 9777 §5.1.14)")
                }
                std::net::IpAddr::V6(a) if v6.replace(a).is_some() => {
                    anyhow::bail!("querier_address: one IPv6 address at most")
                }
                _ => {}
            }
        }
        Ok(Some((v4, v6)))
    }
}

impl Options {
    /// `self` over `lower`: every key set here wins.
    fn over(&self, lower: &Options) -> Options {
        Options {
            protocol: self.protocol.over(&lower.protocol),
            startup: self.startup.over(&lower.startup),
            passive: self.passive.over(&lower.passive),
        }
    }

    /// The per-family configs, checked like the flags are (their value parsers included).
    /// `passive`: what a bridge's querier says; None: as written.
    fn families(&self, passive: Option<bool>) -> Result<Families> {
        let p = self.protocol.resolve();
        for (v, name, range) in [
            (p.igmp_version, "igmp_version", IGMP_VERSIONS),
            (p.mld_version, "mld_version", MLD_VERSIONS),
        ] {
            if !range.contains(&i64::from(v)) {
                anyhow::bail!(
                    "{name} must be {}..={}, not {v}",
                    range.start(),
                    range.end()
                );
            }
        }
        let passive = passive.unwrap_or_else(|| self.passive.resolve().passive);
        settings::families(&p, &self.startup.resolve(), passive)
    }
}

impl BridgeSection {
    /// The bridge's own keys as a layer over `[defaults]` (`passive` is not one of them).
    fn options(&self) -> Options {
        Options {
            protocol: self.protocol.clone(),
            startup: self.startup.clone(),
            passive: PassiveLayer::default(),
        }
    }
}

section! {
    /// The file: daemon-wide keys (the control socket, the metrics endpoint), then the
    /// sections.
    struct File {
        metrics: MetricsLayer;
        control_socket: Option<PathBuf>,
        control_group: Option<String>,
        defaults: Options,
        interface: BTreeMap<String, Spanned<InterfaceSection>>,
        bridge: BTreeMap<String, Spanned<BridgeSection>>
    }
}

/// A checked config file.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Control socket path, if the file says.
    pub control_socket: Option<PathBuf>,
    /// The admin group's name, if any.
    pub control_group: Option<String>,
    /// Where to serve metrics, if the file says.
    pub metrics_listen: Option<std::net::SocketAddr>,
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

/// Where `key` is written in the section whose header is at `section` (toml spans a table
/// by its header): its line up to the next header; the header itself if nowhere.
fn key_span(src: &str, section: std::ops::Range<usize>, key: &str) -> std::ops::Range<usize> {
    let mut at = section.end.min(src.len());
    for line in src[at..].split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with('[') && at > section.end {
            break;
        }
        if t.strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            let start = at + (line.len() - t.len());
            return start..start + key.len();
        }
        at += line.len();
    }
    section
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
        let key = format!("interface.{name}");
        let joins = match igmpd_querier::core::host::check_list(&o.get_ref().host.resolve().join) {
            Ok(()) => o.get_ref().host.resolve().join,
            Err(e) => {
                err(
                    key_span(src, o.span(), "join"),
                    &format!("{key}.join"),
                    e.into(),
                );
                continue;
            }
        };
        match o.get_ref().options().over(&global).families(None) {
            Ok((igmp, mld)) => interfaces.push(InterfaceSettings {
                name: name.clone(),
                igmp,
                mld,
                joins,
            }),
            Err(e) => err(o.span(), &key, e),
        }
    }
    let mut bridges = Vec::new();
    for (name, b) in &f.bridge {
        let sec = b.get_ref();
        let snooping = sec.snooping.resolve();
        // As in `igmpd snoop`: the querier decides whether the instances are passive.
        let passive = Some(Bridge::passive(&snooping));
        let bo = sec.options().over(&global);
        let (igmp, mld) = match bo.families(passive) {
            Ok(c) => c,
            Err(e) => {
                err(b.span(), &format!("bridge.{name}"), e);
                continue;
            }
        };
        let mut vlans = BTreeMap::new();
        let mut vlan_addresses = BTreeMap::new();
        for (vid, v) in &sec.vlan {
            if !(1..=4094).contains(vid) {
                err(
                    v.span(),
                    &format!("bridge.{name}.vlan.{vid}"),
                    anyhow::anyhow!("a VLAN ID is 1..=4094"),
                );
                continue;
            }
            match v.get_ref().addresses() {
                Ok(Some(a)) => {
                    vlan_addresses.insert(*vid, a);
                }
                Ok(None) => {}
                Err(e) => err(v.span(), &format!("bridge.{name}.vlan.{vid}"), e),
            }
            match v.get_ref().options().over(&bo).families(passive) {
                Ok(c) => {
                    vlans.insert(*vid, c);
                }
                Err(e) => err(v.span(), &format!("bridge.{name}.vlan.{vid}"), e),
            }
        }
        let key = format!("bridge.{name}");
        let bridge_acl = match &sec.acl {
            Some(list) => acl_rules(list, &format!("{key}.acl"), &mut err),
            None => Some(Vec::new()),
        };
        let flags = PortFlags {
            router_guard: sec.router_guard.unwrap_or(false),
            fast_leave: sec.fast_leave.unwrap_or(false),
            flood_unregistered: sec.flood_unregistered,
            flood_reports: sec.flood_reports.unwrap_or(false),
        };
        let policy = match bridge_acl
            .clone()
            .map(|acl| settings::policy(&sec.policy.resolve(), flags, acl))
        {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                err(b.span(), &key, e);
                continue;
            }
            None => continue,
        };
        let mut port_policies = BTreeMap::new();
        let mut static_groups = BTreeMap::new();
        for (port, ps) in &sec.port {
            let pkey = format!("{key}.port.{port}");
            let p = ps.get_ref();
            let acl = match &p.acl {
                Some(list) => acl_rules(list, &format!("{pkey}.acl"), &mut err),
                None => bridge_acl.clone(),
            };
            if let Some(list) = &p.static_groups {
                let mut set = BTreeSet::new();
                for e in list {
                    match e.get_ref().group() {
                        Ok(g) => {
                            set.insert(g);
                        }
                        Err(x) => err(e.span(), &format!("{pkey}.static_groups"), x),
                    }
                }
                static_groups.insert(port.clone(), set);
            }
            let Some(acl) = acl else { continue };
            let layer = p.policy.over(&sec.policy);
            let port_flags = PortFlags {
                router_guard: p.router_guard.unwrap_or(flags.router_guard),
                fast_leave: p.fast_leave.unwrap_or(flags.fast_leave),
                flood_unregistered: p.flood_unregistered.or(flags.flood_unregistered),
                flood_reports: p.flood_reports.unwrap_or(flags.flood_reports),
            };
            match settings::policy(&layer.resolve(), port_flags, acl) {
                Ok(pp) => {
                    port_policies.insert(port.clone(), pp);
                }
                Err(e) => err(ps.span(), &pkey, e),
            }
        }
        bridges.push(Bridge {
            name: name.clone(),
            igmp,
            mld,
            snooping,
            vlans,
            vlan_addresses,
            policy,
            port_policies,
            static_groups,
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
            metrics_listen: f.metrics.metrics_listen.map(|a| a.0),
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

#[cfg(test)]
mod tests;
