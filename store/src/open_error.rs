//! Why a ledger could not open.

use crate::embedded::segment::SegmentError;
use crate::views::ViewError;

#[derive(Debug, thiserror::Error)]
/// Why the ledger could not open.
pub enum OpenError {
    /// The log or body segments are damaged or unreadable.
    #[error(transparent)]
    Segment(#[from] SegmentError),
    /// The views could not be rebuilt.
    #[error(transparent)]
    View(#[from] ViewError),
    /// Another process holds the data directory.
    #[error("{0} is in use by another infoshare-server (lock held on its LOCK file)")]
    Locked(String),
    /// The lock file could not be opened.
    #[error("{path}: {source}")]
    LockFile {
        /// The lock file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The protocol register records do not fold.
    #[error("protocol register: {0}")]
    Register(String),
    /// The log signing key could not be loaded or made.
    #[error("log signing key {path}: {message}")]
    SigningKey {
        /// The key file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The log does not match the last checkpoint this server signed: records were removed or
    /// changed after they were acknowledged.
    #[error("the log does not match its last signed checkpoint: {0}")]
    Tampered(String),
    /// The engine failed while the ledger started.
    #[error("storage: {0}")]
    Storage(String),
    /// A record passed its checksum but does not decode.
    #[error("log record {index} does not decode: {error}")]
    Record {
        /// The record's log index.
        index: u64,
        /// Why.
        error: crate::codec::DecodeError,
    },
}
