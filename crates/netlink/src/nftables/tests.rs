//! The messages' layout (what the kernel parses), without a kernel.

use super::*;

fn ruleset() -> Ruleset {
    Ruleset {
        family: FAMILY_BRIDGE,
        table: "t".into(),
        comment: "c".into(),
        chain: "prerouting".into(),
        hook: HOOK_BRIDGE_PREROUTING,
        priority: -300,
        sets: vec![Set {
            name: "ports".into(),
            key_type: TYPE_IFINDEX,
            key_len: 4,
            host_order: true,
            elements: vec![4u32.to_ne_bytes().to_vec()],
        }],
        rules: vec![vec![
            Expr::Meta(MetaKey::Iif),
            Expr::Lookup("ports".into()),
            Expr::Counter,
            Expr::Drop,
        ]],
    }
}

/// Every message's length covers it exactly, the batch is framed by begin and end, and
/// each attribute's length stays inside its message.
#[test]
fn messages_are_framed_and_their_attributes_nest_within_them() {
    let mut b = Batch::default();
    b.begin();
    ruleset().create(&mut b, true);
    b.end();
    let mut off = 0;
    let mut types = Vec::new();
    while off < b.buf.len() {
        let len = u32::from_ne_bytes(b.buf[off..off + 4].try_into().unwrap()) as usize;
        assert!(
            len >= 20 && off + len <= b.buf.len(),
            "message at {off}: {len}"
        );
        types.push(u16::from_ne_bytes([b.buf[off + 4], b.buf[off + 5]]));
        // The attributes after nlmsghdr (16) and nfgenmsg (4).
        let mut a = off + 20;
        while a < off + len {
            let alen = u16::from_ne_bytes([b.buf[a], b.buf[a + 1]]) as usize;
            assert!(alen >= 4 && a + alen <= off + len, "attribute at {a}");
            a += (alen + 3) & !3;
        }
        assert_eq!(a, off + len);
        off += len;
    }
    let nft = |m: u16| (SUBSYS << 8) | m;
    assert_eq!(
        types,
        [
            BATCH_BEGIN,
            nft(NEWTABLE),
            nft(NEWSET),
            nft(NEWSETELEM),
            nft(NEWCHAIN),
            nft(NEWRULE),
            BATCH_END
        ]
    );
    assert_eq!(b.acked.len(), 5, "begin and end are not acked");
    // The table's flags: the owner flag, big-endian, after its name.
    let at = b.buf.windows(8).position(|w| w == [8, 0, 2, 0, 0, 0, 0, 2]);
    assert!(at.is_some(), "NFTA_TABLE_FLAGS owner");
}
