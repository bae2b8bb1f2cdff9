//! The state file: what an igmpd started after a SIGKILL must know of its predecessor, per
//! bridge and network namespace (`STATE_DIR/igmpd-snoop-BRIDGE-netINODE.json`):
//! - the ports' `mcast_router` values and the bridge's `mcast_igmp_version` /
//!   `mcast_mld_version` from before igmpd (with per-VLAN snooping also the port-VLANs'
//!   `mcast_router` igmpd set and the VLANs' versions), so that the successor restores
//!   those at exit, not the `2` / `3` its predecessor set;
//! - on kernels whose MDB entries carry no protocol value (before 6.3: every userspace
//!   entry shows `proto static`), the entries igmpd wrote, so that the successor adopts
//!   its own and leaves everybody else's alone;
//! - the static groups added at runtime (`igmpd static add`), until deleted: a clean exit
//!   keeps them too (a bridge deleted and created again starts without them, as it starts
//!   without the rest of the file).
//!
//! Written (and synced, with its directory) before igmpd first changes a setting, and,
//! where entries are listed, before each batch of MDB writes goes out (not synced: a
//! SIGKILL loses no page cache, and a power loss takes the MDB with it). Always whole (a
//! temporary file renamed over it), never through a symbolic link; one that cannot be read
//! or parsed is ignored with a warning. A clean exit removes it, or, where entries are
//! listed, keeps only the entries it handed to the kernel as temporary ones. The file
//! name holds [`bridge_token`](super::nft::bridge_token): unique per bridge name.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tracing::{debug, info, warn};

use super::{SnoopDaemon, SnoopSettings};
use crate::core::{EntryFilter, EntryKey};

/// A port's setting from before igmpd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SavedPort {
    pub name: String,
    pub mcast_router: u8,
    /// `mcast_flood` (files of earlier versions have none: the kernel's default, on).
    #[serde(default = "flood_default")]
    pub mcast_flood: bool,
}

fn flood_default() -> bool {
    true
}

/// One MDB entry igmpd wrote ((S,G) when `source` is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(super) struct SavedEntry {
    pub port: u32,
    pub vid: u16,
    pub group: IpAddr,
    pub source: Option<IpAddr>,
}

/// The file's document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SavedState {
    pub bridge: String,
    pub ifindex: u32,
    pub mac: String,
    #[serde(default)]
    pub ports: BTreeMap<u32, SavedPort>,
    /// `(mcast_igmp_version, mcast_mld_version)` from before igmpd changed them.
    #[serde(default)]
    pub versions: Option<(u8, u8)>,
    #[serde(default)]
    pub entries: Vec<SavedEntry>,
    /// Per VLAN: `(mcast_igmp_version, mcast_mld_version)` from before igmpd.
    #[serde(default)]
    pub vlan_versions: BTreeMap<u16, (u8, u8)>,
    /// Port-VLANs igmpd set to `mcast_router 2`, with the value from before.
    #[serde(default)]
    pub vlan_routers: Vec<SavedVlanRouter>,
    /// Static groups added at runtime (`igmpd static add`), until deleted: kept across
    /// clean exits too.
    #[serde(default)]
    pub statics: Vec<SavedStatic>,
}

/// A static group added at runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SavedStatic {
    pub port: String,
    pub group: IpAddr,
    #[serde(default)]
    pub source: Option<IpAddr>,
    #[serde(default)]
    pub vid: u16,
}

/// A port-VLAN `mcast_router` from before igmpd.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SavedVlanRouter {
    pub port: u32,
    pub vid: u16,
    pub mcast_router: u8,
}

