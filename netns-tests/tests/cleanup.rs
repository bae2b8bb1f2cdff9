//! The library cleans up after itself: namespaces deleted and helper processes dead when a
//! lab goes away, also when a test panics, and stale namespaces of crashed runs removed.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use igmpd_netns_tests::capture::Capture;
use igmpd_netns_tests::{cleanup_stale_namespaces, member_bin, BridgeConfig, Lab, Member};

fn netns_exists(name: &str) -> bool {
    Path::new("/run/netns").join(name).exists()
}

fn process_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

#[test]
fn a_panicking_test_leaves_no_namespace_and_no_process() {
    let mut seen = (Vec::new(), Vec::new());
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let lab = Lab::builder()
            .bridge(BridgeConfig::fast_querier())
            .hosts(&["a", "b"])
            .build()
            .unwrap();
        let member = Member::spawn(lab.host("a"), member_bin!()).unwrap();
        let cap = Capture::start(lab.switch().netns(), lab.host("b").port(), "igmp").unwrap();
        seen = (lab.namespaces(), vec![member.pid(), cap.pid()]);
        for ns in &seen.0 {
            assert!(netns_exists(ns));
        }
        for pid in &seen.1 {
            assert!(process_exists(*pid));
        }
        panic!("deliberate failure with a lab, a member and a capture alive");
    }));
    assert!(result.is_err());
    let (namespaces, pids) = seen;
    assert_eq!(namespaces.len(), 3);
    for ns in &namespaces {
        assert!(!netns_exists(ns), "{ns} left behind");
    }
    for pid in &pids {
        assert!(!process_exists(*pid), "process {pid} left behind");
    }
}

#[test]
fn dropping_the_lab_first_kills_helpers_still_held() -> Result<()> {
    let lab = Lab::builder().host("a").build()?;
    let mut member = Member::spawn(lab.host("a"), member_bin!())?;
    let cap = Capture::start(lab.host("a").netns(), "eth0", "")?;
    let pids = [member.pid(), cap.pid()];
    let namespaces = lab.namespaces();
    drop(lab);
    for pid in pids {
        assert!(!process_exists(pid), "process {pid} outlived its namespace");
    }
    for ns in &namespaces {
        assert!(!netns_exists(ns), "{ns} left behind");
    }
    assert!(member.count(1).is_err());
    Ok(())
}

/// Deletes a namespace made by hand in this test, whatever happens.
struct ManualNetns(String);

impl Drop for ManualNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn add_netns(name: &str) -> Result<ManualNetns> {
    let status = Command::new("ip").args(["netns", "add", name]).status()?;
    anyhow::ensure!(status.success(), "ip netns add {name}");
    Ok(ManualNetns(name.to_owned()))
}

#[test]
fn stale_namespaces_of_dead_runs_are_removed_and_live_ones_kept() -> Result<()> {
    // A PID that just exited (and was reaped) stands for a crashed earlier run.
    let mut child = Command::new("true").spawn()?;
    let dead = child.id();
    child.wait()?;
    anyhow::ensure!(!process_exists(dead));
    let stale = add_netns(&format!("igt{dead}-9999"))?;
    let live = add_netns(&format!("igt{}-9999", std::process::id()))?;
    let foreign = add_netns(&format!("other{dead}-9999"))?;
    cleanup_stale_namespaces()?;
    // Another test's lab may have run the cleanup first; either way it must be gone.
    assert!(!netns_exists(&stale.0));
    assert!(netns_exists(&live.0));
    assert!(netns_exists(&foreign.0));
    Ok(())
}
