//! Virtual-time tests of the protocol core: every scenario runs in microseconds.

mod instance;
mod membership;

use std::net::Ipv4Addr;
use std::time::Duration;

pub(crate) fn a(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
