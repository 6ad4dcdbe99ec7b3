//! The one check of a log against the last checkpoint it signed, shared by start-up and
//! `--verify-log`: the note must verify under a key of this log, and the log must hold, unchanged,
//! every record the note covers (an acknowledged record is never cut or rewritten).

use infoshare_tlog::{Checkpoint, NoteVerifier, Tree};

/// How a log fails its signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// No key of this log signed the note.
    #[error("the stored checkpoint is not signed by this log's key")]
    NotSigned,
    /// The log is shorter than the signed tree.
    #[error(
        "the log holds {held} records but the signed checkpoint covers {signed}: records were removed ({}..={signed})",
        held + 1
    )]
    Removed {
        /// Records in the log.
        held: u64,
        /// The signed size.
        signed: u64,
    },
    /// The first `size` records no longer hash to the signed root.
    #[error("the first {size} records no longer hash to the signed root: a record was changed")]
    Changed {
        /// The signed size.
        size: u64,
    },
}

/// Checks `tree` (the log's leaves) against `note`, signed by one of `verifiers` (the current
/// key, or one it replaced: a crash amid a rotation leaves the old key's note); returns the
/// signed checkpoint.
pub fn check_signed(
    note: &str,
    verifiers: &[NoteVerifier],
    tree: &Tree,
) -> Result<Checkpoint, CheckpointError> {
    check_signed_at(note, verifiers, tree.size(), &|size| tree.root(size))
}

/// As [`check_signed`], for a log of `held` records whose root at a size `root_at` gives (a
/// verifier that keeps only the roots it needs).
pub fn check_signed_at(
    note: &str,
    verifiers: &[NoteVerifier],
    held: u64,
    root_at: &dyn Fn(u64) -> Option<infoshare_tlog::Hash>,
) -> Result<Checkpoint, CheckpointError> {
    let checkpoint = verifiers
        .iter()
        .find_map(|v| v.verify(note).ok())
        .ok_or(CheckpointError::NotSigned)?;
    if checkpoint.size > held {
        return Err(CheckpointError::Removed {
            held,
            signed: checkpoint.size,
        });
    }
    if root_at(checkpoint.size) != Some(checkpoint.root) {
        return Err(CheckpointError::Changed {
            size: checkpoint.size,
        });
    }
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use infoshare_tlog::{NoteSigner, leaf_hash};

    #[test]
    fn a_log_is_held_to_what_its_checkpoint_signed() {
        let signer = NoteSigner::new("test/log", &NoteSigner::generate_pkcs8().unwrap()).unwrap();
        let verifiers = [NoteVerifier::parse(&signer.verifier_key()).unwrap()];
        let mut tree = Tree::new();
        for i in 0..3u8 {
            tree.push(leaf_hash(&[i]));
        }
        let note = signer.sign(&Checkpoint {
            origin: "test/log".into(),
            size: 3,
            root: tree.root(3).unwrap(),
        });
        assert_eq!(check_signed(&note, &verifiers, &tree).unwrap().size, 3);
        let mut longer = tree.clone();
        longer.push(leaf_hash(b"later"));
        assert!(check_signed(&note, &verifiers, &longer).is_ok());
        let mut shorter = Tree::new();
        shorter.push(leaf_hash(&[0]));
        assert_eq!(
            check_signed(&note, &verifiers, &shorter),
            Err(CheckpointError::Removed { held: 1, signed: 3 })
        );
        let mut changed = Tree::new();
        for i in [0u8, 9, 2] {
            changed.push(leaf_hash(&[i]));
        }
        assert_eq!(
            check_signed(&note, &verifiers, &changed),
            Err(CheckpointError::Changed { size: 3 })
        );
        let other = NoteSigner::new("test/log", &NoteSigner::generate_pkcs8().unwrap()).unwrap();
        let strangers = [NoteVerifier::parse(&other.verifier_key()).unwrap()];
        assert_eq!(
            check_signed(&note, &strangers, &tree),
            Err(CheckpointError::NotSigned)
        );
    }
}
