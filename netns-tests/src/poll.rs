//! Bounded waiting: poll a condition until it holds or a deadline passes.

use std::fmt;
use std::time::{Duration, Instant};

/// A [`poll_until`] or [`poll_until_ok`] deadline passed before the condition held.
#[derive(Debug)]
pub struct PollTimeout {
    /// How long was waited.
    pub waited: Duration,
    /// How many times the condition was evaluated.
    pub attempts: u32,
    /// For [`poll_until_ok`]: the last error the condition returned.
    pub last_error: Option<String>,
}

impl fmt::Display for PollTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "condition not met within {:?} ({} attempts)",
            self.waited, self.attempts
        )?;
        if let Some(e) = &self.last_error {
            write!(f, "; last error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PollTimeout {}

/// Evaluates `cond` every `interval` until it returns `Some`, for at most `timeout`.
///
/// The condition is always evaluated at least once, and once more after the deadline
/// passed (so a slow machine that wakes late still gets a final look).
pub fn poll_until<T>(
    timeout: Duration,
    interval: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Result<T, PollTimeout> {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut attempts = 0;
    loop {
        attempts += 1;
        if let Some(v) = cond() {
            return Ok(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(PollTimeout {
                waited: now - start,
                attempts,
                last_error: None,
            });
        }
        std::thread::sleep(interval.min(deadline - now));
    }
}

/// Like [`poll_until`] for a fallible condition: `Ok(Some(v))` ends the wait, `Ok(None)` and
/// `Err(_)` keep polling; on timeout the last error is reported.
pub fn poll_until_ok<T, E: fmt::Display>(
    timeout: Duration,
    interval: Duration,
    mut cond: impl FnMut() -> Result<Option<T>, E>,
) -> Result<T, PollTimeout> {
    let mut last_error = None;
    poll_until(timeout, interval, || match cond() {
        Ok(v) => v,
        Err(e) => {
            last_error = Some(e.to_string());
            None
        }
    })
    .map_err(|mut t| {
        t.last_error = last_error.take();
        t
    })
}

/// Watches for the whole `window` that nothing happens: fails with what `changed` returned
/// as soon as it returns Some, succeeds when the window passes. For "B must not receive" /
/// "igmpd must stay querier" checks, instead of a sleep followed by a single look.
pub fn holds_for<T>(
    window: Duration,
    interval: Duration,
    changed: impl FnMut() -> Option<T>,
) -> Result<(), T> {
    match poll_until(window, interval, changed) {
        Ok(t) => Err(t),
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_value_once_condition_holds() {
        let mut n = 0;
        let v = poll_until(Duration::from_secs(5), Duration::from_millis(1), || {
            n += 1;
            (n == 3).then_some(n)
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn times_out_with_last_error() {
        let e = poll_until_ok::<(), _>(Duration::from_millis(20), Duration::from_millis(5), || {
            Err("nope")
        })
        .unwrap_err();
        assert!(e.attempts >= 2);
        assert_eq!(e.last_error.as_deref(), Some("nope"));
    }

    #[test]
    fn holds_for_fails_at_the_first_change_and_passes_a_quiet_window() {
        let start = Instant::now();
        let r = holds_for(Duration::from_secs(5), Duration::from_millis(1), || {
            (start.elapsed() > Duration::from_millis(20)).then_some("moved")
        });
        assert_eq!(r, Err("moved"));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "failed at once, not after the window"
        );
        assert_eq!(
            holds_for(
                Duration::from_millis(30),
                Duration::from_millis(5),
                || None::<()>
            ),
            Ok(())
        );
    }
}
