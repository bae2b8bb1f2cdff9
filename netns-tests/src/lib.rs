//! End-to-end test kit for igmpd: network namespaces, a Linux bridge as the switch, real
//! Linux hosts, and ways to observe what happened.
//!
//! Everything runs inside namespaces this library creates (names `igt<pid>-<n>`); nothing
//! touches the root namespace's interfaces or sysctls. Every namespace is deleted by a guard
//! on drop, after the processes spawned in it are killed by PID; a run that crashed leaves
//! namespaces behind which the next [`Lab`] removes ([`cleanup_stale_namespaces`]).
//!
//! - Topology: [`Netns`], [`Lab`] built by [`LabBuilder`], bridge settings in
//!   [`BridgeConfig`], hosts described by [`HostSpec`] and reached through [`Host`].
//! - Real hosts: [`Member`] drives the `mcast-member` helper binary of this crate inside a
//!   host namespace: the host's own kernel joins groups (ASM, SSM, EXCLUDE with blocked
//!   sources, IPv4 and IPv6), answers queries, and counts or sends UDP data.
//! - Observation: [`mdb`] parses `bridge -j -d -s mdb show`; [`capture`] runs bounded
//!   tcpdump captures and reads the pcap back; [`Member::count`] measures data delivery.
//! - Waiting: [`poll_until`] everywhere instead of sleeps.
//! - Independent queriers to interoperate with: [`FrrPimd`] (FRR's zebra + pimd) and
//!   [`TroglobitPimd`], run in the foreground inside a namespace and stopped by PID.
//!
//! Tests must run as root on Linux with iproute2 >= 6.15, nftables and tcpdump installed
//! (`scripts/install-deps.sh`).
//!
//! ```no_run
//! use std::time::Duration;
//! use igmpd_netns_tests::{poll_until, BridgeConfig, Lab, Member};
//!
//! let lab = Lab::builder().bridge(BridgeConfig::fast_querier()).hosts(&["a", "b"]).build()?;
//! // In this crate's own tests: `igmpd_netns_tests::member_bin!()`.
//! let mut a = Member::spawn(lab.host("a"), Member::locate_binary()?)?;
//! a.join("239.1.2.3".parse()?)?;
//! poll_until(Duration::from_secs(5), Duration::from_millis(50), || {
//!     lab.mdb().ok()?.iter().any(|e| e.port == lab.host("a").port()).then_some(())
//! })?;
//! # Ok::<(), anyhow::Error>(())
//! ```

pub mod capture;
mod cmd;
mod daemon;
mod ffi;
mod lab;
pub mod mdb;
mod member;
mod netns;
mod peers;
mod poll;

pub use cmd::{exec, exec_ok, nft, sysctl, sysctl_get, DEFAULT_COMMAND_TIMEOUT};
pub use daemon::{Igmpd, IGMPD_START_TIMEOUT};
pub use lab::{BridgeConfig, Host, HostSpec, IgmpVersion, Lab, LabBuilder, MldVersion, Switch};
pub use member::{Member, MEMBER_REPLY_TIMEOUT};
pub use netns::{cleanup_stale_namespaces, in_netns, Netns, NsChild, NETNS_PREFIX};
pub use peers::{
    FrrIgmp, FrrPimd, TroglobitPimd, PEER_START_TIMEOUT, TROGLOBIT_LOCK_TIMEOUT,
    TROGLOBIT_PIMD_CACHE,
};
pub use poll::{holds_for, poll_until, poll_until_ok, PollTimeout};

/// Path of this crate's `mcast-member` helper binary, for use in this crate's own
/// integration tests (expands to `env!("CARGO_BIN_EXE_mcast-member")` at the call site).
///
/// Tests of other packages cannot see that variable; they use [`Member::locate_binary`].
#[macro_export]
macro_rules! member_bin {
    () => {
        env!("CARGO_BIN_EXE_mcast-member")
    };
}
