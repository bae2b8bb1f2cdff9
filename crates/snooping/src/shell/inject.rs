//! Failure injection for the end-to-end tests, in debug builds only (release builds have
//! none of it): `IGMPD_TEST_EVENTS_END_MS=N` ends the rtnetlink event stream N ms after it
//! was connected, as a failed socket would, so that the tests can see igmpd connect again.

use futures::stream::{Stream, StreamExt};
use igmpd_netlink::Event as NlEvent;

/// `events`, ended after the injected time when one is set (debug builds).
pub(super) fn events_end(
    events: Box<dyn Stream<Item = NlEvent> + Send + Unpin>,
) -> Box<dyn Stream<Item = NlEvent> + Send + Unpin> {
    #[cfg(debug_assertions)]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        // Once per process: the reconnected stream runs on.
        static DONE: AtomicBool = AtomicBool::new(false);
        let after = std::env::var("IGMPD_TEST_EVENTS_END_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok());
        if let Some(ms) = after {
            if !DONE.swap(true, Ordering::Relaxed) {
                let end = Box::pin(tokio::time::sleep(std::time::Duration::from_millis(ms)));
                return Box::new(events.take_until(end));
            }
        }
    }
    events
}
