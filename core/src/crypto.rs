//! Commitments and pseudonyms: how the log can name people and bodies without holding them.
//!
//! - A *pseudonym* is HMAC-SHA256 under the server's secret key over a domain-separated,
//!   normalised input. The same person gets the same pseudonym in every record, so an auditor who
//!   knows the identifiers can find them; nobody without the key can reverse or test a guess.
//! - A *commitment* is SHA-256(salt ‖ body) with a fresh 32-byte random salt kept beside the body.
//!   It binds the log to the exact body without revealing it, even for short, guessable bodies.

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

impl Keys {
    /// Keys from a 32-byte secret (the shell reads it from the key file).
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
}
