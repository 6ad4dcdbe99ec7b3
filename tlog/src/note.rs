//! Checkpoints (C2SP `tlog-checkpoint`) signed as C2SP `signed-note`s with Ed25519.
//!
//! ```text
//! <origin>\n                       body: what is signed
//! <tree size, decimal>\n
//! <root hash, base64>\n
//! \n
//! — <key name> <base64(key hash[4] ‖ Ed25519 signature[64])>\n
//! ```
//!
//! The key hash is the first four bytes of SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key). A
//! verifier key is written `<name>+<key hash, 8 hex digits>+<base64(0x01 ‖ public key)>`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::merkle::Hash;

/// The signature algorithm byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;

/// Why a note or key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The verifier key string is malformed.
    #[error("malformed verifier key: {0}")]
    Key(&'static str),
    /// The note text is malformed.
    #[error("malformed note: {0}")]
    Format(&'static str),
    /// No signature by the expected key verifies.
    #[error("no valid signature by {0}")]
    Signature(String),
    /// The signing key could not be made or loaded.
    #[error("signing key: {0}")]
    Signer(String),
}

/// A log checkpoint: the log's origin, size and root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (its unique name).
    pub origin: String,
    /// Number of entries.
    pub size: u64,
    /// Merkle root of the entries.
    pub root: Hash,
}

impl Checkpoint {
    /// The note body.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a note body.
    pub fn parse_body(body: &str) -> Result<Self, NoteError> {
        let mut lines = body
            .strip_suffix('\n')
            .ok_or(NoteError::Format("body must end in a newline"))?
            .split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or(NoteError::Format("no origin"))?;
        let size = lines
            .next()
            // Canonical decimal only: no sign, no leading zeros.
            .filter(|l| !(l.starts_with('+') || l.len() > 1 && l.starts_with('0')))
            .and_then(|l| l.parse::<u64>().ok())
            .ok_or(NoteError::Format("bad tree size"))?;
        let root: Hash = lines
            .next()
            .and_then(|l| B64.decode(l).ok())
            .and_then(|b| b.try_into().ok())
            .ok_or(NoteError::Format("bad root hash"))?;
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

fn key_hash(name: &str, public_key: &[u8]) -> [u8; 4] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[ALG_ED25519]);
    ctx.update(public_key);
    ctx.finish().as_ref()[..4].try_into().expect("4 bytes")
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains('+')
        && name.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

/// Signs checkpoints with an Ed25519 key.
pub struct NoteSigner {
    name: String,
    key: Ed25519KeyPair,
    hash: [u8; 4],
}

impl NoteSigner {
    /// A new random key's PKCS#8 document (to be stored secretly).
    pub fn generate_pkcs8() -> Result<Vec<u8>, NoteError> {
        Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map(|d| d.as_ref().to_vec())
            .map_err(|_| NoteError::Signer("key generation failed".into()))
    }

    /// A signer named `name` with the key in `pkcs8`.
    pub fn new(name: &str, pkcs8: &[u8]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::Key(
                "key name must be non-empty, without spaces or '+'",
            ));
        }
        let key =
            Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| NoteError::Signer(e.to_string()))?;
        let hash = key_hash(name, key.public_key().as_ref());
        Ok(Self {
            name: name.to_string(),
            key,
            hash,
        })
    }

    /// The raw public key.
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The verifier key string for this signer.
    pub fn verifier_key(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.public_key());
        format!(
            "{}+{}+{}",
            self.name,
            hex_lower(&self.hash),
            B64.encode(key)
        )
    }

    /// The signed note of `checkpoint`.
    pub fn sign(&self, checkpoint: &Checkpoint) -> String {
        let body = checkpoint.body();
        format!("{body}\n{}", self.signature_line(&body))
    }

    /// `note` with this signer's signature added (a cosignature: the same body, one more
    /// signature line). The note's existing signatures are kept, not checked.
    pub fn cosign(&self, note: &str) -> Result<String, NoteError> {
        let split = note
            .find("\n\n")
            .ok_or(NoteError::Format("no blank line before signatures"))?;
        let body = &note[..split + 1];
        Checkpoint::parse_body(body)?;
        if !note.ends_with('\n') {
            return Err(NoteError::Format("signatures must end in a newline"));
        }
        Ok(format!("{note}{}", self.signature_line(body)))
    }

    fn signature_line(&self, body: &str) -> String {
        let sig = self.key.sign(body.as_bytes());
        let mut blob = self.hash.to_vec();
        blob.extend_from_slice(sig.as_ref());
        format!("\u{2014} {} {}\n", self.name, B64.encode(blob))
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies notes signed by one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    hash: [u8; 4],
    public_key: Vec<u8>,
}

