//! `igmpd status [--json]`: asks a running igmpd for its state and prints it.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::control;

/// Prints the daemon's status document: as the daemon indented it (`--json`), or as tables.
pub fn run(json: bool, path: &Path) -> Result<()> {
    let mut out = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a message.
    if json {
        // The daemon indents it; passed on as it came.
        let raw = control::request_raw(path, &json!({"command": "status", "format": "pretty"}))?;
        let _ = out.write_all(&raw).and_then(|()| out.write_all(b"\n"));
    } else {
        let doc = control::request(path, &json!({"command": "status"}))?;
        let _ = writeln!(out, "{}", crate::status::render(&doc).trim_end());
    }
    Ok(())
}
