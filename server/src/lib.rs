//! infoshare: a secure broker for information requests between New Zealand agencies under s66C
//! of the Oranga Tamariki Act 1989 and s20 of the Family Violence Act 2018.
//!
//! Layers, from the wire in:
//! - [`tls`]: TLS 1.3 with required client certificates; the caller's SPIFFE id ([`identity`]).
//! - [`service`]: thin tonic services; errors become statuses in one place.
//! - [`broker`]: the operations, in plain Rust: [`access`] control, [`validate`], [`policy`],
//!   building [`records`] with [`crypto`] pseudonyms and commitments.
//! - [`store`]: the append-only log with group commit (the source of truth), the body store, and
//!   the sled [`views`] derived from them.

pub use infoshare_core::{
    access, codec, crypto, domain, error, policy, protocol, reason, records, registry, retention,
    text, validate, views,
};
/// The log engine (`infoshare-store`).
pub use infoshare_store as store;

pub mod audit;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(feature = "dev")]
pub mod dev;
#[cfg(test)]
mod fuzz_props;
pub mod holds;
pub mod identity;
pub mod key_file;
pub mod limits;
pub mod log_throttle;
pub mod process;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod tls;
pub mod transport;
