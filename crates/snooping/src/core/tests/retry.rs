//! Refused MDB writes, in virtual time: written again with doubling delays from the
//! membership as it is then, a finding while they fail, nothing once the member left.

use super::*;

fn codes_with_retries(s: &Snooper, now: u64) -> Vec<&'static str> {
    s.retry_findings(t(now), "br0", |p| format!("p{p}"))
        .iter()
        .map(|f| f.code)
        .collect()
}

#[test]
fn a_refused_add_is_written_again_with_doubling_delays_and_raises_a_finding() {
    let mut s = snooper(cfg(false));
    rx(&mut s, 0, P1, &join("10.0.0.1", "239.1.1.1"));
    let set = MdbOp::Set(key(P1, "239.1.1.1"), EntryFilter::Any);
    assert_eq!(ops(&mut s), std::slice::from_ref(&set));
    // Refused at 100 ms: written again 1 s later, not before.
    s.mdb_write_failed(t(100), &key(P1, "239.1.1.1"), "No space left on device");
    assert_eq!(codes_with_retries(&s, 200), ["mdb-write-failing"]);
    let f = &s.retry_findings(t(200), "br0", |p| format!("p{p}"))[0];
    assert!(f.message.contains(&format!("port p{P1}")), "{}", f.message);
    assert!(
        f.message.contains("No space left on device"),
        "{}",
        f.message
    );
    assert_eq!(f.group.as_deref(), Some("239.1.1.1"));
    assert_eq!(s.next_deadline().map(|d| d <= t(1100)), Some(true));
    s.poll(t(1099));
    assert_eq!(ops(&mut s), []);
    s.poll(t(1100));
    assert_eq!(ops(&mut s), std::slice::from_ref(&set));
    // Refused again: 2 s, then 4 s.
    s.mdb_write_failed(t(1200), &key(P1, "239.1.1.1"), "No space left on device");
    s.poll(t(3199));
    assert_eq!(ops(&mut s), []);
    s.poll(t(3200));
    assert_eq!(ops(&mut s), std::slice::from_ref(&set));
    s.mdb_write_failed(t(3300), &key(P1, "239.1.1.1"), "No space left on device");
    assert_eq!(s.retries().keys()[&key(P1, "239.1.1.1")].refusals, 3);
    // The host keeps reporting (its membership lasts 5 s here); a refresh writes nothing.
    rx(&mut s, 6000, P1, &join("10.0.0.1", "239.1.1.1"));
    assert_eq!(ops(&mut s), []);
    s.poll(t(7300));
    assert_eq!(ops(&mut s), [set]);
    assert_eq!(s.retries().refused_total, 3);
    // Taken this time (no refusal comes back): the finding clears after FAILING_FOR.
    let quiet = 3300 + crate::core::mdb::retry::FAILING_FOR.as_millis() as u64;
    assert_eq!(codes_with_retries(&s, quiet - 1), ["mdb-write-failing"]);
    s.poll(t(quiet));
    assert!(codes_with_retries(&s, quiet).is_empty());
    assert!(s.retries().keys().is_empty());
}

#[test]
fn a_refused_key_whose_member_left_is_not_written_again() {
    let mut s = snooper(cfg(true));
    rx(&mut s, 0, P1, &join("10.0.0.1", "239.1.1.1"));
    s.drain().for_each(drop);
    // The member leaves; its last-member queries run out (about 1 s) before the retry of
    // the write refused meanwhile is due (1 s after the refusal).
    rx(&mut s, 20, P1, &leave("10.0.0.1", "239.1.1.1"));
    s.mdb_write_failed(t(600), &key(P1, "239.1.1.1"), "Invalid argument");
    run_until(&mut s, 5_000);
    let written: Vec<MdbOp> = ops(&mut s)
        .into_iter()
        .filter(|o| matches!(o, MdbOp::Set(..)))
        .collect();
    assert!(written.is_empty(), "{written:?}");
    assert!(s.retries().keys().is_empty());
}
