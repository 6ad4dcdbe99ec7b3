//! Commitments and pseudonyms: how the log can name people and bodies without holding them.
//!
//! - A *pseudonym* is HMAC-SHA256 under the server's secret key over a domain-separated,
//!   normalised input. The same person gets the same pseudonym in every record, so an auditor who
//!   knows the identifiers can find them; nobody without the key can reverse or test a guess.
//! - A *commitment* is SHA-256(salt ‖ body) with a fresh 32-byte random salt kept beside the body.
//!   It binds the log to the exact body without revealing it, even for short, guessable bodies.

use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};
use ring::{digest, hmac};

use crate::text::{canonical_name, canonical_name_form1};

/// A 32-byte keyed pseudonym.
pub type Pseudonym = [u8; 32];
/// A 32-byte SHA-256 value.
pub type Digest32 = [u8; 32];

/// The server's secret pseudonym key and its random source.
pub struct Keys {
    pseudonym: hmac::Key,
    rng: SystemRandom,
}

/// Why the key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("pseudonym key {path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The key file does not hold 32 bytes.
    #[error("pseudonym key {0}: must hold exactly 32 bytes")]
    BadLength(String),
    /// The system random source failed.
    #[error("system random source failed")]
    Random,
}

impl Keys {
    /// Loads the 32-byte key at `path`, making it (mode 0600) if it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        let rng = SystemRandom::new();
        let secret = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut fresh = [0u8; 32];
                rng.fill(&mut fresh).map_err(|_| KeyError::Random)?;
                write_new_secret(path, &fresh).map_err(io)?;
                fresh.to_vec()
            }
            Err(e) => return Err(io(e)),
        };
        if secret.len() != 32 {
            return Err(KeyError::BadLength(path.display().to_string()));
        }
        Ok(Self::from_secret(&secret))
    }

    /// Keys from a given secret (tests).
    pub fn from_secret(secret: &[u8]) -> Self {
        Self {
            pseudonym: hmac::Key::new(hmac::HMAC_SHA256, secret),
            rng: SystemRandom::new(),
        }
    }

    /// Fresh random bytes.
    pub fn random<const N: usize>(&self) -> [u8; N] {
        let mut out = [0u8; N];
        // SystemRandom reads getrandom(2); it fails only if the kernel cannot supply entropy.
        self.rng
            .fill(&mut out)
            .expect("the system random source failed");
        out
    }

    fn keyed(&self, domain: &str, parts: &[&str]) -> Pseudonym {
        let mut ctx = hmac::Context::with_key(&self.pseudonym);
        ctx.update(domain.as_bytes());
        for p in parts {
            ctx.update(&[0]);
            ctx.update(p.as_bytes());
        }
        ctx.sign()
            .as_ref()
            .try_into()
            .expect("HMAC-SHA256 is 32 bytes")
    }

    /// Pseudonym of a subject's name and date of birth, in the canonical name form
    /// ([`crate::text`]), so the same person written with other Unicode forms of the same
    /// letters, dashes and spaces gets the same pseudonym.
    pub fn subject_by_name(&self, family: &str, given: &str, dob: &str) -> Pseudonym {
        self.keyed(
            "infoshare.v1/subject/name-dob",
            &[&canonical_name(family), &canonical_name(given), dob],
        )
    }

    /// The pseudonyms an auditor's search by name must look for: the canonical form's, and
    /// the form-1 one of records written before it when that differs.
    pub fn subject_by_name_any_form(&self, family: &str, given: &str, dob: &str) -> Vec<Pseudonym> {
        let current = self.subject_by_name(family, given, dob);
        let form1 = self.keyed(
            "infoshare.v1/subject/name-dob",
            &[
                &canonical_name_form1(family),
                &canonical_name_form1(given),
                dob,
            ],
        );
        if form1 == current {
            vec![current]
        } else {
            vec![current, form1]
        }
    }

    /// Pseudonym of a subject's agency identifier (scheme lowercase, value uppercase, no spaces).
    pub fn subject_by_identifier(&self, scheme: &str, value: &str) -> Pseudonym {
        let value: String = value
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_uppercase)
            .collect();
        self.keyed(
            "infoshare.v1/subject/identifier",
            &[&scheme.to_lowercase(), &value],
        )
    }

    /// Pseudonym of a staff member within an agency.
    pub fn staff(&self, agency: &str, staff_id: &str) -> Pseudonym {
        self.keyed("infoshare.v1/staff", &[agency, staff_id])
    }

    /// Keyed hash of a client idempotency key within an agency.
    pub fn idempotency(&self, agency: &str, key: &str) -> Digest32 {
        self.keyed("infoshare.v1/idempotency", &[agency, key])
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Digest32 {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// The salted commitment SHA-256(salt ‖ body).
pub fn commitment(salt: &[u8; 32], body: &[u8]) -> Digest32 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(salt);
    ctx.update(body);
    ctx.finish()
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// Writes a new secret file with mode 0600 (fails if it exists).
pub(crate) fn write_new_secret(path: &Path, secret: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(secret)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_normalised_and_domain_separated() {
        let a = Keys::from_secret(&[1; 32]);
        let b = Keys::from_secret(&[2; 32]);
        let p = a.subject_by_name("Ngata", "Aroha  Mere", "2012-03-04");
        assert_eq!(p, a.subject_by_name(" NGATA ", "aroha mere", "2012-03-04"));
        assert_ne!(p, b.subject_by_name("Ngata", "Aroha Mere", "2012-03-04"));
        assert_ne!(p, a.subject_by_name("Ngata", "Aroha", "2012-03-04"));
        assert_eq!(
            a.subject_by_identifier("NHI", "abc 1234"),
            a.subject_by_identifier("nhi", "ABC1234")
        );
        // Macrons typed two ways, a fullwidth hyphen, a zero-width space: one person.
        assert_eq!(
            a.subject_by_name("Tūhoe-Ngata", "Ārani", "2012-03-04"),
            a.subject_by_name(
                "Tu\u{0304}hoe\u{FF0D}Nga\u{200B}ta",
                "A\u{0304}rani",
                "2012-03-04"
            )
        );
        // A search also finds what form 1 wrote for a name form 2 writes otherwise.
        let both = a.subject_by_name_any_form("Nga\u{0304}ta", "", "2012-03-04");
        assert_eq!(both.len(), 2);
        assert_eq!(
            a.subject_by_name_any_form("Ngata", "Aroha", "2012-03-04")
                .len(),
            1
        );
        // The same text in two roles never gives the same value.
        assert_ne!(a.staff("police", "x"), a.idempotency("police", "x"));
    }

    #[test]
    fn commitment_matches_sha256_of_salt_and_body() {
        let salt = [7u8; 32];
        let mut joined = salt.to_vec();
        joined.extend_from_slice(b"body");
        assert_eq!(commitment(&salt, b"body"), sha256(&joined));
        // Known answer: SHA-256("abc").
        assert_eq!(
            hex::encode(sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/pseudonym.key");
        let k1 = Keys::load_or_create(&path).unwrap();
        let k2 = Keys::load_or_create(&path).unwrap();
        assert_eq!(k1.staff("a", "b"), k2.staff("a", "b"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            Keys::load_or_create(&path),
            Err(KeyError::BadLength(_))
        ));
    }
}
