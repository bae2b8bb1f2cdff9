//! The ports' `mcast_router` values from before igmpd, saved next to the control socket
//! before igmpd first changes one (`STATE_DIR/igmpd-snoop-BRIDGE-netINODE.json`, per
//! bridge and network namespace), so that an igmpd restarted after SIGKILL restores those
//! at exit, not the `2` its predecessor left. A clean exit removes the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{json, Value};
use tracing::{debug, info, warn};

use super::SnoopDaemon;

impl SnoopDaemon {
    /// `STATE_DIR/igmpd-snoop-BRIDGE-netINODE.json`: per bridge and network namespace.
    fn state_file(&self) -> Option<PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let dir = self.settings.state_dir.as_ref()?;
        let ns = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
        let clean: String = self
            .settings
            .bridge
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        Some(dir.join(format!("igmpd-snoop-{clean}-net{ns}.json")))
    }

    /// Writes every port's `mcast_router` from before igmpd, before igmpd changes one.
    pub(super) fn save_router_state(&self) {
        let (Some(f), Some(b)) = (self.state_file(), self.bridge.as_ref()) else {
            return;
        };
        let ports: serde_json::Map<String, Value> = self
            .ports
            .iter()
            .map(|(i, p)| {
                (
                    i.to_string(),
                    json!({"name": p.name, "mcast_router": p.original_router}),
                )
            })
            .collect();
        let doc = json!({"bridge": self.settings.bridge, "ifindex": b.ifindex, "mac": mac_string(&b.mac), "ports": ports});
        let tmp = f.with_extension("tmp");
        let r = std::fs::write(&tmp, doc.to_string()).and_then(|()| std::fs::rename(&tmp, &f));
        if let Err(e) = r {
            warn!(file = %f.display(), error = %e, "cannot save the ports' mcast_router settings");
        }
    }

    /// The saved settings, if they are this bridge's (same ifindex and MAC: not a bridge of
    /// the same name created since).
    pub(super) fn load_router_state(&self) -> BTreeMap<u32, (String, u8)> {
        let mut out = BTreeMap::new();
        let (Some(f), Some(b)) = (self.state_file(), self.bridge.as_ref()) else {
            return out;
        };
        let Ok(text) = std::fs::read_to_string(&f) else {
            return out;
        };
        let Ok(doc) = serde_json::from_str::<Value>(&text) else {
            return out;
        };
        if doc["ifindex"].as_u64() != Some(u64::from(b.ifindex))
            || doc["mac"].as_str() != Some(mac_string(&b.mac).as_str())
        {
            debug!(file = %f.display(), "saved mcast_router settings are of another bridge");
            return out;
        }
        for (i, p) in doc["ports"].as_object().into_iter().flatten() {
            let (Ok(i), Some(n), Some(v)) = (
                i.parse::<u32>(),
                p["name"].as_str(),
                p["mcast_router"]
                    .as_u64()
                    .and_then(|v| u8::try_from(v).ok()),
            ) else {
                continue;
            };
            out.insert(i, (n.to_owned(), v));
        }
        info!(file = %f.display(), ports = out.len(), "found the ports' mcast_router settings from before igmpd");
        out
    }

    /// At a clean exit: every port's setting is restored, the file goes.
    pub(super) fn remove_router_state(&self) {
        if let Some(f) = self.state_file() {
            let _ = std::fs::remove_file(f);
        }
    }
}

fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
