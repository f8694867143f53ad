//! The mail bridge: documents to official mailboxes (…@gialai.gov.vn) and mail back in, with
//! the outbox's guarantees.
//!
//! Three layers, like the rest of the crate:
//!
//! - **Format, pure** (no I/O): [`address`] (mail addresses, and text made safe for a header or
//!   a file name), [`compose`] (the mails the node sends: a document, a status, a notification,
//!   an automatic reply — RFC 5322 bytes with a stable `Message-ID`), [`parse`] (reading a mail
//!   within hard bounds: size, MIME depth, parts, attachments, header length) and [`classify`]
//!   (what a mail is: a signed package, a bounce naming one of our mails, an agency's draft, or
//!   something to quarantine — and whether it may be answered automatically, RFC 3834).
//! - **Transports, I/O**: [`smtp`] (the relay, through lettre: STARTTLS or implicit TLS, AUTH,
//!   a pool, timeouts; a reply classified as accepted, permanent or transient) and [`imap`] (the
//!   mailbox, through async-imap on tokio: IMAPS or STARTTLS, UIDs, IDLE or polling, moving a
//!   mail to its folder).
//! - **The node's use** (generic over the store): [`outbound`] (the outbox's mail channel),
//!   [`inbound`] (the mailbox reader: exactly once, through `Store::take_mail`) and [`notify`]
//!   (short Vietnamese mails to an agency's notification addresses).

pub mod address;
pub mod classify;
pub mod compose;
pub mod imap;
pub mod inbound;
pub mod notify;
pub mod outbound;
pub mod parse;
pub mod smtp;