impl SavedState {
    /// The entries as the core's keys and filters: (S,G) entries of one (port, VLAN,
    /// group) become one INCLUDE entry.
    pub fn entry_filters(&self) -> BTreeMap<EntryKey, EntryFilter> {
        let mut out: BTreeMap<EntryKey, EntryFilter> = BTreeMap::new();
        for e in &self.entries {
            let key = EntryKey {
                port: e.port,
                vid: e.vid,
                group: e.group,
            };
            match (e.source, out.get_mut(&key)) {
                (None, _) => {
                    out.insert(key, EntryFilter::Any);
                }
                (Some(s), Some(EntryFilter::Include(list))) => list.push(s),
                (Some(_), Some(_)) => {}
                (Some(s), None) => {
                    out.insert(key, EntryFilter::Include(vec![s]));
                }
            }
        }
        out
    }
}

/// The entries of `programmed` as they are in the kernel (per source when `per_source`).
pub(super) fn saved_entries<'a>(
    programmed: impl Iterator<Item = (&'a EntryKey, &'a EntryFilter, bool)>,
    per_source: bool,
) -> Vec<SavedEntry> {
    let mut out = Vec::new();
    for (k, f, _) in programmed {
        let entry = |source| SavedEntry {
            port: k.port,
            vid: k.vid,
            group: k.group,
            source,
        };
        match f {
            EntryFilter::Include(s) if per_source => out.extend(s.iter().map(|s| entry(Some(*s)))),
            _ => out.push(entry(None)),
        }
    }
    out.sort();
    out
}

/// `STATE_DIR/igmpd-snoop-BRIDGE-netINODE.json`: per bridge and network namespace (of the
/// calling thread).
pub(super) fn state_file(settings: &SnoopSettings) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let dir = settings.state_dir.as_ref()?;
    let ns = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
    let token = super::nft::bridge_token(&settings.bridge);
    Some(dir.join(format!("igmpd-snoop-{token}-net{ns}.json")))
}

/// Whether the state file says an igmpd ended without handing the bridge back: it holds
/// settings to restore. A clean exit removes the file, or (where entries are listed) keeps
/// only the entries it handed back; a file that cannot be read counts as left behind (the
/// cleanup then ignores it with a warning and restores what it can).
pub(super) fn left_behind(settings: &SnoopSettings) -> bool {
    let Some(f) = state_file(settings) else {
        return false;
    };
    match read_no_follow(&f) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(_) => true,
        Ok(text) => serde_json::from_str::<SavedState>(&text).map_or(true, |d| {
            !d.ports.is_empty()
                || d.versions.is_some()
                || !d.vlan_versions.is_empty()
                || !d.vlan_routers.is_empty()
        }),
    }
}

/// The static groups added at runtime that the state file keeps, by port name, if the file
/// is this bridge's (same ifindex and MAC, as for the rest of the file: a namespace of the
/// same inode made anew, or a bridge of the same name created since, is not the one whose
/// ports they were added to).
pub(super) fn saved_statics(
    settings: &SnoopSettings,
    bridge: &igmpd_netlink::links::BridgeLink,
) -> BTreeMap<String, BTreeSet<crate::core::StaticGroup>> {
    let mut out: BTreeMap<String, BTreeSet<crate::core::StaticGroup>> = BTreeMap::new();
    let Some(text) = state_file(settings).and_then(|f| read_no_follow(&f).ok()) else {
        return out;
    };
    let Ok(doc) = serde_json::from_str::<SavedState>(&text) else {
        return out;
    };
    if doc.ifindex != bridge.ifindex || doc.mac != mac_string(&bridge.mac) {
        return out;
    }
    for s in doc.statics {
        let g = crate::core::StaticGroup {
            group: s.group,
            source: s.source,
            vid: s.vid,
        };
        match g.check() {
            Ok(()) => {
                out.entry(s.port).or_default().insert(g);
            }
            Err(e) => {
                warn!(port = %s.port, error = %e, "a static group in the state file is not valid: ignored")
            }
        }
    }
    out
}

impl SnoopDaemon {
    fn state_file(&self) -> Option<PathBuf> {
        state_file(&self.settings)
    }

