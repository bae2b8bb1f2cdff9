//! The driver's command line, without running a scenario (no namespaces, no root).
//!
//! Also makes `cargo test` build the `igmpd-bench` binary itself (cargo builds a package's
//! binaries for its integration tests): the root package's `e2e_bench` test runs it from
//! the target directory.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const DRIVER: &str = env!("CARGO_BIN_EXE_igmpd-bench");

/// Runs the driver with `args`, killed (by its own handle) if it takes over 10 s.
fn run(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(DRIVER)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn igmpd-bench");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("igmpd-bench {args:?} still runs after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut out);
    }
    (status, out)
}

#[test]
fn help_prints_the_usage() {
    let (status, out) = run(&["--help"]);
    assert!(status.success(), "{status}");
    assert!(out.starts_with("igmpd-bench --igmpd PATH"), "{out}");
}

#[test]
fn bad_arguments_fail_before_any_scenario() {
    for args in [
        &["--frobnicate"][..],
        &[],
        &["--igmpd", "/nonexistent/igmpd"],
    ] {
        let (status, _) = run(args);
        assert!(!status.success(), "{args:?}: {status}");
    }
}
