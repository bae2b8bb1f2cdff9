//! Least privilege: once the control socket is bound and the config read, igmpd keeps
//! CAP_NET_RAW (packet sockets) and CAP_NET_ADMIN (MDB, bridge settings, nftables) and
//! drops every other capability from the effective, permitted, inheritable, ambient and
//! bounding sets. Capabilities are per thread: call this while the process has one thread
//! (the runtime is current-thread and nothing has used the blocking pool yet).

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};

/// The capabilities igmpd keeps.
pub const KEEP: [Capability; 2] = [Capability::CAP_NET_RAW, Capability::CAP_NET_ADMIN];

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
