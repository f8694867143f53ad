//! SKELETON (issue 16): see mail/mod.rs.
