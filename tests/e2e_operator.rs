//! What operators reach for, end to end with real hosts: static groups (from the config and
//! `igmpd static add`, in the kernel MDB with origin `static` after a reload and after
//! SIGKILL + restart), fast leave with two real hosts behind one port (macvlan) and with
//! one, `igmpd flush`, and the general query a port gets when it comes up.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::{Capture, IGMP_MLD_FILTER};
use igmpd_netns_tests::mdb::{igmpd_protocol, MdbState};
use igmpd_netns_tests::{poll_until, Igmpd, Lab, Member, Netns};
use serde_json::Value;

mod common;
use common::monitor::Monitor;
use common::{expect_receivers, member, tshark_capture, v3_bridge, BIN, FAST, PORT, WAIT};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

/// Whether igmpd's permanent entry for `group` is on `port` now.
fn entry(lab: &Lab, port: &str, group: IpAddr) -> Result<bool> {
    Ok(lab.mdb()?.iter().any(|e| {
        e.is_star_g(port, group)
            && e.state == MdbState::Permanent
            && e.protocol.as_deref() == Some(igmpd_protocol())
    }))
}

fn wait_entry(lab: &Lab, port: &str, group: IpAddr, present: bool) -> Result<Duration> {
    let t0 = Instant::now();
    poll_until(WAIT, Duration::from_millis(20), || {
        (entry(lab, port, group).ok()? == present).then_some(())
    })
    .with_context(|| {
        format!(
            "{group} on {port} should be {}: {:?}",
            if present { "there" } else { "gone" },
            lab.mdb()
        )
    })?;
    Ok(t0.elapsed())
}

