use super::*;
use clap::Parser;
use igmpd_querier::core::{Config, Generation};
use std::time::Duration;

use crate::cli::{Cli, Command};

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
    assert!(br.snooping.querier);
    assert_eq!(br.snooping.router_ports, ["p1", "p2"]);
    assert_eq!(br.snooping.raise_hash_max, Some(8192));
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
fn a_vlans_querier_address_is_one_of_each_family_and_link_local_for_ipv6() {
    let c = ok("[bridge.br0]\n[bridge.br0.vlan.10]\nquerier_address = \"10.0.10.1\"\n[bridge.br0.vlan.20]\nquerier_address = [\"10.0.20.1\", \"fe80::20\"]\n");
    let a = &c.bridges[0].vlan_addresses;
    assert_eq!(a[&10], (Some("10.0.10.1".parse().unwrap()), None));
    assert_eq!(
        a[&20],
        (
            Some("10.0.20.1".parse().unwrap()),
            Some("fe80::20".parse().unwrap())
        )
    );
    assert!(
        errs("[bridge.br0.vlan.10]\nquerier_address = \"2001:db8::1\"\n")[0].contains("link-local")
    );
    assert!(
        errs("[bridge.br0.vlan.10]\nquerier_address = [\"10.0.0.1\", \"10.0.0.2\"]\n")[0]
            .contains("one IPv4")
    );
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
    let c = ok("[defaults]\nno_mld = true\n[interface.eth0]\nno_mld = false\n[interface.eth1]\n");
    assert!(c.interfaces[0].mld.is_some() && c.interfaces[1].mld.is_none());
    // `passive` is the queriers' own: a bridge's instances are passive unless it queries.
    let c = ok("[defaults]\npassive = true\n[interface.eth0]\n[bridge.br0]\nquerier = true\n[bridge.br0.vlan.10]\npassive = true\n");
    assert!(c.interfaces[0].igmp.as_ref().unwrap().passive);
    assert!(!c.bridges[0].igmp.as_ref().unwrap().passive);
    assert!(!c.bridges[0].vlans[&10].0.as_ref().unwrap().passive);
}

/// The per-family configs `igmpd query IFACE FLAGS...` runs with.
fn query_flags(flags: &[&str]) -> (Option<Config>, Option<Config>) {
    let argv = ["igmpd", "query", "eth0"].iter().chain(flags);
    let Command::Query(a) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    settings::families(&a.protocol, &a.startup, a.passive.passive).unwrap()
}

/// `igmpd snoop BRIDGE FLAGS...` as the [`Bridge`] it runs.
fn snoop_flags(flags: &[&str]) -> Bridge {
    let argv = ["igmpd", "snoop", "br0"].iter().chain(flags);
    let Command::Snoop(a) = Cli::try_parse_from(argv).unwrap().command else {
        unreachable!()
    };
    crate::cmd::snoop::bridge(a).unwrap()
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
    (
        "flood_groups",
        "[\"ff02::fb\", \"ff02::1:ff00:0/104\"]",
        &[
            "--flood-group",
            "ff02::fb",
            "--flood-group",
            "ff02::1:ff00:0/104",
        ],
    ),
    ("max_groups", "256", &["--max-groups", "256"]),
    ("max_sources", "16", &["--max-sources", "16"]),
    (
        "limit_action",
        "\"replace\"",
        &["--limit-action", "replace"],
    ),
    ("max_report_rate", "50", &["--max-report-rate", "50"]),
    ("require_router_alert", "true", &["--require-router-alert"]),
    ("acl_default", "\"deny\"", &["--acl-default", "deny"]),
];

/// `[bridge.NAME]` keys that are tables or lists of their own, or (`router_guard = true`,
/// `fast_leave = true`: every port) no flag's meaning (`--router-guard PORT` and
/// `--fast-leave PORT` name one port).
const BRIDGE_ONLY: &[&str] = &[
    "vlan",
    "port",
    "acl",
    "router_guard",
    "fast_leave",
    "flood_unregistered",
    "flood_reports",
];

