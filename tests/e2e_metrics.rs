//! The metrics endpoint end to end: `igmpd snoop`, `igmpd query` and `igmpd run` with
//! `--metrics-listen` on an address inside a test namespace; the output checked by
//! `promtool check metrics`, the HTTP edges (404, 405, HEAD, a too-long request) with
//! curl, and a real Prometheus server, started in the same namespace with a temporary
//! config and storage directory and a 1 s scrape interval, seeing a counter move after a
//! real host joins.
//!
//! Needs `prometheus` and `promtool` (Debian package `prometheus`, scripts/install-deps.sh);
//! without them the tests say so and pass.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use igmpd_netns_tests::{poll_until, BridgeConfig, IgmpVersion, Igmpd, Lab, Netns};
use serde_json::Value;

mod common;
use common::{member, snoop, v3_bridge, BIN, WAIT};

/// Where the daemon listens, in the test's switch namespace.
const LISTEN: &str = "127.0.0.1:9654";

/// Why these tests cannot run here, if they cannot.
fn missing_prometheus() -> Option<String> {
    ["prometheus", "promtool"].iter().find_map(|tool| {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        (!found).then(|| {
            format!(
                "{tool} not found: install the Debian package prometheus (scripts/install-deps.sh)"
            )
        })
    })
}

macro_rules! need_prometheus {
    () => {
        if let Some(why) = missing_prometheus() {
            eprintln!("skipped: {why}");
            return Ok(());
        }
    };
}

/// `curl` in `ns`: the HTTP status, the headers and the body of `method url`.
fn curl(ns: &Netns, method: &str, url: &str) -> Result<(u16, String, String)> {
    let dir = TempDir::new("curl")?;
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let mut argv = vec![
        "curl",
        "-sS",
        "--max-time",
        "10",
        "-o",
        body.to_str().context("utf-8")?,
        "-D",
        headers.to_str().context("utf-8")?,
        "-w",
        "%{http_code}",
    ];
    if method == "HEAD" {
        argv.push("-I");
    } else {
        argv.extend_from_slice(&["-X", method]);
    }
    argv.push(url);
    let code = ns.exec_ok(&argv)?;
    let code: u16 = code
        .trim()
        .parse()
        .with_context(|| format!("curl said {code}"))?;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    Ok((code, read(&headers), read(&body)))
}

