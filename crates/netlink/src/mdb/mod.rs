//! Bridge multicast database messages (`RTM_NEWMDB`, `RTM_DELMDB`,
//! `RTM_GETMDB`), laid out like netlink-packet-route's `neighbour` module:
//! the fixed header, the `br_mdb_entry` struct, the attributes and the
//! message; [`record`] has the flattened, typed view used by the requests.

mod attribute;
mod entry;
mod header;
mod message;
mod nla;
pub mod record;
mod request_attribute;

pub use self::{
    attribute::{
        MdbAttribute, MdbEntryInfo, MdbGroupAttribute, MdbInfoAttribute, MdbPortAttribute,
        MdbRouterAttribute, MdbRouterPort, MdbRouterPortAttribute, MdbSrcAttribute,
        MdbSrcListAttribute,
    },
    entry::{MdbEntry, MdbFlags, MdbGroup, MdbState, MDB_ENTRY_LEN},
    header::{MdbHeader, MDB_HEADER_LEN},
    message::MdbMessage,
    nla::FilterMode,
    record::{MdbItem, MdbRecord, MdbSource, RouterPortRecord},
    request_attribute::{MdbeAttribute, MdbeSrcAttribute, MdbeSrcListAttribute},
};
