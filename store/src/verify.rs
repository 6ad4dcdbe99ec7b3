//! Offline verification of a data directory's log (`infoshare-server --verify-log DIR`): every
//! frame's checksum, every record's encoding, and the Merkle root against the last checkpoint the
//! server signed. Changes nothing; names the first record that fails.

use std::path::Path;

use infoshare_tlog::{Tree, leaf_hash};

use crate::checkpoint::check_signed;
use crate::embedded::segment::{SegmentError, scan_read_only};
use crate::embedded::{LOG_MAGIC, read_witness};
use crate::records::Record;

/// What a successful verification found.
#[derive(Debug)]
pub struct Verified {
    /// Records in the log.
    pub records: u64,
    /// Size of the signed checkpoint checked (0 if there was none).
    pub checkpoint_size: u64,
}

/// Why verification failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A frame failed its checksum or structure.
    #[error("record {index} is corrupt: {detail}")]
    Frame {
        /// The first bad record.
        index: u64,
        /// What was wrong.
        detail: String,
    },
    /// A record does not decode.
    #[error("record {index} does not decode: {detail}")]
    Record {
        /// The first bad record.
        index: u64,
        /// Why.
        detail: String,
    },
    /// The log does not match the signed checkpoint.
    #[error("{0}")]
    Checkpoint(String),
    /// Something could not be read.
    #[error("{0}")]
    Io(String),
}

/// Verifies the log in `data_dir`.
pub fn verify_data_dir(data_dir: &Path) -> Result<Verified, VerifyError> {
    let mut tree = Tree::new();
    let mut bad_record: Option<VerifyError> = None;
    let scanned = scan_read_only(&data_dir.join("log"), LOG_MAGIC, |index, raw| {
        tree.push(leaf_hash(raw));
        if bad_record.is_none()
            && let Err(e) = Record::decode(raw)
        {
            bad_record = Some(VerifyError::Record {
                index,
                detail: e.to_string(),
            });
        }
    })
    .map_err(|e| match e {
        SegmentError::Corrupt {
            index,
            what,
            offset,
            path,
        } => VerifyError::Frame {
            index,
            detail: format!("{what} at byte {offset} of {}", path.display()),
        },
        other => VerifyError::Io(other.to_string()),
    })?;
    if let Some(e) = bad_record {
        return Err(e);
    }
    // The log's own checkpoint (synced with its batch), and the witness written after it.
    let note_path = data_dir.join("checkpoint.witness");
    let notes = [
        scanned.last_mark.map(|m| {
            (
                String::from_utf8_lossy(&m).into_owned(),
                "the log's checkpoint".to_string(),
            )
        }),
        read_witness(data_dir).map(|n| (n, note_path.display().to_string())),
    ];
    let mut checkpoint_size = 0;
    let mut verifiers = None;
    for (note, from) in notes.into_iter().flatten() {
        let origin = note.lines().next().unwrap_or_default();
        // The current key, or one it replaced (each rotation statement is checked as it is read).
        if verifiers.is_none() {
            verifiers = Some(
                crate::log_keys::trusted_verifiers(&data_dir.join("keys"), origin)
                    .map_err(VerifyError::Io)?,
            );
        }
        let cp = check_signed(&note, verifiers.as_deref().unwrap_or_default(), &tree)
            .map_err(|e| VerifyError::Checkpoint(format!("{from}: {e}")))?;
        checkpoint_size = checkpoint_size.max(cp.size);
    }
    Ok(Verified {
        records: scanned.entries,
        checkpoint_size,
    })
}
