//! The text exposition format 0.0.4: every metric's `# HELP` and `# TYPE` lines, then all
//! its samples (a metric's samples must not be split), label values escaped (`\\`, `\"`,
//! `\n`). A metric without samples is left out entirely.

use std::fmt::Write as _;
use std::io::{self, Write};

use super::MetricsDoc;

#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// One metric being written: its header goes out before its first sample.
struct Metric<'a> {
    w: &'a mut dyn Write,
    name: &'static str,
    kind: Kind,
    help: &'static str,
    started: bool,
    /// One sample line, reused.
    line: String,
}

impl<'a> Metric<'a> {
    fn new(w: &'a mut dyn Write, name: &'static str, kind: Kind, help: &'static str) -> Self {
        Metric {
            w,
            name,
            kind,
            help,
            started: false,
            line: String::with_capacity(160),
        }
    }

    /// One sample: `name{labels} value`.
    fn sample(&mut self, labels: &[(&str, &str)], value: u64) -> io::Result<()> {
        if !self.started {
            self.started = true;
            let kind = match self.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            // HELP text escapes backslashes and newlines; ours have neither, but keep
            // the rule where the line is made.
            let mut help = String::new();
            escape(&mut help, self.help, false);
            writeln!(self.w, "# HELP {} {help}", self.name)?;
            writeln!(self.w, "# TYPE {} {kind}", self.name)?;
        }
        self.line.clear();
        self.line.push_str(self.name);
        if !labels.is_empty() {
            self.line.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.line.push(',');
                }
                self.line.push_str(k);
                self.line.push_str("=\"");
                escape(&mut self.line, v, true);
                self.line.push('"');
            }
            self.line.push('}');
        }
        let _ = writeln!(self.line, " {value}");
        self.w.write_all(self.line.as_bytes())
    }
}

