//! Who holds private keys.
