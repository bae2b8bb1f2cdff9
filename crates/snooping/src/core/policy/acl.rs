//! The ACL applied to a report: what is left of it is what is learned and forwarded.

use std::net::IpAddr;

use igmpd_querier::core::Instant;
use igmpd_wire::record::Address;
use igmpd_wire::{GroupRecord, IgmpRepr, MldRepr, Packet, RecordType};

use super::{AclAction, PortPolicy, PortState};

/// What the ACL made of a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Unchanged.
    Pass,
    /// Some records or sources went: this is what is left (learned and forwarded).
    Rewritten(Packet),
    /// Nothing is left.
    Denied,
}

/// Applies the port's ACL to a report (queries, PIM and MRD pass): denied records and
/// sources go, and what is left is what is learned and forwarded to router ports.
/// Records that only take state away (leaves, BLOCK, TO_IN / IS_IN with no source) pass.
pub fn filter_report(pol: &PortPolicy, st: &mut PortState, now: Instant, p: &Packet) -> Filtered {
    if !pol.filters() {
        return Filtered::Pass;
    }
    let host = Some(p.src()).filter(|a| !a.is_unspecified());
    match p {
        Packet::Igmp { ip, igmp } => {
            let out = match igmp {
                IgmpRepr::V1Report { group } | IgmpRepr::V2Report { group } => {
                    return any_source(pol, st, now, host, (*group).into());
                }
                IgmpRepr::V3Report { records } => match filter_records(pol, st, now, host, records)
                {
                    None => return Filtered::Pass,
                    Some(r) if r.is_empty() => return Filtered::Denied,
                    Some(records) => IgmpRepr::V3Report { records },
                },
                _ => return Filtered::Pass,
            };
            Filtered::Rewritten(Packet::Igmp { ip: *ip, igmp: out })
        }
        Packet::Mld { ip, mld } => {
            let out = match mld {
                MldRepr::V1Report { group } => {
                    return any_source(pol, st, now, host, (*group).into());
                }
                MldRepr::V2Report { records } => {
                    match filter_records(pol, st, now, host, records) {
                        None => return Filtered::Pass,
                        Some(r) if r.is_empty() => return Filtered::Denied,
                        Some(records) => MldRepr::V2Report { records },
                    }
                }
                _ => return Filtered::Pass,
            };
            Filtered::Rewritten(Packet::Mld { ip: *ip, mld: out })
        }
        _ => Filtered::Pass,
    }
}

/// An any-source join (IGMPv1/v2 report, MLDv1 report) of `group`.
fn any_source(
    pol: &PortPolicy,
    st: &mut PortState,
    now: Instant,
    host: Option<IpAddr>,
    group: IpAddr,
) -> Filtered {
    let (rule, action) = pol.verdict(group, None);
    st.hit(pol.acl.len(), rule);
    if action == AclAction::Deny {
        st.deny(now, host, group);
        Filtered::Denied
    } else {
        Filtered::Pass
    }
}

/// The records the ACL leaves (None: all of them, unchanged).
fn filter_records<A: Address + Into<IpAddr>>(
    pol: &PortPolicy,
    st: &mut PortState,
    now: Instant,
    host: Option<IpAddr>,
    records: &[GroupRecord<A>],
) -> Option<Vec<GroupRecord<A>>> {
    let mut changed = false;
    let mut kept = Vec::with_capacity(records.len());
    for r in records {
        let group: IpAddr = r.group.into();
        use RecordType::*;
        match r.record_type {
            // Any-source joins: EXCLUDE lists name what not to receive.
            ModeIsExclude | ChangeToExclude => {
                let (rule, action) = pol.verdict(group, None);
                st.hit(pol.acl.len(), rule);
                if action == AclAction::Deny {
                    st.deny(now, host, group);
                    changed = true;
                    continue;
                }
            }
            // Source-specific joins: each source on its own.
            ModeIsInclude | ChangeToInclude | AllowNew if !r.sources.is_empty() => {
                let mut sources = Vec::with_capacity(r.sources.len());
                for s in &r.sources {
                    let (rule, action) = pol.verdict(group, Some((*s).into()));
                    st.hit(pol.acl.len(), rule);
                    if action == AclAction::Permit {
                        sources.push(*s);
                    }
                }
                if sources.len() != r.sources.len() {
                    st.deny(now, host, group);
                    changed = true;
                    // TO_IN with every source denied must not turn into TO_IN({}), a
                    // leave: the record goes.
                    if sources.is_empty() {
                        continue;
                    }
                    kept.push(GroupRecord {
                        record_type: r.record_type,
                        group: r.group,
                        sources,
                        aux_data: r.aux_data.clone(),
                    });
                    continue;
                }
            }
            // Leaves, BLOCK and unknown types take nothing.
            _ => {}
        }
        kept.push(r.clone());
    }
    changed.then_some(kept)
}
