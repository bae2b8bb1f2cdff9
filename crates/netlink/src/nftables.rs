//! An nf_tables table over `NETLINK_NETFILTER`, from a socket of the caller's own: what
//! `nft -f` would send for a small ruleset (one base chain, named sets, rules of a few
//! expressions), in one transaction, and the acks read back.
//!
//! Why not run `nft`: a table created with the `owner` flag (`NFT_TABLE_F_OWNER`, Linux
//! 5.12) belongs to the netlink socket that created it, and the kernel deletes it when that
//! socket closes: when the process dies, however it dies (SIGKILL, abort). Only the owning
//! socket may change it. [`NftSocket`] is that socket; keep it open as long as the table
//! is to stay. Where the kernel does not know the flag, [`NftSocket::install`] creates the
//! table without it and says so.
//!
//! Byte order: nf_tables attributes are big-endian (`nla_get_be32`); register contents
//! (set keys, compared data) are in the order the expression loads them (an ifindex from
//! `meta iif` is host order, an EtherType from `meta protocol` network order).

use std::io;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// `NFNL_SUBSYS_NFTABLES`.
const SUBSYS: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN` / `_END`.
const BATCH_BEGIN: u16 = 0x10;
const BATCH_END: u16 = 0x11;
/// `enum nf_tables_msg_types`.
const NEWTABLE: u16 = 0;
const GETTABLE: u16 = 1;
const DELTABLE: u16 = 2;
const NEWCHAIN: u16 = 3;
const NEWRULE: u16 = 6;
const NEWSET: u16 = 9;
const NEWSETELEM: u16 = 12;
/// `NFPROTO_BRIDGE`.
pub const FAMILY_BRIDGE: u8 = 7;
/// `NF_BR_PRE_ROUTING`.
pub const HOOK_BRIDGE_PREROUTING: u32 = 0;
/// `NFT_TABLE_F_OWNER`.
const TABLE_F_OWNER: u32 = 2;
/// nft's data types, for `nft list` to show set keys as it would its own.
pub const TYPE_IFINDEX: u32 = 20;
pub const TYPE_ICMP6_TYPE: u32 = 29;

const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_CREATE: u16 = 0x400;
/// For rules: after the chain's last (without it a rule goes first).
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLA_F_NESTED: u16 = 0x8000;
/// `NFT_REG_1` (16 bytes) and the verdict register.
const REG_1: u32 = 1;
const REG_VERDICT: u32 = 0;

/// What a `meta` expression loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaKey {
    /// `NFT_META_PROTOCOL`: the EtherType (2 bytes, network order).
    Protocol = 1,
    /// `NFT_META_IIF`: the input interface index (4 bytes, host order).
    Iif = 4,
    /// `NFT_META_L4PROTO`: the layer 4 protocol after IPv6 extension headers (1 byte).
    L4Proto = 16,
}

/// Where a `payload` expression reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `NFT_PAYLOAD_NETWORK_HEADER`.
    Network = 1,
    /// `NFT_PAYLOAD_TRANSPORT_HEADER`.
    Transport = 2,
}

/// One expression of a rule; all but the verdict work on register 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// `meta load KEY => reg 1`.
    Meta(MetaKey),
    /// `payload load LEN b @ BASE + OFFSET => reg 1`.
    Payload { base: Base, offset: u32, len: u32 },
    /// `cmp eq reg 1 DATA` (`eq`), or `cmp neq`.
    Cmp { eq: bool, data: Vec<u8> },
    /// `lookup reg 1 set NAME`.
    Lookup(String),
    /// `counter`.
    Counter,
    /// `immediate reg 0 drop`.
    Drop,
}

/// A named set of fixed-size keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set {
    pub name: String,
    /// One of the `TYPE_*` constants (only `nft list` reads it).
    pub key_type: u32,
    pub key_len: u32,
    /// The keys are in host byte order (an ifindex), not network order: `nft list` needs
    /// to know to print them (the kernel compares bytes either way).
    pub host_order: bool,
    pub elements: Vec<Vec<u8>>,
}

/// A table with one base chain (policy accept) and its sets and rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub family: u8,
    pub table: String,
    /// Shown by `nft list` (`comment "..."`); at most 255 bytes are kept.
    pub comment: String,
    pub chain: String,
    pub hook: u32,
    pub priority: i32,
    pub sets: Vec<Set>,
    pub rules: Vec<Vec<Expr>>,
}

/// Attributes appended to a message.
struct Attrs<'a>(&'a mut Vec<u8>);

impl Attrs<'_> {
    fn raw(&mut self, ty: u16, data: &[u8]) {
        let len = 4 + data.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(data);
        self.pad();
    }
    fn pad(&mut self) {
        while self.0.len() % 4 != 0 {
            self.0.push(0);
        }
    }
    fn str(&mut self, ty: u16, s: &str) {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        self.raw(ty, &b);
    }
    fn be32(&mut self, ty: u16, v: u32) {
        self.raw(ty, &v.to_be_bytes());
    }
    fn nested(&mut self, ty: u16, f: impl FnOnce(&mut Attrs<'_>)) {
        let start = self.0.len();
        self.0.extend_from_slice(&[0, 0]);
        self.0.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        f(&mut Attrs(self.0));
        let len = (self.0.len() - start) as u16;
        self.0[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }
    /// `NFTA_DATA_VALUE` inside `ty`.
    fn data(&mut self, ty: u16, value: &[u8]) {
        self.nested(ty, |a| a.raw(1, value));
    }
}

/// Messages of one transaction, between a batch begin and end.
#[derive(Debug, Default)]
struct Batch {
    buf: Vec<u8>,
    seq: u32,
    /// Sequence numbers of the messages that are acked (all but begin and end).
    acked: Vec<u32>,
}

impl Batch {
    fn msg(&mut self, ty: u16, flags: u16, family: u8, attrs: impl FnOnce(&mut Attrs<'_>)) {
        self.seq = self.seq.wrapping_add(1).max(1);
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // struct nfgenmsg: family, version, res_id (big-endian).
        let res_id = if ty == BATCH_BEGIN || ty == BATCH_END {
            SUBSYS
        } else {
            0
        };
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        attrs(&mut Attrs(&mut self.buf));
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        if flags & NLM_F_ACK != 0 {
            self.acked.push(self.seq);
        }
    }

    fn nft(&mut self, msg: u16, create: bool, family: u8, attrs: impl FnOnce(&mut Attrs<'_>)) {
        let mut flags = NLM_F_REQUEST | NLM_F_ACK;
        if create {
            flags |= NLM_F_CREATE;
        }
        if msg == NEWRULE {
            flags |= NLM_F_APPEND;
        }
        self.msg((SUBSYS << 8) | msg, flags, family, attrs);
    }

    fn begin(&mut self) {
        self.msg(BATCH_BEGIN, NLM_F_REQUEST, 0, |_| {});
    }

    fn end(&mut self) {
        self.msg(BATCH_END, NLM_F_REQUEST, 0, |_| {});
    }
}

impl Ruleset {
    /// The messages that create the table (with the owner flag when `owner`), its sets
    /// and their elements, the chain and the rules.
    fn create(&self, b: &mut Batch, owner: bool) {
        let (f, t) = (self.family, self.table.as_str());
        b.nft(NEWTABLE, true, f, |a| {
            a.str(1, t); // NFTA_TABLE_NAME
            a.be32(2, if owner { TABLE_F_OWNER } else { 0 }); // NFTA_TABLE_FLAGS
                                                              // NFTA_TABLE_USERDATA: nft's comment TLV (NFTNL_UDATA_TABLE_COMMENT 0).
            let mut c: Vec<u8> = self.comment.bytes().take(254).collect();
            c.push(0);
            let mut ud = vec![0u8, c.len() as u8];
            ud.extend_from_slice(&c);
            a.raw(6, &ud);
        });
        for (id, s) in self.sets.iter().enumerate() {
            let id = id as u32 + 1;
            b.nft(NEWSET, true, f, |a| {
                a.str(1, t); // NFTA_SET_TABLE
                a.str(2, &s.name); // NFTA_SET_NAME
                a.be32(3, 0); // NFTA_SET_FLAGS
                a.be32(4, s.key_type); // NFTA_SET_KEY_TYPE
                a.be32(5, s.key_len); // NFTA_SET_KEY_LEN
                a.be32(10, id); // NFTA_SET_ID
                                // NFTA_SET_USERDATA: nft's key byte order TLV (NFTNL_UDATA_SET_KEYBYTEORDER
                                // 0, a host-order u32: 1 host endian, 2 big endian).
                let order: u32 = if s.host_order { 1 } else { 2 };
                let mut ud = vec![0u8, 4];
                ud.extend_from_slice(&order.to_ne_bytes());
                a.raw(13, &ud);
            });
            if !s.elements.is_empty() {
                b.nft(NEWSETELEM, true, f, |a| {
                    a.str(1, t); // NFTA_SET_ELEM_LIST_TABLE
                    a.str(2, &s.name); // NFTA_SET_ELEM_LIST_SET
                    a.nested(3, |l| {
                        // NFTA_SET_ELEM_LIST_ELEMENTS: NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY }
                        for e in &s.elements {
                            l.nested(1, |el| el.data(1, e));
                        }
                    });
                    a.be32(4, id); // NFTA_SET_ELEM_LIST_SET_ID
                });
            }
        }
        b.nft(NEWCHAIN, true, f, |a| {
            a.str(1, t); // NFTA_CHAIN_TABLE
            a.str(3, &self.chain); // NFTA_CHAIN_NAME
            a.nested(4, |h| {
                h.be32(1, self.hook); // NFTA_HOOK_HOOKNUM
                h.be32(2, self.priority as u32); // NFTA_HOOK_PRIORITY
            });
            a.be32(5, 1); // NFTA_CHAIN_POLICY: NF_ACCEPT
            a.str(7, "filter"); // NFTA_CHAIN_TYPE
        });
        for rule in &self.rules {
            b.nft(NEWRULE, true, f, |a| {
                a.str(1, t); // NFTA_RULE_TABLE
                a.str(2, &self.chain); // NFTA_RULE_CHAIN
                a.nested(4, |l| {
                    // NFTA_RULE_EXPRESSIONS
                    for e in rule {
                        l.nested(1, |x| expr(x, e, &self.sets));
                    }
                });
            });
        }
    }
}

/// One expression: `NFTA_EXPR_NAME` and `NFTA_EXPR_DATA`.
fn expr(a: &mut Attrs<'_>, e: &Expr, sets: &[Set]) {
    match e {
        Expr::Meta(key) => {
            a.str(1, "meta");
            a.nested(2, |d| {
                d.be32(1, REG_1); // NFTA_META_DREG
                d.be32(2, *key as u32); // NFTA_META_KEY
            });
        }
        Expr::Payload { base, offset, len } => {
            a.str(1, "payload");
            a.nested(2, |d| {
                d.be32(1, REG_1); // NFTA_PAYLOAD_DREG
                d.be32(2, *base as u32); // NFTA_PAYLOAD_BASE
                d.be32(3, *offset); // NFTA_PAYLOAD_OFFSET
                d.be32(4, *len); // NFTA_PAYLOAD_LEN
            });
        }
        Expr::Cmp { eq, data } => {
            a.str(1, "cmp");
            a.nested(2, |d| {
                d.be32(1, REG_1); // NFTA_CMP_SREG
                d.be32(2, if *eq { 0 } else { 1 }); // NFTA_CMP_OP: NFT_CMP_EQ / NEQ
                d.data(3, data); // NFTA_CMP_DATA
            });
        }
        Expr::Lookup(set) => {
            a.str(1, "lookup");
            a.nested(2, |d| {
                d.str(1, set); // NFTA_LOOKUP_SET
                d.be32(2, REG_1); // NFTA_LOOKUP_SREG
                if let Some(i) = sets.iter().position(|s| &s.name == set) {
                    d.be32(4, i as u32 + 1); // NFTA_LOOKUP_SET_ID: created in this batch
                }
            });
        }
        Expr::Counter => {
            a.str(1, "counter");
        }
        Expr::Drop => {
            a.str(1, "immediate");
            a.nested(2, |d| {
                d.be32(1, REG_VERDICT); // NFTA_IMMEDIATE_DREG
                d.nested(2, |v| {
                    // NFTA_IMMEDIATE_DATA { NFTA_DATA_VERDICT { NFTA_VERDICT_CODE NF_DROP } }
                    v.nested(2, |c| c.be32(1, 0));
                });
            });
        }
    }
}

fn delete(b: &mut Batch, family: u8, table: &str) {
    b.nft(DELTABLE, false, family, |a| a.str(1, table));
}

/// A `NETLINK_NETFILTER` socket; tables it installs with the owner flag are the kernel's
/// to delete when it closes.
#[derive(Debug)]
pub struct NftSocket {
    sock: Socket,
    seq: u32,
    /// Whether the last [`install`](Self::install) made an owned table.
    owned: Option<bool>,
}

/// How long to wait for the kernel's acks of one transaction.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

impl NftSocket {
    /// A blocking, close-on-exec socket in the calling thread's network namespace.
    pub fn open() -> io::Result<NftSocket> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW.cloexec(),
            Some(Protocol::from(libc::NETLINK_NETFILTER)),
        )?;
        sock.set_read_timeout(Some(ACK_TIMEOUT))?;
        Ok(NftSocket {
            sock,
            seq: 0,
            owned: None,
        })
    }

    /// Whether the table is owned by this socket (None: not installed yet).
    pub fn owned(&self) -> Option<bool> {
        self.owned
    }

    /// Creates `rs`, or replaces it in one transaction when this socket installed it
    /// before. A table of that name from elsewhere (an igmpd that ran before, not owned)
    /// is deleted first; one owned by another live socket is not (EPERM: it is another
    /// process's). The table is owned where the kernel takes the flag; else created
    /// without it (Linux before 5.12).
    pub fn install(&mut self, rs: &Ruleset) -> io::Result<()> {
        if self.owned.is_none() {
            match self.transact(|b| delete(b, rs.family, &rs.table)) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        let replace = self.owned.is_some();
        let want = self.owned.unwrap_or(true);
        let r = self.transact(|b| {
            if replace {
                delete(b, rs.family, &rs.table);
            }
            rs.create(b, want);
        });
        match r {
            Ok(()) => {
                self.owned = Some(want);
                Ok(())
            }
            // A kernel without NFT_TABLE_F_OWNER refuses the unknown flag.
            Err(e) if want && !replace && e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                self.transact(|b| rs.create(b, false))?;
                self.owned = Some(false);
                Ok(())
            }
            // Someone deleted the table meanwhile (`nft delete table ...`): made anew.
            Err(e) if replace && e.raw_os_error() == Some(libc::ENOENT) => {
                self.transact(|b| rs.create(b, want))
            }
            Err(e) => Err(e),
        }
    }

    /// Deletes the table (no error if it is not there).
    pub fn remove(&mut self, family: u8, table: &str) -> io::Result<()> {
        let r = match self.transact(|b| delete(b, family, table)) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r,
        };
        if r.is_ok() {
            self.owned = None;
        }
        r
    }

    /// Whether a table of that name exists (anyone's).
    pub fn table_exists(&mut self, family: u8, table: &str) -> io::Result<bool> {
        let mut b = Batch {
            seq: self.seq,
            ..Batch::default()
        };
        // Not a transaction: a plain get, answered by the table and an ack, or an error.
        b.nft(GETTABLE, false, family, |a| a.str(1, table));
        self.seq = b.seq;
        match self.send_and_ack(&b) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sends one transaction and waits for every ack; the first refusal is the error.
    fn transact(&mut self, f: impl FnOnce(&mut Batch)) -> io::Result<()> {
        let mut b = Batch {
            seq: self.seq,
            ..Batch::default()
        };
        b.begin();
        f(&mut b);
        b.end();
        self.seq = b.seq;
        self.send_and_ack(&b)
    }

    /// Sends `b` and reads until each acked message was answered; the first refusal is
    /// the error.
    fn send_and_ack(&mut self, b: &Batch) -> io::Result<()> {
        self.sock.send(&b.buf)?;
        let mut pending: Vec<u32> = b.acked.clone();
        let mut buf = vec![0u8; 16 * 1024];
        while !pending.is_empty() {
            let n = match std::io::Read::read(&mut &self.sock, &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "nf_tables: no answer to the transaction",
                    ))
                }
                Err(e) => return Err(e),
            };
            let mut off = 0;
            while off + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
                let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap_or([0; 4]));
                if len < 16 || off + len > n {
                    break;
                }
                if ty == NLMSG_ERROR && len >= 20 {
                    let code =
                        i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap_or([0; 4]));
                    pending.retain(|s| *s != seq);
                    if code != 0 {
                        self.drain(&mut buf);
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                }
                off += (len + 3) & !3;
            }
        }
        Ok(())
    }

    /// Reads what else the kernel queued for a failed transaction (its other acks), so
    /// that the next transaction starts on an empty socket.
    fn drain(&self, buf: &mut [u8]) {
        if self.sock.set_nonblocking(true).is_err() {
            return;
        }
        while matches!(std::io::Read::read(&mut &self.sock, buf), Ok(n) if n > 0) {}
        let _ = self.sock.set_nonblocking(false);
    }
}

#[cfg(test)]
mod tests;
