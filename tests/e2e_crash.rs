//! Crash safety and failure paths (issue 16), with real hosts in namespaces: when `igmpd
//! snoop` dies by SIGKILL, even in the middle of a join flood, the kernel deletes its
//! nftables table (the table is owned by igmpd's netlink socket) and the kernel's own
//! snooping learns the next join; `igmpd cleanup` then leaves the bridge as a clean SIGTERM
//! exit does (entries temporary, `mcast_router` and versions restored, no table, no state
//! file), says there is nothing to do after a clean exit, and refuses while igmpd runs; an
//! MDB add the kernel refuses is retried until the kernel takes it, with a finding meanwhile;
//! snooping switched off and on, a failed activation and the rtnetlink stream ending are
//! recovered from. Every test here starts with `failure_` (`scripts/vm-test.sh failure_`).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::mdb::{igmpd_protocol, MdbState};
use igmpd_netns_tests::{poll_until, BridgeConfig, IgmpVersion, Igmpd, Lab};
use serde_json::Value;

mod common;
use common::{mcast_router, member, snoop, snoop_env, BIN, WAIT};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// A bridge with the kernel's defaults (IGMPv2, MLDv1, no kernel querier): igmpd raises
/// the versions while it runs, a clean exit restores them.
fn lab() -> Result<Lab> {
    Lab::builder()
        .bridge(
            BridgeConfig::snooping()
                .querier(false)
                .igmp_version(IgmpVersion::V2),
        )
        .hosts(&["a", "b"])
        .build()
}

fn igmpd_tables(lab: &Lab) -> Result<Vec<String>> {
    let out = lab.switch().netns().exec_ok(&["nft", "list", "tables"])?;
    Ok(out
        .lines()
        .filter(|l| l.contains("igmpd_snoop_"))
        .map(str::to_owned)
        .collect())
}

/// What a handed-back bridge looks like: igmpd's entries of the test's (IPv4) groups (port,
/// group, permanent or not, protocol), every port's `mcast_router`, the bridge's versions,
/// igmpd's tables.
#[derive(Debug, PartialEq, Eq)]
struct Handed {
    entries: BTreeSet<(String, IpAddr, bool, Option<String>)>,
    routers: Vec<(String, u64)>,
    versions: (u64, u64),
    tables: Vec<String>,
}

fn handed(lab: &Lab, hosts: &[&str]) -> Result<Handed> {
    let entries = lab
        .mdb()?
        .into_iter()
        // igmpd's own, of the groups the test joined: the kernel learns other groups once
        // its learning is back, and the hosts' solicited-node groups follow their
        // addresses, which differ from lab to lab.
        .filter(|e| e.protocol.as_deref() == Some(igmpd_protocol()) && e.group.is_ipv4())
        .map(|e| (e.port, e.group, e.state == MdbState::Permanent, e.protocol))
        .collect();
    let mut routers = Vec::new();
    for h in hosts {
        routers.push(((*h).to_owned(), mcast_router(lab, lab.host(h).port())?));
    }
    let info = lab.switch().bridge_info()?;
    let version = |k: &str| info.get(k).and_then(Value::as_u64).unwrap_or(0);
    Ok(Handed {
        entries,
        routers,
        versions: (version("mcast_igmp_version"), version("mcast_mld_version")),
        tables: igmpd_tables(lab)?,
    })
}

/// Runs igmpd on a fresh lab until a's and b's joins are its entries, with a's port a
/// configured router port (so that `mcast_router` changes), then ends it with `end`.
fn run_and_end(end: impl FnOnce(Igmpd) -> Result<()>) -> Result<(Lab, Handed)> {
    let lab = lab()?;
    let pa = lab.host("a").port().to_owned();
    let d = snoop(&lab, &["--querier", "--router-port", &pa])?;
    let (mut a, mut b) = (member(&lab, "a")?, member(&lab, "b")?);
    let (g1, g2) = (ip("239.41.0.1"), ip("239.41.0.2"));
    a.join(g1)?;
    b.join(g2)?;
    poll_until(WAIT, Duration::from_millis(50), || {
        let e = lab.mdb().ok()?;
        let ours = |g: IpAddr| {
            e.iter()
                .any(|x| x.group == g && x.protocol.as_deref() == Some(igmpd_protocol()))
        };
        (ours(g1) && ours(g2)).then_some(())
    })
    .context("igmpd's entries")?;
    end(d)?;
    let h = handed(&lab, &["a", "b"])?;
    Ok((lab, h))
}

