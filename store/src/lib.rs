//! infoshare-store: the log engine. Durable storage — the append-only log (the source of
//! truth), the body store beside it, and the view store derived from both — with one writer that
//! sequences every change.
//!
//! # Layout
//! - [`ledger`]: the handle every caller uses, and the writer behind it (group commit, the
//!   exchange decisions, the Merkle tree, signed checkpoints, receipts).
//! - [`segment`]: numbered, checksummed, append-only segment files; [`bodies`]: the body
//!   entries stored in them; [`seal`]: bodies sealed at rest (AES-256-GCM).
//! - [`view_store`]: the sled view store (derived, rebuildable).
//! - [`log_keys`]: the log's signing key and its rotations; [`secret_file`]: writing secrets.
//! - [`verify`]: the offline check of a data directory (`--verify-log`).
//!
//! # What it may not import
//! tonic, hyper, rustls or anything of the network: it is handed records and answers with
//! receipts. Legal decisions are `infoshare-core`'s.

pub use infoshare_core::{
    access, codec, crypto, domain, error, identity, protocol, reason, records, views,
};

pub mod bodies;
pub mod ledger;
pub mod log_keys;
pub mod seal;
pub mod secret_file;
pub mod segment;
pub mod verify;
pub mod view_store;
