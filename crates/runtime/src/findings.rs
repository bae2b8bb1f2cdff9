//! The findings log: both daemons re-evaluate their findings at most once a second (when
//! the loop wakes anyway) and log each new one once, and each cleared one, here and
//! nowhere else. Status evaluates them afresh on every request.

use std::time::Duration;

use tracing::{info, warn};

use crate::events::{Event, Events, FindingInfo, Scope};
use crate::status::FindingDoc;

/// How often findings are re-evaluated for the log.
pub const EVERY: Duration = Duration::from_secs(1);

/// The findings last logged and when they were evaluated.
#[derive(Debug, Default)]
pub struct FindingsLog {
    logged: Vec<FindingDoc>,
    at_ms: Option<u64>,
    events: Option<(Events, Scope)>,
}

impl FindingsLog {
    /// An empty log: everything found first is new.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also emits each new and cleared finding on `events`, at the place of `scope` its
    /// interface names.
    pub fn emitting(mut self, events: Events, scope: Scope) -> Self {
        self.events = Some((events, scope));
        self
    }

    /// When the next evaluation is due (None: at once).
    pub fn due_ms(&self) -> Option<u64> {
        self.at_ms
            .map(|t| t.saturating_add(EVERY.as_millis() as u64))
    }

    /// Calls `evaluate` unless the last evaluation was less than [`EVERY`] ago, then logs
    /// what changed.
    pub fn update(&mut self, now_ms: u64, evaluate: impl FnOnce() -> Vec<FindingDoc>) {
        if self.due_ms().is_some_and(|due| now_ms < due) {
            return;
        }
        self.at_ms = Some(now_ms);
        let new = evaluate();
        log_changes(&self.logged, &new, self.events.as_ref());
        self.logged = new;
    }

    /// What was found at the last evaluation.
    pub fn current(&self) -> &[FindingDoc] {
        &self.logged
    }
}

/// Logs each finding of `new` whose key is not in `old` once (info findings at info, the
/// others at warn) and each one of `old` that `new` no longer has as cleared; emits each
/// on `events`.
fn log_changes(old: &[FindingDoc], new: &[FindingDoc], events: Option<&(Events, Scope)>) {
    let emit = |raised: bool, f: &FindingDoc| {
        if let Some((bus, scope)) = events {
            bus.emit(|| {
                let mut e = Event::finding(
                    raised,
                    scope.place(&f.iface),
                    FindingInfo {
                        code: f.code,
                        severity: f.severity,
                        message: f.message.clone(),
                    },
                );
                e.host = f.host.as_deref().and_then(|h| h.parse().ok());
                e.group = f.group.as_deref().and_then(|g| g.parse().ok());
                e
            });
        }
    };
    for f in new
        .iter()
        .filter(|f| !old.iter().any(|o| o.key() == f.key()))
    {
        if f.severity == "info" {
            info!(iface = %f.iface, code = f.code, host = ?f.host, group = ?f.group, hint = %f.hint, "{}", f.message)
        } else {
            warn!(iface = %f.iface, code = f.code, host = ?f.host, group = ?f.group, hint = %f.hint, "{}", f.message)
        }
        emit(true, f);
    }
    for o in old
        .iter()
        .filter(|o| !new.iter().any(|f| f.key() == o.key()))
    {
        info!(iface = %o.iface, code = o.code, host = ?o.host, group = ?o.group, "cleared");
        emit(false, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(code: &'static str, host: &str) -> FindingDoc {
        FindingDoc {
            code,
            severity: "warning",
            iface: "br0".into(),
            message: format!("{code} {host}"),
            hint: String::new(),
            host: Some(host.into()),
            group: None,
        }
    }

    #[test]
    fn evaluates_at_most_once_per_interval() {
        let mut log = FindingsLog::new();
        let mut calls = 0;
        for now in [0, 10, 999, 1_000, 1_500, 2_000] {
            log.update(now, || {
                calls += 1;
                vec![finding("host-silent", "10.0.0.2")]
            });
        }
        assert_eq!(calls, 3, "at 0, 1000 and 2000 ms");
        assert_eq!(log.due_ms(), Some(3_000));
        assert_eq!(log.current().len(), 1);
    }

    #[test]
    fn each_new_and_cleared_finding_is_one_event() {
        let bus = Events::new();
        let mut sub = bus.subscribe();
        let mut log = FindingsLog::new().emitting(bus.clone(), Scope::Bridge);
        log.update(0, || vec![finding("a", "10.0.0.2")]);
        log.update(1_000, || vec![finding("a", "10.0.0.2")]);
        log.update(2_000, Vec::new);
        let mut got = Vec::new();
        while let Some(crate::events::Next::Event(e)) = sub.try_next() {
            got.push(e);
        }
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].kind, crate::events::Kind::FindingRaised);
        assert_eq!(got[0].place, crate::events::Place::Bridge("br0".into()));
        assert_eq!(got[0].host, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(got[1].kind, crate::events::Kind::FindingCleared);
        assert_eq!(got[1].finding.as_ref().unwrap().code, "a");
    }

    #[test]
    fn keeps_what_was_found_last() {
        let mut log = FindingsLog::new();
        log.update(0, || vec![finding("a", "h1"), finding("b", "h2")]);
        log.update(1_000, || vec![finding("b", "h2")]);
        assert_eq!(
            log.current().iter().map(|f| f.code).collect::<Vec<_>>(),
            ["b"]
        );
    }
}
