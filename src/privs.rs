//! Least privilege: igmpd keeps CAP_NET_RAW (packet sockets) and CAP_NET_ADMIN (MDB,
//! bridge settings, nftables) and drops every other capability from the effective,
//! permitted, inheritable, ambient and bounding sets, and sets no_new_privs, in every mode
//! (`query`, `snoop`, `run`). Nothing igmpd does needs more: files it writes are root's
//! own (no CAP_DAC_OVERRIDE), and `nft`, the one helper it runs, gets at most these two
//! (with no_new_privs an exec never gains a capability). Capabilities are per thread: call
//! [`restrict`] while the process has one thread (before a daemon starts its writer and
//! capture threads; the runtime is current-thread and nothing has used its blocking pool
//! yet), so that every thread started later inherits the reduced sets.

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};

/// The capabilities igmpd keeps.
pub const KEEP: [Capability; 2] = [Capability::CAP_NET_RAW, Capability::CAP_NET_ADMIN];

/// [`drop_to_net_caps`], then no_new_privs.
pub fn restrict() -> Result<()> {
    drop_to_net_caps().context("cannot drop capabilities")?;
    set_no_new_privs().context("cannot set no_new_privs")
}

/// prctl(PR_SET_NO_NEW_PRIVS): no exec of this process or its children gains privileges
/// (setuid bits and file capabilities are ignored). Needs no privilege; cannot be undone.
#[allow(unsafe_code)]
fn set_no_new_privs() -> Result<()> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integer arguments and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

/// Drops every capability but [`KEEP`]. Without CAP_SETPCAP (not root, or already
/// restricted by systemd) the bounding set is left as it is. Does nothing, successfully,
/// when the process has no capabilities beyond [`KEEP`] to begin with.
pub fn drop_to_net_caps() -> Result<()> {
    let keep: CapsHashSet = KEEP.into_iter().collect();
    let permitted = caps::read(None, CapSet::Permitted).context("read capabilities")?;
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
    if permitted.contains(&Capability::CAP_SETPCAP) {
        for cap in caps::read(None, CapSet::Bounding).context("read bounding set")? {
            if !keep.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .with_context(|| format!("drop {cap} from the bounding set"))?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient).context("clear ambient capabilities")?;
    caps::clear(None, CapSet::Inheritable).context("clear inheritable capabilities")?;
    let kept: CapsHashSet = permitted.intersection(&keep).copied().collect();
    caps::set(None, CapSet::Effective, &kept).context("set effective capabilities")?;
    caps::set(None, CapSet::Permitted, &kept).context("set permitted capabilities")?;
    tracing::debug!(kept = ?kept, "dropped every other capability");
    Ok(())
}
