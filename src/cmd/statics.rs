//! `igmpd static add|del` and `igmpd flush`: requests to a running daemon's bridge over
//! the control socket; the daemon's answer (or refusal) is printed.

use anyhow::{Context, Result};
use serde_json::{json, Value};

use crate::cli::{FlushArgs, StaticAction, StaticArgs};

/// Asks the daemon; prints its message.
fn ask(socket: &std::path::Path, req: Value) -> Result<()> {
    let reply = crate::control::request(socket, &req)?;
    let msg = reply["message"]
        .as_str()
        .context("igmpd answered without a message")?;
    println!("{msg}");
    Ok(())
}

/// `igmpd static add|del BRIDGE PORT GROUP [--source S] [--vlan V]`.
pub fn run_static(a: StaticArgs) -> Result<()> {
    // Checked here too, so that a typo gets its reason before any daemon is asked.
    crate::settings::static_group(
        &a.group.to_string(),
        a.source.map(|s| s.to_string()).as_deref(),
        a.vlan,
    )?;
    let action = match a.action {
        StaticAction::Add => "add",
        StaticAction::Del => "del",
    };
    ask(
        &a.control_socket,
        json!({
            "command": "static",
            "action": action,
            "bridge": a.bridge,
            "port": a.port,
            "group": a.group.to_string(),
            "source": a.source.map(|s| s.to_string()),
            "vlan": a.vlan,
        }),
    )
}

/// `igmpd flush BRIDGE [--port P] [--group G]`.
pub fn run_flush(a: FlushArgs) -> Result<()> {
    if let Some(g) = a.group {
        anyhow::ensure!(g.is_multicast(), "--group {g} is not a multicast group");
    }
    ask(
        &a.control_socket,
        json!({
            "command": "flush",
            "bridge": a.bridge,
            "port": a.port,
            "group": a.group.map(|g| g.to_string()),
        }),
    )
}
