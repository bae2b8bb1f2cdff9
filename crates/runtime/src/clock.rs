//! The daemons' clock: milliseconds since the daemon started, the unit of the sans-IO
//! cores' `Instant`, and a sleep until the earliest deadline (or forever when there is
//! none), so an idle daemon never wakes between deadlines.

use std::time::Duration;

/// The pause before the next try after `failures` failures in a row (0: the first try
/// failed once already counts as 1): `first`, doubling each time, at most `max`. The
/// daemons' retries of what the system refused (a connection, an activation, a send).
pub fn backoff(failures: u32, first: Duration, max: Duration) -> Duration {
    first
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(max)
}

/// Milliseconds since [`Clock::new`], on tokio's clock (paused in tests like the rest).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: tokio::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock that reads 0 now.
    pub fn new() -> Self {
        Clock {
            epoch: tokio::time::Instant::now(),
        }
    }

    /// Milliseconds since the clock started (saturating).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Sleeps until `deadline_ms` on this clock; never returns when there is no deadline.
    pub async fn sleep_until(&self, deadline_ms: Option<u64>) {
        match deadline_ms {
            Some(ms) => tokio::time::sleep_until(self.epoch + Duration::from_millis(ms)).await,
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_first_pause_up_to_the_most() {
        let s = Duration::from_secs;
        let b: Vec<Duration> = (1..=7).map(|n| backoff(n, s(1), s(30))).collect();
        assert_eq!(b, [s(1), s(2), s(4), s(8), s(16), s(30), s(30)]);
        assert_eq!(backoff(0, s(1), s(30)), s(1));
        assert_eq!(backoff(u32::MAX, s(1), s(30)), s(30));
    }

    #[tokio::test(start_paused = true)]
    async fn sleeps_to_the_deadline_on_its_own_clock() {
        let c = Clock::new();
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(c.now_ms(), 250);
        c.sleep_until(Some(1_000)).await;
        assert_eq!(c.now_ms(), 1_000);
        // A deadline in the past returns at once.
        c.sleep_until(Some(10)).await;
        assert_eq!(c.now_ms(), 1_000);
    }

    #[tokio::test(start_paused = true)]
    async fn no_deadline_never_wakes() {
        let c = Clock::new();
        let r = tokio::time::timeout(Duration::from_secs(3600), c.sleep_until(None)).await;
        assert!(r.is_err());
    }
}