impl NoteVerifier {
    /// Parses a verifier key string `<name>+<hash>+<base64 key>`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::Key("expected <name>+<hash>+<key>"));
        };
        if !valid_name(name) || hash.len() != 8 {
            return Err(NoteError::Key("bad name or key hash"));
        }
        let hash: [u8; 4] = u32::from_str_radix(hash, 16)
            .map_err(|_| NoteError::Key("key hash is not hex"))?
            .to_be_bytes();
        let key = B64
            .decode(key)
            .map_err(|_| NoteError::Key("key is not base64"))?;
        let (&alg, public_key) = key.split_first().ok_or(NoteError::Key("empty key"))?;
        if alg != ALG_ED25519 || public_key.len() != 32 {
            return Err(NoteError::Key("only Ed25519 keys are supported"));
        }
        if key_hash(name, public_key) != hash {
            return Err(NoteError::Key("key hash does not match the key"));
        }
        Ok(Self {
            name: name.to_string(),
            hash,
            public_key: public_key.to_vec(),
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Verifies a signed checkpoint note and returns the checkpoint.
    pub fn verify(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let split = note
            .find("\n\n")
            .ok_or(NoteError::Format("no blank line before signatures"))?;
        let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
        let sigs = sigs
            .strip_suffix('\n')
            .ok_or(NoteError::Format("signatures must end in a newline"))?;
        let key = UnparsedPublicKey::new(&ED25519, &self.public_key);
        for line in sigs.split('\n') {
            let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Format(
                "signature line must start with an em dash",
            ))?;
            let (name, sig) = rest
                .split_once(' ')
                .ok_or(NoteError::Format("bad signature line"))?;
            if name != self.name {
                continue;
            }
            let Ok(blob) = B64.decode(sig) else { continue };
            if blob.len() != 68 || blob[..4] != self.hash {
                continue;
            }
            if key.verify(body.as_bytes(), &blob[4..]).is_ok() {
                return Checkpoint::parse_body(body);
            }
        }
        Err(NoteError::Signature(self.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::new("infoshare.test/log", &NoteSigner::generate_pkcs8().unwrap()).unwrap()
    }

    #[test]
    fn signs_and_verifies_checkpoints() {
        let s = signer();
        let cp = Checkpoint {
            origin: "infoshare.test/log".into(),
            size: 42,
            root: [7; 32],
        };
        let note = s.sign(&cp);
        assert!(note.starts_with("infoshare.test/log\n42\nBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n\n\u{2014} infoshare.test/log "));
        let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
        assert_eq!(v.verify(&note).unwrap(), cp);
        // Any change to the body breaks it.
        let forged = note.replacen("\n42\n", "\n43\n", 1);
        assert!(matches!(v.verify(&forged), Err(NoteError::Signature(_))));
        // Another key does not verify it.
        let other = NoteVerifier::parse(&signer().verifier_key()).unwrap();
        assert!(other.verify(&note).is_err());
    }

    #[test]
    fn a_cosigned_note_verifies_under_both_keys_and_keeps_its_body() {
        let (old, new) = (signer(), signer());
        let cp = Checkpoint {
            origin: "infoshare.test/log".into(),
            size: 9,
            root: [3; 32],
        };
        let note = old.sign(&cp);
        let both = new.cosign(&note).unwrap();
        assert!(
            both.starts_with(&note),
            "the first signature is kept as it was"
        );
        assert_eq!(
            both.lines().filter(|l| l.starts_with('\u{2014}')).count(),
            2
        );
        for s in [&old, &new] {
            let v = NoteVerifier::parse(&s.verifier_key()).unwrap();
            assert_eq!(v.verify(&both).unwrap(), cp);
        }
        let third = NoteVerifier::parse(&signer().verifier_key()).unwrap();
        assert!(third.verify(&both).is_err());
        assert!(new.cosign("no signatures here").is_err());
    }

    #[test]
    fn verifier_keys_are_checked() {
        let vkey = signer().verifier_key();
        assert!(NoteVerifier::parse(&vkey).is_ok());
        let (name, rest) = vkey.split_once('+').unwrap();
        assert!(
            NoteVerifier::parse(&format!("{name}x+{rest}")).is_err(),
            "hash must bind the name"
        );
        assert!(NoteVerifier::parse("nonsense").is_err());
    }

    #[test]
    fn bodies_parse_strictly() {
        assert!(Checkpoint::parse_body("o\n01\nAA==\n").is_err());
        assert!(Checkpoint::parse_body("o\n1\nAA==\n").is_err());
        assert!(Checkpoint::parse_body("\n1\n").is_err());
    }
}
