//! Offline verification of what the broker proves: receipts, audit results, evidence bundles and
//! checkpoint consistency. Needs only the log's verifier key — no server.

use infoshare_tlog::merkle::{self, Hash};
use infoshare_tlog::{Checkpoint, NoteVerifier, leaf_hash};

use crate::api;

/// Why verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The verifier key is malformed.
    #[error("verifier key: {0}")]
    Key(String),
    /// The checkpoint is not signed by the key, or is malformed.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A record's inclusion proof fails: the record is not what the log holds.
    #[error("record {log_index} does not verify against the checkpoint: {why}")]
    Record {
        /// The first record that fails.
        log_index: u64,
        /// What the verifier found.
        why: String,
    },
    /// The new checkpoint does not extend the old one.
    #[error("the log is not consistent with the checkpoint of size {old_size}: {why}")]
    Inconsistent {
        /// The older size.
        old_size: u64,
        /// What the verifier found.
        why: String,
    },
}

/// Parses a verifier key.
pub fn verifier(key: &str) -> Result<NoteVerifier, VerifyError> {
    NoteVerifier::parse(key).map_err(|e| VerifyError::Key(e.to_string()))
}

/// Verifies a key rotation statement (both keys signed its checkpoint); returns it and the
/// checkpoint.
pub fn rotation(statement: &str) -> Result<(infoshare_tlog::Rotation, Checkpoint), VerifyError> {
    infoshare_tlog::Rotation::parse(statement)
        .map_err(|e| VerifyError::Checkpoint(format!("key rotation: {e}")))
}

/// Verifies a signed checkpoint note.
pub fn checkpoint(note: &str, key: &NoteVerifier) -> Result<Checkpoint, VerifyError> {
    key.verify(note)
        .map_err(|e| VerifyError::Checkpoint(e.to_string()))
}

fn hashes(log_index: u64, raw: &[Vec<u8>]) -> Result<Vec<Hash>, VerifyError> {
    raw.iter()
        .map(|h| {
            h.as_slice().try_into().map_err(|_| VerifyError::Record {
                log_index,
                why: "a proof hash is not 32 bytes".into(),
            })
        })
        .collect()
}

fn record(
    cp: &Checkpoint,
    log_index: u64,
    record: &[u8],
    proof: &[Vec<u8>],
) -> Result<(), VerifyError> {
    let fail = |why: String| VerifyError::Record { log_index, why };
    if log_index == 0 {
        return Err(fail("log indexes start at 1".into()));
    }
    merkle::verify_inclusion(
        log_index - 1,
        cp.size,
        &leaf_hash(record),
        &hashes(log_index, proof)?,
        &cp.root,
    )
    .map_err(|e| fail(e.to_string()))
}

/// Verifies a receipt: its checkpoint is signed by `key` and its record is in that tree.
pub fn receipt(r: &api::Receipt, key: &NoteVerifier) -> Result<Checkpoint, VerifyError> {
    let cp = checkpoint(&r.checkpoint, key)?;
    record(&cp, r.log_index, &r.record, &r.inclusion_proof)?;
    Ok(cp)
}

/// Verifies audit records against their checkpoint; names the first record that fails.
pub fn records(
    note: &str,
    records: &[api::AuditRecord],
    key: &NoteVerifier,
) -> Result<Checkpoint, VerifyError> {
    let cp = checkpoint(note, key)?;
    for r in records {
        record(&cp, r.log_index, &r.record, &r.inclusion_proof)?;
    }
    Ok(cp)
}

/// Verifies an evidence bundle offline: against `pinned` (a verifier key obtained out of band)
/// when given, else against the key the bundle names. Returns the checkpoint and the number of
/// records verified.
pub fn bundle(
    b: &api::EvidenceBundle,
    pinned: Option<&str>,
) -> Result<(Checkpoint, usize), VerifyError> {
    let key = verifier(pinned.unwrap_or(&b.verifier_key))?;
    let cp = records(&b.checkpoint, &b.records, &key)?;
    if cp.origin != b.origin {
        return Err(VerifyError::Checkpoint(format!(
            "checkpoint origin {:?} is not the bundle's {:?}",
            cp.origin, b.origin
        )));
    }
    Ok((cp, b.records.len()))
}

/// Verifies that `new` extends `old` using a consistency proof.
pub fn consistency(
    old: &Checkpoint,
    new: &Checkpoint,
    proof: &[Vec<u8>],
) -> Result<(), VerifyError> {
    let fail = |why: String| VerifyError::Inconsistent {
        old_size: old.size,
        why,
    };
    if old.origin != new.origin {
        return Err(fail("the checkpoints are of different logs".into()));
    }
    let proof = hashes(0, proof).map_err(|_| fail("a proof hash is not 32 bytes".into()))?;
    merkle::verify_consistency(old.size, new.size, &proof, &old.root, &new.root)
        .map_err(|e| fail(e.to_string()))
}