/// The document at `http://addr/metrics` from inside `ns`, checked: 200, the 0.0.4
/// content type, and `promtool check metrics` finds nothing to say about it.
fn scrape(ns: &Netns, addr: &str) -> Result<String> {
    let (code, headers, body) = curl(ns, "GET", &format!("http://{addr}/metrics"))?;
    ensure!(code == 200, "GET /metrics: {code}\n{headers}{body}");
    ensure!(
        headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{headers}"
    );
    let dir = TempDir::new("promtool")?;
    let file = dir.path().join("metrics.txt");
    std::fs::write(&file, &body)?;
    // promtool reads the document on stdin; a lint problem is a non-zero exit.
    let out = ns.exec(&[
        "sh",
        "-c",
        &format!("promtool check metrics < '{}' 2>&1", file.display()),
    ])?;
    ensure!(
        out.status.success(),
        "promtool check metrics: {}\n{body}",
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(body)
}

/// The value of the sample whose name and labels are `series` exactly.
fn sample(doc: &str, series: &str) -> Option<u64> {
    doc.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> Result<TempDir> {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("igt-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p)?;
        Ok(TempDir(p))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Prometheus server in a namespace, scraping `target` every second, with its config
/// and storage in a temporary directory. Stopped by PID (SIGTERM, then SIGKILL) and its
/// directory removed on drop.
struct Prometheus {
    child: Option<igmpd_netns_tests::NsChild>,
    api: String,
    ns_name: String,
    _dir: TempDir,
}

impl Prometheus {
    fn start(ns: &Netns, target: &str, listen: &str) -> Result<Prometheus> {
        let dir = TempDir::new("prometheus")?;
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: igmpd\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )?;
        let data = dir.path().join("data");
        let child = ns.spawn(&[
            "prometheus",
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", data.display()),
            &format!("--web.listen-address={listen}"),
            "--log.level=warn",
        ])?;
        let p = Prometheus {
            child: Some(child),
            api: format!("http://{listen}/api/v1/query"),
            ns_name: ns.name().to_owned(),
            _dir: dir,
        };
        Ok(p)
    }

    /// The value of instant query `q` (its first series), None while it has none.
    fn query(&self, ns: &Netns, q: &str) -> Result<Option<f64>> {
        let out = ns.exec_ok(&[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "-G",
            &self.api,
            "--data-urlencode",
            &format!("query={q}"),
        ])?;
        let v: Value = serde_json::from_str(&out).with_context(|| format!("API said {out}"))?;
        ensure!(v["status"] == "success", "{q}: {out}");
        Ok(v["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|s| s.parse().ok()))
    }

    /// Waits (bounded) until query `q` has a value that `ok` takes.
    fn wait(
        &self,
        ns: &Netns,
        q: &str,
        timeout: Duration,
        ok: impl Fn(f64) -> bool,
    ) -> Result<f64> {
        let mut last = Err(anyhow::anyhow!("not asked"));
        let got = poll_until(timeout, Duration::from_millis(250), || {
            if let Some(c) = &self.child {
                if let Ok(Some(status)) = c.try_wait() {
                    last = Err(anyhow::anyhow!("prometheus exited: {status}"));
                    return Some(None);
                }
            }
            last = self.query(ns, q);
            match &last {
                Ok(Some(v)) if ok(*v) => Some(Some(*v)),
                _ => None,
            }
        });
        match got {
            Ok(Some(v)) => Ok(v),
            _ => bail!("prometheus in {}: {q} did not come: {last:?}", self.ns_name),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            let _ = c.signal(libc::SIGTERM);
            if !matches!(c.wait_timeout(Duration::from_secs(10)), Ok(Some(_))) {
                let _ = c.kill();
            }
        }
    }
}

#[test]
fn a_real_prometheus_scrapes_snoop_and_sees_the_reports_counter_move_after_a_join() -> Result<()> {
    need_prometheus!();
    let lab = Lab::builder()
        .bridge(v3_bridge())
        .hosts(&["s", "a"])
        .build()?;
    let d = snoop(&lab, &["--querier", "--metrics-listen", LISTEN])?;
    let ns = lab.switch().netns();
    let port = lab.host("a").port().to_owned();
    let doc = scrape(ns, LISTEN)?;
    for series in [
        r#"igmpd_bridge_up{bridge="br0"}"#.to_owned(),
        r#"igmpd_bridge_active{bridge="br0"}"#.to_owned(),
        format!(r#"igmpd_port_up{{bridge="br0",port="{port}"}}"#),
    ] {
        ensure!(sample(&doc, &series) == Some(1), "{series} in\n{doc}");
    }
    ensure!(
        doc.contains(
            r#"igmpd_bridge_querier_info{bridge="br0",vlan="0",family="igmp",role="querier""#
        ),
        "{doc}"
    );

    let prom = Prometheus::start(ns, LISTEN, "127.0.0.1:9090")?;
    prom.wait(ns, r#"up{job="igmpd"}"#, Duration::from_secs(60), |v| {
        v == 1.0
    })?;
    let reports = format!(
        r#"sum(igmpd_port_reports_received_total{{bridge="br0",port="{port}",family="igmp"}}) or vector(0)"#
    );
    let before = prom.wait(ns, &reports, WAIT, |_| true)?;
    let mut a = member(&lab, "a")?;
    let g: std::net::IpAddr = "239.20.0.1".parse()?;
    a.join(g)?;
    let after = prom.wait(ns, &reports, WAIT, |v| v > before)?;
    let memberships =
        format!(r#"igmpd_port_memberships{{bridge="br0",port="{port}",vlan="0",family="igmp"}}"#);
    prom.wait(ns, &memberships, WAIT, |v| v >= 1.0)?;
    // The same counter as igmpd's own document has it, and the MDB writes with it.
    let doc = scrape(ns, LISTEN)?;
    let now = sample(
        &doc,
        &format!(r#"igmpd_port_reports_received_total{{bridge="br0",port="{port}",vlan="0",family="igmp"}}"#),
    )
    .context("reports counter")?;
    ensure!(now as f64 >= after, "{now} < {after}");
    ensure!(
        sample(&doc, r#"igmpd_bridge_mdb_writes_total{bridge="br0"}"#) >= Some(1),
        "{doc}"
    );
    eprintln!("reports on {port}: {before} before the join, {after} after (Prometheus)");
    drop(prom);
    d.stop()?;
    Ok(())
}

#[test]
fn the_endpoint_answers_head_and_refuses_other_paths_methods_and_long_requests() -> Result<()> {
    need_prometheus!();
    let lab = Lab::builder().bridge(v3_bridge()).hosts(&["a"]).build()?;
    let d = snoop(&lab, &["--metrics-listen", LISTEN])?;
    let ns = lab.switch().netns();
    let url = format!("http://{LISTEN}/metrics");
    let (code, headers, body) = curl(ns, "HEAD", &url)?;
    // (curl -I writes the headers where the body would go.)
    ensure!(
        code == 200 && !body.contains("igmpd_"),
        "HEAD: {code} {headers} {body}"
    );
    ensure!(
        headers.to_ascii_lowercase().contains("content-length: "),
        "{headers}"
    );
    let (code, _, _) = curl(ns, "GET", &format!("http://{LISTEN}/"))?;
    ensure!(code == 404, "GET /: {code}");
    let (code, headers, _) = curl(ns, "POST", &url)?;
    ensure!(code == 405, "POST: {code}");
    ensure!(headers.contains("Allow: GET, HEAD"), "{headers}");
    // A head longer than 8 KiB: refused, the daemon goes on.
    let long = format!("X-Long: {}", "a".repeat(9000));
    let (code, _, _) = {
        let out = ns.exec_ok(&[
            "curl",
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &long,
            &url,
        ])?;
        (out.trim().parse::<u16>()?, (), ())
    };
    ensure!(code == 431, "long request: {code}");
    // Garbage gets a 400; clients that connect and send nothing take every slot until
    // the read timeout drops them, and the scrape after them is still answered.
    let (bad, idle) = igmpd_netns_tests::in_netns(ns.name(), || {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(LISTEN)?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        c.write_all(b"NOT HTTP\r\n\r\n")?;
        let mut reply = String::new();
        c.read_to_string(&mut reply)?;
        let idle: Vec<std::net::TcpStream> = (0..6)
            .map(|_| std::net::TcpStream::connect(LISTEN))
            .collect::<std::io::Result<_>>()?;
        Ok((reply, idle))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    ensure!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    let t0 = Instant::now();
    scrape(ns, LISTEN)?;
    eprintln!(
        "a scrape behind {} idle connections took {:?}",
        idle.len(),
        t0.elapsed()
    );
    drop(idle);
    d.stop()?;
    Ok(())
}

#[test]
fn query_serves_its_interfaces_on_ipv6_loopback_and_a_busy_address_stops_it_at_start() -> Result<()>
{
    need_prometheus!();
    let lab = Lab::builder().bridge(v3_bridge()).hosts(&["a"]).build()?;
    let host = lab.host("a");
    let ns = host.netns();
    let q = Igmpd::spawn(
        ns,
        BIN,
        &["query", "eth0", "--metrics-listen", "[::1]:9654"],
    )?;
    let doc = scrape(ns, "[::1]:9654")?;
    ensure!(
        sample(&doc, r#"igmpd_interface_up{iface="eth0"}"#) == Some(1),
        "{doc}"
    );
    ensure!(
        doc.contains(r#"igmpd_querier_info{iface="eth0",family="igmp",role="#),
        "{doc}"
    );
    // The startup queries count.
    let sent = r#"igmpd_querier_queries_sent_total{iface="eth0",family="igmp"}"#;
    poll_until(WAIT, Duration::from_millis(100), || {
        (sample(&scrape(ns, "[::1]:9654").ok()?, sent)? >= 1).then_some(())
    })
    .context("no query counted")?;
    // A second daemon on the same address: a clear error, at once.
    let t0 = Instant::now();
    let err = Igmpd::spawn(
        ns,
        BIN,
        &["query", "eth0", "--metrics-listen", "[::1]:9654"],
    )
    .err()
    .context("a second igmpd started on a busy metrics address")?;
    let msg = format!("{err:#}");
    ensure!(
        msg.contains("cannot listen for metrics on [::1]:9654"),
        "{msg}"
    );
    ensure!(t0.elapsed() < WAIT, "took {:?}", t0.elapsed());
    q.stop()?;
    Ok(())
}

#[test]
fn run_serves_its_bridges_and_querier_interfaces_on_one_endpoint() -> Result<()> {
    need_prometheus!();
    let lab = Lab::builder().bridge(v3_bridge()).hosts(&["a"]).build()?;
    let ns = lab.switch().netns();
    // A querier interface next to the bridge in the switch (a veth pair: this kernel has
    // no dummy interfaces).
    ns.ip(&["link", "add", "q0", "type", "veth", "peer", "name", "q1"])?;
    ns.ip(&["link", "set", "q0", "up"])?;
    ns.ip(&["link", "set", "q1", "up"])?;
    let dir = TempDir::new("run")?;
    let config = dir.path().join("igmpd.toml");
    std::fs::write(
        &config,
        format!("metrics_listen = \"{LISTEN}\"\n[interface.q0]\n[bridge.br0]\nquerier = true\n"),
    )?;
    let d = Igmpd::spawn(
        ns,
        BIN,
        &["run", "--config", config.to_str().context("utf-8")?],
    )?;
    let doc = scrape(ns, LISTEN)?;
    ensure!(
        sample(&doc, r#"igmpd_interface_up{iface="q0"}"#) == Some(1),
        "{doc}"
    );
    ensure!(
        sample(&doc, r#"igmpd_bridge_active{bridge="br0"}"#) == Some(1),
        "{doc}"
    );
    d.stop()?;
    Ok(())
}

/// One scrape from a thread in `ns`'s namespace: (time to the whole reply, its bytes).
fn timed_scrapes(ns: &Netns, n: usize) -> Result<Vec<(Duration, usize)>> {
    igmpd_netns_tests::in_netns(ns.name(), move || {
        use std::io::{Read, Write};
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            let mut c = std::net::TcpStream::connect(LISTEN)?;
            c.set_read_timeout(Some(Duration::from_secs(10)))?;
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: igmpd\r\n\r\n")?;
            let mut reply = Vec::new();
            c.read_to_end(&mut reply)?;
            ensure!(reply.starts_with(b"HTTP/1.1 200 "), "no 200");
            out.push((t0.elapsed(), reply.len()));
        }
        Ok(out)
    })
    .join()
    .map_err(|_| anyhow::anyhow!("scrape thread panicked"))?
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// How long one join of a second port takes to show in the MDB, `n` times.
fn join_latencies(lab: &Lab, host: &str, base: u8, n: u8) -> Result<Vec<Duration>> {
    let port = lab.host(host).port().to_owned();
    let mut m = member(lab, host)?;
    let mut out = Vec::new();
    for i in 0..n {
        let g = std::net::IpAddr::V4(std::net::Ipv4Addr::new(239, 50, base, i));
        let t0 = Instant::now();
        m.join(g)?;
        let (ns, gs) = (lab.switch().netns(), g.to_string());
        poll_until(WAIT, Duration::from_millis(2), || {
            let out = ns
                .exec_ok(&["bridge", "mdb", "get", "dev", "br0", "grp", &gs])
                .ok()?;
            out.contains(&port).then_some(())
        })
        .with_context(|| format!("{g} on {port}"))?;
        out.push(t0.elapsed());
    }
    Ok(out)
}

/// Measurement (printed, not asserted; `cargo test --test e2e_metrics -- --ignored`):
/// scrape time and size with 10 000 groups on one port, and a second port's join
/// latency with and without a scrape loop running.
#[test]
#[ignore = "measurement: run with --ignored"]
fn measure_scrapes_of_10000_groups_and_a_second_ports_joins() -> Result<()> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping().igmp_version(IgmpVersion::V3))
        .bridge_ipv4(true)
        .hosts(&["flood", "a"])
        .build()?;
    let d = snoop(
        &lab,
        &[
            "--metrics-listen",
            LISTEN,
            "--raise-hash-max",
            "16384",
            "--max-groups",
            "12000",
        ],
    )?;
    let ns = lab.switch().netns();
    let fport = lab.host("flood").port().to_owned();
    let mut f = member(&lab, "flood")?;
    let series =
        format!(r#"igmpd_port_memberships{{bridge="br0",port="{fport}",vlan="0",family="igmp"}}"#);
    // The ring may drop some of a flood: offer the groups until 10 000 are held.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut held = 0;
    while held < 10_000 {
        ensure!(Instant::now() < deadline, "only {held} groups held");
        for (b, n) in [(100u8, 4000), (116, 4000), (132, 2000)] {
            f.flood_igmp(std::net::Ipv4Addr::new(239, b, 0, 0), n)?;
        }
        held = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
            sample(&scrape(ns, LISTEN).ok()?, &series)
        })
        .unwrap_or(0);
    }
    let scrapes = timed_scrapes(ns, 50)?;
    let size = scrapes[0].1;
    let t = median(scrapes.iter().map(|s| s.0).collect());
    let (st, _) = d.status_timed()?;
    eprintln!(
        "10 000 groups on {fport} ({held} held): scrape median {t:?} of 50, {size} bytes; one status --json took {st:?}"
    );

    // The flood's MDB writes done: the writes counter holds still for a second.
    let writes = r#"igmpd_bridge_mdb_writes_total{bridge="br0"}"#;
    let mut last = None;
    poll_until(Duration::from_secs(60), Duration::from_secs(1), || {
        let now = sample(&scrape(ns, LISTEN).ok()?, writes);
        let still = now.is_some() && now == last;
        last = now;
        still.then_some(())
    })
    .context("MDB writes did not settle")?;
    let quiet = join_latencies(&lab, "a", 0, 20)?;
    // Now with a scrape loop (as fast as one client goes) during the joins.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = {
        let stop = stop.clone();
        igmpd_netns_tests::in_netns(ns.name(), move || {
            use std::io::{Read, Write};
            let mut n = 0u64;
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < until {
                let mut c = std::net::TcpStream::connect(LISTEN)?;
                c.set_read_timeout(Some(Duration::from_secs(10)))?;
                c.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")?;
                let mut reply = Vec::new();
                c.read_to_end(&mut reply)?;
                n += 1;
            }
            Ok(n)
        })
    };
    let busy = join_latencies(&lab, "a", 1, 20);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = looping
        .join()
        .map_err(|_| anyhow::anyhow!("scrape loop panicked"))??;
    let busy = busy?;
    let quiet_again = join_latencies(&lab, "a", 2, 20)?;
    eprintln!(
        "second port's join -> MDB entry (bridge mdb get every 2 ms), median of 20: {:?} quiet, {:?} during {n} back-to-back scrapes, {:?} quiet again",
        median(quiet),
        median(busy),
        median(quiet_again)
    );
    d.stop()?;
    Ok(())
}