#[test]
fn failure_a_sigkill_in_a_join_flood_leaves_no_table_and_the_kernel_learns_again() -> Result<()> {
    let lab = lab()?;
    let d = snoop(&lab, &["--querier"])?;
    let st = d.status()?;
    ensure!(
        st["bridges"][0]["nft_table_owned"] == true,
        "this kernel takes the owner flag: {}",
        st["bridges"][0]
    );
    ensure!(igmpd_tables(&lab)?.len() == 1);
    // Room for the flood's groups once the kernel learns them: at mcast_hash_max it would
    // turn snooping off for the whole bridge.
    lab.switch().netns().ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_hash_max",
        "65536",
    ])?;
    // The killed igmpd leaves its state file (as it should); the test removes it.
    let state = common::state_file(&lab)?;
    let mut flooder = member(&lab, "a")?;
    let pid = d.pid();
    let (stop, rounds) = (AtomicBool::new(false), AtomicUsize::new(0));
    std::thread::scope(|s| -> Result<()> {
        // The same 2 000 groups again and again until told to stop.
        let flood = s.spawn(|| -> Result<()> {
            while !stop.load(Ordering::Relaxed) {
                flooder.flood_igmp(Ipv4Addr::new(239, 42, 0, 1), 2_000)?;
                rounds.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        // Killed while the flood runs (after its first round: no status is asked for, a
        // flooded daemon under emulation answers slowly).
        let killed = poll_until(WAIT, Duration::from_millis(10), || {
            (rounds.load(Ordering::Relaxed) > 0).then_some(())
        })
        .context("the flood did not start")
        .and_then(|()| d.kill());
        stop.store(true, Ordering::Relaxed);
        let flooded = flood.join();
        let status = killed?;
        ensure!(!status.success(), "igmpd {pid} was not killed: {status}");
        ensure!(matches!(flooded, Ok(Ok(()))), "the flood failed");
        Ok(())
    })?;
    let _ = std::fs::remove_file(&state);
    // The process is reaped: its socket is closed, so the table is gone.
    let t = igmpd_tables(&lab)?;
    ensure!(t.is_empty(), "the table outlived igmpd: {t:?}");
    // The kernel's own snooping learns b's join now.
    let g = ip("239.43.0.1");
    let mut b = member(&lab, "b")?;
    let killed_at = std::time::Instant::now();
    b.join(g)?;
    let port = lab.host("b").port().to_owned();
    poll_until(WAIT, Duration::from_millis(20), || {
        lab.mdb()
            .ok()?
            .iter()
            .any(|e| {
                e.group == g
                    && e.port == port
                    && e.protocol.as_deref().is_none_or(|p| p == "kernel")
            })
            .then_some(())
    })
    .context("the kernel did not learn b's join after igmpd died")?;
    // Reported, not asserted (a loaded machine is slow, not wrong).
    eprintln!(
        "the kernel learned a join {:?} after igmpd was reaped",
        killed_at.elapsed()
    );
    Ok(())
}

#[test]
fn failure_cleanup_after_a_sigkill_leaves_the_bridge_as_a_clean_exit_does() -> Result<()> {
    let (_clean_lab, clean) = run_and_end(|d| {
        let s = d.stop()?;
        ensure!(s.success(), "{s}");
        Ok(())
    })?;
    // Reference: igmpd's entries are temporary, versions back at 2 / 1, routers at 1.
    ensure!(clean.versions == (2, 1), "{clean:?}");
    ensure!(clean.routers.iter().all(|(_, m)| *m == 1), "{clean:?}");
    ensure!(clean.entries.iter().all(|e| !e.2), "{clean:?}");
    ensure!(clean.tables.is_empty(), "{clean:?}");

    let mut socket = None;
    let (lab, killed) = run_and_end(|d| {
        socket = Some(d.control_socket().to_owned());
        d.kill().map(drop)
    })?;
    // Killed: permanent entries, raised versions, a's port still a router port.
    ensure!(killed.versions != (2, 1), "{killed:?}");
    ensure!(killed.entries.iter().any(|e| e.2), "{killed:?}");
    let socket = socket.context("socket")?;
    let socket = socket.to_str().context("utf8")?;
    let ns = lab.switch().netns();
    let out = ns.exec_ok(&[BIN, "cleanup", "br0", "--control-socket", socket])?;
    ensure!(out.contains("br0: handed back"), "{out}");
    let after = handed(&lab, &["a", "b"])?;
    ensure!(
        after == clean,
        "after cleanup:\n{after:?}\nclean exit:\n{clean:?}"
    );
    // Nothing is left to do now.
    let out = ns.exec_ok(&[BIN, "cleanup", "br0", "--control-socket", socket])?;
    ensure!(out.contains("br0: nothing left behind"), "{out}");
    Ok(())
}

#[test]
fn failure_cleanup_refuses_while_igmpd_runs() -> Result<()> {
    let lab = lab()?;
    let d = snoop(&lab, &[])?;
    let socket = d.control_socket().to_str().context("utf8")?.to_owned();
    let out = lab
        .switch()
        .netns()
        .exec(&[BIN, "cleanup", "br0", "--control-socket", &socket])?;
    ensure!(!out.status.success(), "cleanup ran beside a live igmpd");
    let err = String::from_utf8_lossy(&out.stderr);
    ensure!(err.contains("igmpd is running"), "{err}");
    ensure!(
        igmpd_tables(&lab)?.len() == 1,
        "the live igmpd's table went"
    );
    ensure!(d.status()?["bridges"][0]["active"] == true);
    Ok(())
}

/// The kernel refuses an add (the port's `mcast_max_groups` is reached): finding
/// `mdb-write-failing` names the port; once the limit is raised, a retry writes the entry
/// without any new report being needed.
#[test]
fn failure_a_refused_add_is_retried_until_the_kernel_takes_it() -> Result<()> {
    let lab = lab()?;
    // IPv4 entries only: the port's limit counts every group.
    let d = snoop(&lab, &["--querier", "--no-mld"])?;
    let st = d.status()?;
    let has_limit = st["kernel"]["features"]
        .as_array()
        .is_some_and(|f| f.iter().any(|x| x == "port_mcast_max_groups"));
    if !has_limit {
        eprintln!(
            "skipped: this kernel has no per-port mcast_max_groups (Linux 6.3) to refuse adds with"
        );
        return Ok(());
    }
    let pa = lab.host("a").port().to_owned();
    let sw = lab.switch().netns();
    let limit = |n: &str| sw.exec_ok(&["bridge", "link", "set", "dev", &pa, "mcast_max_groups", n]);
    // Room for one more than the port holds now (the kernel may have learned the host's
    // own IPv6 groups before igmpd's table was there).
    let held = lab.mdb()?.iter().filter(|e| e.port == pa).count();
    limit(&(held + 1).to_string())?;
    let mut a = member(&lab, "a")?;
    let (g1, g2) = (ip("239.44.0.1"), ip("239.44.0.2"));
    a.join(g1)?;
    a.join(g2)?;
    let on_a = |lab: &Lab| -> usize {
        lab.mdb()
            .map(|e| {
                e.iter()
                    .filter(|x| x.port == pa && (x.group == g1 || x.group == g2))
                    .count()
            })
            .unwrap_or(0)
    };
    let finding = d.wait_status(WAIT, |st| {
        st["findings"]
            .as_array()?
            .iter()
            .find(|f| f["code"] == "mdb-write-failing")
            .cloned()
    })?;
    let msg = finding["message"].as_str().unwrap_or("");
    ensure!(msg.contains(&pa), "the finding names the port: {msg}");
    ensure!(
        on_a(&lab) == 1,
        "one of the two groups fits: {:?}",
        lab.mdb()?
    );
    ensure!(d.status()?["bridges"][0]["counters"]["mdb_errors"].as_u64() > Some(0));
    // Room again: the refused entry is written by a retry (a's next report would be
    // minutes away with the default query interval).
    limit("0")?;
    poll_until(WAIT, Duration::from_millis(50), || {
        (on_a(&lab) == 2).then_some(())
    })
    .context("the refused entry was not written again")?;
    Ok(())
}

/// The bridge's snooping turned off while igmpd runs (by hand here; the kernel does it
/// itself at mcast_hash_max): finding `snooping-off`, snooping paused; back on, igmpd
/// snoops afresh and the member's entry is written again. A lowered mcast_hash_max lowers
/// the entry limit at once.
#[test]
fn failure_snooping_turned_off_and_on_at_runtime_and_a_lowered_hash_max_are_followed() -> Result<()>
{
    let lab = lab()?;
    let d = snoop(&lab, &["--querier"])?;
    let mut a = member(&lab, "a")?;
    let g = ip("239.45.0.1");
    a.join(g)?;
    let pa = lab.host("a").port().to_owned();
    let ours = |lab: &Lab| {
        lab.mdb().ok().is_some_and(|e| {
            e.iter().any(|x| {
                x.group == g && x.port == pa && x.protocol.as_deref() == Some(igmpd_protocol())
            })
        })
    };
    poll_until(WAIT, Duration::from_millis(50), || ours(&lab).then_some(()))
        .context("igmpd's entry")?;
    let sw = lab.switch().netns();
    let set = |k: &str, v: &str| sw.ip(&["link", "set", "br0", "type", "bridge", k, v]);
    set("mcast_snooping", "0")?;
    d.wait_status(WAIT, |st| {
        let off = st["findings"]
            .as_array()?
            .iter()
            .any(|f| f["code"] == "snooping-off");
        (off && st["bridges"][0]["active"] == false).then_some(())
    })?;
    set("mcast_snooping", "1")?;
    d.wait_status(WAIT, |st| {
        let off = st["findings"]
            .as_array()?
            .iter()
            .any(|f| f["code"] == "snooping-off");
        (!off && st["bridges"][0]["active"] == true).then_some(())
    })?;
    poll_until(WAIT, Duration::from_millis(50), || ours(&lab).then_some(()))
        .context("the entry after snooping came back")?;
    let before = d.status()?["bridges"][0]["entry_limit"].as_u64();
    set("mcast_hash_max", "1024")?;
    d.wait_status(WAIT, |st| {
        let now = st["bridges"][0]["entry_limit"].as_u64()?;
        (Some(now) != before && now < 1024).then_some(())
    })?;
    Ok(())
}

/// An activation that fails (here: a second igmpd on the same bridge finds the table owned
/// by the first) is undone and retried on a back-off schedule, not at every link event;
/// once the other igmpd is gone, the retry succeeds.
#[test]
fn failure_a_failed_activation_is_retried_with_back_off_until_it_succeeds() -> Result<()> {
    let lab = lab()?;
    let sw = lab.switch().netns();
    sw.ip(&["link", "set", "br0", "down"])?;
    let first = snoop(&lab, &[])?;
    let second = snoop(&lab, &[])?;
    sw.ip(&["link", "set", "br0", "up"])?;
    let active = |d: &Igmpd| {
        d.status()
            .is_ok_and(|st| st["bridges"][0]["active"] == true)
    };
    // One of them wins the table; the other keeps failing, politely.
    let first_won = poll_until(WAIT, Duration::from_millis(50), || {
        match (active(&first), active(&second)) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    })
    .context("one of two igmpd on br0 should snoop")?;
    let (winner, loser) = if first_won {
        (first, second)
    } else {
        (second, first)
    };
    poll_until(WAIT, Duration::from_millis(100), || {
        loser
            .log_text()
            .contains("belongs to another running igmpd")
            .then_some(())
    })
    .with_context(|| format!("no refusal logged:\n{}", loser.log_text()))?;
    // Link events meanwhile do not make it try at each one (no busy loop).
    for _ in 0..20 {
        sw.ip(&[
            "link",
            "set",
            "br0",
            "type",
            "bridge",
            "mcast_query_interval",
            "12500",
        ])?;
    }
    let tries = loser.log_text().matches("cannot start snooping").count();
    ensure!(tries <= 4, "{tries} tries so soon:\n{}", loser.log_text());
    let failed = loser.status()?["bridges"][0]["counters"]["activation_failures"].as_u64();
    ensure!(
        failed.is_some_and(|n| n >= 1),
        "status counts {failed:?} failed activations"
    );
    // The winner goes: the loser's next retry takes over.
    drop(winner);
    poll_until(Duration::from_secs(40), Duration::from_millis(100), || {
        active(&loser).then_some(())
    })
    .with_context(|| format!("the retry did not take over:\n{}", loser.log_text()))?;
    Ok(())
}

/// Waits until `d` logged that it connected to rtnetlink again.
fn reconnected(d: &Igmpd) -> Result<()> {
    poll_until(WAIT, Duration::from_millis(50), || {
        d.log_text()
            .contains("rtnetlink connected again")
            .then_some(())
    })
    .with_context(|| format!("no new connection:\n{}", d.log_text()))
}

/// The rtnetlink event stream ends (injected in debug builds: `IGMPD_TEST_EVENTS_END_MS`):
/// igmpd connects again, reads links and addresses again, and follows changes after it.
#[test]
fn failure_the_rtnetlink_stream_ending_is_followed_by_a_new_connection() -> Result<()> {
    let lab = lab()?;
    let d = snoop_env(&lab, &["IGMPD_TEST_EVENTS_END_MS=300"], &[])?;
    reconnected(&d)?;
    ensure!(d.log_text().contains("rtnetlink event stream ended"));
    let n = d.status()?["bridges"][0]["counters"]["netlink_reconnects"].as_u64();
    ensure!(n == Some(1), "status counts {n:?} reconnects");
    // A port added now is seen: the new connection's events are followed.
    let sw = lab.switch().netns();
    sw.ip(&["link", "add", "p9", "type", "veth", "peer", "name", "p9x"])?;
    sw.ip(&["link", "set", "p9", "master", "br0"])?;
    sw.ip(&["link", "set", "p9", "up"])?;
    sw.ip(&["link", "set", "p9x", "up"])?;
    d.wait_status(WAIT, |st| {
        st["bridges"][0]["ports"]
            .as_array()?
            .iter()
            .any(|p| p["name"] == "p9")
            .then_some(())
    })?;
    Ok(())
}

/// The same for `igmpd query`: after the stream ended and igmpd connected again, a link
/// going down is seen.
#[test]
fn failure_the_querier_connects_again_when_its_rtnetlink_stream_ends() -> Result<()> {
    let lab = lab()?;
    let host = lab.host("a").netns();
    let d = Igmpd::spawn_env(
        host,
        BIN,
        &["IGMPD_TEST_EVENTS_END_MS=300"],
        &["query", "eth0"],
    )?;
    reconnected(&d)?;
    host.ip(&["link", "set", "eth0", "down"])?;
    d.wait_status(WAIT, |st| {
        (st["interfaces"][0]["up"] == false).then_some(())
    })?;
    Ok(())
}

/// 100 flaps of a port and the bridge deleted and recreated, while a third host floods
/// re-joins: once the flood's groups have aged out, igmpd's entries are exactly the real
/// members' (what a fresh start would program), and status shows the same.
#[test]
fn failure_port_flaps_and_a_recreated_bridge_under_load_end_with_the_members_entries() -> Result<()>
{
    let cfg = BridgeConfig::snooping()
        .querier(false)
        .igmp_version(IgmpVersion::V2);
    let lab = Lab::builder()
        .bridge(cfg.clone())
        .bridge_ipv4(true)
        .hosts(&["a", "b", "c"])
        .build()?;
    let d = snoop(&lab, &["--querier", "--no-mld"])?;
    let (mut a, mut b) = (member(&lab, "a")?, member(&lab, "b")?);
    let (g1, g2, g3) = (ip("239.46.1.1"), ip("239.46.1.2"), ip("239.46.2.1"));
    a.join(g1)?;
    a.join(g2)?;
    b.join(g3)?;
    let (pa, pb) = (
        lab.host("a").port().to_owned(),
        lab.host("b").port().to_owned(),
    );
    let want: BTreeSet<(String, IpAddr)> = [(&pa, g1), (&pa, g2), (&pb, g3)]
        .into_iter()
        .map(|(p, g)| (p.clone(), g))
        .collect();
    // igmpd's IPv4 entries (the hosts' own IPv6 groups are not snooped with --no-mld).
    let ours = |lab: &Lab| -> Result<BTreeSet<(String, IpAddr)>> {
        Ok(lab
            .mdb()?
            .into_iter()
            .filter(|e| e.protocol.as_deref() == Some(igmpd_protocol()) && e.group.is_ipv4())
            .map(|e| (e.port, e.group))
            .collect())
    };
    poll_until(WAIT, Duration::from_millis(50), || {
        (ours(&lab).ok()? == want).then_some(())
    })
    .context("the members' entries")?;
    let sw = lab.switch().netns();
    let mut flooder = member(&lab, "c")?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| -> Result<()> {
        let flood = s.spawn(|| -> Result<()> {
            while !stop.load(Ordering::Relaxed) {
                flooder.flood_igmp(Ipv4Addr::new(239, 47, 0, 1), 500)?;
            }
            Ok(())
        });
        let churn = (|| -> Result<()> {
            for _ in 0..100 {
                sw.ip(&["link", "set", &pa, "down"])?;
                sw.ip(&["link", "set", &pa, "up"])?;
            }
            sw.ip(&["link", "del", "br0"])?;
            let mut add = vec!["link", "add", "br0", "type", "bridge"];
            let args = cfg.ip_link_args();
            add.extend(args.iter().map(String::as_str));
            sw.ip(&add)?;
            for h in ["a", "b", "c"] {
                sw.ip(&["link", "set", lab.host(h).port(), "master", "br0"])?;
            }
            let addr = format!("{}/24", lab.switch().ipv4().context("bridge address")?);
            sw.ip(&["addr", "add", &addr, "dev", "br0"])?;
            sw.ip(&["link", "set", "br0", "up"]).map(drop)
        })();
        stop.store(true, Ordering::Relaxed);
        let flooded = flood.join();
        churn?;
        ensure!(matches!(flooded, Ok(Ok(()))), "the flood failed");
        Ok(())
    })?;
    // Asked once the flood stopped: a flooded daemon under emulation answers slowly.
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["active"] == true).then_some(())
    })?;
    // The members answer igmpd's queries; the flood's groups age out (5 s here).
    poll_until(Duration::from_secs(40), Duration::from_millis(200), || {
        (ours(&lab).ok()? == want).then_some(())
    })
    .with_context(|| format!("igmpd's entries: {:?}, the members': {want:?}", ours(&lab)))?;
    let st = d.status()?;
    let shown: BTreeSet<(String, IpAddr)> = st["bridges"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            let name = p["name"].as_str().unwrap_or("").to_owned();
            p["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(move |g| Some((name.clone(), g["group"].as_str()?.parse().ok()?)))
        })
        .filter(|(_, g): &(String, IpAddr)| g.is_ipv4())
        .collect();
    ensure!(shown == want, "status shows {shown:?}, the MDB {want:?}");
    Ok(())
}

