//! `igmpd status` without `--json`: the status document as tables, in the spirit of `ip`
//! and `bridge` output. Rendered by the daemon from its typed document (off its event
//! loop, see `crate::control`), so that the client only copies text: parsing a large
//! document back into a tree in the client took longer than making it.

use std::fmt::{Display, Write};
use std::time::Duration;

use igmpd_runtime::status::{
    BridgeQuerierStatus, BridgeStatus, FamilyStatus, IfaceStatus, PortStatus, SourceStatus,
    StatusDoc,
};

use crate::duration::Human;

/// Milliseconds as a duration (`2m5s`).
fn ms(v: u64) -> Human {
    Human(Duration::from_millis(v))
}

/// An optional value, `-` when it is none (an ifindex, a VLAN, an address).
struct Opt<T>(Option<T>);

impl<T: Display> Display for Opt<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(v) => {
                // Through a buffer only when padded: `f.pad` needs the whole text.
                if f.width().is_some() {
                    f.pad(&v.to_string())
                } else {
                    v.fmt(f)
                }
            }
            None => f.pad("-"),
        }
    }
}

/// Spaces to pad cells with.
const SPACES: &str = "                                                                ";

/// Appends `v` as `{:<width$}` does. The per-group rows are padded here rather than by
/// the formatter, which writes its fill a character at a time: a third of the time of a
/// 10 000-group table.
fn left(out: &mut String, v: impl Display, width: usize) {
    let start = out.len();
    let _ = write!(out, "{v}");
    let n = out[start..].chars().count();
    out.push_str(&SPACES[..width.saturating_sub(n).min(SPACES.len())]);
}

/// Appends `v` as `{:>width$}` does.
fn right(out: &mut String, v: impl Display, width: usize) {
    let start = out.len();
    let _ = write!(out, "{v}");
    let n = out[start..].chars().count();
    out.insert_str(start, &SPACES[..width.saturating_sub(n).min(SPACES.len())]);
}

/// A source's timer, or `blocked` when it does not run, as `{:>10}`.
fn source_state(src: &SourceStatus, out: &mut String) {
    if src.expires_in_ms == 0 {
        right(out, "blocked", 10);
    } else {
        right(out, ms(src.expires_in_ms), 10);
    }
}

/// The text being rendered; passed on to the writer, if any, in pieces of about
/// [`CHUNK`] bytes, so that the client reads while the rest is rendered.
struct Sink<'a> {
    buf: String,
    w: Option<&'a mut dyn std::io::Write>,
    err: Option<std::io::Error>,
}

/// How much text is rendered before it is written out.
const CHUNK: usize = 64 * 1024;

impl Sink<'_> {
    /// Writes what is rendered so far once it is a chunk (after a whole row).
    fn row_done(&mut self) {
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let (Some(w), None) = (self.w.as_mut(), &self.err) {
            if let Err(e) = w.write_all(self.buf.as_bytes()) {
                self.err = Some(e);
            }
            self.buf.clear();
        }
    }
}

impl std::ops::Deref for Sink<'_> {
    type Target = String;
    fn deref(&self) -> &String {
        &self.buf
    }
}

impl std::ops::DerefMut for Sink<'_> {
    fn deref_mut(&mut self) -> &mut String {
        &mut self.buf
    }
}

/// Renders the status document (the kernel, interfaces, bridges, findings) into `w` as
/// it goes.
pub fn write(doc: &StatusDoc, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut out = Sink {
        buf: String::with_capacity(CHUNK + 4096),
        w: Some(w),
        err: None,
    };
    render_to(doc, &mut out);
    out.flush();
    out.err.map_or(Ok(()), Err)
}

fn render_to(doc: &StatusDoc, out: &mut Sink<'_>) {
    if let Some(k) = &doc.kernel {
        let features = if k.features.is_empty() {
            "-".to_string()
        } else {
            k.features.join(",")
        };
        let _ = writeln!(out, "kernel {}  features {features}", k.release);
    }
    for iface in doc.interfaces.iter().flatten() {
        // The querier of a snooped bridge (`igmpd snoop --querier`) holds the groups the
        // bridge's table below lists per port: counted here, listed once there.
        let snooped = doc.bridges.iter().flatten().any(|b| b.name == iface.name);
        render_interface(iface, !snooped, out);
    }
    for b in doc.bridges.iter().flatten() {
        render_bridge(b, out);
    }
    if !doc.findings.is_empty() {
        let _ = writeln!(out, "findings:");
        for f in &doc.findings {
            let _ = writeln!(out, "  {} {}: {}", f.severity, f.code, f.message);
            let _ = writeln!(out, "    hint: {}", f.hint);
        }
    }
}

