//! The client side of the control socket: one request line, the daemon's whole reply
//! (`igmpd status`, `reload`, `static`, `flush`).

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Sends one request to the daemon at `path` and returns its reply.
pub fn request(path: &Path, req: &Value) -> Result<Value> {
    let raw = request_raw(path, req)?;
    serde_json::from_slice(&raw).context("igmpd sent a reply that is not JSON")
}

/// Sends one request and returns the reply as the daemon wrote it (without the final
/// newline), or the daemon's error. For callers that only pass the document on.
pub fn request_raw(path: &Path, req: &Value) -> Result<Vec<u8>> {
    let mut stream = std::os::unix::net::UnixStream::connect(path).with_context(|| {
        format!(
            "cannot reach igmpd at {} (is it running? see --control-socket)",
            path.display()
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    // One reply line, then the daemon closes: read it whole, in large reads (a status of
    // a few hundred interfaces is a few hundred KiB).
    let mut reply = Vec::with_capacity(64 * 1024);
    stream
        .read_to_end(&mut reply)
        .context("no reply from igmpd")?;
    while reply.last() == Some(&b'\n') {
        reply.pop();
    }
    if reply.is_empty() {
        bail!("no reply from igmpd");
    }
    // Errors are small objects with one key; everything else is passed on unparsed.
    if reply.starts_with(b"{\"error\"") {
        let v: Value =
            serde_json::from_slice(&reply).context("igmpd sent a reply that is not JSON")?;
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            bail!("igmpd: {e}");
        }
    }
    Ok(reply)
}
