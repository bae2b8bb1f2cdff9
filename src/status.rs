//! `igmpd status` without `--json`: the status document as tables, in the spirit of `ip`
//! and `bridge` output.

use std::fmt::Write;

use serde_json::Value;

/// A JSON number of milliseconds as a duration (`2m5s`), `-` when it is none.
pub fn ms(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) => crate::duration::format(std::time::Duration::from_millis(ms)),
        None => "-".into(),
    }
}

/// The items of a JSON array (none when `v` is not one).
pub fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// A number, `-` when it is null (an ifindex, a VLAN).
fn num(v: &Value) -> String {
    v.as_u64().map_or("-".into(), |n| n.to_string())
}

/// The strings of a JSON array (hosts, reasons).
fn strs(v: &Value) -> Vec<&str> {
    list(v).filter_map(Value::as_str).collect()
}

/// A source's timer, or `blocked` when it does not run.
fn source_state(src: &Value) -> String {
    if src["expires_in_ms"].as_u64().unwrap_or(0) == 0 {
        "blocked".to_string()
    } else {
        ms(&src["expires_in_ms"])
    }
}

/// Renders the status document: interfaces, bridges, findings.
pub fn render(doc: &Value) -> String {
    let mut out = String::new();
    if let Some(release) = doc["kernel"]["release"].as_str() {
        let features = strs(&doc["kernel"]["features"]);
        let _ = writeln!(
            out,
            "kernel {release}  features {}",
            if features.is_empty() {
                "-".to_string()
            } else {
                features.join(",")
            }
        );
    }
    for iface in list(&doc["interfaces"]) {
        render_interface(iface, &mut out);
    }
    for b in list(&doc["bridges"]) {
        render_bridge(b, &mut out);
    }
    let findings: Vec<&Value> = list(&doc["findings"]).collect();
    if !findings.is_empty() {
        let _ = writeln!(out, "findings:");
        for f in findings {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                s(&f["severity"]),
                s(&f["code"]),
                s(&f["message"])
            );
            if let Some(h) = f["hint"].as_str() {
                let _ = writeln!(out, "    hint: {h}");
            }
        }
    }
    out
}

