//! An `igmpd monitor` client for the end-to-end tests, and the check of its event lines'
//! contract.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use igmpd_netns_tests::{poll_until, Igmpd};
use serde_json::Value;

use super::{BIN, WAIT};

/// An `igmpd monitor` process (killed by its PID on drop) and the lines it printed.
pub struct Monitor {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Monitor {
    /// Starts `igmpd monitor [--json]` on `d`'s socket and waits until `d` has it as its
    /// `nth` monitor client (its log says so), so that no event is missed after this.
    pub fn start(d: &Igmpd, json: bool, nth: usize) -> Result<Monitor> {
        let socket = d.control_socket().to_str().context("socket path")?;
        let mut args = vec!["monitor", "--control-socket", socket];
        if json {
            args.push("--json");
        }
        let mut child = Command::new(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let out = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        connected(d, nth)?;
        Ok(Monitor { child, lines })
    }

    /// The next line within `timeout` that `want` accepts (None: it ended, or none came).
    pub fn line_where(
        &self,
        timeout: Duration,
        mut want: impl FnMut(&str) -> bool,
    ) -> Option<String> {
        let end = Instant::now() + timeout;
        loop {
            let left = end.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            if want(&line) {
                return Some(line);
            }
        }
    }

    /// The next event that `want` accepts, each line checked to be one JSON object with
    /// the contract's common fields.
    pub fn event_where(
        &self,
        timeout: Duration,
        mut want: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        let mut bad = None;
        let found = self.line_where(timeout, |l| match valid_event(l) {
            Ok(v) => want(&v),
            Err(e) => {
                bad.get_or_insert(e);
                false
            }
        });
        if let Some(e) = bad {
            return Err(e);
        }
        let line = found.context("no such event came")?;
        Ok(serde_json::from_str(&line)?)
    }
}

impl Monitor {
    /// Waits (bounded) for the client to end; its exit status.
    pub fn ended(&mut self) -> Result<std::process::ExitStatus> {
        poll_until(WAIT, Duration::from_millis(20), || {
            self.child.try_wait().ok().flatten()
        })
        .context("igmpd monitor did not end")
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `d` logged its `nth` "monitor client connected".
pub fn connected(d: &Igmpd, nth: usize) -> Result<()> {
    poll_until(WAIT, Duration::from_millis(20), || {
        (d.log_text().matches("monitor client connected").count() >= nth).then_some(())
    })
    .with_context(|| format!("monitor client {nth} not connected: {}", d.log_text()))
}

/// `line` as an event object: valid JSON, an object, `time` RFC 3339 UTC with
/// milliseconds, a known `event`, `bridge` or `interface`, no nulls.
pub fn valid_event(line: &str) -> Result<Value> {
    let v: Value = serde_json::from_str(line).with_context(|| format!("not JSON: {line}"))?;
    let o = v
        .as_object()
        .with_context(|| format!("not an object: {line}"))?;
    let time = o["time"].as_str().context("time")?;
    // 2026-12-04T21:42:34.123Z
    let b = time.as_bytes();
    ensure!(
        b.len() == 24 && b[4] == b'-' && b[10] == b'T' && b[19] == b'.' && b[23] == b'Z',
        "time {time}"
    );
    const NAMES: [&str; 11] = [
        "join",
        "leave",
        "expiry",
        "static-add",
        "static-del",
        "querier-elected",
        "querier-lost",
        "router-port-up",
        "router-port-down",
        "finding-raised",
        "finding-cleared",
    ];
    ensure!(
        NAMES.contains(&o["event"].as_str().unwrap_or("")),
        "event {line}"
    );
    ensure!(
        o.contains_key("bridge") ^ o.contains_key("interface"),
        "{line}"
    );
    ensure!(o.values().all(|x| !x.is_null()), "a null in {line}");
    Ok(v)
}
