//! The main-thread MDB writer against the real kernel, in a network namespace of its own
//! (root required, like the rest of igmpd's tests).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use igmpd_netlink::probe::{self, MdbFeatures};
use igmpd_netns_tests::{in_netns, Netns};
use igmpd_snooping::core::{EntryFilter, EntryKey, MdbOp};
use igmpd_snooping::shell::writer::{Dialect, InlineWriter, WriteError};

const PROTO: u8 = 73;

/// A namespace (the lab library's: deleted on drop, also when an assertion fails) with a
/// snooping bridge and one veth port.
fn bridge_ns() -> Netns {
    let ns = Netns::new().expect("namespace");
    for cmd in [
        "link add br0 type bridge mcast_snooping 1",
        "link add p1 type veth peer name p1b",
        "link set p1 master br0",
        "link set p1 up",
        "link set p1b up",
        "link set br0 up",
    ] {
        ns.ip(&cmd.split(' ').collect::<Vec<_>>()).expect(cmd);
    }
    ns
}

/// `bridge -d mdb show dev br0` in the namespace.
fn mdb(ns: &Netns) -> String {
    ns.exec_ok(&["bridge", "-d", "mdb", "show", "dev", "br0"])
        .expect("bridge mdb show")
}

/// What the kernel's MDB takes (the daemon's probe), on port `p1` of `br` in `ns`.
fn probe(ns: &Netns, br: u32, p1: u32) -> MdbFeatures {
    in_netns(ns.name(), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let (conn, handle, _) = igmpd_netlink::new_connection()?;
            tokio::spawn(conn);
            Ok(probe::probe_mdb(&handle, br, p1, PROTO).await?)
        })
    })
    .join()
    .expect("probe thread")
    .expect("probe")
}

/// Writes `ops` on bridge `br` with a fresh inline writer inside `ns`, in the dialect of
/// a kernel with `features`.
fn write(
    ns: &Netns,
    br: u32,
    features: MdbFeatures,
    ops: Vec<MdbOp>,
) -> (Vec<MdbOp>, Vec<WriteError>) {
    in_netns(ns.name(), move || {
        let dialect = Dialect::new(PROTO);
        dialect.set(&features);
        Ok(InlineWriter::open(Arc::new(dialect))?.write(br, ops))
    })
    .join()
    .expect("writer thread")
    .expect("netlink socket")
}

fn key(port: u32, group: [u8; 4]) -> EntryKey {
    EntryKey {
        port,
        vid: 0,
        group: IpAddr::V4(Ipv4Addr::from(group)),
    }
}

#[test]
fn writes_confirms_and_reports_refusals() {
    let ns = bridge_ns();
    let (br, p1) = (ns.ifindex("br0").unwrap(), ns.ifindex("p1").unwrap());
    // On a kernel without protocol values or replace (before 6.3) this runs the writer's
    // dialect for those.
    let features = probe(&ns, br, p1);
    let (unconfirmed, refused) = write(
        &ns,
        br,
        features,
        vec![
            MdbOp::Set(key(p1, [239, 1, 1, 1]), EntryFilter::Any),
            MdbOp::Set(key(p1, [239, 1, 1, 2]), EntryFilter::Any),
            // Not a port of the bridge: the kernel refuses it.
            MdbOp::Set(key(br, [239, 1, 1, 3]), EntryFilter::Any),
            // Deleting what is not there is what a delete wants: no refusal.
            MdbOp::Delete(key(p1, [239, 1, 1, 4])),
        ],
    );
    assert!(
        unconfirmed.is_empty(),
        "every write was acked: {unconfirmed:?}"
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].key, key(br, [239, 1, 1, 3]));
    assert!(refused[0].set);
    let shown = mdb(&ns);
    for g in ["239.1.1.1", "239.1.1.2"] {
        assert!(
            shown.lines().any(|l| l.contains(g)
                && l.contains("permanent")
                && (!features.protocol || l.contains("proto 73"))),
            "{g} not written as a permanent entry (proto 73 where the kernel takes it):\n{shown}"
        );
    }
    // Written again (the kernel has them): a replace, or on kernels without it a delete
    // before the add; either way no refusal.
    let (unconfirmed, refused) = write(
        &ns,
        br,
        features,
        vec![MdbOp::Set(key(p1, [239, 1, 1, 1]), EntryFilter::Any)],
    );
    assert!(
        unconfirmed.is_empty() && refused.is_empty(),
        "{unconfirmed:?} {refused:?}"
    );
    // The dialect of an old kernel works on a new one too.
    let old = features.without("mdb_protocol,mdb_source_list,mdb_replace");
    let (unconfirmed, refused) = write(
        &ns,
        br,
        old,
        vec![MdbOp::Set(key(p1, [239, 1, 1, 2]), EntryFilter::Any)],
    );
    assert!(
        unconfirmed.is_empty() && refused.is_empty(),
        "{unconfirmed:?} {refused:?}"
    );
    assert!(!shown.contains("239.1.1.3"), "{shown}");

    // And deleting them again.
    let (unconfirmed, refused) = write(
        &ns,
        br,
        features,
        vec![
            MdbOp::Delete(key(p1, [239, 1, 1, 1])),
            MdbOp::Delete(key(p1, [239, 1, 1, 2])),
        ],
    );
    assert!(
        unconfirmed.is_empty() && refused.is_empty(),
        "{unconfirmed:?} {refused:?}"
    );
    let shown = mdb(&ns);
    assert!(!shown.contains("239.1.1."), "{shown}");
}
