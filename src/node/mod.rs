//! The node's behaviour: compose what clerks send, route deliveries, ingest what peers push,
//! handle processing status. It knows the store and the transports only through their
//! interfaces; HTTP and the CLI sit above it.

pub mod compose;
pub mod expiry;
pub mod idempotency;
pub mod ingest;
pub mod keys;
pub mod lease_owner;
pub mod memory;
pub mod metrics;
pub mod numbering;
pub mod outbox;
pub mod read;
pub mod receipt;
pub mod registry;
pub mod routing;
pub mod service;
pub mod validate;
