//! What a log hands back for a record it has made durable: enough for anyone holding the log's
//! public key to check, offline, that the record is in the log.

use std::sync::Arc;

use crate::Hash;

/// Proof that a record is in the log: its index, a signed checkpoint covering it, the inclusion
/// proof against that checkpoint, and the record itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The record's log index (leaf index + 1).
    pub log_index: u64,
    /// The signed checkpoint note.
    pub checkpoint: Arc<str>,
    /// The inclusion proof, leaf first.
    pub proof: Vec<Hash>,
    /// The record's bytes.
    pub record: Vec<u8>,
}
