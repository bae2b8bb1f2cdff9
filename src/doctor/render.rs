//! The doctor's report: the JSON document (`--json`) and the text made of it.

use std::collections::BTreeSet;
use std::fmt::{Display, Write as _};
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

use igmpd_querier::core::{Finding, Instant, Proto};
use igmpd_runtime::status::FindingDoc;
use serde_json::{json, Value};

use super::capture::{Family, Heard};
use super::findings::Answered;
use super::memberships::Local;
use super::probe::{LiveHost, Probe};
use super::Iface;

/// A JSON number of milliseconds as a duration (`2m5s`), `-` when it is none.
fn ms(v: &Value) -> String {
    v.as_u64().map_or_else(
        || "-".into(),
        |ms| crate::duration::format(Duration::from_millis(ms)),
    )
}

/// The items of a JSON array (none when `v` is not one).
fn list(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// Everything the report says.
pub struct Report<'a> {
    pub iface: &'a Iface,
    /// How long the doctor listened.
    pub listened: Duration,
    pub heard: &'a Heard,
    pub groups: &'a Local,
    pub answered: Answered,
    pub findings: &'a [Finding],
    /// With --probe: what it sent and the live hosts it found.
    pub probe: Option<(&'a Probe, &'a [LiveHost])>,
}

impl Report<'_> {
    /// The JSON document.
    pub fn json(&self) -> Value {
        let (heard, groups) = (self.heard, self.groups);
        let queriers: Vec<Value> = queriers(&heard.v4, Proto::Igmp, "0.0.0.0")
            .chain(queriers(&heard.v6, Proto::Mld, "::"))
            .collect();
        let memberships: Vec<Value> = groups
            .v4
            .iter()
            .map(|g| membership(IpAddr::V4(*g), &heard.v4.sent, self.answered.v4))
            .chain(
                groups
                    .v6
                    .iter()
                    .map(|g| membership(IpAddr::V6(*g), &heard.v6.sent, self.answered.v6)),
            )
            .collect();
        let iface = self.iface;
        let mut doc = json!({
            "iface": iface.name,
            "listened_ms": self.listened.as_millis() as u64,
            "addresses": iface.v4.iter().map(|a| a.0.to_string()).chain(iface.v6_ll.map(|a| a.to_string())).collect::<Vec<_>>(),
            "queriers": queriers,
            "memberships": memberships,
            "findings": self.findings.iter().map(FindingDoc::from).collect::<Vec<_>>(),
        });
        if let Some((probe, live)) = self.probe {
            let live: Vec<Value> = live
                .iter()
                .map(|h| json!({"address": h.address, "mac": h.mac, "answered_igmp": h.answered_igmp, "answered_mld": h.answered_mld, "querier": h.querier}))
                .collect();
            doc["probe"] = json!({
                "sent": probe.sent,
                "leaves_behind": "this port counts as a multicast router port on snooping switches until their router-port timeout (on Linux bridges the querier interval, 255 s by default); the kernel's neighbour cache holds the addresses it resolved; nothing else",
                "live_hosts": live,
            });
        }
        doc
    }
}

/// The queriers heard of one family; `unspecified` names the one without an address.
fn queriers<'a, A: Ord + Copy + Hash + Display>(
    family: &'a Family<A>,
    proto: Proto,
    unspecified: &'a str,
) -> impl Iterator<Item = Value> + 'a {
    family.obs.queriers().map(move |q| {
        json!({
            "family": proto.name(),
            "address": q.address.map_or_else(|| unspecified.to_string(), |a| a.to_string()),
            "version": q.gen.version(proto),
            "interval_ms": q.qqi.map(|d| d.as_millis() as u64),
            "robustness": q.qrv,
            "max_resp_ms": q.max_resp.as_millis() as u64,
            "general_queries": q.general_queries,
        })
    })
}

/// One of this host's groups: whether it answered, and whether it reported the group.
fn membership(g: IpAddr, sent: &[(Instant, BTreeSet<IpAddr>)], answered: Option<bool>) -> Value {
    let reported = sent.iter().any(|(_, gs)| gs.contains(&g));
    json!({
        "group": g.to_string(),
        "family": if g.is_ipv4() { "igmp" } else { "mld" },
        "answered": answered.map(|a| a && reported),
        "reported_during_listen": reported,
    })
}

