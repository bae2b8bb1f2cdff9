//! Running commands, always bounded in time: in the root namespace only to manage
//! namespaces (`ip netns add/del`), everything else inside a namespace.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::ffi;

/// How long any one command may run before it is killed and reported as an error.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `argv` (in the caller's namespace), feeding `stdin`, killing it after `timeout`.
/// Returns its output whatever the exit status.
pub(crate) fn run(argv: &[&str], stdin: Option<&[u8]>, timeout: Duration) -> Result<Output> {
    let (prog, args) = argv.split_first().context("empty command")?;
    let mut cmd = Command::new(prog);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    ffi::kill_on_parent_death(&mut cmd);
    let mut child = cmd
        .spawn()
        .with_context(|| format!("spawn {}", argv.join(" ")))?;
    let writer = match (child.stdin.take(), stdin) {
        (Some(mut pipe), Some(data)) => {
            let data = data.to_vec();
            Some(std::thread::spawn(move || pipe.write_all(&data)))
        }
        _ => None,
    };
    let out_reader = reader_thread(child.stdout.take());
    let err_reader = reader_thread(child.stderr.take());

    let deadline = Instant::now() + timeout;
    let mut interval = Duration::from_millis(1);
    let status = loop {
        if let Some(status) = child.try_wait().context("wait for command")? {
            break status;
        }
        if Instant::now() >= deadline {
            // Still unreaped, so the PID is still this child's.
            let _ = child.kill();
            let _ = child.wait();
            bail!("`{}` did not finish within {timeout:?}", argv.join(" "));
        }
        std::thread::sleep(interval);
        interval = (interval * 2).min(Duration::from_millis(20));
    };
    if let Some(w) = writer {
        // A command that exits without reading all of stdin is its own business (EPIPE).
        let _ = w.join();
    }
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn reader_thread(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Like [`run`] but fails on a non-zero exit status; returns stdout as text.
pub(crate) fn run_ok(argv: &[&str], stdin: Option<&[u8]>) -> Result<String> {
    let out = run(argv, stdin, DEFAULT_COMMAND_TIMEOUT)?;
    check(argv, out)
}

fn check(argv: &[&str], out: Output) -> Result<String> {
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `ip -n NS ARGS...`, failing on a non-zero exit status; returns stdout.
pub(crate) fn ip(ns: &str, args: &[&str]) -> Result<String> {
    let mut argv = vec!["ip", "-n", ns];
    argv.extend_from_slice(args);
    run_ok(&argv, None)
}

/// Runs `argv` inside namespace `ns` (`ip netns exec NS ARGV...`), bounded by
/// [`DEFAULT_COMMAND_TIMEOUT`]. Returns the output whatever the exit status.
pub fn exec(ns: &str, argv: &[&str]) -> Result<Output> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(argv);
    run(&full, None, DEFAULT_COMMAND_TIMEOUT)
}

/// Like [`exec`], but a non-zero exit status is an error (with the command's stderr);
/// returns stdout as text.
pub fn exec_ok(ns: &str, argv: &[&str]) -> Result<String> {
    let mut full = vec!["ip", "netns", "exec", ns];
    full.extend_from_slice(argv);
    let out = run(&full, None, DEFAULT_COMMAND_TIMEOUT)?;
    check(&full, out)
}

/// Sets sysctl `key` (dotted form, e.g. `net.ipv4.conf.eth0.force_igmp_version`) to
/// `value` inside namespace `ns`.
pub fn sysctl(ns: &str, key: &str, value: &str) -> Result<()> {
    exec_ok(ns, &["sysctl", "-q", "-w", &format!("{key}={value}")]).map(drop)
}

/// Reads sysctl `key` inside namespace `ns`.
pub fn sysctl_get(ns: &str, key: &str) -> Result<String> {
    Ok(exec_ok(ns, &["sysctl", "-n", key])?.trim().to_owned())
}

/// Loads an nftables ruleset (the text `nft -f -` reads) inside namespace `ns`.
pub fn nft(ns: &str, ruleset: &str) -> Result<()> {
    let argv = ["ip", "netns", "exec", ns, "nft", "-f", "-"];
    let out = run(&argv, Some(ruleset.as_bytes()), DEFAULT_COMMAND_TIMEOUT)?;
    check(&argv, out)
        .with_context(|| format!("nft ruleset:\n{ruleset}"))
        .map(drop)
}
