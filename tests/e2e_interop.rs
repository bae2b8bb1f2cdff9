//! Interop with independent IGMP queriers: FRR 8.4's pimd and troglobit pimd 2.3.2, real
//! routers' implementations run inside the lab's namespaces. Querier election must agree
//! in both directions:
//!
//! - the peer has the lower address: it stays querier, igmpd (higher) shows `non-querier`
//!   with the peer as `querier_address`, adopts the QRV and QQIC the peer sends in its
//!   IGMPv3 queries, and sends no general queries of its own;
//! - igmpd has the lower address: igmpd stays `querier`, and the peer reports igmpd as the
//!   querier (FRR through its vty, troglobit pimd in its IGMP debug log) and stops sending
//!   general queries (seen in a capture on a third host).
//!
//! Both pimds need the kernel's IPv4 multicast routing (MRT_INIT) to run their IGMP; on a
//! kernel without it (this machine's) the tests that need the peer to hear igmpd skip with
//! the reason, and `scripts/vm-test.sh` runs them on Debian's kernels.
//!
//! The peers come from `scripts/install-deps.sh` (FRR from apt, troglobit pimd unpacked
//! into a cache directory); see `igmpd_netns_tests::FrrPimd` and `TroglobitPimd`.
//!
//! Lab hosts get addresses in the order they are declared (.1, .2, ...): declaring the peer
//! first makes it the lower address. troglobit pimd reads its address only at start, so
//! this is also the only reliable way to set it.

use std::net::Ipv4Addr;
use std::time::{Duration, SystemTime};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::{poll_until, BridgeConfig, FrrIgmp, FrrPimd, Igmpd, Lab, TroglobitPimd};
use igmpd_wire::{IgmpQuery, IgmpRepr, Packet};

const BIN: &str = env!("CARGO_BIN_EXE_igmpd");

/// Whether the kernel does IPv4 multicast routing (`/proc/net/ip_mr_vif` exists: ipmr is
/// built in or loaded); says why the test skips when it does not.
fn multicast_routing(test: &str) -> bool {
    let on = std::path::Path::new("/proc/net/ip_mr_vif").exists();
    if !on {
        eprintln!(
            "SKIP {test}: this kernel has no IPv4 multicast routing (no /proc/net/ip_mr_vif), which the pimd peers need for their IGMP; scripts/vm-test.sh runs it on Debian's kernels"
        );
    }
    on
}
/// igmpd's own settings: short timers, and a robustness and query interval that differ
/// from what the peers are configured with, so that adopting the peer's values shows.
const IGMPD_ARGS: &[&str] = &[
    "query",
    "eth0",
    "--no-mld",
    "--query-interval",
    "2s",
    "--query-response-interval",
    "1s",
    "--robustness",
    "3",
];
const IGMPD_QI_MS: u64 = 2000;
const IGMPD_QRV: u64 = 3;
/// Bound for every election wait (a loaded 2-core machine runs other labs meanwhile).
const WAIT: Duration = Duration::from_secs(30);

/// FRR's timers: query interval 3 s, max response time 1 s.
const FRR_QI_S: u32 = 3;
/// troglobit pimd runs its IGMP timers in 5 s steps: a 5 s query interval is what it
/// both advertises (QQIC) and does. Querier timeout well above 2 of igmpd's 2 s intervals.
const PIMD_QI_S: u32 = 5;
const PIMD_QUERIER_TIMEOUT_S: u32 = 15;

/// General queries (group 0.0.0.0) from `src` in `cap`, with their capture times.
fn general_queries_from(cap: &Capture, src: Ipv4Addr) -> Result<Vec<(SystemTime, IgmpQuery)>> {
    Ok(cap
        .packets()?
        .into_iter()
        .filter_map(|p| {
            let f = p.decode().ok()?;
            match f.packet {
                Packet::Igmp {
                    ip,
                    igmp: IgmpRepr::Query(q),
                } if ip.src == src && q.group.is_unspecified() => Some((p.time(), q)),
                _ => None,
            }
        })
        .collect())
}

/// The `igmp` section of igmpd's first interface.
fn igmp(s: &serde_json::Value) -> &serde_json::Value {
    &s["interfaces"][0]["igmp"]
}

