//! infoshare-core: the broker's pure domain, with no I/O — no tokio, tonic, hyper, rustls or
//! redb, no file or network access, no global clock (time is a value passed in). The shell
//! (`infoshare-server`) and the store build on it; Cargo keeps the layering.
//!
//! # Layout
//! - [`domain`]: the coded vocabulary (authorities, classifications, agency kinds, decisions,
//!   protocol states…); [`identity`]: roles and SPIFFE ids; [`access`]: operations and which
//!   role may call them.
//! - [`reason`]: the closed set of reason codes, each with its gRPC class, basis and sentence;
//!   [`error`]: the one error type, every refusal a value naming its reason.
//! - [`validate`]: API messages to checked values (one subject check, one text check).
//! - [`policy`]: the statutory and protocol rules a request, response or disclosure must pass.
//! - [`protocol`]: the protocol template's model and the register's decisions.
//! - [`registry`]: the registered agencies and officers, from their TOML.
//! - [`records`]: log records and their versioned byte layout ([`codec`]: its primitives);
//!   [`bodies`]: the layout of a stored body.
//! - [`views`]: the pure fold of records into the derived key-value views; [`audit_query`]: an
//!   auditor's conditions on records, and which indexes hold the candidates.
//! - [`exchange`]: the lifecycle — what a change to an exchange or the register may do next.
//! - [`crypto`]: pseudonyms and commitments (keys are handed in; nothing here reads a file).
//! - [`retention`]: which exchanges' bodies must go, as of a time passed in; [`deadline`]: when
//!   a request is due (response times, NZ working days, the public holiday data).
//! - [`text`]: whether a text says something; the canonical form of names. [`calendar`]: New
//!   Zealand dates from instants.
//!
//! # What it may not import
//! tokio, tonic, hyper, rustls, redb (CI checks `cargo tree`); `infoshare-proto` only without
//! its `grpc` feature (the messages). No `std::fs`, `std::net` or clock reads.

#![forbid(unsafe_code)]

pub mod access;
pub mod audit_query;
pub mod bodies;
pub mod calendar;
pub mod codec;
pub mod crypto;
pub mod deadline;
pub mod domain;
pub mod error;
pub mod exchange;
pub mod identity;
pub mod policy;
pub mod protocol;
pub mod reason;
pub mod records;
pub mod registry;
pub mod retention;
pub mod text;
pub mod validate;
pub mod views;
