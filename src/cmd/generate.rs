//! `igmpd generate`: the man page and shell completions, generated from the clap
//! definition so that they cannot drift from `--help`. `dist/igmpd.8` is this output,
//! committed; a test fails when it is stale (`IGMPD_BLESS=1 cargo test` rewrites it).

use std::io::Write;

use clap::CommandFactory;

use crate::cli::What;

/// Prints `what` to stdout.
pub fn run(what: What) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match what {
        What::Man => out.write_all(&man()?)?,
        What::Completions { shell } => {
            clap_complete::generate(shell, &mut crate::cli::Cli::command(), "igmpd", &mut out)
        }
    }
    Ok(())
}

/// Sections written by hand: what clap does not know (files, signals, exit status).
const EXTRA: &str = r#".SH FILES
.TP
\fI/etc/igmpd/igmpd.toml\fR
The config file of \fBigmpd run\fR (see \fBigmpd check\-config\fR; an example with every
option is installed as /usr/local/share/doc/igmpd/igmpd.toml by scripts/install.sh; the
Debian package installs the example as this file, a conffile).
.TP
\fI/run/igmpd/igmpd.sock\fR
The control socket: \fBigmpd status\fR works for every local user; \fBigmpd reload\fR
only for root, the daemon's own user, or members of the config's \fBcontrol_group\fR.
.SH METRICS
With \fB\-\-metrics\-listen ADDR\fR (\fBigmpd query\fR, \fBigmpd snoop\fR, \fBigmpd run\fR) or
the config's top\-level \fBmetrics_listen = "127.0.0.1:9654"\fR, igmpd serves Prometheus
metrics (text format 0.0.4) at \fBhttp://ADDR/metrics\fR; \fBigmpd run\fR serves every
interface and bridge on that one endpoint. Off unless set; IPv6 addresses are written
\fB[::1]:9654\fR; an address igmpd cannot listen on stops it at start. There is no
authentication: keep it on loopback or a management network. Names start with
\fBigmpd_\fR: \fBigmpd_querier_*\fR per interface and family, \fBigmpd_bridge_*\fR per
bridge (per VLAN and family for the queriers), \fBigmpd_port_*\fR per bridge port (per
VLAN and family for memberships and messages received), \fBigmpd_findings\fR by code.
A scrape costs the daemon the same whatever the number of groups.
.SH "UNTRUSTED PORTS"
Keys of \fB[bridge.NAME]\fR apply to every port of the bridge; a
\fB[bridge.NAME.port.PORT]\fR section replaces each key it writes for that port.
\fBmax_groups\fR, \fBmax_sources\fR, \fBlimit_action\fR, \fBmax_report_rate\fR,
\fBrequire_router_alert\fR and \fBacl_default\fR are the \fBigmpd snoop\fR flags of the
same names; besides them:
.TP
\fBrouter_guard = true\fR
Queries, PIM hellos and MRD messages from the port are dropped (by igmpd and, in its
nftables table, before the kernel sees them): the port never becomes a router port and
never takes part in the querier election. \fB\-\-router\-guard PORT\fR guards one port.
Findings \fBrogue\-querier\fR and \fBrogue\-router\fR name the port and the source.
.TP
\fBacl = [{ action = "deny", group = "239.255.0.0/16" }, { action = "permit", group = "232.0.0.0/8", source = "10.1.0.0/16" }]\fR
First match wins; \fBacl_default\fR when none does. A rule with a \fBsource\fR matches
source\-specific (INCLUDE) joins only. Denied records and sources are neither learned
nor forwarded to router ports. Finding \fBdenied\-join\fR.
.TP
\fBfast_leave = true\fR
A leave ends the port's membership at once when no other host on the port is known to
be in the group (in IGMPv1/v2 and MLDv1 modes: when no other host ever reported it);
otherwise the last\-member queries run. \fB\-\-fast\-leave PORT\fR for one port.
.TP
\fBstatic_groups = [{ group = "239.1.1.1" }, { group = "232.1.1.1", source = "10.0.0.5", vlan = 10 }]\fR
In \fB[bridge.NAME.port.PORT]\fR: groups the port forwards like learned memberships,
never expiring and counting against no limit (\fB"origin": "static"\fR in status).
\fBigmpd static add|del\fR adds and deletes them at runtime; those are kept in the state
file until deleted. \fBigmpd flush\fR forgets learned memberships only.
.TP
\fBflood_groups = ["ff02::1:ff00:0/104", "ff02::fb", "224.0.0.251"]\fR
In \fB[bridge.NAME]\fR (the default; \fB[]\fR floods nothing; \fB\-\-flood\-group PREFIX\fR):
a group of the list that a report (or an entry found at start) names is written on every
port up in its VLAN and kept while igmpd runs, reported or not, so IPv6 neighbour
discovery and mDNS keep working for hosts that answer no query (\fB"flooded": true\fR,
\fB"origin": "flood"\fR in status). Each such group is one key of \fBmcast_hash_max\fR.
.TP
\fBflood_unregistered = true|false\fR
The port's \fBmcast_flood\fR while igmpd runs (where multicast without an entry may go;
the kernel reads it when no querier exists, and for 224.0.0.0/24 and ff02::1); restored at
exit and after SIGKILL + restart. Unset: left as it is.
.TP
\fBflood_reports = true\fR
The port gets every report igmpd forwards, as a router port does (a downstream snooping
switch).
.PP
Always on: queries need TTL (hop limit) 1 and the RFC destination; an elected querier's
QRV outside 2..7 or query interval outside 1..3600 s is not adopted (finding
\fBquerier\-timers\-ignored\fR); PIM holdtimes are capped at 3600 s; a port holds at most
the bridge's MDB entry limit (at least 4096) memberships unless \fBmax_groups\fR says
otherwise (finding
\fBport\-group\-limit\fR), 1024 sources per group, 32 reporters per group; 2 MiB of
captured frames wait per port, 16 MiB in all; near the MDB key limit each port keeps to
its share. \fBigmpd status\fR shows each port's limits, counters and ACL hits.
.SH SIGNALS
.TP
\fBSIGHUP\fR
\fBigmpd run\fR re\-reads its config file. Interfaces and bridges whose settings did not
change keep their membership state; changed ones are restarted with the new settings;
removed ones stop. A file with errors is rejected with one log line and the running
configuration stays. \fBigmpd query\fR and \fBigmpd snoop\fR, which have no config
file, read their links and addresses again (as after lost rtnetlink events) and keep
every membership and timer.
.TP
\fBSIGTERM\fR, \fBSIGINT\fR
Stop; \fBigmpd snoop\fR and \fBigmpd run\fR hand each bridge back to the kernel.
.SH "CRASH SAFETY"
The nftables table that stops the kernel's own learning is created over igmpd's own
netlink socket with the table \fBowner\fR flag (Linux 5.12 and later): when igmpd dies
in any way (SIGKILL, abort), the kernel deletes it and its own snooping learns again at
once; status shows \fBnft_table_owned\fR (\fBcrash\-safe\fR in the tables). What a
crash leaves (permanent entries, raised versions, \fBmcast_router\fR values) stays in
effect and is adopted by the next igmpd, or handed back by \fBigmpd cleanup\fR, which
the systemd unit runs after every stop.
.SH SYSTEMD
\fBigmpd run\fR speaks the sd_notify protocol when \fBNOTIFY_SOCKET\fR
is set (READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1 at half of \fBWATCHDOG_USEC\fR
while the event loop answers), log to journald with structured fields when
\fBJOURNAL_STREAM\fR says stderr is the journal. Logging to journald applies to every
subcommand. See dist/igmpd.service.
.SH PRIVILEGES
\fBigmpd query\fR, \fBigmpd snoop\fR and \fBigmpd run\fR keep only CAP_NET_RAW and
CAP_NET_ADMIN (effective, permitted and bounding sets; inheritable and ambient empty) and
set no_new_privs before they start any thread (\fBrun\fR: once its config is read and its
control socket bound).
.SH "SEE ALSO"
\fBbridge\fR(8), \fBip\-link\fR(8), \fBsystemd.service\fR(5)
"#;

