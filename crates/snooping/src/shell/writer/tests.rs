//! The writer's queueing and batching without a kernel: coalescing per entry, busy
//! entries, re-sends, the idle counter and barriers, how operations become batches, and
//! which refusals count.

use std::net::{IpAddr, Ipv4Addr};

use igmpd_netlink::KernelError;

use super::*;

const BR: u32 = 2;

fn key(port: u32, last: u8) -> EntryKey {
    EntryKey {
        port,
        vid: 0,
        group: IpAddr::V4(Ipv4Addr::new(239, 1, 1, last)),
    }
}

fn set(k: EntryKey) -> MdbOp {
    MdbOp::Set(k, EntryFilter::Any)
}

fn op(op: MdbOp) -> Option<WriteCmd> {
    Some(WriteCmd::Op {
        bridge: BR,
        op,
        permanent: true,
    })
}

fn kernel(errno: i32) -> KernelError {
    KernelError {
        errno,
        message: None,
        offset: None,
        offending_attribute: None,
    }
}

#[test]
fn only_the_latest_operation_of_an_entry_is_written_in_arrival_order() {
    let mut q = Queue::default();
    let (a, b) = (key(4, 1), key(4, 2));
    assert!(q.take(op(set(a))));
    assert!(q.take(op(set(b))));
    assert!(q.take(op(MdbOp::Delete(a))));
    assert_eq!(q.received, 3);
    assert_eq!(q.next(), Some(((BR, a, None), (MdbOp::Delete(a), true))));
    assert_eq!(q.next(), Some(((BR, b, None), (set(b), true))));
    assert_eq!(q.next(), None);
    // The same entry of another bridge is another key.
    assert!(q.take(Some(WriteCmd::Op {
        bridge: BR + 1,
        op: set(a),
        permanent: false,
    })));
    assert_eq!(q.next(), Some(((BR + 1, a, None), (set(a), false))));
}

#[test]
fn a_busy_entry_waits_until_its_write_ends() {
    let mut q = Queue::default();
    let a = key(4, 1);
    q.take(op(set(a)));
    let (k, _) = q.next().unwrap();
    // In flight: a newer operation for it waits, however often it changes.
    q.take(op(MdbOp::Delete(a)));
    q.take(op(set(a)));
    assert_eq!(q.next(), None);
    q.done(k);
    assert_eq!(q.next(), Some(((BR, a, None), (set(a), true))));
    q.done(k);
    assert_eq!(q.next(), None);
}

#[test]
fn a_lost_outcome_is_written_again_unless_something_newer_replaced_it() {
    let mut q = Queue::default();
    let (a, b) = (key(4, 1), key(4, 2));
    q.take(op(set(a)));
    q.take(op(set(b)));
    let (ka, wa) = q.next().unwrap();
    let (kb, wb) = q.next().unwrap();
    q.take(op(MdbOp::Delete(b)));
    q.again(ka, wa);
    q.again(kb, wb);
    assert_eq!(q.next(), Some(((BR, a, None), (set(a), true))));
    assert_eq!(q.next(), Some(((BR, b, None), (MdbOp::Delete(b), true))));
    assert_eq!(q.next(), None);
}

#[test]
fn idle_counts_what_was_received_once_nothing_waits_or_is_in_flight() {
    let idle = AtomicU64::new(0);
    let mut q = Queue::default();
    assert!(q.settle(&idle));
    let (tx, mut answered) = oneshot::channel();
    q.take(op(set(key(4, 1))));
    q.take(op(set(key(4, 2))));
    q.take(Some(WriteCmd::Barrier(tx)));
    // Waiting.
    assert!(!q.settle(&idle));
    let (k1, _) = q.next().unwrap();
    let (k2, _) = q.next().unwrap();
    // In flight.
    assert!(!q.settle(&idle));
    q.done(k1);
    assert!(!q.settle(&idle));
    assert_eq!(idle.load(Ordering::Acquire), 0);
    assert!(answered.try_recv().is_err());
    q.done(k2);
    assert!(q.settle(&idle));
    assert_eq!(idle.load(Ordering::Acquire), 2);
    assert_eq!(answered.try_recv(), Ok(()));
    assert!(!q.take(None), "a closed channel ends the writer");
}

#[test]
fn take_all_drains_the_channel_so_batches_fill() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    for i in 0..5 {
        tx.send(op(set(key(4, i))).unwrap()).unwrap();
    }
    let mut q = Queue::default();
    assert!(take_all(&mut q, &mut rx, op(set(key(5, 0)))));
    assert_eq!(q.received, 6);
    drop(tx);
    assert!(!take_all(&mut q, &mut rx, None));
}

