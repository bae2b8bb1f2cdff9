//! `igmpd monitor` end to end: the real binary as daemon and as client, real hosts joining
//! and leaving through a snooping bridge, a second querier coming and going, and a client
//! that never reads while others go on.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use igmpd_netns_tests::{poll_until, BridgeConfig, IgmpVersion, Igmpd, Lab};

mod common;
use common::monitor::{connected, Monitor};
use common::{member, snoop, BIN, FAST, WAIT};

fn lab(hosts: &[&str]) -> Result<Lab> {
    Lab::builder()
        .bridge(BridgeConfig::snooping().igmp_version(IgmpVersion::V3))
        .bridge_ipv4(true)
        .hosts(hosts)
        .build()
}

#[test]
fn a_join_and_a_leave_reach_two_clients_at_once() -> Result<()> {
    let lab = lab(&["a", "b"])?;
    let d = snoop(&lab, &["--querier", "--no-mld"])?;
    let json = Monitor::start(&d, true, 1)?;
    let text = Monitor::start(&d, false, 2)?;
    let port = lab.host("a").port().to_owned();
    let host = lab.host("a").ipv4().to_string();
    let g: IpAddr = "239.9.0.1".parse()?;
    let mut a = member(&lab, "a")?;
    a.join(g)?;
    let join = json.event_where(WAIT, |e| e["event"] == "join" && e["group"] == "239.9.0.1")?;
    ensure!(
        join["bridge"] == "br0"
            && join["port"] == port.as_str()
            && join["host"] == host.as_str()
            && join["family"] == "ipv4"
            && join.get("vid").is_none()
            && join.get("reason").is_none(),
        "{join}"
    );
    let want = format!(" join bridge br0 port {port} group 239.9.0.1 host {host} family ipv4");
    text.line_where(WAIT, |l| l.ends_with(&want))
        .with_context(|| format!("the text client should print ...{want}"))?;
    // The host leaves (TO_IN({})); igmpd's last-member queries go unanswered.
    a.leave(g)?;
    let leave = json.event_where(WAIT, |e| e["event"] == "leave" && e["group"] == "239.9.0.1")?;
    ensure!(
        leave["port"] == port.as_str()
            && leave["reason"] == "last-member-query"
            && leave["family"] == "ipv4",
        "{leave}"
    );
    text.line_where(WAIT, |l| {
        l.contains(" leave bridge br0 port ") && l.contains("239.9.0.1")
    })
    .context("the text client should print the leave")?;
    // A source-specific join (IGMPv3 ALLOW) is the source's join.
    a.join_source("232.9.0.1".parse()?, "10.9.9.9".parse()?)?;
    let ssm = json.event_where(WAIT, |e| e["event"] == "join" && e["group"] == "232.9.0.1")?;
    ensure!(
        ssm["source"] == "10.9.9.9" && ssm["port"] == port.as_str() && ssm["host"] == host.as_str(),
        "{ssm}"
    );
    Ok(())
}

#[test]
fn a_lower_querier_coming_and_going_is_querier_lost_then_elected() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&["r1", "r2"])
        .build()?;
    let (low, high) = (lab.host("r1").ipv4(), lab.host("r2").ipv4());
    ensure!(low < high);
    let args = || {
        let mut v = vec!["query", "eth0", "--no-mld"];
        v.extend_from_slice(FAST);
        v
    };
    let d2 = Igmpd::spawn(lab.host("r2").netns(), BIN, &args())?;
    d2.wait_status(WAIT, |s| {
        (s["interfaces"][0]["igmp"]["role"] == "querier").then_some(())
    })?;
    let mut m = Monitor::start(&d2, true, 1)?;
    let d1 = Igmpd::spawn(lab.host("r1").netns(), BIN, &args())?;
    let lost = m.event_where(WAIT, |e| e["event"] == "querier-lost")?;
    ensure!(
        lost["interface"] == "eth0"
            && lost["querier"] == low.to_string().as_str()
            && lost["role"] == "non-querier"
            && lost["family"] == "ipv4",
        "{lost}"
    );
    // The lower querier dies without a goodbye: after the Other Querier Present Interval
    // igmpd takes over.
    d1.kill()?;
    let elected = m.event_where(WAIT, |e| e["event"] == "querier-elected")?;
    ensure!(
        elected["interface"] == "eth0"
            && elected["querier"] == high.to_string().as_str()
            && elected["role"] == "querier"
            && elected["family"] == "ipv4",
        "{elected}"
    );
    // The daemon ends: so does the stream, and the client with success.
    d2.stop()?;
    let status = m.ended()?;
    ensure!(status.success(), "{status}");
    Ok(())
}

