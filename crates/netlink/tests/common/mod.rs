//! A tiny private network-namespace guard for the kernel tests: unique names
//! (`igt<pid>-<n>`, the scheme of the igmpd-netns-tests lab, so scripts/test.sh's
//! leftover check and the lab's reaper of namespaces whose creator died see them too;
//! this test process never uses the lab, so the two counters cannot meet in one pid),
//! deleted on drop (also on panic), and a way to run async test code on a thread that
//! has entered the namespace, so every netlink socket it opens belongs to that namespace.

#![allow(dead_code)]

pub mod golden;

use std::{
    fs::File,
    process::{Command, Output},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use nix::sched::{setns, CloneFlags};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A network namespace that is deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Self {
        let name = format!(
            "igt{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap();
        assert!(out.status.success(), "ip netns add {name}: {out:?}");
        Self { name }
    }

    /// Runs `cmd` (through `sh -c`) inside the namespace.
    pub fn sh_output(&self, cmd: &str) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, "sh", "-c", cmd])
            .output()
            .unwrap()
    }

    /// Runs `cmd` inside the namespace and asserts it succeeded.
    pub fn sh(&self, cmd: &str) -> String {
        let out = self.sh_output(cmd);
        assert!(
            out.status.success(),
            "{cmd} in {}: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `fut` to completion on a current-thread tokio runtime in a
    /// thread that has entered this namespace.
    pub fn block_on<F, Fut, R>(&self, f: F) -> R
    where
        F: FnOnce() -> Fut + Send,
        Fut: std::future::Future<Output = R>,
        R: Send,
    {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = File::open(&path).unwrap();
                setns(&ns, CloneFlags::CLONE_NEWNET).unwrap();
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Polls `check` until it returns true or `timeout` passes.
    pub fn wait_until(&self, timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A switch namespace: br0 (snooping on, IGMPv3/MLDv2) with ports p1 and
/// p2, veth peers p1h and p2h up in the same namespace, IPv6 off on the
/// interfaces so the kernel's own MLD joins do not add entries.
pub fn switch() -> Netns {
    let ns = Netns::new();
    ns.sh("set -e
         sysctl -qw net.ipv6.conf.all.disable_ipv6=1
         sysctl -qw net.ipv6.conf.default.disable_ipv6=1
         ip link add br0 type bridge mcast_snooping 1 mcast_igmp_version 3 mcast_mld_version 2
         sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
         for p in p1 p2; do
           ip link add $p type veth peer name ${p}h
           ip link set $p master br0
           ip link set $p up
           ip link set ${p}h up
         done
         ip link set br0 up");
    ns.wait_until(Duration::from_secs(10), "ports forwarding", || {
        ns.sh("cat /sys/class/net/p1/brport/state /sys/class/net/p2/brport/state")
            .split_whitespace()
            .all(|s| s == "3")
    });
    ns
}

pub fn ifindex(ns: &Netns, name: &str) -> u32 {
    ns.sh(&format!("cat /sys/class/net/{name}/ifindex"))
        .trim()
        .parse()
        .unwrap()
}
