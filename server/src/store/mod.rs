//! Durable storage: the append-only log (source of truth), the body store beside it, and the
//! sled view store derived from both.

pub mod bodies;
pub mod ledger;
pub mod log_keys;
pub mod seal;
pub mod segment;
pub mod verify;
pub mod view_store;