/// Appends `s` escaped: backslash and newline always, the double quote in label values.
pub(super) fn escape(out: &mut String, s: &str, label: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if label => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

fn vid(v: u16) -> String {
    v.to_string()
}

/// Writes every metric of `doc`.
pub(super) fn write(doc: &MetricsDoc, w: &mut dyn Write) -> io::Result<()> {
    use Kind::{Counter, Gauge};
    let mut m = Metric::new(
        w,
        "igmpd_build_info",
        Gauge,
        "The igmpd version, as a label.",
    );
    m.sample(&[("version", env!("CARGO_PKG_VERSION"))], 1)?;
    drop(m);

    // Querier interfaces.
    let mut m = Metric::new(
        w,
        "igmpd_interface_up",
        Gauge,
        "1 when the querier interface exists and its link is up.",
    );
    for i in &doc.interfaces {
        m.sample(&[("iface", &i.name)], u64::from(i.up))?;
    }
    drop(m);
    let mut m = Metric::new(
        w,
        "igmpd_querier_info",
        Gauge,
        "Always 1: the interface's querier role, version in use and elected querier (empty when none is known) as labels.",
    );
    for i in &doc.interfaces {
        for f in &i.families {
            let q = f.querier_address.map(|a| a.to_string()).unwrap_or_default();
            let v = f.version.to_string();
            m.sample(
                &[
                    ("iface", &i.name),
                    ("family", f.family),
                    ("role", f.role),
                    ("version", &v),
                    ("querier", &q),
                ],
                1,
            )?;
        }
    }
    drop(m);
    let per_family = |w: &mut dyn Write,
                      name: &'static str,
                      kind: Kind,
                      help: &'static str,
                      value: &dyn Fn(&super::QuerierMetrics) -> u64|
     -> io::Result<()> {
        let mut m = Metric::new(w, name, kind, help);
        for i in &doc.interfaces {
            for f in &i.families {
                m.sample(&[("iface", &i.name), ("family", f.family)], value(f))?;
            }
        }
        Ok(())
    };
    per_family(
        w,
        "igmpd_querier_queries_sent_total",
        Counter,
        "General and group-specific queries sent on the interface.",
        &|f| f.queries_sent,
    )?;
    per_family(
        w,
        "igmpd_querier_reports_received_total",
        Counter,
        "Membership reports received (one per IGMPv3/MLDv2 record), leaves not included.",
        &|f| f.received.reports,
    )?;
    per_family(
        w,
        "igmpd_querier_leaves_received_total",
        Counter,
        "Leaves received (IGMPv2 leave, MLDv1 done, records changing to INCLUDE with no sources).",
        &|f| f.received.leaves,
    )?;
    per_family(
        w,
        "igmpd_querier_queries_received_total",
        Counter,
        "Queries received from other queriers.",
        &|f| f.received.queries,
    )?;
    per_family(
        w,
        "igmpd_querier_groups",
        Gauge,
        "Groups with members on the interface.",
        &|f| f.groups,
    )?;
    let mut m = Metric::new(
        w,
        "igmpd_querier_drops_total",
        Counter,
        "Frames the querier dropped, by reason.",
    );
    for i in &doc.interfaces {
        for f in &i.families {
            for (reason, n) in &f.drops {
                m.sample(
                    &[("iface", &i.name), ("family", f.family), ("reason", reason)],
                    *n,
                )?;
            }
        }
    }
    drop(m);

    bridges(doc, w)?;
    ports(doc, w)?;

    let mut m = Metric::new(
        w,
        "igmpd_findings",
        Gauge,
        "Current findings (see igmpd status) by interface or bridge, code and severity.",
    );
    for f in &doc.findings {
        m.sample(
            &[
                ("iface", &f.iface),
                ("code", f.code),
                ("severity", f.severity),
            ],
            f.count,
        )?;
    }
    Ok(())
}

/// The bridges' own metrics: state, MDB, counters, queriers, router ports.
fn bridges(doc: &MetricsDoc, w: &mut dyn Write) -> io::Result<()> {
    use Kind::{Counter, Gauge};
    type Of = dyn Fn(&super::BridgeMetrics) -> u64;
    let per_bridge: [(&'static str, Kind, &'static str, &Of); 16] = [
        (
            "igmpd_bridge_up",
            Gauge,
            "1 when the bridge exists and its link is up.",
            &|b| u64::from(b.up),
        ),
        (
            "igmpd_bridge_active",
            Gauge,
            "1 while snooping runs (the bridge exists, is up and has snooping on).",
            &|b| u64::from(b.active),
        ),
        (
            "igmpd_bridge_mdb_entries",
            Gauge,
            "MDB entries (port, group, VLAN) igmpd programmed.",
            &|b| b.mdb_entries,
        ),
        (
            "igmpd_bridge_mdb_keys",
            Gauge,
            "MDB keys (group, VLAN) in use.",
            &|b| b.mdb_keys,
        ),
        (
            "igmpd_bridge_mdb_entry_limit",
            Gauge,
            "Most MDB keys igmpd uses (below mcast_hash_max).",
            &|b| b.mdb_entry_limit,
        ),
        (
            "igmpd_bridge_mdb_writes_total",
            Counter,
            "MDB write operations (sets and deletes) handed to the kernel.",
            &|b| b.mdb_writes,
        ),
        (
            "igmpd_bridge_mdb_write_errors_total",
            Counter,
            "MDB writes the kernel refused.",
            &|b| b.counters.mdb_errors,
        ),
        (
            "igmpd_bridge_groups_refused_total",
            Counter,
            "New groups refused at the MDB entry limit.",
            &|b| b.counters.groups_refused,
        ),
        (
            "igmpd_bridge_groups_refused",
            Gauge,
            "Groups refused at the MDB entry limit now.",
            &|b| b.counters.groups_refused_now,
        ),
        (
            "igmpd_bridge_reports_forwarded_total",
            Counter,
            "Reports forwarded to router ports (one per target port).",
            &|b| b.counters.forwarded,
        ),
        (
            "igmpd_bridge_source_lists_degraded_total",
            Counter,
            "Entries written as (*,G) because the source list did not fit.",
            &|b| b.counters.source_lists_degraded,
        ),
        (
            "igmpd_bridge_adopted_entries_total",
            Counter,
            "MDB entries adopted at start.",
            &|b| b.counters.adopted,
        ),
        (
            "igmpd_bridge_vlan_tags_ignored_total",
            Counter,
            "Tagged reports and queries on a bridge without VLAN filtering (learned as untagged).",
            &|b| b.counters.vlan_tags_ignored,
        ),
        (
            "igmpd_bridge_writer_send_failures_total",
            Counter,
            "Batches of MDB writes whose send failed (sent again).",
            &|b| b.counters.writer_send_failures,
        ),
        (
            "igmpd_bridge_netlink_reconnects_total",
            Counter,
            "Times the rtnetlink event stream ended and igmpd connected again.",
            &|b| b.counters.netlink_reconnects,
        ),
        (
            "igmpd_bridge_activation_failures_total",
            Counter,
            "Activations (the bridge coming up) that failed and were retried.",
            &|b| b.counters.activation_failures,
        ),
    ];
    for (name, kind, help, value) in per_bridge {
        let mut m = Metric::new(w, name, kind, help);
        for b in &doc.bridges {
            m.sample(&[("bridge", &b.name)], value(b))?;
        }
    }
    let mut m = Metric::new(
        w,
        "igmpd_bridge_drops_total",
        Counter,
        "Frames the bridge's snooping dropped before any port policy, by reason.",
    );
    for b in &doc.bridges {
        let c = &b.counters;
        for (reason, n) in [
            ("capture", c.capture_drops),
            ("decode", c.decode_drops),
            ("mld_bad_source", c.mld_bad_source),
            ("vlan", c.vlan_drops),
        ] {
            m.sample(&[("bridge", &b.name), ("reason", reason)], n)?;
        }
    }
    drop(m);
    let mut m = Metric::new(
        w,
        "igmpd_bridge_querier_info",
        Gauge,
        "Always 1: igmpd's role in each VLAN (0: untagged) and family of the bridge, and the elected querier (empty when none is known), as labels.",
    );
    for b in &doc.bridges {
        for q in &b.queriers {
            let addr = q.querier_address.map(|a| a.to_string()).unwrap_or_default();
            m.sample(
                &[
                    ("bridge", &b.name),
                    ("vlan", &vid(q.vid)),
                    ("family", q.family),
                    ("role", q.role),
                    ("querier", &addr),
                ],
                1,
            )?;
        }
    }
    drop(m);
    let mut m = Metric::new(
        w,
        "igmpd_bridge_queries_sent_total",
        Counter,
        "Queries igmpd sent on the bridge (with querier = true), per VLAN and family.",
    );
    for b in &doc.bridges {
        for q in &b.queriers {
            m.sample(
                &[
                    ("bridge", &b.name),
                    ("vlan", &vid(q.vid)),
                    ("family", q.family),
                ],
                q.queries_sent,
            )?;
        }
    }
    drop(m);
    let mut m = Metric::new(
        w,
        "igmpd_bridge_router_ports",
        Gauge,
        "Multicast router ports (configured and learned; one per port, VLAN and family).",
    );
    for b in &doc.bridges {
        m.sample(&[("bridge", &b.name)], b.router_ports.len() as u64)?;
    }
    drop(m);
    let mut m = Metric::new(
        w,
        "igmpd_port_router",
        Gauge,
        "Always 1: the port is a multicast router port in the VLAN (0: untagged or configured) and family.",
    );
    for b in &doc.bridges {
        for (port, v, family) in &b.router_ports {
            m.sample(
                &[
                    ("bridge", &b.name),
                    ("port", port),
                    ("vlan", &vid(*v)),
                    ("family", family),
                ],
                1,
            )?;
        }
    }
    Ok(())
}

/// The ports' metrics: state, memberships and traffic per VLAN and family, policy.
fn ports(doc: &MetricsDoc, w: &mut dyn Write) -> io::Result<()> {
    use Kind::{Counter, Gauge};
    let mut m = Metric::new(
        w,
        "igmpd_port_up",
        Gauge,
        "1 when the bridge port's link is up.",
    );
    for b in &doc.bridges {
        for p in &b.ports {
            m.sample(&[("bridge", &b.name), ("port", &p.name)], u64::from(p.up))?;
        }
    }
    drop(m);
    type Of = dyn Fn(&super::PortVlanMetrics) -> u64;
    let per_vlan: [(&'static str, Kind, &'static str, &Of); 4] = [
        ("igmpd_port_memberships", Gauge, "Group memberships the port holds, per VLAN (0: untagged) and family.", &|v| v.memberships),
        ("igmpd_port_reports_received_total", Counter, "Membership reports received on the port (one per IGMPv3/MLDv2 record), leaves not included.", &|v| v.received.reports),
        ("igmpd_port_leaves_received_total", Counter, "Leaves received on the port (IGMPv2 leave, MLDv1 done, records changing to INCLUDE with no sources).", &|v| v.received.leaves),
        ("igmpd_port_queries_received_total", Counter, "Queries received on the port.", &|v| v.received.queries),
    ];
    for (name, kind, help, value) in per_vlan {
        let mut m = Metric::new(w, name, kind, help);
        for b in &doc.bridges {
            for p in &b.ports {
                for v in &p.vlans {
                    m.sample(
                        &[
                            ("bridge", &b.name),
                            ("port", &p.name),
                            ("vlan", &vid(v.vid)),
                            ("family", v.family),
                        ],
                        value(v),
                    )?;
                }
            }
        }
    }
    type PortOf = dyn Fn(&crate::status::PortCountersStatus) -> u64;
    let per_port: [(&'static str, &'static str, &PortOf); 4] = [
        (
            "igmpd_port_replaced_total",
            "Memberships dropped for newer ones at max_groups (limit_action = \"replace\").",
            &|c| c.replaced,
        ),
        (
            "igmpd_port_denials_total",
            "Joins (records, or sources of source-specific ones) denied by the port's ACL.",
            &|c| c.denied,
        ),
        (
            "igmpd_port_acl_default_total",
            "Joins no ACL rule matched (acl_default decided).",
            &|c| c.acl_default_hits,
        ),
        (
            "igmpd_port_guard_drops_total",
            "Queries, PIM hellos and MRD messages dropped by router_guard.",
            &|c| c.guard_drops,
        ),
    ];
    for (name, help, value) in per_port {
        let mut m = Metric::new(w, name, Counter, help);
        for b in &doc.bridges {
            for p in &b.ports {
                m.sample(
                    &[("bridge", &b.name), ("port", &p.name)],
                    value(&p.counters),
                )?;
            }
        }
    }
    let mut m = Metric::new(
        w,
        "igmpd_port_refusals_total",
        Counter,
        "Memberships (reason max_groups) and sources (max_sources) refused at the port's limits.",
    );
    for b in &doc.bridges {
        for p in &b.ports {
            for (reason, n) in [
                ("max_groups", p.counters.refused),
                ("max_sources", p.counters.refused_sources),
            ] {
                m.sample(
                    &[("bridge", &b.name), ("port", &p.name), ("reason", reason)],
                    n,
                )?;
            }
        }
    }
    drop(m);
    let mut m = Metric::new(
        w,
        "igmpd_port_drops_total",
        Counter,
        "Frames the port's policy dropped, by reason: rate (max_report_rate), router_alert (require_router_alert), bad_query (TTL or destination), backlog (the port's share of the capture backlog was full).",
    );
    for b in &doc.bridges {
        for p in &b.ports {
            let c = &p.counters;
            for (reason, n) in [
                ("rate", c.rate_drops),
                ("router_alert", c.router_alert_drops),
                ("bad_query", c.bad_queries),
                ("backlog", c.backlog_drops),
            ] {
                m.sample(
                    &[("bridge", &b.name), ("port", &p.name), ("reason", reason)],
                    n,
                )?;
            }
        }
    }
    Ok(())
}
