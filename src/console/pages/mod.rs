//! One module per page (or group of pages): each handler authenticates ([`super::Signed`]),
//! checks the role ([`super::ConsoleState::require`]), asks the node, and draws.

pub mod audit;
pub mod certificates;
pub mod deliveries;
pub mod documents;
pub mod documents_send;
pub mod login;
pub mod overview;
pub mod registry;
