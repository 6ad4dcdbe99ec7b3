//! infoshare-store: the log engine. Durable storage — the append-only log (the source of
//! truth), the body store beside it, and the view store derived from both — with one writer that
//! sequences every change.
//!
//! # Layout
//! - [`ledger`]: the handle every caller uses — typed changes (open an exchange, acknowledge,
//!   respond, append, hold, change the register, purge, rotate the key) and reads.
//! - `sequencer`: the one writer, the same for every engine: batching, `core`'s exchange
//!   decisions, the Merkle tree, one signed checkpoint per batch, receipts.
//! - [`backend`]: the seam — `trait Backend` (commit a batch, erase bodies, store the checkpoint,
//!   hand out a reader) and `trait Reader`, their contracts as MUST statements; the view queries
//!   written once over `Reader::scan`. [`overlay`]: a batch's pending view writes.
//! - Engines side by side: [`embedded`] (segment files + redb views, the broker's default),
//!   [`postgres`] (every table in one PostgreSQL database, for replicated deployments) and [`mem`]
//!   (in memory, for fast tests). [`seal`]: the body sealing both durable engines use.
//! - [`copy`]: an embedded log into PostgreSQL, proved (`--copy-log`).
//! - [`checkpoint`]: the one signed-checkpoint check, shared by start-up and [`verify`]
//!   (`--verify-log`); [`log_check`]: the whole log rehashed after start-up, off the writer.
//! - [`log_keys`]: the log's signing key and its rotations; [`secret_file`]: writing secrets;
//!   `durable`: every sync the store makes (recorded in tests for the power-loss simulation).
//!
//! # What it may not import
//! tonic, hyper or anything of the serving side: it is handed records and answers with
//! receipts. Its one connection outward is the PostgreSQL engine's to its database (TLS with
//! rustls). Legal decisions are `infoshare-core`'s.

#![forbid(unsafe_code)]

pub use infoshare_core::{
    access, bodies, codec, crypto, domain, error, exchange, identity, protocol, reason, records,
    views,
};

pub mod backend;
mod catch_up;
pub mod checkpoint;
pub mod copy;
mod durable;
pub mod embedded;
mod inbox_wakes;
pub mod ledger;
pub mod log_check;
pub mod log_keys;
pub mod mem;
mod open_error;
pub mod overlay;
pub mod postgres;
pub mod postings;
pub mod seal;
pub mod secret_file;
mod sequencer;
pub mod verify;