/// A key in `[interface.NAME]` means what its flag means to `igmpd query`, and in
/// `[bridge.NAME]` what it means to `igmpd snoop`.
#[test]
fn each_key_means_what_its_flag_means() {
    let snoop_only = [
        "querier",
        "router_ports",
        "raise_hash_max",
        "flood_groups",
        "max_groups",
        "max_sources",
        "limit_action",
        "max_report_rate",
        "require_router_alert",
        "acl_default",
    ];
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
    for k in Options::keys().iter().chain(BridgeSection::keys()) {
        assert!(
            BRIDGE_ONLY.contains(k) || SAME.iter().any(|s| s.0 == *k),
            "no row for {k}"
        );
    }
    // And nothing written is what no flag means.
    let c = ok("[interface.eth0]\n[bridge.br0]\n");
    let i = &c.interfaces[0];
    assert_eq!((i.igmp.clone(), i.mld.clone()), query_flags(&[]));
    assert_eq!(c.bridges[0], snoop_flags(&[]));
}

/// Options whose key is not their flag's long name with underscores.
const RENAMED: &[(&str, &str)] = &[
    ("router_ports", "router-port"),
    ("flood_groups", "flood-group"),
];
/// Flags of `query` and `snoop` that are no section key: the daemon's control socket and
/// metrics endpoint are top-level keys of the file (`control_socket`, `metrics_listen`).
const NOT_SECTION_KEYS: &[&str] = &["control_socket", "metrics_listen"];

/// The option flags of `igmpd SUB` as (config key, long name), in `--help` order.
fn option_flags(sub: &str) -> Vec<(String, String)> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let sub = cmd.find_subcommand(sub).unwrap();
    sub.get_arguments()
        .filter(|a| !a.is_positional())
        .filter(|a| !NOT_SECTION_KEYS.contains(&a.get_id().as_str()))
        .map(|a| (a.get_id().to_string(), a.get_long().unwrap().to_string()))
        .collect()
}

/// Flags and config keys cannot drift apart: the keys of `[defaults]`,
/// `[interface.NAME]` and `[bridge.NAME.vlan.VID]` are `igmpd query`'s option flags, the
/// keys of `[bridge.NAME]` are `igmpd snoop`'s plus the startup queries and `vlan`, each
/// named as its flag (underscores for dashes) but for [`RENAMED`].
#[test]
fn every_flag_is_a_key_and_every_key_a_flag() {
    let (query, snoop) = (option_flags("query"), option_flags("snoop"));
    for (key, long) in query.iter().chain(&snoop) {
        let renamed = RENAMED.iter().find(|(k, _)| k == key).map(|(_, l)| *l);
        assert_eq!(
            renamed.map_or_else(|| key.replace('_', "-"), str::to_owned),
            *long,
            "--{long} has the key {key}"
        );
    }
    let keys = |flags: &[(String, String)]| -> Vec<String> {
        flags.iter().map(|(k, _)| k.clone()).collect()
    };
    assert_eq!(
        keys(&query),
        InterfaceSection::keys(),
        "[interface.NAME] keys"
    );
    // `[defaults]` and a VLAN's section: the same but the host joins (an interface's).
    let shared: Vec<String> = keys(&query).into_iter().filter(|k| k != "join").collect();
    assert_eq!(shared, Options::keys(), "[defaults] keys");
    assert!(File::keys().contains(&"metrics_listen"));
    // A bridge takes snoop's flags, the startup queries (for --querier) and its VLANs.
    let startup = <StartupLayer as Layer>::KEYS;
    let bridge: Vec<String> = BridgeSection::keys()
        .iter()
        // `router_guard` is both: a key (every port) and `--router-guard PORT`.
        // `flood_unregistered` and `flood_reports` are keys only (no flag).
        .filter(|k| {
            !startup.contains(k)
                && !["vlan", "port", "acl", "flood_unregistered", "flood_reports"].contains(k)
        })
        .map(|k| k.to_string())
        .collect();
    assert_eq!(bridge, keys(&snoop), "[bridge.NAME] keys");
    assert!(startup.iter().all(|k| Options::keys().contains(k)));
}

/// The shipped example names every key (commented out where the built-in default is
/// the example).
#[test]
fn shipped_example_names_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/igmpd.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let written = |k: &str| {
        text.lines()
            .map(|l| l.trim_start_matches(['#', ' ']))
            .any(|l| l.starts_with(&format!("{k} =")) || l.contains(&format!(".{k}.")))
    };
    let top = ["control_socket", "control_group", "metrics_listen"];
    for k in top
        .iter()
        .chain(Options::keys())
        .chain(BridgeSection::keys())
    {
        assert!(written(k), "dist/igmpd.toml does not name {k}");
    }
}

#[test]
fn shipped_example_is_accepted() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/igmpd.toml");
    let c = load(&path).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!c.interfaces.is_empty() && !c.bridges.is_empty());
}

