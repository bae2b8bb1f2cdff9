//! `igmpd monitor [--json]`: streams a running igmpd's events to stdout, one line each,
//! until the daemon ends (EOF) or the reader goes (EPIPE on stdout, or SIGINT): both end it
//! quietly. The daemon encodes the lines; they are copied out as they come.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

/// Watches the daemon at `path`.
pub fn run(json: bool, path: &Path) -> Result<()> {
    let mut stream = UnixStream::connect(path).with_context(|| {
        format!(
            "cannot reach igmpd at {} (is it running? see --control-socket)",
            path.display()
        )
    })?;
    let format = if json { "json" } else { "text" };
    let mut req = serde_json::to_vec(&json!({"command": "monitor", "format": format}))?;
    req.push(b'\n');
    stream.write_all(&req)?;
    let mut from = BufReader::with_capacity(64 * 1024, stream);
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut line = Vec::with_capacity(512);
    loop {
        line.clear();
        // No read timeout: events come when they happen. An error reading is the daemon
        // going away, as EOF is.
        match from.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
        // The daemon's refusals and its "dropped" notice are error objects, in both forms.
        if line.starts_with(b"{\"error\"") {
            let v: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
            let e = v["error"].as_str().unwrap_or("malformed error reply");
            bail!("igmpd: {e}");
        }
        // Flushed once what has arrived is written (a burst in one write). A closed
        // stdout (`| head`, the reader quit) ends it quietly.
        let written = out.write_all(&line).and_then(|()| {
            if from.buffer().is_empty() {
                out.flush()
            } else {
                Ok(())
            }
        });
        if written.is_err() {
            return Ok(());
        }
    }
}