/// The man page: the top-level page, then one section per visible subcommand with its
/// synopsis, description and options.
pub fn man() -> anyhow::Result<Vec<u8>> {
    let cmd = crate::cli::Cli::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone())
        .section("8")
        .date("")
        .source(format!("igmpd {}", env!("CARGO_PKG_VERSION")))
        .manual("System Manager's Manual");
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("igmpd {}", sub.get_name());
        // clap wants a 'static name; the leak is a few bytes in a one-shot command.
        let name: &'static str = Box::leak(name.into_boxed_str());
        let sub = sub.clone().name(name).bin_name(name);
        let sman = clap_mangen::Man::new(sub);
        let mut part = Vec::new();
        writeln!(part, ".SH \"{}\"", name.to_uppercase())?;
        sman.render_synopsis_section(&mut part)?;
        sman.render_description_section(&mut part)?;
        sman.render_options_section(&mut part)?;
        // Nest the subcommand's sections under its own heading.
        let text = String::from_utf8(part)?;
        let mut first = true;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix(".SH ") {
                if first {
                    first = false;
                    writeln!(out, "{line}")?;
                } else {
                    writeln!(out, ".SS {}", rest.trim_matches('"').to_lowercase())?;
                }
            } else {
                writeln!(out, "{line}")?;
            }
        }
    }
    out.extend_from_slice(EXTRA.as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// dist/igmpd.8 is what `igmpd generate man` prints; rerun with IGMPD_BLESS=1 (or
    /// `igmpd generate man > dist/igmpd.8`) after changing the CLI.
    #[test]
    fn committed_man_page_is_not_stale() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/igmpd.8");
        let fresh = man().expect("render man page");
        if std::env::var_os("IGMPD_BLESS").is_some() {
            std::fs::write(&path, &fresh).expect("write dist/igmpd.8");
        }
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "dist/igmpd.8 is stale: run `IGMPD_BLESS=1 cargo test -p igmpd committed_man_page` or `igmpd generate man > dist/igmpd.8`"
        );
    }

    #[test]
    fn man_page_covers_every_visible_subcommand_and_flag() {
        let text = String::from_utf8(man().unwrap()).unwrap();
        for sub in crate::cli::Cli::command()
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
        {
            assert!(
                text.contains(&format!(".SH \"IGMPD {}\"", sub.get_name().to_uppercase())),
                "{}",
                sub.get_name()
            );
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let roff = long.replace('-', "\\-");
                    assert!(text.contains(&roff), "--{long} of {}", sub.get_name());
                }
            }
        }
        assert!(!text.contains("generate"), "hidden subcommand leaked");
    }

    #[test]
    fn completions_render_for_each_shell() {
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut crate::cli::Cli::command(), "igmpd", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("check-config"), "{shell}");
        }
    }
}