    /// What igmpd knows now: the ports' and the bridge's settings from before igmpd, and
    /// (`with_entries`) igmpd's MDB entries.
    fn current_state(&self, with_entries: bool) -> Option<SavedState> {
        let b = self.bridge.as_ref()?;
        let mdb = self.snooper.mdb();
        Some(SavedState {
            bridge: self.settings.bridge.clone(),
            ifindex: b.ifindex,
            mac: mac_string(&b.mac),
            ports: self
                .ports
                .iter()
                .map(|(i, p)| {
                    let saved = SavedPort {
                        name: p.name.clone(),
                        mcast_router: p.original_router,
                        mcast_flood: p.original_flood,
                    };
                    (*i, saved)
                })
                .collect(),
            versions: self.original_versions,
            vlan_versions: self.vlans.original_versions.clone(),
            vlan_routers: self
                .vlans
                .router_set
                .iter()
                .map(|((port, vid), m)| SavedVlanRouter {
                    port: *port,
                    vid: *vid,
                    mcast_router: *m,
                })
                .collect(),
            entries: if with_entries {
                saved_entries(mdb.programmed(), mdb.per_source())
            } else {
                Vec::new()
            },
            statics: self
                .runtime_statics
                .iter()
                .flat_map(|(port, set)| {
                    set.iter().map(|g| SavedStatic {
                        port: port.clone(),
                        group: g.group,
                        source: g.source,
                        vid: g.vid,
                    })
                })
                .collect(),
        })
    }

    /// Entries are listed where the kernel cannot tell igmpd's from others'.
    pub(super) fn lists_entries(&self) -> bool {
        !self.kernel_mdb.protocol
    }

    /// Writes and syncs the state file now (before igmpd changes a setting).
    pub(super) fn save_state(&self) {
        if let Some(doc) = self.current_state(self.lists_entries()) {
            self.write_state(&doc, true);
        }
    }

    /// Before MDB writes go out, where entries are listed: the file names them first, so
    /// that an igmpd killed at any moment leaves no entry of its own unknown.
    pub(super) fn save_entries(&self) {
        if self.lists_entries() {
            if let Some(doc) = self.current_state(true) {
                self.write_state(&doc, false);
            }
        }
    }

    fn write_state(&self, doc: &SavedState, sync: bool) {
        let Some(f) = self.state_file() else { return };
        let bytes = serde_json::to_vec(doc).unwrap_or_default();
        if let Err(e) = write_atomically(&f, &bytes, sync) {
            warn!(file = %f.display(), error = %e, "cannot write the state file");
        }
    }

    /// The saved state, if it is this bridge's (same ifindex and MAC: not a bridge of the
    /// same name created since).
    pub(super) fn load_state(&self) -> SavedState {
        let (Some(f), Some(b)) = (self.state_file(), self.bridge.as_ref()) else {
            return SavedState::default();
        };
        let text = match read_no_follow(&f) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return SavedState::default(),
            Err(e) => {
                warn!(file = %f.display(), error = %e, "state file unreadable: ignored");
                return SavedState::default();
            }
        };
        let doc = match serde_json::from_str::<SavedState>(&text) {
            Ok(d) => d,
            Err(e) => {
                warn!(file = %f.display(), error = %e, "state file unreadable: ignored");
                return SavedState::default();
            }
        };
        if doc.ifindex != b.ifindex || doc.mac != mac_string(&b.mac) {
            debug!(file = %f.display(), "the state file is of another bridge");
            return SavedState::default();
        }
        info!(file = %f.display(), ports = doc.ports.len(), entries = doc.entries.len(), versions = ?doc.versions, "found the state of an earlier igmpd");
        doc
    }

    /// At a clean exit, after the settings were restored: the file goes, or keeps only
    /// the entries handed to the kernel as temporary ones (for the next igmpd to adopt)
    /// and the static groups added at runtime.
    pub(super) fn finish_state(&self) {
        let keep = self
            .current_state(self.lists_entries())
            .filter(|d| !d.entries.is_empty() || !d.statics.is_empty());
        match keep {
            Some(mut doc) => {
                doc.ports.clear();
                doc.versions = None;
                doc.vlan_versions.clear();
                doc.vlan_routers.clear();
                self.write_state(&doc, true);
            }
            None => {
                if let Some(f) = self.state_file() {
                    let _ = std::fs::remove_file(f);
                }
            }
        }
    }
}