/// The report as text.
pub fn text(doc: &Value) -> String {
    let mut out = String::new();
    let addresses: Vec<&str> = list(&doc["addresses"]).filter_map(Value::as_str).collect();
    let _ = writeln!(
        out,
        "igmpd doctor {} ({}) listened {}",
        s(&doc["iface"]),
        addresses.join(", "),
        ms(&doc["listened_ms"])
    );
    section(&mut out, "queriers seen", &doc["queriers"], "none", |q| {
        format!(
            "{:<4} {:<26} v{}  interval {}  robustness {}  max resp {}  ({} general queries)",
            s(&q["family"]).to_uppercase(),
            s(&q["address"]),
            q["version"],
            ms(&q["interval_ms"]),
            q["robustness"],
            ms(&q["max_resp_ms"]),
            q["general_queries"]
        )
    });
    section(
        &mut out,
        "this host's groups",
        &doc["memberships"],
        "none",
        |m| {
            let state = match m["answered"].as_bool() {
                Some(true) => "answered the querier",
                Some(false) => "NOT answered",
                None => "no query seen",
            };
            format!("{:<30} {}", s(&m["group"]), state)
        },
    );
    if let Some(p) = doc.get("probe") {
        let _ = writeln!(out, "\nprobe sent:");
        for sent in list(&p["sent"]) {
            let _ = writeln!(out, "  - {}", s(sent));
        }
        let _ = writeln!(out, "probe leaves behind: {}", s(&p["leaves_behind"]));
        let _ = writeln!(out, "live hosts:");
        for h in list(&p["live_hosts"]) {
            let ans = match (
                h["answered_igmp"].as_bool(),
                h["answered_mld"].as_bool(),
                h["querier"].as_bool(),
            ) {
                (Some(true), Some(true), _) => "answered IGMP and MLD",
                (Some(true), _, _) => "answered IGMP",
                (_, Some(true), _) => "answered MLD",
                (_, _, Some(true)) => "a querier (it does not hear its own queries)",
                _ => "answered nothing",
            };
            let _ = writeln!(out, "  {:<26} {}  {}", s(&h["address"]), s(&h["mac"]), ans);
        }
    }
    let healthy = "none: queriers and this host look healthy";
    section(&mut out, "findings", &doc["findings"], healthy, |f| {
        format!(
            "{} {}: {}\n    fix: {}",
            s(&f["severity"]).to_uppercase(),
            s(&f["code"]),
            s(&f["message"]),
            s(&f["hint"])
        )
    });
    out
}

/// A blank line, `title:`, then a line per item of `items` (indented), or `none`.
fn section(
    out: &mut String,
    title: &str,
    items: &Value,
    none: &str,
    line: impl Fn(&Value) -> String,
) {
    let _ = writeln!(out, "\n{title}:");
    let mut empty = true;
    for item in list(items) {
        empty = false;
        let _ = writeln!(out, "  {}", line(item));
    }
    if empty {
        let _ = writeln!(out, "  {none}");
    }
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::super::capture::tests::lan;
    use super::super::findings;
    use super::*;

    fn iface() -> Iface {
        Iface {
            name: "doctor-test0".into(),
            ifindex: 2,
            mac: super::super::capture::tests::ME,
            up: true,
            v4: vec![("10.0.0.3".parse().unwrap(), 24)],
            v6_ll: Some("fe80::3".parse().unwrap()),
        }
    }

    #[test]
    fn reports_queriers_groups_probe_and_findings() {
        let (iface, heard) = (iface(), lan());
        let groups = Local {
            v4: vec!["239.1.1.2".parse().unwrap()],
            v6: vec![],
        };
        let end = Instant::from_millis(3000);
        let answered = Answered::by(&heard, end);
        let mut found = findings::of(&heard, &groups, answered, &iface.name, end);
        let probe = Probe {
            sent: vec!["an IGMPv3 general query".into()],
            query_at: Instant::ZERO,
        };
        let live = [
            LiveHost {
                address: "10.0.0.2".into(),
                mac: "02:00:00:00:00:02".into(),
                answered_igmp: true,
                answered_mld: true,
                querier: false,
            },
            LiveHost {
                address: "10.0.0.9".into(),
                mac: "02:00:00:00:00:09".into(),
                answered_igmp: false,
                answered_mld: false,
                querier: false,
            },
        ];
        found.push(Finding::snooping_without_querier(
            &iface.name,
            Proto::Igmp,
            None,
        ));
        findings::sort(&mut found);
        let report = Report {
            iface: &iface,
            listened: Duration::from_secs(3),
            heard: &heard,
            groups: &groups,
            answered,
            findings: &found,
            probe: Some((&probe, &live)),
        };
        let doc = report.json();
        assert_eq!(
            doc["memberships"],
            json!([{"group": "239.1.1.2", "family": "igmp", "answered": true, "reported_during_listen": true}])
        );
        assert_eq!(doc["queriers"][0]["address"], "10.0.0.1");
        assert_eq!(doc["queriers"][1]["family"], "mld");
        assert_eq!(doc["probe"]["live_hosts"][0]["mac"], "02:00:00:00:00:02");
        let text = text(&doc);
        let want = "\
igmpd doctor doctor-test0 (10.0.0.3, fe80::3) listened 3s

queriers seen:
  IGMP 10.0.0.1                   v3  interval 2m5s  robustness 2  max resp 1s  (1 general queries)
  MLD  fe80::1                    v2  interval 2m5s  robustness 2  max resp 1s  (1 general queries)

this host's groups:
  239.1.1.2                      answered the querier

probe sent:
  - an IGMPv3 general query
probe leaves behind: ";
        assert!(text.starts_with(want), "{text}");
        for line in [
            "live hosts:\n  10.0.0.2                   02:00:00:00:00:02  answered IGMP and MLD\n  10.0.0.9                   02:00:00:00:00:09  answered nothing\n",
            "\nfindings:\n  ERROR snooping-without-querier: doctor-test0 snoops IGMP but no IGMP querier with an address was heard: ",
            "    fix: run `igmpd snoop doctor-test0 --querier`",
        ] {
            assert!(text.contains(line), "{line}\n{text}");
        }
    }

    #[test]
    fn says_none_where_nothing_was_heard() {
        let doc = json!({"iface": "eth0", "addresses": [], "listened_ms": 1000, "queriers": [], "memberships": [], "findings": []});
        assert_eq!(
            text(&doc),
            "igmpd doctor eth0 () listened 1s\n\nqueriers seen:\n  none\n\nthis host's groups:\n  none\n\nfindings:\n  none: queriers and this host look healthy\n"
        );
    }
}