/// Peer below igmpd: waits until igmpd is a non-querier following `peer` and has adopted
/// the QRV and QQIC of the peer's latest IGMPv3 general query (read from the wire in
/// `cap`), then checks that igmpd stays silent for two of the peer's intervals while the
/// peer keeps querying.
///
/// The peer's QQIC must differ from igmpd's own interval, and so must its QRV when
/// `distinct_qrv` (FRR 8.4 copies the QRV of every query it hears, igmpd's startup queries
/// included, so what it advertises soon equals igmpd's own robustness).
fn igmpd_follows_lower_peer(
    d: &Igmpd,
    cap: &Capture,
    peer: Ipv4Addr,
    igmpd_addr: Ipv4Addr,
    peer_qi: Duration,
    distinct_qrv: bool,
) -> Result<()> {
    let latest = || -> Result<IgmpQuery> {
        let (_, q) = general_queries_from(cap, peer)?
            .pop()
            .with_context(|| format!("no general query from the peer {peer} yet"))?;
        ensure!(
            q.version == igmpd_wire::IgmpVersion::V3 && q.qqic < 128,
            "peer should send IGMPv3 queries with a QQIC in plain seconds: {q:?}"
        );
        Ok(q)
    };
    poll_until(WAIT, Duration::from_millis(50), || latest().ok())
        .map_err(|_| anyhow::anyhow!("no general query from the peer {peer}"))?;
    let mut seen = None;
    let (qrv, qi_ms) = d
        .wait_status(WAIT, |s| {
            let q = latest().ok()?;
            // QQIC below 128 is the interval in seconds as is (RFC 9776 §4.1.7).
            let (qrv, qi_ms) = (u64::from(q.qrv), u64::from(q.qqic) * 1000);
            seen = Some((qrv, qi_ms));
            let i = igmp(s);
            (i["role"] == "non-querier"
                && i["querier_address"] == peer.to_string().as_str()
                && i["robustness"] == qrv
                && i["query_interval_ms"] == qi_ms)
                .then_some((qrv, qi_ms))
        })
        .with_context(|| {
            format!("igmpd should follow {peer} and adopt the QRV / QQI (ms) it sends: {seen:?}")
        })?;
    ensure!(
        qi_ms != IGMPD_QI_MS && (!distinct_qrv || qrv != IGMPD_QRV),
        "the peer's QRV {qrv} / QQI {qi_ms} ms must differ from igmpd's own for this \
         test to show adoption"
    );
    // From now on: igmpd silent, the peer still querying.
    let since = SystemTime::now();
    std::thread::sleep(peer_qi * 2 + Duration::from_millis(500));
    let s = d.status()?;
    ensure!(
        igmp(&s)["role"] == "non-querier"
            && igmp(&s)["querier_address"] == peer.to_string().as_str(),
        "{s:#}"
    );
    let ours: Vec<_> = general_queries_from(cap, igmpd_addr)?
        .into_iter()
        .filter(|(t, _)| *t > since)
        .collect();
    ensure!(
        ours.is_empty(),
        "a non-querier igmpd sent general queries: {ours:?}"
    );
    ensure!(
        general_queries_from(cap, peer)?
            .iter()
            .any(|(t, _)| *t > since),
        "the peer stopped querying although it has the lower address"
    );
    Ok(())
}

/// igmpd below the peer, once the peer has said it yielded: igmpd stays querier and keeps
/// querying, and the peer sends no general query for two of its intervals.
fn peer_stays_silent(
    d: &Igmpd,
    cap: &Capture,
    peer: Ipv4Addr,
    igmpd_addr: Ipv4Addr,
    peer_qi: Duration,
) -> Result<()> {
    // A query the peer had already sent when it yielded may still be in the capture's
    // buffer: count from a moment after.
    let since = SystemTime::now() + Duration::from_millis(200);
    std::thread::sleep(peer_qi * 2 + Duration::from_millis(700));
    let theirs: Vec<_> = general_queries_from(cap, peer)?
        .into_iter()
        .filter(|(t, _)| *t > since)
        .collect();
    ensure!(
        theirs.is_empty(),
        "the peer went on sending general queries after yielding to {igmpd_addr}: {theirs:?}"
    );
    ensure!(
        general_queries_from(cap, igmpd_addr)?
            .iter()
            .any(|(t, _)| *t > since),
        "igmpd stopped querying"
    );
    let s = d.status()?;
    ensure!(
        igmp(&s)["role"] == "querier"
            && igmp(&s)["querier_address"] == igmpd_addr.to_string().as_str(),
        "{s:#}"
    );
    Ok(())
}

/// A lab with `first` and `second` (addresses .1 and .2) and an observer host whose
/// capture sees every query.
fn lab(first: &str, second: &str) -> Result<(Lab, Capture)> {
    let lab = Lab::builder()
        .bridge(BridgeConfig::snooping())
        .hosts(&[first, second, "obs"])
        .build()?;
    let cap = Capture::start(lab.host("obs").netns(), "eth0", "igmp")?;
    Ok((lab, cap))
}

#[test]
fn frr_with_the_lower_address_stays_querier_and_igmpd_adopts_its_qrv_and_qqic() -> Result<()> {
    let (lab, cap) = lab("peer", "r")?;
    let (peer, r) = (lab.host("peer"), lab.host("r"));
    ensure!(peer.ipv4() < r.ipv4());
    let frr = FrrPimd::spawn(
        peer.netns(),
        "eth0",
        &FrrIgmp {
            query_interval_s: FRR_QI_S,
            ..FrrIgmp::default()
        },
    )?;
    let d = Igmpd::spawn(r.netns(), BIN, IGMPD_ARGS)?;
    // FRR 8.4 starts with QRV 2, then copies QRV 3 from igmpd's startup queries although it
    // stays querier (its `timerRobustnessVariable` goes 2 -> 3): only the QQIC (3 s against
    // igmpd's 2 s) tells adoption apart here; the QRV must match what FRR sends.
    igmpd_follows_lower_peer(
        &d,
        &cap,
        peer.ipv4(),
        r.ipv4(),
        Duration::from_secs(FRR_QI_S.into()),
        false,
    )
    .with_context(|| format!("FRR log:\n{}", frr.log_text()))?;
    // FRR agrees that it is the querier.
    let i = frr.igmp_interface()?;
    ensure!(
        i["querier"] == "local" && i["querierIp"] == peer.ipv4().to_string().as_str(),
        "FRR: {i:#}"
    );
    Ok(())
}