/// A querier interface: a line per family, then its groups and their sources; then a
/// line per host join.
fn render_interface(iface: &IfaceStatus, list_groups: bool, out: &mut Sink<'_>) {
    let up = if iface.up { "up" } else { "down" };
    let _ = writeln!(out, "{} (ifindex {}) {up}", iface.name, Opt(iface.ifindex));
    for (proto, p) in [("igmp", &iface.igmp), ("mld", &iface.mld)] {
        if let Some(p) = p {
            render_family(proto, p, list_groups, out);
        }
    }
    for j in &iface.joins {
        let _ = match j.source {
            Some(s) => writeln!(out, "  join {s}/{}: {}", j.group, j.state),
            None => writeln!(out, "  join {}: {}", j.group, j.state),
        };
    }
}

fn render_family(proto: &str, p: &FamilyStatus, list_groups: bool, out: &mut Sink<'_>) {
    let _ = write!(out, "  {proto} v{} {}", p.version, p.role);
    match p.role {
        "non-querier" | "passive" => {
            let _ = write!(out, " querier {}", Opt(p.querier_address.as_deref()));
            if p.other_querier_expires_in_ms > 0 {
                let _ = write!(out, " (present for {})", ms(p.other_querier_expires_in_ms));
            }
        }
        _ => {
            let _ = write!(out, " address {}", Opt(p.address.as_deref()));
        }
    }
    let _ = writeln!(
        out,
        "  robustness {}  interval {}  queries sent {}",
        p.robustness,
        ms(p.query_interval_ms),
        p.queries_sent
    );
    let drops: Vec<String> = p
        .drops
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    if !drops.is_empty() {
        let _ = writeln!(out, "    dropped: {}", drops.join(", "));
    }
    if p.groups.is_empty() {
        let _ = writeln!(out, "    no groups");
        return;
    }
    if !list_groups {
        let _ = writeln!(
            out,
            "    {} groups (by port in the bridge table)",
            p.groups.len()
        );
        return;
    }
    let _ = writeln!(
        out,
        "    {:<40} {:<8} {:>10} {:>4}  last reporter",
        "group", "mode", "expires", "ver"
    );
    for g in &p.groups {
        out.push_str("    ");
        left(out, g.group, 40);
        out.push(' ');
        left(out, g.filter_mode, 8);
        out.push(' ');
        right(out, ms(g.expires_in_ms), 10);
        let _ = writeln!(out, "   v{}  {}", g.compat_version, Opt(g.last_reporter));
        for src in &g.sources {
            out.push_str("      source ");
            left(out, src.address, 33);
            out.push(' ');
            source_state(src, out);
            out.push('\n');
        }
        out.row_done();
    }
}

