//! `igmpd status [--json]`: asks a running igmpd for its state and prints it.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::control;

/// Prints the daemon's status document: as JSON (`--json`, indented with `--pretty`), or
/// as tables. The daemon encodes it in the form asked for (off its event loop); the bytes
/// are passed on as they came, since parsing a large document here took longer than
/// making it.
pub fn run(json: bool, pretty: bool, path: &Path) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let format = match (json, pretty) {
        (true, true) => "pretty",
        (true, false) => "compact",
        (false, _) => "text",
    };
    // A closed pipe (`| head`) is not an error worth a message.
    let raw = control::request_raw(path, &json!({"command": "status", "format": format}))?;
    let _ = out.write_all(&raw).and_then(|()| out.write_all(b"\n"));
    Ok(())
}
