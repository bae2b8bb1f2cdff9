//! `igmpd status` without `--json`: the status document as tables, in the spirit of `ip`
//! and `bridge` output.

use std::fmt::Write;

use serde_json::Value;

fn ms(v: &Value) -> String {
    match v.as_u64() {
        Some(ms) => crate::duration::format(std::time::Duration::from_millis(ms)),
        None => "-".into(),
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

/// Renders the status document.
pub fn render(doc: &Value) -> String {
    let mut out = String::new();
    for iface in doc["interfaces"].as_array().into_iter().flatten() {
        let _ = writeln!(
            out,
            "{} (ifindex {}) {}",
            s(&iface["name"]),
            iface["ifindex"]
                .as_u64()
                .map_or("-".into(), |i| i.to_string()),
            if iface["up"].as_bool() == Some(true) {
                "up"
            } else {
                "down"
            }
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
            let groups = p["groups"].as_array().cloned().unwrap_or_default();
            if groups.is_empty() {
                let _ = writeln!(out, "    no groups");
                continue;
            }
            let _ = writeln!(
                out,
                "    {:<40} {:<8} {:>10} {:>4}  last reporter",
                "group", "mode", "expires", "ver"
            );
            for g in &groups {
                let _ = writeln!(
                    out,
                    "    {:<40} {:<8} {:>10} {:>4}  {}",
                    s(&g["group"]),
                    s(&g["filter_mode"]),
                    ms(&g["expires_in_ms"]),
                    format!("v{}", g["compat_version"]),
                    s(&g["last_reporter"])
                );
                for src in g["sources"].as_array().into_iter().flatten() {
                    let t = src["expires_in_ms"].as_u64().unwrap_or(0);
                    let state = if t == 0 {
                        "blocked".to_string()
                    } else {
                        ms(&src["expires_in_ms"])
                    };
                    let _ = writeln!(out, "      source {:<33} {:>10}", s(&src["address"]), state);
                }
            }
        }
    }
    render_bridges(doc, &mut out);
    let findings = doc["findings"].as_array().cloned().unwrap_or_default();
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

/// `igmpd snoop`'s bridges: router ports, then one table of port memberships.
fn render_bridges(doc: &Value, out: &mut String) {
    for b in doc["bridges"].as_array().into_iter().flatten() {
        let c = &b["counters"];
        let _ = writeln!(
            out,
            "bridge {} {}  entries {} (keys {} of limit {}, mcast_hash_max {})",
            s(&b["name"]),
            if b["active"].as_bool() == Some(true) {
                "snooping"
            } else {
                "down"
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
        let routers: Vec<String> = b["router_ports"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let why: Vec<&str> = r["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                format!("{} ({})", s(&r["name"]), why.join(","))
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
        let _ = writeln!(
            out,
            "  {:<12} {:<40} {:>5} {:<8} {:>10}  hosts / sources",
            "port", "group", "vid", "mode", "expires"
        );
        for p in b["ports"].as_array().into_iter().flatten() {
            for g in p["groups"].as_array().into_iter().flatten() {
                let hosts: Vec<&str> = g["hosts"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let _ = writeln!(
                    out,
                    "  {:<12} {:<40} {:>5} {:<8} {:>10}  {}",
                    s(&p["name"]),
                    s(&g["group"]),
                    g["vid"].as_u64().map_or("-".into(), |v| v.to_string()),
                    s(&g["filter_mode"]),
                    ms(&g["expires_in_ms"]),
                    hosts.join(" ")
                );
                for src in g["sources"].as_array().into_iter().flatten() {
                    let t = src["expires_in_ms"].as_u64().unwrap_or(0);
                    let state = if t == 0 {
                        "blocked".to_string()
                    } else {
                        ms(&src["expires_in_ms"])
                    };
                    let _ = writeln!(
                        out,
                        "  {:<12}   source {:<31} {:>5} {:<8} {:>10}",
                        "",
                        s(&src["address"]),
                        "",
                        "",
                        state
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn renders_groups_and_sources() {
        let doc = json!({"interfaces": [{"name": "eth0", "ifindex": 3, "up": true,
            "igmp": {"version": 3, "role": "querier", "address": "10.0.0.1", "querier_address": "10.0.0.1",
                     "other_querier_expires_in_ms": 0, "robustness": 2, "query_interval_ms": 125000, "queries_sent": 4,
                     "drops": {"bad_checksum": 1, "truncated": 0},
                     "groups": [{"group": "239.1.1.1", "filter_mode": "include", "expires_in_ms": 250000,
                                 "compat_version": 3, "last_reporter": "10.0.0.12",
                                 "sources": [{"address": "10.0.0.9", "expires_in_ms": 3000}]}]}}],
            "findings": []});
        let text = super::render(&doc);
        assert!(text.contains("eth0 (ifindex 3) up"), "{text}");
        assert!(text.contains("igmp v3 querier address 10.0.0.1"), "{text}");
        assert!(text.contains("dropped: bad_checksum 1"), "{text}");
        assert!(text.contains("239.1.1.1"), "{text}");
        assert!(text.contains("4m10s"), "{text}");
        assert!(text.contains("source 10.0.0.9"), "{text}");
    }

    #[test]
    fn renders_bridges() {
        let doc = json!({"bridges": [{"name": "br0", "active": true, "mdb_entries": 1, "mdb_keys": 1,
            "entry_limit": 4032, "mcast_hash_max": 4096,
            "counters": {"reports": 3, "queries": 1, "forwarded": 2, "groups_refused": 0, "mdb_errors": 0, "capture_drops": 0},
            "router_ports": [{"name": "p1", "reasons": ["query"]}],
            "ports": [{"name": "p2", "groups": [{"group": "239.1.1.1", "vid": null, "filter_mode": "include",
                "expires_in_ms": 4000, "hosts": ["10.0.0.2"], "sources": [{"address": "10.0.0.9", "expires_in_ms": 4000}]}]}]}],
            "findings": []});
        let text = super::render(&doc);
        assert!(text.contains("bridge br0 snooping"), "{text}");
        assert!(text.contains("router ports: p1 (query)"), "{text}");
        assert!(text.contains("239.1.1.1"), "{text}");
        assert!(text.contains("10.0.0.2"), "{text}");
        assert!(text.contains("source 10.0.0.9"), "{text}");
    }
}
