//! Pieces the end-to-end test targets share: the story of issue 6 (a querier with short
//! timers, hosts A and B joining one group that S sends to, B's firewall) and finding
//! lookups. Each target includes it with `mod common;` and uses what it needs.
#![allow(dead_code)]

use std::net::IpAddr;

use anyhow::Result;
use igmpd_netns_tests::{Host, Igmpd, Lab, Member};
use serde_json::Value;

/// The igmpd binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_igmpd");
/// The application's UDP port in the story.
pub const PORT: u16 = 5001;

/// B's firewall in the story: input policy drop, the application's port open, plus
/// `extra` rules (e.g. `ip protocol igmp accept` to let IGMP but not MLD in).
pub fn hostfw(extra: &str) -> String {
    format!(
        "table inet hostfw {{
            chain input {{
                type filter hook input priority filter; policy drop;
                iif lo accept
                udp dport {PORT} accept
                {extra}
            }}
        }}"
    )
}

/// `igmpd query eth0` on `host` with the story's timers: 2 s interval, 1 s response, so a
/// membership lasts 2 x 2 s + 1 s.
pub fn fast_querier(host: &Host) -> Result<Igmpd> {
    Igmpd::spawn(
        host.netns(),
        BIN,
        &[
            "query",
            "eth0",
            "--query-interval",
            "2s",
            "--query-response-interval",
            "1s",
        ],
    )
}

/// The story's hosts: S (on `sender`) sends, A and B listen on [`PORT`] and join `group`.
pub struct Story {
    /// The sender.
    pub s: Member,
    /// The member that keeps answering.
    pub a: Member,
    /// The member whose firewall drops the queries.
    pub b: Member,
}

impl Story {
    /// Spawns the three members and makes A and B join `group`.
    pub fn join(lab: &Lab, sender: &str, group: IpAddr) -> Result<Story> {
        let bin = Member::locate_binary()?;
        let s = Member::spawn(lab.host(sender), &bin)?;
        let mut a = Member::spawn(lab.host("a"), &bin)?;
        let mut b = Member::spawn(lab.host("b"), &bin)?;
        a.listen(PORT)?;
        b.listen(PORT)?;
        a.join(group)?;
        b.join(group)?;
        Ok(Story { s, a, b })
    }
}

/// The first finding with `code` in a status or doctor document.
pub fn finding<'a>(doc: &'a Value, code: &str) -> Option<&'a Value> {
    doc["findings"]
        .as_array()?
        .iter()
        .find(|f| f["code"] == code)
}

/// The `member-silent` finding naming `host`, if present.
pub fn member_silent(doc: &Value, host: &str) -> Option<Value> {
    doc["findings"]
        .as_array()?
        .iter()
        .find(|f| f["code"] == "member-silent" && f["host"] == host)
        .cloned()
}
