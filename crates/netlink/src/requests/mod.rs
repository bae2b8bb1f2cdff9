//! Builder requests, in the style of rtnetlink's.

pub mod link;
pub mod mdb;
