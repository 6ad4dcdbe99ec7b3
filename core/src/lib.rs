//! infoshare-core: the broker's pure domain, with no I/O — no tokio, tonic, hyper, rustls or
//! sled, no file or network access, no global clock (time is a value passed in). The shell
//! (`infoshare-server`) and the store build on it; Cargo keeps the layering.
//!
//! # Layout
//! - [`domain`]: the coded vocabulary (authorities, classifications, agency kinds, decisions…).
//! - [`reason`]: the closed set of reason codes, each with its gRPC class, basis and sentence.
//! - [`text`]: whether a text says something; the canonical form of names.
//! - [`calendar`]: New Zealand dates from instants.
//! - [`codec`]: the record format's byte primitives.

pub mod calendar;
pub mod codec;
pub mod domain;
pub mod reason;
pub mod text;