/// A querier interface: a line per family, then its groups and their sources.
fn render_interface(iface: &Value, out: &mut String) {
    let up = if iface["up"].as_bool() == Some(true) {
        "up"
    } else {
        "down"
    };
    let _ = writeln!(
        out,
        "{} (ifindex {}) {up}",
        s(&iface["name"]),
        num(&iface["ifindex"])
    );
    for proto in ["igmp", "mld"] {
        let p = &iface[proto];
        if p.is_null() {
            continue;
        }
        let _ = write!(out, "  {proto} v{} {}", p["version"], s(&p["role"]));
        match p["role"].as_str() {
            Some("non-querier") | Some("passive") => {
                let _ = write!(out, " querier {}", s(&p["querier_address"]));
                if p["other_querier_expires_in_ms"].as_u64().unwrap_or(0) > 0 {
                    let _ = write!(
                        out,
                        " (present for {})",
                        ms(&p["other_querier_expires_in_ms"])
                    );
                }
            }
            _ => {
                let _ = write!(out, " address {}", s(&p["address"]));
            }
        }
        let _ = writeln!(
            out,
            "  robustness {}  interval {}  queries sent {}",
            p["robustness"],
            ms(&p["query_interval_ms"]),
            p["queries_sent"]
        );
        let drops: Vec<String> = p["drops"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if !drops.is_empty() {
            let _ = writeln!(out, "    dropped: {}", drops.join(", "));
        }
        let groups: Vec<&Value> = list(&p["groups"]).collect();
        if groups.is_empty() {
            let _ = writeln!(out, "    no groups");
            continue;
        }
        let _ = writeln!(
            out,
            "    {:<40} {:<8} {:>10} {:>4}  last reporter",
            "group", "mode", "expires", "ver"
        );
        for g in groups {
            let _ = writeln!(
                out,
                "    {:<40} {:<8} {:>10} {:>4}  {}",
                s(&g["group"]),
                s(&g["filter_mode"]),
                ms(&g["expires_in_ms"]),
                format!("v{}", g["compat_version"]),
                s(&g["last_reporter"])
            );
            for src in list(&g["sources"]) {
                let state = source_state(src);
                let _ = writeln!(out, "      source {:<33} {:>10}", s(&src["address"]), state);
            }
        }
    }
}

/// `igmpd snoop`'s bridge: counters, router ports, then one table of port memberships.
fn render_bridge(b: &Value, out: &mut String) {
    let c = &b["counters"];
    let _ = writeln!(
        out,
        "bridge {} {}  source filtering {}  entries {} (keys {} of limit {}, mcast_hash_max {})",
        s(&b["name"]),
        if b["active"].as_bool() == Some(true) {
            "snooping"
        } else {
            "down"
        },
        if b["source_filtering"].as_bool() == Some(true) {
            "on"
        } else {
            "off"
        },
        b["mdb_entries"],
        b["mdb_keys"],
        b["entry_limit"],
        b["mcast_hash_max"]
    );
    let _ = writeln!(
        out,
        "  reports {}  queries {}  forwarded {}  refused {}  mdb errors {}  capture drops {}",
        c["reports"],
        c["queries"],
        c["forwarded"],
        c["groups_refused"],
        c["mdb_errors"],
        c["capture_drops"]
    );
    for v in list(&b["vlans"]) {
        let q = |f: &str| {
            let x = &v[f];
            if x.is_null() {
                return String::new();
            }
            format!(
                "  {f} {} (querier {})",
                s(&x["role"]),
                s(&x["querier_address"])
            )
        };
        let _ = writeln!(
            out,
            "  vlan {}  source filtering {}{}{}",
            v["vid"],
            match v["source_filtering"].as_bool() {
                Some(true) => "on",
                Some(false) => "off",
                None => "?",
            },
            q("igmp"),
            q("mld")
        );
    }
    let routers: Vec<String> = list(&b["router_ports"])
        .map(|r| match r["vid"].as_u64() {
            Some(vid) => format!(
                "{} vlan {vid} ({})",
                s(&r["name"]),
                strs(&r["reasons"]).join(",")
            ),
            None => format!("{} ({})", s(&r["name"]), strs(&r["reasons"]).join(",")),
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
    render_port_policies(b, out);
    let _ = writeln!(
        out,
        "  {:<12} {:<40} {:>5} {:<8} {:>10}  hosts / sources",
        "port", "group", "vid", "mode", "expires"
    );
    for p in list(&b["ports"]) {
        for g in list(&p["groups"]) {
            let _ = writeln!(
                out,
                "  {:<12} {:<40} {:>5} {:<8} {:>10}  {}",
                s(&p["name"]),
                s(&g["group"]),
                num(&g["vid"]),
                s(&g["filter_mode"]),
                ms(&g["expires_in_ms"]),
                strs(&g["hosts"]).join(" ")
            );
            for src in list(&g["sources"]) {
                let _ = writeln!(
                    out,
                    "  {:<12}   source {:<31} {:>5} {:<8} {:>10}",
                    "",
                    s(&src["address"]),
                    "",
                    "",
                    source_state(src)
                );
            }
        }
    }
}

/// One line per port: its memberships against its limit, its guard and rate, what its
/// policy refused or dropped; then its ACL rules with their hits.
fn render_port_policies(b: &Value, out: &mut String) {
    if list(&b["ports"]).next().is_none() {
        return;
    }
    let row = |out: &mut String, cells: [&str; 14]| {
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
            "port",
            "groups",
            "action",
            "sources",
            "guard",
            "rate",
            "refused",
            "replaced",
            "denied",
            "guard-drop",
            "rate-drop",
            "no-ra",
            "bad-query",
            "backlog!",
        ],
    );
    for p in list(&b["ports"]) {
        let (l, c) = (&p["limits"], &p["counters"]);
        let rate = l["max_report_rate"]
            .as_u64()
            .map_or_else(|| "-".to_owned(), |r| format!("{r}/s"));
        let n = |k: &str| c[k].to_string();
        let guard = if l["router_guard"].as_bool() == Some(true) {
            "on"
        } else {
            "off"
        };
        row(
            out,
            [
                s(&p["name"]),
                &format!("{}/{}", l["groups"], l["max_groups"]),
                s(&l["limit_action"]),
                &l["max_sources"].to_string(),
                guard,
                &rate,
                &n("refused"),
                &n("replaced"),
                &n("denied"),
                &n("guard_drops"),
                &n("rate_drops"),
                &n("router_alert_drops"),
                &n("bad_queries"),
                &n("backlog_drops"),
            ],
        );
        let rules: Vec<&Value> = list(&p["acl"]).collect();
        for (i, r) in rules.iter().enumerate() {
            let from = r["source"]
                .as_str()
                .map_or_else(String::new, |src| format!(" source {src}"));
            let _ = writeln!(
                out,
                "  {:<12}   acl {} {} group {}{from}  hits {}",
                "",
                i + 1,
                s(&r["action"]),
                s(&r["group"]),
                r["hits"]
            );
        }
        if !rules.is_empty() || s(&l["acl_default"]) == "deny" {
            let _ = writeln!(
                out,
                "  {:<12}   acl default {}  hits {}",
                "",
                s(&l["acl_default"]),
                c["acl_default_hits"]
            );
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
