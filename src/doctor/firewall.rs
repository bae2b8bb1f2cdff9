//! Does this host's firewall let IGMP or MLD queries in? Reads the nftables ruleset
//! (`nft -j list ruleset`, `nft -a list ruleset` for the rule text) and, for iptables-legacy
//! setups, `iptables-save` / `ip6tables-save`, and walks the chains a query passes (hooks
//! prerouting and input) the way the kernel would, as far as it can tell.
//!
//! The answer names the chain and its policy, or the rule, that drops the query, so the
//! doctor can cite it and hint the accepting rule.

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::Value;

/// The packet being asked about: a general query arriving on `iface`.
#[derive(Debug, Clone)]
pub struct Probe {
    /// IPv6 (an MLD query) or IPv4 (an IGMP query).
    pub v6: bool,
    /// The interface it arrives on.
    pub iface: String,
}

/// Where a query is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Culprit {
    /// `nft` or `iptables`.
    pub tool: &'static str,
    /// Family (nft) or table (iptables).
    pub family: String,
    /// Table name.
    pub table: String,
    /// Chain name.
    pub chain: String,
    /// The dropping rule's text, or None when the chain's policy drops it.
    pub rule: Option<String>,
    /// The rule's handle (nft).
    pub handle: Option<u64>,
}

impl Culprit {
    /// "nftables chain inet hostfw input (policy drop)" or "... rule `...`".
    pub fn describe(&self) -> String {
        match (&self.rule, self.tool) {
            (None, "nft") => format!(
                "nftables chain {} {} {} (policy drop, no rule accepts it)",
                self.family, self.table, self.chain
            ),
            (Some(r), "nft") => format!(
                "nftables rule `{r}` in chain {} {} {}",
                self.family, self.table, self.chain
            ),
            (None, _) => format!(
                "{} {} chain {} (policy DROP, no rule accepts it)",
                self.tool, self.table, self.chain
            ),
            (Some(r), _) => format!("{} rule `{r}`", self.tool),
        }
    }

    /// The command that lets the query in.
    pub fn fix(&self, v6: bool) -> String {
        let what = if v6 {
            "icmpv6 type mld-listener-query accept"
        } else {
            "ip protocol igmp accept"
        };
        match self.tool {
            "nft" => {
                // Appending is enough when the policy drops; a dropping rule needs the
                // accept before it.
                let verb = if self.rule.is_some() { "insert" } else { "add" };
                format!(
                    "nft {verb} rule {} {} {} {what}",
                    self.family, self.table, self.chain
                )
            }
            tool => {
                if v6 {
                    format!(
                        "{tool} -I {} -p ipv6-icmp --icmpv6-type 130 -j ACCEPT",
                        self.chain
                    )
                } else {
                    format!("{tool} -I {} -p igmp -j ACCEPT", self.chain)
                }
            }
        }
    }
}

/// What the firewall does with the probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every chain on the way accepts it (or there is no firewall).
    Accepted,
    /// Dropped here.
    Dropped(Culprit),
    /// A rule whose match this analysis does not understand decides; says which.
    Unknown(String),
}

/// Where the system's own firewall tools live: they are run from here, not through PATH
/// (a PATH entry of someone else's must not get to run as root).
const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// `name` in the first of [`SYSTEM_DIRS`] that has it; a missing tool is a path that does
/// not exist, which fails to run (as a missing tool should: its rules are not analysed).
fn system_program(name: &str) -> std::path::PathBuf {
    SYSTEM_DIRS
        .iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| std::path::Path::new("/nonexistent").join(name))
}

