//! The main-thread MDB writer against the real kernel, in a network namespace of its own
//! (root required, like the rest of igmpd's tests).

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use igmpd_snooping::core::{EntryFilter, EntryKey, MdbOp};
use igmpd_snooping::io::writer::InlineWriter;
use nix::sched::{setns, CloneFlags};

const PROTO: u8 = 73;

/// A namespace with a snooping bridge and one veth port; deleted on drop.
struct Ns(String);

impl Ns {
    fn new() -> Self {
        let ns = Ns(format!("igw{}", std::process::id()));
        ns.ip(&["netns", "add", &ns.0]);
        for cmd in [
            "link add br0 type bridge mcast_snooping 1",
            "link add p1 type veth peer name p1b",
            "link set p1 master br0",
            "link set p1 up",
            "link set p1b up",
            "link set br0 up",
        ] {
            let mut a = vec!["-n", ns.0.as_str()];
            a.extend(cmd.split(' '));
            ns.ip(&a);
        }
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        run("ip", args)
    }

    /// `bridge -d mdb show dev br0` in the namespace.
    fn mdb(&self) -> String {
        run(
            "bridge",
            &["-n", &self.0, "-d", "mdb", "show", "dev", "br0"],
        )
    }

    fn ifindex(&self, name: &str) -> u32 {
        let out = self.ip(&["-n", &self.0, "-o", "link", "show", name]);
        out.split(':').next().unwrap().trim().parse().unwrap()
    }

    /// Runs `f` on a thread inside the namespace.
    fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let path = format!("/run/netns/{}", self.0);
        std::thread::scope(|s| {
            s.spawn(|| {
                setns(File::open(&path).unwrap(), CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect("run command");
    assert!(out.status.success(), "{cmd} {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
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
    let ns = Ns::new();
    let (br, p1) = (ns.ifindex("br0"), ns.ifindex("p1"));
    let (unconfirmed, refused) = ns.run(|| {
        let mut w = InlineWriter::open(PROTO).expect("netlink socket");
        w.write(
            br,
            vec![
                MdbOp::Set(key(p1, [239, 1, 1, 1]), EntryFilter::Any),
                MdbOp::Set(key(p1, [239, 1, 1, 2]), EntryFilter::Any),
                // Not a port of the bridge: the kernel refuses it.
                MdbOp::Set(key(br, [239, 1, 1, 3]), EntryFilter::Any),
                // Deleting what is not there is what a delete wants: no refusal.
                MdbOp::Delete(key(p1, [239, 1, 1, 4])),
            ],
        )
    });
    assert!(
        unconfirmed.is_empty(),
        "every write was acked: {unconfirmed:?}"
    );
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].key, key(br, [239, 1, 1, 3]));
    assert!(refused[0].set);
    let mdb = ns.mdb();
    for g in ["239.1.1.1", "239.1.1.2"] {
        assert!(
            mdb.lines()
                .any(|l| l.contains(g) && l.contains("permanent") && l.contains("proto 73")),
            "{g} not written as a permanent proto-73 entry:\n{mdb}"
        );
    }
    assert!(!mdb.contains("239.1.1.3"), "{mdb}");

    // And deleting them again.
    let (unconfirmed, refused) = ns.run(|| {
        let mut w = InlineWriter::open(PROTO).unwrap();
        w.write(
            br,
            vec![
                MdbOp::Delete(key(p1, [239, 1, 1, 1])),
                MdbOp::Delete(key(p1, [239, 1, 1, 2])),
            ],
        )
    });
    assert!(
        unconfirmed.is_empty() && refused.is_empty(),
        "{unconfirmed:?} {refused:?}"
    );
    let mdb = ns.mdb();
    assert!(!mdb.contains("239.1.1."), "{mdb}");
}
