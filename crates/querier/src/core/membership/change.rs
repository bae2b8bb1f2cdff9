//! What a membership reports to its owner: each [`Change`] of a group record, and why a
//! record went ([`Removal`]).

use crate::core::config::Generation;

/// What changed, for logs, status and the forwarding plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<A> {
    /// A group record was created.
    GroupAdded {
        /// The group.
        group: A,
        /// In EXCLUDE mode: every source (a (*,G) join). Otherwise its INCLUDE sources
        /// follow as [`Change::SourceAdded`].
        any_source: bool,
    },
    /// An INCLUDE-mode group gained a source (an (S,G) join), also at its creation.
    SourceAdded {
        /// The group.
        group: A,
        /// The source.
        source: A,
    },
    /// An INCLUDE-mode group lost a source and keeps others (when the last one goes, the
    /// group goes: [`Change::GroupRemoved`]).
    SourceRemoved {
        /// The group.
        group: A,
        /// The source.
        source: A,
        /// Why.
        reason: Removal,
    },
    /// A group record was deleted (its timers ran out, or the segment went away).
    GroupRemoved {
        /// The group.
        group: A,
        /// Why.
        reason: Removal,
    },
    /// What the group forwards changed (filter mode, or which sources).
    Forwarding {
        /// The group.
        group: A,
    },
    /// The group's host compatibility mode changed (§7.3.2).
    Compat {
        /// The group.
        group: A,
        /// The new mode.
        mode: Generation,
    },
}

/// Why a group record went (the `reason` of `igmpd monitor`'s `leave` and `expiry`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// A host left: its report emptied the record at once (INCLUDE mode: BLOCK or TO_IN of
    /// the last sources), or the timers lowered by its leave and the last-member queries
    /// (RFC 9776 §6.6.3, §6.6.1) ran out.
    Left {
        /// After the last-member queries (true), or at once on the report.
        queried: bool,
    },
    /// Its timers ran out: no host reported it for a group membership interval (§6.5).
    Expired,
    /// The port gave it up for a newer one at its limit (`limit_action = "replace"`).
    Replaced,
    /// The segment went away (port or interface removed, link down, stop).
    Cleared,
}

impl Removal {
    /// A host left (`leave`), rather than the timers running out or igmpd dropping it.
    pub fn is_leave(self) -> bool {
        !matches!(self, Removal::Expired)
    }

    /// The `reason` field.
    pub fn name(self) -> &'static str {
        match self {
            Removal::Left { queried: true } => "last-member-query",
            Removal::Left { queried: false } => "report",
            Removal::Expired => "timeout",
            Removal::Replaced => "limit-replaced",
            Removal::Cleared => "removed",
        }
    }
}