/// Reads the rulesets from the system and analyses them.
pub fn check(probe: &Probe) -> Verdict {
    let nft = system_program("nft");
    let nft_json = Command::new(&nft)
        .args(["-j", "list", "ruleset"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(out) = nft_json {
        let text = Command::new(&nft)
            .args(["-a", "list", "ruleset"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if let Ok(json) = serde_json::from_slice::<Value>(&out.stdout) {
            match analyze_nft(&json, &text, probe) {
                Verdict::Accepted => {}
                other => return other,
            }
        }
    }
    let save = if probe.v6 {
        "ip6tables-save"
    } else {
        "iptables-save"
    };
    if let Ok(out) = Command::new(system_program(save)).output() {
        if out.status.success() {
            let tool = if probe.v6 { "ip6tables" } else { "iptables" };
            return analyze_iptables(&String::from_utf8_lossy(&out.stdout), tool, probe);
        }
    }
    Verdict::Accepted
}

/// Does a match expression match the probe? None when this analysis cannot tell.
fn nft_match(m: &Value, probe: &Probe) -> Option<bool> {
    let op = m["op"].as_str().unwrap_or("==");
    let left = &m["left"];
    let right = &m["right"];
    let values: Vec<String> = match right {
        Value::Array(a) => a.iter().map(value_str).collect(),
        Value::Object(o) if o.contains_key("set") => o["set"]
            .as_array()
            .map(|a| a.iter().map(value_str).collect())
            .unwrap_or_default(),
        v => vec![value_str(v)],
    };
    let any = |cands: &[&str]| values.iter().any(|v| cands.contains(&v.as_str()));
    let hit = if let Some(key) = left["meta"]["key"].as_str() {
        match key {
            "iif" | "iifname" => any(&[probe.iface.as_str()]),
            "l4proto" => {
                if probe.v6 {
                    any(&["ipv6-icmp", "icmpv6", "58"])
                } else {
                    any(&["igmp", "2"])
                }
            }
            "nfproto" | "protocol" => any(if probe.v6 {
                &["ipv6", "ip6", "10", "34525"]
            } else {
                &["ipv4", "ip", "2", "2048"]
            }),
            "pkttype" => any(&["multicast"]),
            _ => return None,
        }
    } else if let Some(p) = left["payload"].as_object() {
        let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("");
        let field = p.get("field").and_then(Value::as_str).unwrap_or("");
        match (proto, field) {
            ("ip", "protocol") => !probe.v6 && any(&["igmp", "2"]),
            ("ip6", "nexthdr") => probe.v6 && any(&["ipv6-icmp", "icmpv6", "58", "hbh", "0"]),
            ("icmpv6", "type") => probe.v6 && any(&["mld-listener-query", "130"]),
            ("igmp", "type") => !probe.v6 && any(&["membership-query", "17"]),
            // Any other transport header field: the query does not have that header.
            ("udp" | "tcp" | "sctp" | "dccp" | "th" | "icmp" | "esp" | "ah", _) => false,
            ("icmpv6", _) => probe.v6 && return None,
            ("igmp", _) => !probe.v6 && return None,
            _ => return None,
        }
    } else if let Some(key) = left["ct"]["key"].as_str() {
        if key != "state" {
            return None;
        }
        // Conntrack: IGMP is tracked as a generic protocol (a query is "new"); MLD
        // messages are not tracked at all ("untracked").
        any(&[if probe.v6 { "untracked" } else { "new" }])
    } else {
        return None;
    };
    Some(match op {
        "==" | "in" => hit,
        "!=" => !hit,
        _ => return None,
    })
}

fn value_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Analyses `nft -j list ruleset` output; `text` is `nft -a list ruleset` for rule text.
pub fn analyze_nft(json: &Value, text: &str, probe: &Probe) -> Verdict {
    let items = json["nftables"].as_array().cloned().unwrap_or_default();
    let families: &[&str] = if probe.v6 {
        &["ip6", "inet", "netdev"]
    } else {
        &["ip", "inet", "netdev"]
    };
    let mut chains: BTreeMap<(String, String, String), Value> = BTreeMap::new();
    let mut rules: BTreeMap<(String, String, String), Vec<Value>> = BTreeMap::new();
    for it in &items {
        if let Some(c) = it.get("chain") {
            chains.insert(key(c, "name"), c.clone());
        }
        if let Some(r) = it.get("rule") {
            rules.entry(key(r, "chain")).or_default().push(r.clone());
        }
    }
    let texts = rule_texts(text);
    // Base chains on the query's path, in priority order.
    let mut base: Vec<&Value> = chains
        .values()
        .filter(|c| families.contains(&c["family"].as_str().unwrap_or("")))
        .filter(|c| matches!(c["hook"].as_str(), Some("input" | "prerouting" | "ingress")))
        .collect();
    base.sort_by_key(|c| c["prio"].as_i64().unwrap_or(0));
    for c in base {
        match walk(&key(c, "name"), &rules, &texts, probe, 0) {
            Walk::Accept => {}
            // Fell off the end of the base chain: its policy decides.
            Walk::Return => {
                if c["policy"].as_str() == Some("drop") {
                    return Verdict::Dropped(culprit(c, None, None));
                }
            }
            Walk::Drop(rule, handle) => return Verdict::Dropped(culprit(c, rule, handle)),
            Walk::Unknown(why) => return Verdict::Unknown(why),
        }
    }
    Verdict::Accepted
}

fn key(v: &Value, name: &str) -> (String, String, String) {
    (
        v["family"].as_str().unwrap_or("").into(),
        v["table"].as_str().unwrap_or("").into(),
        v[name].as_str().unwrap_or("").into(),
    )
}

fn culprit(c: &Value, rule: Option<String>, handle: Option<u64>) -> Culprit {
    Culprit {
        tool: "nft",
        family: c["family"].as_str().unwrap_or("").into(),
        table: c["table"].as_str().unwrap_or("").into(),
        chain: c["name"].as_str().unwrap_or("").into(),
        rule,
        handle,
    }
}

enum Walk {
    Accept,
    Return,
    Drop(Option<String>, Option<u64>),
    Unknown(String),
}

fn walk(
    chain: &(String, String, String),
    rules: &BTreeMap<(String, String, String), Vec<Value>>,
    texts: &BTreeMap<u64, String>,
    probe: &Probe,
    depth: u32,
) -> Walk {
    if depth > 16 {
        return Walk::Unknown("chain jumps nest too deep".into());
    }
    for r in rules.get(chain).into_iter().flatten() {
        let handle = r["handle"].as_u64();
        let text = handle.and_then(|h| texts.get(&h).cloned());
        let mut matches = Some(true);
        let mut verdict: Option<&str> = None;
        let mut target = None;
        for e in r["expr"].as_array().into_iter().flatten() {
            if let Some(m) = e.get("match") {
                match (matches, nft_match(m, probe)) {
                    (Some(false), _) => {}
                    (_, Some(false)) => matches = Some(false),
                    (_, None) => matches = None,
                    (m, Some(true)) => matches = m,
                }
            } else if e.get("accept").is_some() {
                verdict = Some("accept");
            } else if e.get("drop").is_some() || e.get("reject").is_some() {
                verdict = Some("drop");
            } else if e.get("return").is_some() {
                verdict = Some("return");
            } else if let Some(j) = e.get("jump").or_else(|| e.get("goto")) {
                verdict = Some("jump");
                target = j["target"].as_str().map(String::from);
            }
            // counter, log, limit-free statements do not change the path.
        }
        match (matches, verdict) {
            (Some(false), _) | (_, None) => continue,
            (None, Some(_)) => {
                return Walk::Unknown(format!(
                    "rule `{}` in chain {} {} {} decides and its match is not understood here",
                    text.unwrap_or_default(),
                    chain.0,
                    chain.1,
                    chain.2
                ))
            }
            (Some(true), Some("accept")) => return Walk::Accept,
            (Some(true), Some("drop")) => return Walk::Drop(text, handle),
            (Some(true), Some("return")) => return Walk::Return,
            (Some(true), Some(_)) => {
                let t = (chain.0.clone(), chain.1.clone(), target.unwrap_or_default());
                match walk(&t, rules, texts, probe, depth + 1) {
                    Walk::Return => continue,
                    other => return other,
                }
            }
        }
    }
    Walk::Return
}

/// handle -> rule text, from `nft -a list ruleset`.
fn rule_texts(text: &str) -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with("table ") || l.starts_with("chain ") || l.starts_with("type ") {
            continue;
        }
        if let Some((rule, h)) = l.rsplit_once(" # handle ") {
            if let Ok(h) = h.trim().parse::<u64>() {
                // Drop counters' changing numbers from the cited text.
                out.insert(h, rule.trim().to_string());
            }
        }
    }
    out
}

/// Analyses `iptables-save` output (filter table, INPUT chain).
pub fn analyze_iptables(save: &str, tool: &'static str, probe: &Probe) -> Verdict {
    // Dropped in the INPUT chain of the filter table, by `rule` or by its policy.
    let dropped = |rule| {
        Verdict::Dropped(Culprit {
            tool,
            family: String::new(),
            table: "filter".into(),
            chain: "INPUT".into(),
            rule,
            handle: None,
        })
    };
    let mut in_filter = false;
    let mut policy = None;
    let mut rules = Vec::new();
    for line in save.lines() {
        if line.starts_with('*') {
            in_filter = line == "*filter";
        } else if in_filter && line.starts_with(":INPUT ") {
            policy = line.split_whitespace().nth(1).map(String::from);
        } else if in_filter && line.starts_with("-A INPUT") {
            rules.push(line.to_string());
        }
    }
    for r in &rules {
        let words: Vec<&str> = r.split_whitespace().collect();
        let target = words
            .iter()
            .position(|w| *w == "-j")
            .and_then(|i| words.get(i + 1))
            .copied()
            .unwrap_or("");
        let mut m = Some(true);
        let mut i = 2;
        while i < words.len() {
            let (w, arg) = (words[i], words.get(i + 1).copied().unwrap_or(""));
            let hit = match w {
                "-j" => break,
                "-i" => Some(arg == probe.iface),
                "-p" => Some(if probe.v6 {
                    matches!(arg, "ipv6-icmp" | "icmpv6" | "58")
                } else {
                    matches!(arg, "igmp" | "2")
                }),
                "--icmpv6-type" => Some(matches!(arg, "130" | "mld-listener-query")),
                "-m" => {
                    i += 2;
                    continue;
                }
                "--dport" | "--sport" | "--dports" | "--sports" => Some(false),
                "--state" | "--ctstate" => Some(
                    arg.split(',')
                        .any(|s| s == if probe.v6 { "UNTRACKED" } else { "NEW" }),
                ),
                _ => None,
            };
            m = match (m, hit) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (_, None) => None,
                (x, Some(true)) => x,
            };
            i += 2;
        }
        match (m, target) {
            (Some(false), _) => {}
            (None, "ACCEPT" | "DROP" | "REJECT") => {
                return Verdict::Unknown(format!(
                    "{tool} rule `{r}` decides and is not understood here"
                ))
            }
            (Some(true), "ACCEPT") => return Verdict::Accepted,
            (Some(true), "DROP" | "REJECT") => return dropped(Some(r.clone())),
            _ => {}
        }
    }
    if policy.as_deref() == Some("DROP") {
        return dropped(None);
    }
    Verdict::Accepted
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(policy: &str) -> Value {
        json!({"chain": {"family": "inet", "table": "hostfw", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": policy}})
    }

    fn rule(handle: u64, expr: Value) -> Value {
        json!({"rule": {"family": "inet", "table": "hostfw", "chain": "input", "handle": handle, "expr": expr}})
    }

    fn probe(v6: bool) -> Probe {
        Probe {
            v6,
            iface: "eth0".into(),
        }
    }

    const TEXT: &str = "table inet hostfw { # handle 1\n\tchain input { # handle 1\n\t\ttype filter hook input priority filter; policy drop;\n\t\tiif \"lo\" accept # handle 2\n\t\tudp dport 5001 accept # handle 3\n\t}\n}\n";

    fn story(extra: Vec<Value>) -> Value {
        let mut items = vec![
            chain("drop"),
            rule(
                2,
                json!([{"match": {"op": "==", "left": {"meta": {"key": "iif"}}, "right": "lo"}}, {"accept": null}]),
            ),
            rule(
                3,
                json!([{"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 5001}}, {"accept": null}]),
            ),
        ];
        items.extend(extra);
        json!({"nftables": items})
    }

    #[test]
    fn policy_drop_with_only_an_application_port_drops_queries() {
        let v = analyze_nft(&story(vec![]), TEXT, &probe(false));
        let Verdict::Dropped(c) = v else {
            panic!("{v:?}")
        };
        assert_eq!(
            c.describe(),
            "nftables chain inet hostfw input (policy drop, no rule accepts it)"
        );
        assert_eq!(
            c.fix(false),
            "nft add rule inet hostfw input ip protocol igmp accept"
        );
        assert_eq!(
            c.fix(true),
            "nft add rule inet hostfw input icmpv6 type mld-listener-query accept"
        );
        assert!(matches!(
            analyze_nft(&story(vec![]), TEXT, &probe(true)),
            Verdict::Dropped(_)
        ));
    }

    #[test]
    fn an_igmp_accept_rule_lets_igmp_but_not_mld_in() {
        let igmp = rule(
            4,
            json!([{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "protocol"}}, "right": "igmp"}}, {"accept": null}]),
        );
        assert_eq!(
            analyze_nft(&story(vec![igmp.clone()]), TEXT, &probe(false)),
            Verdict::Accepted
        );
        assert!(matches!(
            analyze_nft(&story(vec![igmp]), TEXT, &probe(true)),
            Verdict::Dropped(_)
        ));
        let mld = rule(
            5,
            json!([{"match": {"op": "==", "left": {"payload": {"protocol": "icmpv6", "field": "type"}}, "right": "mld-listener-query"}}, {"accept": null}]),
        );
        assert_eq!(
            analyze_nft(&story(vec![mld]), TEXT, &probe(true)),
            Verdict::Accepted
        );
    }

    #[test]
    fn an_explicit_drop_rule_is_cited() {
        let text = format!("{TEXT}\t\tip protocol igmp drop # handle 9\n");
        let drop = rule(
            9,
            json!([{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "igmp"}}, {"drop": null}]),
        );
        let mut j = story(vec![drop]);
        j["nftables"][0]["chain"]["policy"] = json!("accept");
        let Verdict::Dropped(c) = analyze_nft(&j, &text, &probe(false)) else {
            panic!()
        };
        assert_eq!(c.rule.as_deref(), Some("ip protocol igmp drop"));
        assert!(c.fix(false).starts_with("nft insert rule"));
    }

    #[test]
    fn accept_policy_without_rules_accepts_and_unknown_matches_say_so() {
        assert_eq!(
            analyze_nft(&json!({"nftables": [chain("accept")]}), "", &probe(false)),
            Verdict::Accepted
        );
        let odd = rule(
            4,
            json!([{"match": {"op": "==", "left": {"fib": {"flags": ["daddr"], "result": "type"}}, "right": "local"}}, {"accept": null}]),
        );
        assert!(matches!(
            analyze_nft(&story(vec![odd]), TEXT, &probe(false)),
            Verdict::Unknown(_)
        ));
    }

    #[test]
    fn iptables_input_drop_policy() {
        let save = "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p udp -m udp --dport 5001 -j ACCEPT\nCOMMIT\n";
        let Verdict::Dropped(c) = analyze_iptables(save, "iptables", &probe(false)) else {
            panic!()
        };
        assert_eq!(c.fix(false), "iptables -I INPUT -p igmp -j ACCEPT");
        let ok = save.replace("COMMIT", "-A INPUT -p igmp -j ACCEPT\nCOMMIT");
        assert_eq!(
            analyze_iptables(&ok, "iptables", &probe(false)),
            Verdict::Accepted
        );
    }
}