/// The origins status shows for `group` on `port`.
fn origins(st: &Value, port: &str, group: IpAddr) -> Vec<String> {
    let mut out: Vec<String> = st["bridges"][0]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["name"] == port)
        .flat_map(|p| p["groups"].as_array().cloned().unwrap_or_default())
        .filter(|g| g["group"] == group.to_string())
        .filter_map(|g| g["origin"].as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

/// Runs `igmpd ARGS --control-socket` of `d` (from the root namespace: the socket is a
/// file); (success, stdout + stderr).
fn cli(d: &Igmpd, args: &[&str]) -> Result<(bool, String)> {
    let out = std::process::Command::new(BIN)
        .args(args)
        .arg("--control-socket")
        .arg(d.control_socket())
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Removes the lab's state file at the end, also when the test fails: a runtime static
/// group is kept there across clean exits by design.
struct StateFile(std::path::PathBuf);

impl StateFile {
    fn of(lab: &Lab) -> Result<StateFile> {
        Ok(StateFile(common::state_file(lab)?))
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn static_groups_from_the_config_and_at_runtime_survive_reload_and_sigkill() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a", "b"])
        .build()?;
    let _state = StateFile::of(&lab)?;
    let (pa, pb) = (
        lab.host("a").port().to_owned(),
        lab.host("b").port().to_owned(),
    );
    let dir = TempDir(std::env::temp_dir().join(format!("igt-static-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0)?;
    let cfg = dir.0.join("igmpd.toml");
    let fast = "query_interval = \"2s\"\nquery_response_interval = \"1s\"\nlast_member_query_interval = \"500ms\"";
    let (gc, gr, gs, src) = (
        ip("239.77.0.1"),
        ip("239.77.0.2"),
        ip("232.77.0.3"),
        lab.host("s").ipv4(),
    );
    let write = |extra: &str| -> Result<()> {
        std::fs::write(
            &cfg,
            format!(
                "[defaults]\n{fast}\n[bridge.br0]\nquerier = true\n[bridge.br0.port.{pa}]\nstatic_groups = [{{ group = \"{gc}\" }}]\n{extra}\n"
            ),
        )?;
        Ok(())
    };
    write("")?;
    let cfg_s = cfg.to_str().context("utf8")?.to_owned();
    let run = |lab: &Lab| Igmpd::spawn(lab.switch().netns(), BIN, &["run", "--config", &cfg_s]);
    let d = run(&lab)?;
    wait_entry(&lab, &pa, gc, true)?;
    let mon = Monitor::start(&d, true, 1)?;
    // At runtime: a (*,G) and an SSM channel on b's port, whose host never joins.
    let (ok, out) = cli(&d, &["static", "add", "br0", &pb, &gr.to_string()])?;
    ensure!(ok && out.contains("added"), "static add: {out}");
    mon.event_where(WAIT, |e| {
        e["event"] == "static-add" && e["port"] == pb.as_str() && e["group"] == gr.to_string()
    })?;
    let (ok, out) = cli(
        &d,
        &[
            "static",
            "add",
            "br0",
            &pb,
            &gs.to_string(),
            "--source",
            &src.to_string(),
        ],
    )?;
    ensure!(ok, "static add (S,G): {out}");
    wait_entry(&lab, &pb, gr, true)?;
    poll_until(WAIT, Duration::from_millis(50), || {
        lab.mdb()
            .ok()?
            .iter()
            .any(|e| e.group == gs && e.port == pb)
            .then_some(())
    })
    .with_context(|| format!("no entry for the SSM channel: {:?}", lab.mdb()))?;
    let (ok, out) = cli(&d, &["static", "add", "br0", &pb, &gr.to_string()])?;
    ensure!(!ok && out.contains("already"), "a second add: {out}");
    let (ok, out) = cli(&d, &["static", "del", "br0", &pa, &gc.to_string()])?;
    ensure!(
        !ok && out.contains("config"),
        "deleting a configured one: {out}"
    );
    let (ok, out) = cli(&d, &["static", "add", "br0", "nosuchport", &gr.to_string()])?;
    ensure!(!ok && out.contains("not a port"), "unknown port: {out}");
    let st = d.status()?;
    ensure!(origins(&st, &pa, gc) == ["static"], "{st}");
    ensure!(origins(&st, &pb, gr) == ["static"], "{st}");
    // They forward like learned memberships: b gets gr without joining it.
    let mut s = member(&lab, "s")?;
    expect_receivers(&lab, &mut s, "s", gr, &["b"])?;
    // A host joining a static group adds a learned record beside the static one.
    let mut a = member(&lab, "a")?;
    a.join(gc)?;
    d.wait_status(WAIT, |st| {
        (origins(st, &pa, gc) == ["learned", "static"]).then_some(())
    })?;
    // A reload that changes the bridge (restarts its snooper) keeps both kinds.
    write("# a comment: br0 unchanged")?;
    write("[bridge.br0.port.nosuch]\nfast_leave = true")?;
    let (ok, out) = cli(&d, &["reload"])?;
    ensure!(ok, "reload: {out}");
    d.wait_status(WAIT, |st| {
        (origins(st, &pb, gr) == ["static"] && origins(st, &pa, gc).contains(&"static".into()))
            .then_some(())
    })?;
    ensure!(entry(&lab, &pa, gc)? && entry(&lab, &pb, gr)?);
    // SIGKILL: the entries stay in the kernel; the next igmpd knows them as static again.
    d.kill()?;
    ensure!(
        entry(&lab, &pa, gc)? && entry(&lab, &pb, gr)?,
        "{:?}",
        lab.mdb()
    );
    drop(a);
    let d = run(&lab)?;
    d.wait_status(WAIT, |st| {
        (origins(st, &pb, gr) == ["static"] && origins(st, &pa, gc) == ["static"]).then_some(())
    })?;
    // Holds for several membership intervals (GMI 5 s): static groups never expire.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(7) {
        ensure!(
            entry(&lab, &pa, gc)? && entry(&lab, &pb, gr)?,
            "a static entry vanished: {:?}",
            lab.mdb()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mon = Monitor::start(&d, true, 1)?;
    let (ok, out) = cli(&d, &["static", "del", "br0", &pb, &gr.to_string()])?;
    ensure!(ok && out.contains("deleted"), "static del: {out}");
    mon.event_where(WAIT, |e| {
        e["event"] == "static-del" && e["port"] == pb.as_str() && e["group"] == gr.to_string()
    })?;
    drop(mon);
    wait_entry(&lab, &pb, gr, false)?;
    // A clean exit keeps the runtime one that is left for the next start.
    d.stop()?;
    let d = run(&lab)?;
    d.wait_status(WAIT, |st| {
        let ssm = st["bridges"][0]["ports"]
            .as_array()?
            .iter()
            .filter(|p| p["name"] == pb.as_str())
            .flat_map(|p| p["groups"].as_array().cloned().unwrap_or_default())
            .any(|g| g["group"] == gs.to_string() && g["origin"] == "static");
        (ssm && origins(st, &pb, gr).is_empty()).then_some(())
    })?;
    let (ok, out) = cli(
        &d,
        &[
            "static",
            "del",
            "br0",
            &pb,
            &gs.to_string(),
            "--source",
            &src.to_string(),
        ],
    )?;
    ensure!(ok, "{out}");
    d.stop()?;
    Ok(())
}

/// Two viewers behind one bridge port: macvlan interfaces of the host on that port, each in
/// a namespace of its own (two IP stacks: two real hosts), addresses `.201` and `.202`.
fn viewers(lab: &Lab, hub: &str) -> Result<Vec<Netns>> {
    let h = lab.host(hub);
    let (net, len) = lab.subnet_v4();
    let mut out = Vec::new();
    for i in 1..=2u8 {
        let ns = Netns::new()?;
        let mv = format!("mv{i}");
        h.netns().ip(&[
            "link",
            "add",
            &mv,
            "link",
            h.ifname(),
            "type",
            "macvlan",
            "mode",
            "bridge",
        ])?;
        h.netns().ip(&["link", "set", &mv, "netns", ns.name()])?;
        let o = net.octets();
        let addr = Ipv4Addr::new(o[0], o[1], o[2], 200 + i);
        ns.ip(&["addr", "add", &format!("{addr}/{len}"), "dev", &mv])?;
        ns.ip(&["link", "set", &mv, "up"])?;
        ns.ip(&["link", "set", "lo", "up"])?;
        out.push(ns);
    }
    Ok(out)
}

#[test]
fn fast_leave_cuts_a_lone_viewer_at_once_and_never_a_second_viewer_behind_the_port() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "h", "b"])
        .build()?;
    let hub = lab.host("h").port().to_owned();
    let ns = viewers(&lab, "h")?;
    let bin = Member::locate_binary()?;
    let mut v1 = Member::spawn_in(&ns[0], "mv1", &bin)?;
    let mut v2 = Member::spawn_in(&ns[1], "mv2", &bin)?;
    // Last-member queries take 2 x 3 s here: the normal way out is 6 s long.
    let d = Igmpd::spawn(
        lab.switch().netns(),
        BIN,
        &[
            "snoop",
            "br0",
            "--querier",
            "--query-interval",
            "2s",
            "--query-response-interval",
            "1s",
            "--last-member-query-interval",
            "3s",
            "--fast-leave",
            &hub,
        ],
    )?;
    let g = ip("239.88.0.1");
    // b keeps the group registered elsewhere (an unregistered group is flooded).
    let mut b = member(&lab, "b")?;
    b.join(g)?;
    v1.join(g)?;
    v2.join(g)?;
    v2.listen(PORT)?;
    wait_entry(&lab, &hub, g, true)?;
    let st = d.wait_status(WAIT, |st| {
        let hosts = st["bridges"][0]["ports"]
            .as_array()?
            .iter()
            .find(|p| p["name"] == hub.as_str())?["groups"]
            .as_array()?
            .iter()
            .find(|x| x["group"] == g.to_string())?["hosts"]
            .as_array()?
            .len();
        (hosts == 2).then_some(())
    });
    ensure!(st.is_ok(), "both viewers should be known: {}", d.status()?);
    // A stream at 20 frames/s across v1's leave and the last-member queries after it.
    let mut s = member(&lab, "s")?;
    let base = v2.count(PORT)?;
    let mut sent = 0u64;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(8) {
        s.send(g, PORT, 1)?;
        sent += 1;
        if sent == 20 {
            v1.leave(g)?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = v2.wait_count(PORT, base + sent, Duration::from_secs(5));
    ensure!(
        got.is_ok(),
        "the second viewer lost frames when the first left: {} of {sent}",
        v2.count(PORT)? - base
    );
    ensure!(entry(&lab, &hub, g)?, "the hub port left while v2 watched");
    // Now v2 is alone: its leave ends the port's membership at once (the normal way takes
    // 6 s), and no frame reaches the port after that.
    let left = Instant::now();
    v2.leave(g)?;
    let took = wait_entry(&lab, &hub, g, false)?;
    println!("fast leave: the port's entry went {took:?} after the leave");
    ensure!(
        left.elapsed() < Duration::from_secs(4),
        "the lone viewer's leave took {:?}: the last-member queries ran",
        left.elapsed()
    );
    let cap = Capture::start(
        lab.host("h").netns(),
        lab.host("h").ifname(),
        &format!("udp and dst host {g}"),
    )?;
    s.send(g, PORT, 10)?;
    expect_receivers(&lab, &mut s, "s", g, &["b"])?;
    let after = cap.stop()?;
    ensure!(
        after.is_empty(),
        "{} frames reached the port after it left",
        after.len()
    );
    d.stop()?;
    Ok(())
}

#[test]
fn flush_forgets_learned_memberships_keeps_static_ones_and_hosts_report_again() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["a", "b"])
        .build()?;
    let (pa, pb) = (
        lab.host("a").port().to_owned(),
        lab.host("b").port().to_owned(),
    );
    let _state = StateFile::of(&lab)?;
    let mut args = vec!["snoop", "br0", "--querier"];
    args.extend_from_slice(FAST);
    let d = Igmpd::spawn(lab.switch().netns(), BIN, &args)?;
    let (ga, gb, gs) = (ip("239.66.0.1"), ip("239.66.0.2"), ip("239.66.0.9"));
    let (ok, out) = cli(&d, &["static", "add", "br0", &pa, &gs.to_string()])?;
    ensure!(ok, "{out}");
    let mut a = member(&lab, "a")?;
    let mut b = member(&lab, "b")?;
    a.join(ga)?;
    b.join(gb)?;
    wait_entry(&lab, &pa, ga, true)?;
    wait_entry(&lab, &pb, gb, true)?;
    // a stops answering queries (its firewall drops them); b still does.
    lab.host("a").nft(&common::hostfw(""))?;
    let cap = Capture::start(
        lab.host("b").netns(),
        lab.host("b").ifname(),
        IGMP_MLD_FILTER,
    )?;
    let (ok, out) = cli(&d, &["flush", "br0"])?;
    ensure!(ok && out.contains("forgotten"), "flush: {out}");
    // a's is forgotten (and a does not answer); b's comes back from b's report to the
    // flush's general query; the static group stayed.
    wait_entry(&lab, &pa, ga, false)?;
    wait_entry(&lab, &pb, gb, true)?;
    ensure!(
        entry(&lab, &pa, gs)?,
        "the static group went with the flush"
    );
    let frames = tshark_capture(&cap, &["igmp.type", "igmp.maddr", "ip.src"])?;
    ensure!(
        frames
            .iter()
            .any(|f| f["igmp.type"] == "0x11" && f["igmp.maddr"] == "0.0.0.0"),
        "no general query reached b after the flush: {frames:?}"
    );
    // One port's one group: out of that port.
    let (ok, out) = cli(
        &d,
        &["flush", "br0", "--port", &pb, "--group", &gb.to_string()],
    )?;
    ensure!(
        ok && out.starts_with("1 learned membership forgotten"),
        "{out}"
    );
    let (ok, out) = cli(&d, &["flush", "br9"])?;
    ensure!(!ok && out.contains("br9"), "{out}");
    let (ok, out) = cli(&d, &["static", "del", "br0", &pa, &gs.to_string()])?;
    ensure!(ok, "{out}");
    d.stop()?;
    Ok(())
}

#[test]
fn a_port_that_comes_up_gets_a_general_query_at_once() -> Result<()> {
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["a", "c"])
        .build()?;
    let pc = lab.host("c").port().to_owned();
    // The default query interval (125 s): after the startup queries (at 0 and 31 s) the
    // next periodic one is far away.
    let d = Igmpd::spawn(lab.switch().netns(), BIN, &["snoop", "br0", "--querier"])?;
    d.wait_status(WAIT, |st| {
        (st["bridges"][0]["querier"]["igmp"]["role"] == "querier").then_some(())
    })
    .or_else(|_| d.wait_status(WAIT, |st| st["bridges"].as_array().map(|_| ())))?;
    let sw = lab.switch().netns();
    sw.ip(&["link", "set", &pc, "down"])?;
    let cap = Capture::start(lab.host("c").netns(), lab.host("c").ifname(), "igmp")?;
    let t0 = std::time::SystemTime::now();
    sw.ip(&["link", "set", &pc, "up"])?;
    // The first general query on c's wire (igmpd's decoder), then tshark on the frames.
    let first = poll_until(Duration::from_secs(20), Duration::from_millis(20), || {
        cap.packets().ok()?.into_iter().find(|p| {
            matches!(
                p.decode().ok().map(|f| f.packet),
                Some(igmpd_wire::Packet::Igmp {
                    igmp: igmpd_wire::IgmpRepr::Query(q),
                    ..
                }) if q.group.is_unspecified()
            )
        })
    })
    .with_context(|| {
        format!(
            "no general query on c's port after it came up\n{}",
            d.log_text()
        )
    })?;
    let frames = tshark_capture(&cap, &["igmp.type", "igmp.maddr", "ip.src"])?;
    ensure!(
        frames
            .iter()
            .any(|f| f["igmp.type"] == "0x11" && f["igmp.maddr"] == "0.0.0.0"),
        "tshark sees no general query: {frames:?}"
    );
    let took = first.time().duration_since(t0).unwrap_or_default();
    println!("a general query reached the port {took:?} after it came up (capture time)");
    ensure!(
        took < Duration::from_secs(15),
        "the query came {took:?} later: the periodic one, not the port's"
    );
    d.stop()?;
    Ok(())
}