/// `router_guard` and `acl` in `[bridge.B]` apply to every port; a `[bridge.B.port.P]`
/// section overrides what it writes, and `--router-guard P` guards one port.
#[test]
fn port_sections_override_the_bridge_policy() {
    let c = ok(r#"
[bridge.br0]
max_groups = 100
acl = [{ action = "deny", group = "239.255.0.0/16" }]
[bridge.br0.port.p1]
router_guard = true
max_groups = 5
limit_action = "replace"
[bridge.br0.port.p2]
acl = [{ action = "permit", group = "232.0.0.0/8", source = "10.1.0.0/16" }]
acl_default = "deny"
"#);
    let b = &c.bridges[0];
    assert_eq!(b.policy.max_groups, Some(100));
    assert!(!b.policy.router_guard);
    assert_eq!(b.policy.acl.len(), 1);
    let p1 = &b.port_policies["p1"];
    assert!(p1.router_guard);
    assert_eq!(p1.max_groups, Some(5));
    assert_eq!(p1.limit_action.name(), "replace");
    assert_eq!(
        p1.acl, b.policy.acl,
        "the bridge's ACL where the port has none"
    );
    let p2 = &b.port_policies["p2"];
    assert_eq!(p2.max_groups, Some(100), "the bridge's limit");
    assert_eq!(
        p2.acl[0].source.map(|s| s.to_string()).as_deref(),
        Some("10.1.0.0/16")
    );
    assert_eq!(p2.acl_default.name(), "deny");

    let flags = snoop_flags(&["--router-guard", "p3", "--max-groups", "7"]);
    assert!(flags.port_policies["p3"].router_guard);
    assert_eq!(flags.port_policies["p3"].max_groups, Some(7));
    assert!(!flags.policy.router_guard);
    let all = ok("[bridge.br0]\nrouter_guard = true\n");
    assert!(all.bridges[0].policy.router_guard);
}

/// Every policy key is checked, each error at its line with its key.
#[test]
fn policy_keys_are_checked_at_their_line() {
    for (text, line, needle) in [
        (
            "[bridge.br0]\nacl = [\n  { action = \"deny\", group = \"10.0.0.0/8\" },\n]\n",
            3,
            "bridge.br0.acl: group 10.0.0.0/8 is not a multicast prefix",
        ),
        (
            "[bridge.br0]\nacl = [{ action = \"drop\", group = \"239.0.0.0/8\" }]\n",
            2,
            "action must be \"permit\" or \"deny\"",
        ),
        (
            "[bridge.br0]\n[bridge.br0.port.p1]\nacl = [{ action = \"deny\", group = \"239.1.1.1/8\" }]\n",
            3,
            "bridge.br0.port.p1.acl: group: 239.1.1.1/8: host bits are set",
        ),
        (
            "[bridge.br0]\nacl = [{ action = \"deny\", group = \"ff02::fb\", source = \"10.0.0.1\" }]\n",
            2,
            "different families",
        ),
        (
            "[bridge.br0]\nlimit_action = \"drop\"\n",
            1,
            "limit_action must be",
        ),
        (
            "[bridge.br0]\n[bridge.br0.port.p1]\nmax_sources = 0\n",
            2,
            "bridge.br0.port.p1: max_sources must be at least 1",
        ),
        (
            "[bridge.br0]\n[bridge.br0.port.p1]\nmax_group = 3\n",
            3,
            "unknown field `max_group`",
        ),
    ] {
        let e = parse("f.toml", text).unwrap_err();
        assert!(
            e.iter().any(|l| l.starts_with(&format!("f.toml:{line}:")) && l.contains(needle)),
            "{text}: {e:?}"
        );
    }
}

#[test]
fn metrics_listen_is_a_daemon_wide_socket_address() {
    assert_eq!(
        ok("[interface.eth0]\n").metrics_listen,
        None,
        "off by default"
    );
    let c = ok("metrics_listen = \"127.0.0.1:9654\"\n[interface.eth0]\n");
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9654".parse().unwrap()));
    let c = ok("metrics_listen = \"[::1]:9654\"\n[bridge.br0]\n");
    assert_eq!(c.metrics_listen, Some("[::1]:9654".parse().unwrap()));
}

#[test]
fn a_bad_metrics_listen_names_its_line_and_key() {
    for bad in ["\"localhost\"", "\"127.0.0.1\"", "\"::1:9654\"", "9654"] {
        let e = errs(&format!(
            "control_group = \"0\"\nmetrics_listen = {bad}\n[interface.eth0]\n"
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("t.toml:2: metrics_listen: "),
            "{bad}: {}",
            e[0]
        );
    }
    // Not a section's key.
    let e = errs("[interface.eth0]\nmetrics_listen = \"127.0.0.1:9654\"\n");
    assert!(
        e[0].starts_with("t.toml:2: interface.eth0.metrics_listen: "),
        "{e:?}"
    );
}

#[test]
fn the_metrics_flag_is_on_query_snoop_and_run() {
    for args in [
        &[
            "igmpd",
            "query",
            "eth0",
            "--metrics-listen",
            "127.0.0.1:9654",
        ][..],
        &["igmpd", "snoop", "br0", "--metrics-listen", "[::1]:9654"],
        &["igmpd", "run", "--metrics-listen", "127.0.0.1:1"],
    ] {
        let cli = Cli::try_parse_from(args).unwrap_or_else(|e| panic!("{e}"));
        let m = match cli.command {
            Command::Query(a) => a.metrics,
            Command::Snoop(a) => a.metrics,
            Command::Run(a) => a.metrics,
            _ => unreachable!(),
        };
        assert!(m.metrics_listen.is_some());
    }
    assert!(Cli::try_parse_from(["igmpd", "query", "eth0", "--metrics-listen", "x"]).is_err());
}

#[test]
fn interface_joins_are_read_and_checked_at_their_line() {
    let c = ok("[interface.eth0]\njoin = [\"239.1.1.1\", \"10.0.0.5/232.1.1.1\", \"2001:db8::5/ff3e::1234\"]\n");
    let j: Vec<String> = c.interfaces[0]
        .joins
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        j,
        ["239.1.1.1", "10.0.0.5/232.1.1.1", "2001:db8::5/ff3e::1234"]
    );
    let e = errs("[interface.eth0]\nrobustness = 2\njoin = [\"10.1.1.1\"]\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("t.toml:3: interface.eth0.join:"), "{e:?}");
    assert!(e[0].contains("10.1.1.1 is not a multicast group"), "{e:?}");
    let e = errs("[interface.eth0]\njoin = [\"10.0.0.5/ff3e::1\"]\n");
    assert!(e[0].contains("not of one family"), "{e:?}");
    let e = errs("[interface.eth0]\njoin = [\"239.0.0.9/232.1.1.1\"]\n");
    assert!(
        e[0].contains("source 239.0.0.9 is not a unicast address"),
        "{e:?}"
    );
    let e = errs("[interface.eth1]\n[interface.eth0]\nrobustness = 2\njoin = [\"239.1.1.1\", \"239.1.1.1\"]\n");
    assert_eq!(
        e,
        ["t.toml:4: interface.eth0.join: 239.1.1.1 is listed twice"]
    );
    let e = errs("[interface.eth0]\njoin = [\"239.1.1.1\", \"10.0.0.5/239.1.1.1\"]\n");
    assert!(e[0].contains("both with and without a source"), "{e:?}");
    // Only an interface joins: not [defaults], not a bridge's VLAN.
    assert!(
        errs("[defaults]\njoin = [\"239.1.1.1\"]\n[interface.eth0]\n")[0].contains("unknown field")
    );
}

#[test]
fn query_join_flags_take_the_same_syntax() {
    let cli = Cli::try_parse_from([
        "igmpd",
        "query",
        "eth0",
        "--join",
        "239.1.1.1",
        "--join",
        "10.0.0.5/232.1.1.1",
    ])
    .unwrap();
    let Command::Query(q) = cli.command else {
        panic!()
    };
    let j: Vec<String> = q.host.join.iter().map(ToString::to_string).collect();
    assert_eq!(j, ["239.1.1.1", "10.0.0.5/232.1.1.1"]);
    let e = Cli::try_parse_from(["igmpd", "query", "eth0", "--join", "10.1.1.1"]).unwrap_err();
    assert!(
        e.to_string().contains("10.1.1.1 is not a multicast group"),
        "{e}"
    );
}

#[test]
fn static_groups_and_fast_leave_are_read_per_port_and_checked_at_their_line() {
    let c = ok("[bridge.br0]\nfast_leave = true\n[bridge.br0.port.p1]\nfast_leave = false\nstatic_groups = [{ group = \"239.1.1.1\" }, { group = \"232.1.1.1\", source = \"10.0.0.5\", vlan = 10 }]\n[bridge.br0.port.p2]\nmax_groups = 3\n");
    let b = &c.bridges[0];
    assert!(b.policy.fast_leave, "[bridge.br0] fast_leave: every port");
    assert!(!b.port_policies["p1"].fast_leave);
    assert!(
        b.port_policies["p2"].fast_leave,
        "the bridge's, not written for p2"
    );
    let s: Vec<String> = b.static_groups["p1"]
        .iter()
        .map(|g| format!("{:?}/{}/{}", g.source, g.group, g.vid))
        .collect();
    assert_eq!(s, ["Some(10.0.0.5)/232.1.1.1/10", "None/239.1.1.1/0"]);
    for (bad, why) in [
        ("{ group = \"10.1.1.1\" }", "not a multicast group"),
        ("{ group = \"224.0.0.5\" }", "link-local"),
        (
            "{ group = \"239.1.1.1\", source = \"ff3e::1\" }",
            "different families",
        ),
        (
            "{ group = \"239.1.1.1\", vlan = 0 }",
            "vlan must be 1..=4094",
        ),
        ("{ group = \"239.1.1.1\", port = 1 }", "unknown field"),
    ] {
        let e = errs(&format!(
            "[bridge.br0]\n[bridge.br0.port.p1]\nstatic_groups = [\n  {bad},\n]\n"
        ));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].contains(why), "{bad}: {e:?}");
        if why != "unknown field" {
            assert!(
                e[0].starts_with("t.toml:4: bridge.br0.port.p1.static_groups: "),
                "{bad}: {e:?}"
            );
        }
    }
    // The flag names ports, as --router-guard does.
    let cli = Cli::try_parse_from(["igmpd", "snoop", "br0", "--fast-leave", "p1"]).unwrap();
    let Command::Snoop(a) = cli.command else {
        panic!()
    };
    let b = crate::cmd::snoop::bridge(a).unwrap();
    assert!(b.port_policies["p1"].fast_leave && !b.policy.fast_leave);
}

