//! Key rotation statements: a log's retiring signing key hands over to a new one by both
//! signing the same checkpoint. Whoever trusts the old key can then trust the new one for
//! that checkpoint and every checkpoint consistent with it.
//!
//! ```text
//! infoshare log key rotation
//! old <verifier key of the retiring key>
//! new <verifier key of the new key>
//! <blank line>
//! <a checkpoint note signed by the old key and cosigned by the new one>
//! ```

use crate::note::{Checkpoint, NoteError, NoteVerifier};

/// First line of a statement.
const HEADER: &str = "infoshare log key rotation";

/// One rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// The retiring key.
    pub old_key: String,
    /// The key that signs from this rotation on.
    pub new_key: String,
    /// The checkpoint note signed by both.
    pub note: String,
}

impl Rotation {
    /// The statement's text.
    pub fn render(&self) -> String {
        format!(
            "{HEADER}\nold {}\nnew {}\n\n{}",
            self.old_key, self.new_key, self.note
        )
    }

    /// Parses a statement and checks that both keys signed its checkpoint, which it returns.
    pub fn parse(text: &str) -> Result<(Self, Checkpoint), NoteError> {
        let bad = NoteError::Format;
        let rest = text
            .strip_prefix(HEADER)
            .and_then(|r| r.strip_prefix('\n'))
            .ok_or(bad("not a key rotation statement"))?;
        let (old_line, rest) = rest.split_once('\n').ok_or(bad("no old key"))?;
        let (new_line, rest) = rest.split_once('\n').ok_or(bad("no new key"))?;
        let note = rest
            .strip_prefix('\n')
            .ok_or(bad("no blank line before the checkpoint"))?;
        let rotation = Self {
            old_key: old_line
                .strip_prefix("old ")
                .ok_or(bad("no old key"))?
                .into(),
            new_key: new_line
                .strip_prefix("new ")
                .ok_or(bad("no new key"))?
                .into(),
            note: note.into(),
        };
        if rotation.old_key == rotation.new_key {
            return Err(bad("a rotation to the same key"));
        }
        let old = NoteVerifier::parse(&rotation.old_key)?.verify(&rotation.note)?;
        let new = NoteVerifier::parse(&rotation.new_key)?.verify(&rotation.note)?;
        debug_assert_eq!(old, new, "one note, one body");
        Ok((rotation, new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::NoteSigner;

    fn signer() -> NoteSigner {
        NoteSigner::new("infoshare.test/log", &NoteSigner::generate_pkcs8().unwrap()).unwrap()
    }

    #[test]
    fn a_statement_round_trips_and_needs_both_signatures() {
        let (old, new) = (signer(), signer());
        let cp = Checkpoint {
            origin: "infoshare.test/log".into(),
            size: 12,
            root: [5; 32],
        };
        let rotation = Rotation {
            old_key: old.verifier_key(),
            new_key: new.verifier_key(),
            note: new.cosign(&old.sign(&cp)).unwrap(),
        };
        let (parsed, checkpoint) = Rotation::parse(&rotation.render()).unwrap();
        assert_eq!((parsed, checkpoint), (rotation.clone(), cp.clone()));

        // Signed by the old key only: the new key never accepted it.
        let unsigned = Rotation {
            note: old.sign(&cp),
            ..rotation.clone()
        };
        assert!(Rotation::parse(&unsigned.render()).is_err());
        // Naming another old key than the one that signed.
        let impostor = Rotation {
            old_key: signer().verifier_key(),
            ..rotation
        };
        assert!(Rotation::parse(&impostor.render()).is_err());
        assert!(Rotation::parse("infoshare log key rotation\nold x\n").is_err());
    }
}
