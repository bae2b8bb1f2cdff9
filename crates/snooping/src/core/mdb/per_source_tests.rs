//! The MDB table's writes on kernels without source lists (INCLUDE as per-source
//! entries), and `MdbOp::undo` / `target`.

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key() -> EntryKey {
    EntryKey {
        port: 4,
        vid: 0,
        group: ip("232.1.1.1"),
    }
}

fn set(t: &mut MdbTable, f: Option<EntryFilter>) -> Vec<MdbOp> {
    let mut ops = Vec::new();
    t.set_desired(key(), f, &mut ops);
    ops
}

#[test]
fn include_is_written_per_source_and_changes_write_only_the_difference() {
    let mut t = MdbTable::new(100);
    t.set_per_source(true);
    let (s1, s2) = (ip("10.0.0.1"), ip("10.0.0.2"));
    let k = key();
    assert_eq!(
        set(&mut t, Some(EntryFilter::Include(vec![s1, s2]))),
        [MdbOp::SetSource(k, s1), MdbOp::SetSource(k, s2)]
    );
    assert_eq!(
        set(&mut t, Some(EntryFilter::Include(vec![s1]))),
        [MdbOp::DeleteSource(k, s2)]
    );
    // To (*,G): the plain entry first, then the (S,G) one goes.
    assert_eq!(
        set(&mut t, Some(EntryFilter::Any)),
        [MdbOp::Set(k, EntryFilter::Any), MdbOp::DeleteSource(k, s1)]
    );
    assert_eq!(
        set(&mut t, Some(EntryFilter::Include(vec![s2]))),
        [MdbOp::SetSource(k, s2), MdbOp::Delete(k)]
    );
    assert_eq!(t.rewrite_ops(), [MdbOp::SetSource(k, s2)]);
    assert_eq!(set(&mut t, None), [MdbOp::DeleteSource(k, s2)]);
    assert_eq!(t.programmed().count(), 0);
}

#[test]
fn a_group_with_a_plain_entry_is_written_plain_on_every_port() {
    // An (S,G) entry would take S's traffic from the other ports' (*,G) entries.
    let mut t = MdbTable::new(100);
    t.set_per_source(true);
    let s1 = ip("10.0.0.1");
    let (a, b) = (key(), EntryKey { port: 5, ..key() });
    let mut ops = Vec::new();
    t.set_desired(a, Some(EntryFilter::Include(vec![s1])), &mut ops);
    assert_eq!(ops, [MdbOp::SetSource(a, s1)]);
    ops.clear();
    // b wants every source: a's entry becomes plain too.
    t.set_desired(b, Some(EntryFilter::Any), &mut ops);
    assert!(ops.contains(&MdbOp::Set(b, EntryFilter::Any)), "{ops:?}");
    assert!(ops.contains(&MdbOp::Set(a, EntryFilter::Any)), "{ops:?}");
    assert!(ops.contains(&MdbOp::DeleteSource(a, s1)), "{ops:?}");
    ops.clear();
    // b leaves: a is per source again.
    t.set_desired(b, None, &mut ops);
    assert!(ops.contains(&MdbOp::Delete(b)), "{ops:?}");
    assert!(ops.contains(&MdbOp::SetSource(a, s1)), "{ops:?}");
    assert!(ops.contains(&MdbOp::Delete(a)), "{ops:?}");
    assert_eq!(t.rewrite_ops(), [MdbOp::SetSource(a, s1)]);
}

#[test]
fn exclude_without_source_lists_forwards_every_source_and_counts_it() {
    let mut t = MdbTable::new(100);
    t.set_per_source(true);
    let k = key();
    assert_eq!(
        set(&mut t, Some(EntryFilter::Exclude(vec![ip("10.0.0.9")]))),
        [MdbOp::Set(k, EntryFilter::Any)]
    );
    assert_eq!(t.degraded_total(), 1);
    assert_eq!(t.get(&k), Some(&EntryFilter::Any));
    assert_eq!(set(&mut t, None), [MdbOp::Delete(k)]);
}

#[test]
fn with_source_lists_nothing_changes() {
    let mut t = MdbTable::new(100);
    let f = EntryFilter::Include(vec![ip("10.0.0.1")]);
    assert_eq!(set(&mut t, Some(f.clone())), [MdbOp::Set(key(), f.clone())]);
    assert_eq!(t.rewrite_ops(), [MdbOp::Set(key(), f)]);
    assert_eq!(set(&mut t, None), [MdbOp::Delete(key())]);
}

#[test]
fn undo_and_target() {
    let (k, s) = (key(), ip("10.0.0.1"));
    assert_eq!(MdbOp::SetSource(k, s).undo(), MdbOp::DeleteSource(k, s));
    assert_eq!(MdbOp::Set(k, EntryFilter::Any).undo(), MdbOp::Delete(k));
    assert_eq!(MdbOp::SetSource(k, s).target(), (k, Some(s)));
    assert!(!MdbOp::Delete(k).is_set());
}
