//! Instants of the core's clock: milliseconds since an epoch the I/O shell chooses.
//!
//! The core only compares and adds them, so tests can start at zero and step time by hand.

use std::fmt;
use std::num::NonZeroU64;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point in time, in milliseconds since the shell's epoch.
///
/// Stored as milliseconds + 1 in a `NonZeroU64` so that `Option<Instant>` is 8 bytes, not
/// 16: membership records hold several optional timers each, times tens of thousands of
/// groups in a snooping daemon. The last representable instant is `u64::MAX - 1` ms.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(NonZeroU64);

impl Instant {
    /// The epoch.
    pub const ZERO: Instant = Instant(NonZeroU64::MIN);

    /// An instant `ms` milliseconds after the epoch (saturating at `u64::MAX - 1`).
    pub const fn from_millis(ms: u64) -> Self {
        Instant(NonZeroU64::MIN.saturating_add(ms))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0.get() - 1
    }

    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.as_millis().saturating_sub(earlier.as_millis()))
    }
}

impl Default for Instant {
    fn default() -> Self {
        Instant::ZERO
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant::from_millis(
            self.as_millis()
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant::from_millis(
            self.as_millis()
                .saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}ms", self.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_and_order_survive_the_offset_representation() {
        let t = Instant::from_millis(5);
        assert_eq!(Instant::ZERO.as_millis(), 0);
        assert_eq!(Instant::default(), Instant::ZERO);
        assert_eq!((t + Duration::from_millis(7)).as_millis(), 12);
        assert_eq!((t - Duration::from_millis(7)), Instant::ZERO);
        assert!(Instant::ZERO < t);
        assert_eq!(t.saturating_since(Instant::ZERO), Duration::from_millis(5));
        assert_eq!(Instant::ZERO.saturating_since(t), Duration::ZERO);
        let end = Instant::from_millis(u64::MAX);
        assert_eq!(end.as_millis(), u64::MAX - 1);
        assert_eq!(end + Duration::MAX, end);
        assert_eq!(std::mem::size_of::<Option<Instant>>(), 8);
    }
}