/// Sends of the MDB writer that fail (injected in debug builds:
/// `IGMPD_TEST_WRITER_SEND_FAILS`) are sent again: a burst of joins all reach the MDB.
#[test]
fn failure_failed_writer_sends_are_sent_again() -> Result<()> {
    let lab = lab()?;
    let d = snoop_env(
        &lab,
        &["IGMPD_TEST_WRITER_SEND_FAILS=3"],
        &["--querier", "--no-mld"],
    )?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["active"] == true).then_some(())
    })?;
    let mut a = member(&lab, "a")?;
    // A burst: the writer thread's batches (a few writes alone go inline).
    a.flood_igmp(Ipv4Addr::new(239, 48, 0, 1), 300)?;
    let pa = lab.host("a").port().to_owned();
    poll_until(WAIT, Duration::from_millis(100), || {
        // Distinct groups: a source-specific join is an entry per source.
        let groups: BTreeSet<IpAddr> = lab
            .mdb()
            .ok()?
            .into_iter()
            .filter(|e| {
                e.port == pa
                    && e.protocol.as_deref() == Some(igmpd_protocol())
                    && matches!(e.group, IpAddr::V4(g) if g.octets()[..2] == [239, 48])
            })
            .map(|e| e.group)
            .collect();
        (groups.len() == 300).then_some(())
    })
    .with_context(|| {
        let n = lab.mdb().map(|e| e.iter().filter(|x| x.port == pa).count());
        format!(
            "not every join reached the MDB ({n:?} on the port):\n{}",
            d.log_text()
        )
    })?;
    ensure!(
        d.log_text().contains("send failed; writing again shortly"),
        "no send failed: the injection did not act\n{}",
        d.log_text()
    );
    let failed = d.status()?["bridges"][0]["counters"]["writer_send_failures"].as_u64();
    ensure!(failed == Some(3), "status counts {failed:?} failed sends");
    Ok(())
}
