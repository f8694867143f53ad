//! Canonical XML (placeholder until written).