/// `igmpd snoop`'s bridge: counters, router ports, then one table of port memberships.
fn render_bridge(b: &BridgeStatus, out: &mut Sink<'_>) {
    let c = &b.counters;
    let _ = writeln!(
        out,
        "bridge {} {}  source filtering {}  entries {} (keys {} of limit {}, mcast_hash_max {})  crash-safe {}",
        b.name,
        if b.active { "snooping" } else { "down" },
        if b.source_filtering { "on" } else { "off" },
        b.mdb_entries,
        b.mdb_keys,
        b.entry_limit,
        Opt(b.mcast_hash_max),
        // The kernel deletes the nftables table if igmpd dies (no: `igmpd cleanup`).
        match b.nft_table_owned {
            Some(true) => "yes",
            Some(false) => "no",
            None => "-",
        }
    );
    let _ = writeln!(
        out,
        "  reports {}  queries {}  forwarded {}  refused {}  mdb errors {}  capture drops {}",
        c.reports, c.queries, c.forwarded, c.groups_refused, c.mdb_errors, c.capture_drops
    );
    for v in &b.vlans {
        let q = |f: &str, x: &Option<BridgeQuerierStatus>| match x {
            None => String::new(),
            Some(x) => format!(
                "  {f} {} (querier {})",
                x.role,
                Opt(x.querier_address.as_deref())
            ),
        };
        let _ = writeln!(
            out,
            "  vlan {}  source filtering {}{}{}",
            v.vid,
            match v.source_filtering {
                Some(true) => "on",
                Some(false) => "off",
                None => "?",
            },
            q("igmp", &v.igmp),
            q("mld", &v.mld)
        );
    }
    let routers: Vec<String> = b
        .router_ports
        .iter()
        .map(|r| match r.vid {
            Some(vid) => format!("{} vlan {vid} ({})", r.name, r.reasons.join(",")),
            None => format!("{} ({})", r.name, r.reasons.join(",")),
        })
        .collect();
    let _ = writeln!(
        out,
        "  router ports: {}",
        if routers.is_empty() {
            "none".to_string()
        } else {
            routers.join(", ")
        }
    );
    render_port_policies(&b.ports, out);
    let _ = writeln!(
        out,
        "  {:<12} {:<40} {:>5} {:<8} {:>10}  hosts / sources",
        "port", "group", "vid", "mode", "expires"
    );
    for p in &b.ports {
        for g in &p.groups {
            out.push_str("  ");
            left(out, &p.name, 12);
            out.push(' ');
            left(out, g.group, 40);
            out.push(' ');
            right(out, Opt(g.vid), 5);
            out.push(' ');
            left(out, g.filter_mode, 8);
            out.push(' ');
            if g.origin == "static" || g.origin == "flood" {
                right(out, g.origin, 10);
            } else {
                right(out, ms(g.expires_in_ms), 10);
            }
            out.push_str("  ");
            for (i, h) in g.hosts.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{h}");
            }
            out.push('\n');
            for src in &g.sources {
                out.push_str(&SPACES[..17]);
                out.push_str("source ");
                left(out, src.address, 31);
                out.push_str(&SPACES[..16]);
                source_state(src, out);
                out.push('\n');
            }
            out.row_done();
        }
    }
}

/// One line per port: its memberships against its limit, its guard and rate, what its
/// policy refused or dropped; then its ACL rules with their hits.
fn render_port_policies(ports: &[PortStatus], out: &mut String) {
    if ports.is_empty() {
        return;
    }
    let row = |out: &mut String, cells: [&dyn Display; 14]| {
        let [port, groups, action, sources, guard, rate, rest @ ..] = cells;
        let _ = write!(
            out,
            "  {port:<12} {groups:>11} {action:<7} {sources:>7} {guard:<5} {rate:>6}"
        );
        for (c, w) in rest.iter().zip([7, 8, 6, 10, 9, 5, 9, 9]) {
            let _ = write!(out, " {c:>w$}");
        }
        out.push('\n');
    };
    row(
        out,
        [
            &"port",
            &"groups",
            &"action",
            &"sources",
            &"guard",
            &"rate",
            &"refused",
            &"replaced",
            &"denied",
            &"guard-drop",
            &"rate-drop",
            &"no-ra",
            &"bad-query",
            &"backlog!",
        ],
    );
    for p in ports {
        let (l, c) = (&p.limits, &p.counters);
        let rate = l
            .max_report_rate
            .map_or_else(|| "-".to_owned(), |r| format!("{r}/s"));
        let guard = if l.router_guard { "on" } else { "off" };
        row(
            out,
            [
                &p.name,
                &format!("{}/{}", l.groups, l.max_groups),
                &l.limit_action,
                &l.max_sources,
                &guard,
                &rate,
                &c.refused,
                &c.replaced,
                &c.denied,
                &c.guard_drops,
                &c.rate_drops,
                &c.router_alert_drops,
                &c.bad_queries,
                &c.backlog_drops,
            ],
        );
        for (i, r) in p.acl.iter().enumerate() {
            let from = r
                .source
                .as_deref()
                .map_or_else(String::new, |src| format!(" source {src}"));
            let _ = writeln!(
                out,
                "  {:<12}   acl {} {} group {}{from}  hits {}",
                "",
                i + 1,
                r.action,
                r.group,
                r.hits
            );
        }
        if !p.acl.is_empty() || l.acl_default == "deny" {
            let _ = writeln!(
                out,
                "  {:<12}   acl default {}  hits {}",
                "", l.acl_default, c.acl_default_hits
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
