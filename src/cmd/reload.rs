//! `igmpd reload`: makes a running `igmpd run` re-read its config file.

use std::path::Path;

use anyhow::Result;

/// Asks the daemon at `control_socket` to reload; its refusal is the error.
pub fn run(control_socket: &Path) -> Result<()> {
    crate::control::request(control_socket, &serde_json::json!({"command": "reload"}))?;
    Ok(())
}