/// Counts the joins of `port` within 239.60.0.0/16 in `m`'s lines until there are `n`
/// (or WAIT passed); how many.
fn flood_joins(m: &Monitor, port: &str, n: usize) -> usize {
    let end = Instant::now() + WAIT;
    let mut seen = 0;
    while seen < n {
        let Some(left) = end.checked_duration_since(Instant::now()) else {
            break;
        };
        let join = m.line_where(left, |l| {
            l.contains("\"event\":\"join\"")
                && l.contains(&format!("\"port\":\"{port}\""))
                && l.contains("\"group\":\"239.60.")
        });
        if join.is_none() {
            break;
        }
        seen += 1;
    }
    seen
}

#[test]
fn a_client_that_never_reads_is_dropped_and_the_others_go_on() -> Result<()> {
    let lab = lab(&["a", "b"])?;
    // Room in the MDB for the flood's groups.
    lab.switch().netns().ip(&[
        "link",
        "set",
        "br0",
        "type",
        "bridge",
        "mcast_hash_max",
        "65536",
    ])?;
    // The default timers: the flood's memberships outlast the test.
    let d = Igmpd::spawn(lab.switch().netns(), BIN, &["snoop", "br0", "--no-mld"])?;
    // The slow client: asks for the stream, then never reads.
    let mut slow = UnixStream::connect(d.control_socket())?;
    slow.write_all(b"{\"command\":\"monitor\",\"format\":\"json\"}\n")?;
    connected(&d, 1)?;
    let fast = Monitor::start(&d, true, 2)?;
    let aport = lab.host("a").port().to_owned();
    // 3 500 joins (below a client's queue of 4 096, so a reading client never lags), some
    // 600 KB of lines: more than the slow client's socket holds.
    let mut a = member(&lab, "a")?;
    a.flood_igmp(Ipv4Addr::new(239, 60, 0, 1), 3_500)?;
    // Status answers while the slow client's socket is full: nothing waits for it (a
    // flooded daemon under emulation may take a while: asked again until WAIT).
    let t0 = Instant::now();
    d.wait_status(WAIT, |_| Some(()))?;
    eprintln!("status during the flood: {:?}", t0.elapsed());
    poll_until(WAIT, Duration::from_millis(50), || {
        d.log_text()
            .contains("monitor client dropped")
            .then_some(())
    })
    .with_context(|| format!("the slow client was not dropped: {}", d.log_text()))?;
    // Its connection is closed: reading what it holds ends at EOF.
    slow.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut held = Vec::new();
    slow.read_to_end(&mut held)
        .context("the daemon should have closed the slow client's connection")?;
    eprintln!("the slow client held {} bytes", held.len());
    // The reading client got every join igmpd made (as many as the MDB has on a's port).
    let n = lab
        .mdb()?
        .iter()
        .filter(|e| {
            e.port == aport && matches!(e.group, IpAddr::V4(g) if g.octets()[..2] == [239, 60])
        })
        .count();
    ensure!(n > 1_000, "the flood made only {n} entries");
    let seen = flood_joins(&fast, &aport, n);
    if seen < n {
        bail!("the reading client saw {seen} of {n} joins");
    }
    eprintln!("the reading client saw {seen} joins; the MDB has {n}");
    // It still gets events, and so does a new client.
    let late = Monitor::start(&d, true, 3)?;
    let mut b = member(&lab, "b")?;
    b.join("239.61.0.1".parse()?)?;
    for m in [&fast, &late] {
        m.event_where(WAIT, |e| e["event"] == "join" && e["group"] == "239.61.0.1")?;
    }
    Ok(())
}