#[test]
fn igmpd_with_the_lower_address_stays_querier_and_frr_yields() -> Result<()> {
    if !multicast_routing("igmpd_with_the_lower_address_stays_querier_and_frr_yields") {
        return Ok(());
    }
    let (lab, cap) = lab("r", "peer")?;
    let (r, peer) = (lab.host("r"), lab.host("peer"));
    ensure!(r.ipv4() < peer.ipv4());
    let d = Igmpd::spawn(r.netns(), BIN, IGMPD_ARGS)?;
    d.wait_status(WAIT, |s| (igmp(s)["role"] == "querier").then_some(()))?;
    // FRR starts as querier (startup queries), hears igmpd's next query and yields.
    let frr = FrrPimd::spawn(
        peer.netns(),
        "eth0",
        &FrrIgmp {
            query_interval_s: FRR_QI_S,
            ..FrrIgmp::default()
        },
    )?;
    let r_s = r.ipv4().to_string();
    poll_until(WAIT, Duration::from_millis(200), || {
        let i = frr.igmp_interface().ok()?;
        (i["querier"] == "other" && i["querierIp"] == r_s.as_str()).then_some(())
    })
    .map_err(|_| {
        anyhow::anyhow!(
            "FRR should report {r_s} as querier: {:?}\nFRR log:\n{}",
            frr.igmp_interface(),
            frr.log_text()
        )
    })?;
    peer_stays_silent(
        &d,
        &cap,
        peer.ipv4(),
        r.ipv4(),
        Duration::from_secs(FRR_QI_S.into()),
    )?;
    let i = frr.igmp_interface()?;
    ensure!(
        i["querier"] == "other" && i["querierIp"] == r_s.as_str(),
        "FRR: {i:#}"
    );
    Ok(())
}

fn troglobit_pimd(lab: &Lab) -> Result<TroglobitPimd> {
    TroglobitPimd::spawn(
        lab.host("peer").netns(),
        TroglobitPimd::locate_binary()?,
        "eth0",
        PIMD_QI_S,
        PIMD_QUERIER_TIMEOUT_S,
    )
}

/// Both directions in one test: troglobit pimd keeps global state in /run, so its
/// instances run one at a time (the library serializes them too).
#[test]
fn election_agrees_with_troglobit_pimd_both_ways() -> Result<()> {
    if !multicast_routing("election_agrees_with_troglobit_pimd_both_ways") {
        return Ok(());
    }
    // pimd below igmpd.
    {
        let (lab, cap) = lab("peer", "r")?;
        let (peer, r) = (lab.host("peer"), lab.host("r"));
        ensure!(peer.ipv4() < r.ipv4());
        let pimd = troglobit_pimd(&lab)?;
        let d = Igmpd::spawn(r.netns(), BIN, IGMPD_ARGS)?;
        igmpd_follows_lower_peer(
            &d,
            &cap,
            peer.ipv4(),
            r.ipv4(),
            Duration::from_secs(PIMD_QI_S.into()),
            true,
        )
        .with_context(|| format!("pimd log:\n{}", pimd.log_text()))?;
        ensure!(
            !pimd.log_text().contains("new querier"),
            "pimd should stay querier:\n{}",
            pimd.log_text()
        );
    }
    // igmpd below pimd.
    let (lab, cap) = lab("r", "peer")?;
    let (r, peer) = (lab.host("r"), lab.host("peer"));
    ensure!(r.ipv4() < peer.ipv4());
    let d = Igmpd::spawn(r.netns(), BIN, IGMPD_ARGS)?;
    d.wait_status(WAIT, |s| (igmp(s)["role"] == "querier").then_some(()))?;
    let pimd = troglobit_pimd(&lab)?;
    let yielded = format!("new querier {} (was me)", r.ipv4());
    poll_until(WAIT, Duration::from_millis(100), || {
        pimd.log_text().contains(&yielded).then_some(())
    })
    .map_err(|_| anyhow::anyhow!("pimd should log `{yielded}`:\n{}", pimd.log_text()))?;
    peer_stays_silent(
        &d,
        &cap,
        peer.ipv4(),
        r.ipv4(),
        Duration::from_secs(PIMD_QI_S.into()),
    )
    .with_context(|| format!("pimd log:\n{}", pimd.log_text()))?;
    ensure!(
        pimd.log_text().matches("new querier").count() == 1,
        "pimd changed its mind about the querier:\n{}",
        pimd.log_text()
    );
    Ok(())
}
