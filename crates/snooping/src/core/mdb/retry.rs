//! The MDB writes the kernel refused and when each is written again (the data; the
//! snooper's side is `core::retry`).

use std::collections::BTreeMap;
use std::time::Duration;

use igmpd_querier::core::Instant;

use crate::core::EntryKey;

/// The first retry's delay; each refusal doubles it up to [`MAX_DELAY`].
pub(crate) const FIRST_DELAY: Duration = Duration::from_secs(1);
pub(crate) const MAX_DELAY: Duration = Duration::from_secs(60);
/// How long after its last refusal a key still counts as failing (and then is forgotten:
/// no refusal came back for its last write).
pub const FAILING_FOR: Duration = Duration::from_secs(120);
/// Keys followed at most (refusals beyond are counted, not retried: the MDB table's own
/// bound keeps the real number far lower).
pub(crate) const MAX_KEYS: usize = 4096;

/// One refused key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    /// Refusals in a row.
    pub refusals: u32,
    /// When it is written again (None: written, no answer yet).
    pub due: Option<Instant>,
    /// When the kernel refused it last, and why.
    pub last: Instant,
    pub error: String,
}

/// The refused keys.
#[derive(Debug, Clone, Default)]
pub struct Retries {
    pub(crate) keys: BTreeMap<EntryKey, Retry>,
    /// Refusals since start.
    pub refused_total: u64,
}

impl Retries {
    /// The next retry due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.keys.values().filter_map(|r| r.due).min()
    }

    /// The keys followed now.
    pub fn keys(&self) -> &BTreeMap<EntryKey, Retry> {
        &self.keys
    }
}

/// The delay before the write after `refusals` refusals in a row.
pub(crate) fn delay(refusals: u32) -> Duration {
    igmpd_runtime::clock::backoff(refusals, FIRST_DELAY, MAX_DELAY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_from_one_second_up_to_a_minute() {
        let s: Vec<u64> = (1..=9).map(|n| delay(n).as_secs()).collect();
        assert_eq!(s, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(delay(u32::MAX).as_secs(), 60);
    }
}
