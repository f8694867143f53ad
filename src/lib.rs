//! lienthong — a store-and-forward node for signed inter-agency document exchange (edXML,
//! QCVN 102:2016/BTTTT). See `ARCHITECTURE.md` for the codemap.
//!
//! The pure layers come first and know nothing of storage, HTTP or async runtimes:
//! [`edxml`] (the format), [`dsig`] (XML signatures), [`pki`] (trust in signers), [`signer`]
//! (who holds private keys).

pub mod audit;
pub mod config;
pub mod console;
pub mod dsig;
pub mod edxml;
pub mod error;
pub mod fault;
pub mod http;
pub mod mail;
pub mod node;
pub mod pki;
pub mod revocation;
pub mod signer;
pub mod store;
pub mod transport;
pub mod verify;

pub use error::{Code, Error, Result};