/// `flood_groups`: the default list when not written, nothing when `[]`, and a bad prefix
/// an error at the key's line.
#[test]
fn flood_groups_default_empty_and_bad_prefixes() {
    let names = |c: &RunConfig| -> Vec<String> {
        c.bridges[0]
            .snooping
            .flood_groups
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        names(&ok("[bridge.br0]\n")),
        ["ff02::1:ff00:0/104", "ff02::fb", "224.0.0.251"]
    );
    assert!(names(&ok("[bridge.br0]\nflood_groups = []\n")).is_empty());
    for (bad, why) in [
        ("\"fe80::/10\"", "not a multicast prefix"),
        ("\"ff02::1:ff00:0/129\"", "prefix length"),
        ("\"ff02::1:ff00:1/104\"", "bits set past its length"),
        ("\"mdns\"", "not an IP address"),
    ] {
        let e = errs(&format!(
            "[bridge.br0]\nquerier = true\nflood_groups = [\"ff02::fb\", {bad}]\n"
        ));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(
            e[0].starts_with("t.toml:3: bridge.br0.flood_groups: ") && e[0].contains(why),
            "{bad}: {e:?}"
        );
    }
}

/// `flood_unregistered` and `flood_reports` in `[bridge.B]` are every port's; a port's
/// section overrides them.
#[test]
fn flood_unregistered_and_flood_reports_are_read_per_port() {
    let c = ok("[bridge.br0]\nflood_unregistered = false\n[bridge.br0.port.p1]\nflood_unregistered = true\nflood_reports = true\n[bridge.br0.port.p2]\nmax_groups = 3\n");
    let b = &c.bridges[0];
    assert_eq!(b.policy.flood_unregistered, Some(false));
    assert!(!b.policy.flood_reports);
    assert_eq!(b.port_policies["p1"].flood_unregistered, Some(true));
    assert!(b.port_policies["p1"].flood_reports);
    assert_eq!(b.port_policies["p2"].flood_unregistered, Some(false));
    assert!(!b.port_policies["p2"].flood_reports);
    assert_eq!(
        ok("[bridge.br0]\n").bridges[0].policy.flood_unregistered,
        None
    );
    let e = errs("[bridge.br0]\nflood_reports = \"yes\"\n");
    assert!(
        e.len() == 1 && e[0].starts_with("t.toml:2: bridge.br0.flood_reports: "),
        "{e:?}"
    );
}