#[test]
fn operations_go_in_batches_of_at_most_batch_and_max_in_flight() {
    let mut q = Queue::default();
    for i in 0..(BATCH + 10) {
        q.take(op(set(key(1000 + i as u32, 1))));
    }
    let mut out = Batch::new();
    let mut in_flight = InFlight::new();
    assert!(!fill(&mut q, &mut out, &mut in_flight, &Dialect::new(73)).is_empty());
    assert_eq!((out.len(), in_flight.len()), (BATCH, BATCH));
    assert!(!fill(&mut q, &mut out, &mut in_flight, &Dialect::new(73)).is_empty());
    assert_eq!((out.len(), in_flight.len()), (10, BATCH + 10));
    assert!(fill(&mut q, &mut out, &mut in_flight, &Dialect::new(73)).is_empty());
    assert!(out.is_empty());
    // Acks free the entries by sequence number.
    let mut seqs: Vec<u32> = in_flight.keys().copied().collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=(BATCH as u32 + 10)).collect::<Vec<_>>());
    // Never more than MAX_IN_FLIGHT.
    for i in 0..MAX_IN_FLIGHT {
        q.take(op(set(key(5000 + i as u32, 1))));
    }
    while !fill(&mut q, &mut out, &mut in_flight, &Dialect::new(73)).is_empty() {}
    assert_eq!(in_flight.len(), MAX_IN_FLIGHT);
    assert_eq!(q.order.len(), BATCH + 10);
}

/// A batch the socket would not take (the send failed): no ack will come, so its writes
/// wait again and go out in the next batch, latest state first; nothing stays busy.
#[test]
fn the_writes_of_a_batch_that_was_not_sent_wait_again() {
    let d = Dialect::new(73);
    let mut q = Queue::default();
    for i in 0..5 {
        q.take(op(set(key(100 + i, 1))));
    }
    let (mut out, mut in_flight) = (Batch::new(), InFlight::new());
    let seqs = fill(&mut q, &mut out, &mut in_flight, &d);
    assert_eq!(seqs.len(), 5);
    assert!(!q.busy.is_empty());
    // Meanwhile a newer operation of one entry came: it replaces the unsent one.
    q.take(op(MdbOp::Delete(key(102, 1))));
    unsent(&mut q, &mut in_flight, &seqs);
    assert!(in_flight.is_empty() && q.busy.is_empty());
    let again = fill(&mut q, &mut out, &mut in_flight, &d);
    assert_eq!(again.len(), 5, "every write goes out again, once");
    let ops: Vec<MdbOp> = in_flight.values().map(|(_, w)| w.0.clone()).collect();
    assert!(ops.contains(&MdbOp::Delete(key(102, 1))), "{ops:?}");
    assert!(!ops.contains(&set(key(102, 1))), "{ops:?}");
    assert_eq!(send_backoff(2), Duration::from_millis(20));
    assert_eq!(send_backoff(100), Duration::from_secs(1));
}

#[test]
fn deleting_what_is_not_there_is_no_error_but_refused_sets_are() {
    let a = key(4, 1);
    assert!(refusal(
        &Dialect::new(73),
        BR,
        &MdbOp::Delete(a),
        kernel(libc::ENOENT)
    )
    .is_none());
    let e = refusal(&Dialect::new(73), BR, &set(a), kernel(libc::ENOSPC)).unwrap();
    assert_eq!((e.bridge, e.key, e.set), (BR, a, true));
    // (EINVAL without a message is how br_mdb_del() says "not there".)
    assert!(refusal(
        &Dialect::new(73),
        BR,
        &MdbOp::Delete(a),
        kernel(libc::EINVAL)
    )
    .is_none());
    let e = refusal(
        &Dialect::new(73),
        BR,
        &MdbOp::Delete(a),
        kernel(libc::EPERM),
    )
    .unwrap();
    assert!(!e.set);
}

#[test]
fn requests_carry_the_entry_its_filter_and_permanence() {
    let k = EntryKey {
        port: 4,
        vid: 10,
        group: IpAddr::V4(Ipv4Addr::new(239, 1, 1, 1)),
    };
    let inc = MdbOp::Set(
        k,
        EntryFilter::Include(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))]),
    );
    let mut b = Batch::new();
    b.push(message(&Dialect::new(73), BR, &inc, true));
    let with_sources = b.bytes().len();
    b.clear();
    b.push(message(&Dialect::new(73), BR, &set(k), false));
    assert!(b.bytes().len() < with_sources);
    b.clear();
    b.push(message(&Dialect::new(73), BR, &MdbOp::Delete(k), true));
    assert!(!b.is_empty());
}
