//! Drawing: the page shell ([`layout`]) and how values are written for Vietnamese readers
//! ([`format`]).

pub mod format;
pub mod layout;
