//! infoshare-server: the shell of the broker for information requests between New Zealand
//! agencies under s66C of the Oranga Tamariki Act 1989 and s20 of the Family Violence Act 2018.
//! The domain is `infoshare-core`'s and the log engine `infoshare-store`'s (both re-exported
//! here under their module names); this crate is what touches the network, the process and the
//! files of a deployment.
//!
//! # Layout, from the wire in
//! - [`transport`]: connection, stream and answer-memory bounds that hold before a caller is
//!   authenticated; [`tls`]: TLS 1.3 with required client certificates (clientAuth usage);
//!   [`identity`]: the caller's SPIFFE id, read once per connection.
//! - [`service`]: thin tonic adapters — convert messages, call the broker, and map every error
//!   to a status in one place (`service::status::of`); `observe` for telemetry.
//! - [`broker`]: the operations in plain Rust (authenticate, authorise, validate, judge, log
//!   every refusal, call the ledger), with [`audit`] queries and legal [`holds`]; [`limits`]:
//!   per-principal call and stream limits.
//! - [`server`]: start-up (open the ledger, bind, serve, reload on SIGHUP, the retention task);
//!   [`config`]: the configuration file, each section for one consumer; [`cli`]: the command
//!   line; `dev` (feature `dev`): the `--dev` bootstrap.
//! - [`clock`]: the clock handed to the broker; [`key_file`]: the pseudonym key file;
//!   [`telemetry`]: OpenTelemetry; [`process`]: process-wide settings (the workspace's only
//!   `unsafe`); [`log_throttle`]: rate-limited logging of refusals.
//!
//! # What it may not do
//! Decide a legal question (that is `infoshare-core`'s) or reach into an engine's files (that is
//! `infoshare-store`'s): it hands the ledger records and gets receipts back.

pub use infoshare_core::{
    access, codec, crypto, deadline, domain, error, policy, protocol, reason, records, registry,
    retention, text, validate, views,
};
/// The log engine (`infoshare-store`).
pub use infoshare_store as store;

pub mod broker;
pub use broker::{audit, holds};
pub mod cli;
pub mod clock;
pub mod config;
#[cfg(feature = "dev")]
pub mod dev;
#[cfg(test)]
mod fuzz_props;
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