/// Writes `bytes` to `path` as a whole or not at all: into `path.tmp` (created anew, never
/// through a link someone put there), synced when `sync`, renamed over `path` (which
/// replaces a link at `path` itself, never its target), and the directory synced.
fn write_atomically(path: &std::path::Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    if sync {
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if sync {
        // The rename itself is durable once the directory is.
        if let Some(dir) = path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
    }
    Ok(())
}

/// The file's text, refusing a symbolic link at `path` (O_NOFOLLOW: ELOOP) and anything
/// but a regular file of at most 16 MiB.
fn read_no_follow(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() > 16 << 20 {
        return Err(std::io::Error::other(
            "not a regular file of at most 16 MiB",
        ));
    }
    let mut text = String::new();
    file.take(16 << 20).read_to_string(&mut text)?;
    Ok(text)
}

fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn entries_round_trip_per_source_and_plain() {
        let k = EntryKey {
            port: 4,
            vid: 0,
            group: ip("232.1.1.1"),
        };
        let any = EntryKey {
            group: ip("239.1.1.1"),
            ..k
        };
        let inc = EntryFilter::Include(vec![ip("10.0.0.1"), ip("10.0.0.2")]);
        let programmed = [(&k, &inc, true), (&any, &EntryFilter::Any, true)];
        let per = saved_entries(programmed.into_iter(), true);
        assert_eq!(per.len(), 3);
        let doc = SavedState {
            entries: per,
            ..SavedState::default()
        };
        let text = serde_json::to_string(&doc).unwrap();
        let back: SavedState = serde_json::from_str(&text).unwrap();
        assert_eq!(back, doc);
        let filters = back.entry_filters();
        assert_eq!(filters[&k], inc);
        assert_eq!(filters[&any], EntryFilter::Any);
        // Without per-source writing an INCLUDE entry is one (*,G) with its list.
        assert_eq!(saved_entries(programmed.into_iter(), false).len(), 2);
    }

    #[test]
    fn files_of_the_earlier_format_still_load() {
        let old = r#"{"bridge":"br0","ifindex":3,"mac":"02:00:00:00:00:01","ports":{"4":{"name":"p1","mcast_router":1}}}"#;
        let doc: SavedState = serde_json::from_str(old).unwrap();
        assert_eq!(doc.ports[&4].mcast_router, 1);
        assert!(doc.entries.is_empty() && doc.versions.is_none());
    }

    /// A directory of its own under the system's temporary one, removed on drop.
    struct TempDir(std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn temp_dir(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("igmpd-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    #[test]
    fn the_state_file_is_replaced_whole_and_links_are_never_followed() {
        use std::os::unix::fs::symlink;
        let d = temp_dir("links");
        let (f, victim) = (d.0.join("s.json"), d.0.join("victim"));
        std::fs::write(&victim, "precious").unwrap();
        // A link at the file: replaced by the file, its target untouched; not read.
        symlink(&victim, &f).unwrap();
        let e = read_no_follow(&f).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ELOOP), "{e}");
        write_atomically(&f, b"{}", true).unwrap();
        assert!(!std::fs::symlink_metadata(&f)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(read_no_follow(&f).unwrap(), "{}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        // A link at the temporary file: removed, not written through.
        symlink(&victim, f.with_extension("tmp")).unwrap();
        write_atomically(&f, b"[1]", false).unwrap();
        assert_eq!(read_no_follow(&f).unwrap(), "[1]");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(!f.with_extension("tmp").exists());
        // Not a regular file: refused without blocking (a FIFO would block a plain open).
        let fifo = d.0.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: mkfifo reads the NUL-terminated path `c` owns.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0);
        assert!(read_no_follow(&fifo).is_err());
        assert!(
            read_no_follow(&d.0.join("absent")).unwrap_err().kind() == std::io::ErrorKind::NotFound
        );
    }
}