#[test]
fn igmpd_run_merges_its_bridges_and_its_querier_into_one_stream() -> Result<()> {
    let lab = lab(&["a"])?;
    let ns = lab.switch().netns();
    // A querier interface beside the bridge, in the switch's namespace: a veth pair whose
    // far end has a host application.
    ns.ip_batch(
        "link add qv0 type veth peer name qv1\n\
         addr add 10.77.0.1/24 dev qv0\n\
         addr add 10.77.0.2/24 dev qv1\n\
         link set qv0 up\n\
         link set qv1 up\n",
    )?;
    let dir = std::env::temp_dir().join(format!("igmpd-monitor-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let cfg = dir.join("igmpd.toml");
    std::fs::write(
        &cfg,
        "[defaults]\nquery_interval = \"2s\"\nquery_response_interval = \"1s\"\nno_mld = true\n\
         [bridge.br0]\nquerier = true\n[interface.qv0]\n",
    )?;
    let d = Igmpd::spawn(ns, BIN, &["run", "--config", cfg.to_str().context("utf8")?]);
    let _ = std::fs::remove_dir_all(&dir);
    let d = d?;
    let m = Monitor::start(&d, true, 1)?;
    let mut a = member(&lab, "a")?;
    a.join("239.62.0.1".parse()?)?;
    let mut q = igmpd_netns_tests::Member::spawn_in(
        ns,
        "qv1",
        igmpd_netns_tests::Member::locate_binary()?,
    )?;
    q.join("239.62.0.2".parse()?)?;
    let (mut bridge, mut iface) = (None, None);
    m.event_where(WAIT, |e| {
        if e["event"] == "join" && e["group"] == "239.62.0.1" {
            bridge = Some(e.clone());
        }
        if e["event"] == "join" && e["group"] == "239.62.0.2" {
            iface = Some(e.clone());
        }
        bridge.is_some() && iface.is_some()
    })
    .with_context(|| format!("bridge join {bridge:?}, interface join {iface:?}"))?;
    let (bridge, iface) = (bridge.unwrap_or_default(), iface.unwrap_or_default());
    ensure!(
        bridge["bridge"] == "br0" && bridge["port"] == lab.host("a").port(),
        "{bridge}"
    );
    ensure!(
        iface["interface"] == "qv0" && iface["host"] == "10.77.0.2" && iface.get("port").is_none(),
        "{iface}"
    );
    Ok(())
}

#[test]
fn router_ports_and_findings_come_and_go_and_a_closed_pipe_ends_the_client_quietly() -> Result<()> {
    let lab = lab(&["m", "r"])?;
    // No querier: `snooping-without-querier` is raised after the Other Querier Present
    // Interval (2 x 2 s + 0.5 s).
    let d = snoop(&lab, &["--no-mld"])?;
    let m = Monitor::start(&d, true, 1)?;
    let mport = lab.host("m").port().to_owned();
    // An MRD advertisement (interval 2 s): a router port for 3 x 2 s, then not.
    let mut adv = member(&lab, "m")?;
    adv.mrd_advertise(lab.host("m").ipv4(), 2)?;
    // They come in any order (the finding at 4.5 s, the router port's end at 6 s).
    let (mut up, mut down, mut raised) = (None, None, None);
    m.event_where(WAIT, |e| {
        let slot = match e["event"].as_str() {
            Some("router-port-up") => &mut up,
            Some("router-port-down") if up.is_some() => &mut down,
            Some("finding-raised") if e["code"] == "snooping-without-querier" => &mut raised,
            _ => return false,
        };
        slot.get_or_insert_with(|| e.clone());
        up.is_some() && down.is_some() && raised.is_some()
    })
    .with_context(|| format!("up {up:?}, down {down:?}, raised {raised:?}"))?;
    let (up, down, raised) = (
        up.unwrap_or_default(),
        down.unwrap_or_default(),
        raised.unwrap_or_default(),
    );
    ensure!(
        up["port"] == mport.as_str() && up["bridge"] == "br0",
        "{up}"
    );
    ensure!(down["port"] == mport.as_str(), "{down}");
    ensure!(
        raised["bridge"] == "br0"
            && raised["severity"].is_string()
            && raised["message"].as_str().is_some_and(|s| !s.is_empty()),
        "{raised}"
    );
    // A querier appears on the LAN: the finding clears.
    let _q = Igmpd::spawn(lab.host("r").netns(), BIN, &{
        let mut v = vec!["query", "eth0", "--no-mld"];
        v.extend_from_slice(FAST);
        v
    })?;
    m.event_where(WAIT, |e| {
        e["event"] == "finding-cleared" && e["code"] == "snooping-without-querier"
    })
    .context("finding-cleared")?;
    // A reader that goes away (`igmpd monitor | head -1`): the client ends at its next
    // line, quietly and successfully.
    let socket = d.control_socket().to_str().context("socket path")?;
    let mut child = Command::new(BIN)
        .args(["monitor", "--control-socket", socket])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    connected(&d, 2)?;
    drop(child.stdout.take());
    let mut joiner = member(&lab, "m")?;
    let mut exited = None;
    for i in 1..=20u8 {
        joiner.join(IpAddr::V4(Ipv4Addr::new(239, 63, 0, i)))?;
        exited = poll_until(
            Duration::from_millis(500),
            Duration::from_millis(20),
            || child.try_wait().ok().flatten(),
        )
        .ok();
        if exited.is_some() {
            break;
        }
    }
    let Some(status) = exited else {
        let _ = child.kill();
        let _ = child.wait();
        bail!("igmpd monitor did not end after its reader went");
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .context("stderr")?
        .read_to_string(&mut err)?;
    ensure!(status.success() && err.is_empty(), "{status}: {err}");
    Ok(())
}
