//! The log's signing key and its rotations.
//!
//! ```text
//! keys/log-signing.pk8          the current Ed25519 key (PKCS#8, mode 0600)
//! keys/log-signing.pk8.new      a rotation's new key, until the rotation completes
//! keys/rotations/<size>.note    one statement per rotation ([`Rotation`]), <size> = 20 digits:
//!                               the checkpoint covering the LogKeyRotated record, signed by
//!                               the old key and cosigned by the new one
//! ```
//!
//! A rotation: the new key is made and stored as `.new`; a LogKeyRotated record naming it is
//! committed (its checkpoint signed by the old key); the new key cosigns that checkpoint and
//! the statement is stored; then the new key replaces the old, whose private half is gone.
//! Anyone who trusts the old key can therefore trust the new one from that checkpoint on, and
//! the tree is one tree throughout (consistency proofs span the rotation). A crash at any step
//! is finished or undone on the next start (see [`LogKeys::open`]).

use std::path::{Path, PathBuf};

use infoshare_tlog::{Checkpoint, NoteSigner, NoteVerifier, Rotation};

/// A rotation's new key, made and stored as pending, until its record is in the log.
pub struct NextKey {
    signer: NoteSigner,
    pkcs8: Vec<u8>,
}

impl NextKey {
    /// The new key's signer.
    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }
}

/// The current signer and the rotations that led to it.
pub struct LogKeys {
    /// Where the keys are kept; `None` for an ephemeral log (the in-memory engine).
    dir: Option<PathBuf>,
    origin: String,
    signer: NoteSigner,
    rotations: Vec<Rotation>,
}

impl LogKeys {
    /// Loads the keys in `dir` (making the first key if there is none), finishing or undoing a
    /// rotation a crash interrupted. `interrupted` is asked only then (it reads the whole log):
    /// the key named by the log's last LogKeyRotated record, and the log's checkpoint as its
    /// records give it. If the record is there, the rotation is finished over that checkpoint;
    /// if not, it never happened and its key is deleted.
    pub fn open(
        dir: &Path,
        origin: &str,
        interrupted: impl FnOnce() -> Result<(Option<[u8; 32]>, Checkpoint), String>,
    ) -> Result<Self, String> {
        let current = dir.join("log-signing.pk8");
        let pending = dir.join("log-signing.pk8.new");
        let pkcs8 = match std::fs::read(&current) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let fresh = NoteSigner::generate_pkcs8().map_err(|e| e.to_string())?;
                crate::secret_file::write_new_secret(&current, &fresh)
                    .map_err(|e| format!("{}: {e}", current.display()))?;
                fresh
            }
            Err(e) => return Err(format!("{}: {e}", current.display())),
        };
        let mut keys = Self {
            dir: Some(dir.to_path_buf()),
            origin: origin.to_string(),
            signer: signer(origin, &pkcs8)?,
            rotations: read_rotations(&dir.join("rotations"))?,
        };
        if let Ok(next) = std::fs::read(&pending) {
            let next_signer = signer(origin, &next)?;
            let stated = keys
                .rotations
                .iter()
                .any(|r| r.new_key == next_signer.verifier_key());
            if stated {
                // Only the last step was left: the new key replaces the old.
                keys.install(next_signer)?;
            } else if let (Some(to), checkpoint) = interrupted()?
                && to.as_slice() == next_signer.public_key()
            {
                tracing::warn!("finishing a log key rotation interrupted by a crash");
                let note = keys.signer.sign(&checkpoint);
                keys.state_rotation(&next_signer, &note, checkpoint.size)?;
                keys.install(next_signer)?;
            } else {
                tracing::warn!("discarding a log key rotation that never reached the log");
                std::fs::remove_file(&pending)
                    .map_err(|e| format!("{}: {e}", pending.display()))?;
            }
        }
        Ok(keys)
    }

    /// A fresh key kept nowhere, for a log that is not kept either (the in-memory engine).
    pub fn ephemeral(origin: &str) -> Result<Self, String> {
        let pkcs8 = NoteSigner::generate_pkcs8().map_err(|e| e.to_string())?;
        Ok(Self {
            dir: None,
            origin: origin.to_string(),
            signer: signer(origin, &pkcs8)?,
            rotations: Vec::new(),
        })
    }

    /// The current signer.
    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }

    /// The rotations, oldest first.
    pub fn rotations(&self) -> &[Rotation] {
        &self.rotations
    }

    /// Verifiers of every key this log has signed with: the current one and each retired one.
    pub fn verifiers(&self) -> Result<Vec<NoteVerifier>, String> {
        std::iter::once(self.signer.verifier_key())
            .chain(self.rotations.iter().map(|r| r.old_key.clone()))
            .map(|k| NoteVerifier::parse(&k).map_err(|e| e.to_string()))
            .collect()
    }

    /// Makes the next key and stores it as pending (step one of a rotation).
    pub fn prepare_rotation(&self) -> Result<NextKey, String> {
        let pkcs8 = NoteSigner::generate_pkcs8().map_err(|e| e.to_string())?;
        if let Some(dir) = &self.dir {
            let pending = dir.join("log-signing.pk8.new");
            // A pending key from a rotation refused earlier is replaced.
            let _ = std::fs::remove_file(&pending);
            crate::secret_file::write_new_secret(&pending, &pkcs8)
                .map_err(|e| format!("{}: {e}", pending.display()))?;
        }
        Ok(NextKey {
            signer: signer(&self.origin, &pkcs8)?,
            pkcs8,
        })
    }

    /// Completes a rotation whose LogKeyRotated record is covered by `note` (signed by the
    /// current key): the new key cosigns it, the statement is stored, and the new key takes
    /// over. Returns the statement.
    pub fn complete_rotation(
        &mut self,
        next: NextKey,
        note: &str,
        size: u64,
    ) -> Result<Rotation, String> {
        let rotation = self.state_rotation(&next.signer, note, size)?;
        if let Some(dir) = &self.dir
            && !dir.join("log-signing.pk8.new").exists()
        {
            // Another broker of a shared log started between this key being made and its
            // record committing, and discarded it as a rotation that never reached the log:
            // it is written again from memory, so the rotation completes.
            let pending = dir.join("log-signing.pk8.new");
            crate::secret_file::write_new_secret(&pending, &next.pkcs8)
                .map_err(|e| format!("{}: {e}", pending.display()))?;
        }
        self.install(next.signer)?;
        Ok(rotation)
    }

    fn state_rotation(
        &mut self,
        next: &NoteSigner,
        note: &str,
        size: u64,
    ) -> Result<Rotation, String> {
        let rotation = Rotation {
            old_key: self.signer.verifier_key(),
            new_key: next.verifier_key(),
            note: next.cosign(note).map_err(|e| e.to_string())?,
        };
        if let Some(dir) = &self.dir {
            let dir = dir.join("rotations");
            crate::durable::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let path = dir.join(format!("{size:020}.note"));
            write_durably(&path, rotation.render().as_bytes())?;
        }
        self.rotations.push(rotation.clone());
        Ok(rotation)
    }

    /// Takes up the key another writer of a shared log rotated to (its LogKeyRotated record
    /// names `public_key`), from the keys directory the writers share. `Ok(false)` while the
    /// directory's current key is still another one: the rotating writer has committed the
    /// record but not yet stated and installed the new key (or died between the two, and the
    /// next start of any writer finishes it).
    pub fn adopt(&mut self, public_key: &[u8]) -> Result<bool, String> {
        if self.signer.public_key() == public_key {
            return Ok(true);
        }
        let Some(dir) = &self.dir else {
            return Err("an ephemeral log's key cannot be rotated by another writer".into());
        };
        let current = dir.join("log-signing.pk8");
        let pkcs8 = std::fs::read(&current).map_err(|e| format!("{}: {e}", current.display()))?;
        let next = signer(&self.origin, &pkcs8)?;
        if next.public_key() != public_key {
            return Ok(false);
        }
        // Stated before installed (see `complete_rotation`): the statement is there by now.
        self.rotations = read_rotations(&dir.join("rotations"))?;
        if !self
            .rotations
            .iter()
            .any(|r| r.new_key == next.verifier_key())
        {
            return Err(format!(
                "{}: the key rotated to is installed without its rotation statement",
                current.display()
            ));
        }
        self.signer = next;
        Ok(true)
    }

    /// The pending key replaces the current one (whose private half is then gone).
    fn install(&mut self, next: NoteSigner) -> Result<(), String> {
        if let Some(dir) = &self.dir {
            let (pending, current) = (dir.join("log-signing.pk8.new"), dir.join("log-signing.pk8"));
            crate::durable::rename(&pending, &current)
                .and_then(|()| crate::durable::sync_dir(dir))
                .map_err(|e| format!("{}: {e}", current.display()))?;
        }
        self.signer = next;
        Ok(())
    }
}

/// The rotation statements in `dir`, oldest first; each must verify.
fn read_rotations(dir: &Path) -> Result<Vec<Rotation>, String> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "note"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    files.sort();
    files
        .iter()
        .map(|path| {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Rotation::parse(&text)
                .map(|(r, _)| r)
                .map_err(|e| format!("{}: {e}", path.display()))
        })
        .collect()
}

/// The verifiers of every key the log in `keys_dir` has signed with (current and retired),
/// read-only (for the offline verifier).
pub fn trusted_verifiers(keys_dir: &Path, origin: &str) -> Result<Vec<NoteVerifier>, String> {
    let current = keys_dir.join("log-signing.pk8");
    let pkcs8 = std::fs::read(&current).map_err(|e| format!("{}: {e}", current.display()))?;
    std::iter::once(signer(origin, &pkcs8)?.verifier_key())
        .chain(
            read_rotations(&keys_dir.join("rotations"))?
                .into_iter()
                .flat_map(|r| [r.old_key, r.new_key]),
        )
        .map(|k| NoteVerifier::parse(&k).map_err(|e| e.to_string()))
        .collect()
}

fn signer(origin: &str, pkcs8: &[u8]) -> Result<NoteSigner, String> {
    NoteSigner::new(origin, pkcs8).map_err(|e| e.to_string())
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(bytes)
        .and_then(|()| crate::durable::sync_all(&f, &tmp))
        .map_err(err)?;
    crate::durable::rename(&tmp, path).map_err(err)?;
    crate::durable::sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "infoshare.test/log";

    fn checkpoint(size: u64) -> Checkpoint {
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: [size as u8; 32],
        }
    }

    fn open(dir: &Path, rotated_to: Option<[u8; 32]>, size: u64) -> LogKeys {
        LogKeys::open(dir, ORIGIN, || Ok((rotated_to, checkpoint(size)))).unwrap()
    }

    fn public(s: &NoteSigner) -> [u8; 32] {
        s.public_key().try_into().unwrap()
    }

    #[test]
    fn a_completed_rotation_is_stated_cosigned_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = open(dir.path(), None, 3);
        let old = keys.signer().verifier_key();
        let next = keys.prepare_rotation().unwrap();
        let note = keys.signer().sign(&checkpoint(4));
        let rotation = keys.complete_rotation(next, &note, 4).unwrap();
        assert_eq!(rotation.old_key, old);
        assert_eq!(keys.signer().verifier_key(), rotation.new_key);
        assert!(!dir.path().join("log-signing.pk8.new").exists());
        let reopened = open(dir.path(), Some(public(keys.signer())), 4);
        assert_eq!(reopened.signer().verifier_key(), rotation.new_key);
        assert_eq!(reopened.rotations(), std::slice::from_ref(&rotation));
        // Both the retired and the current key are trusted for stored checkpoints.
        assert_eq!(reopened.verifiers().unwrap().len(), 2);
        assert_eq!(trusted_verifiers(dir.path(), ORIGIN).unwrap().len(), 3);
    }

    #[test]
    fn a_rotation_that_never_reached_the_log_is_undone() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open(dir.path(), None, 3);
        let old = keys.signer().verifier_key();
        keys.prepare_rotation().unwrap();
        drop(keys); // crash before the LogKeyRotated record
        let reopened = open(dir.path(), None, 3);
        assert_eq!(reopened.signer().verifier_key(), old);
        assert!(reopened.rotations().is_empty());
        assert!(!dir.path().join("log-signing.pk8.new").exists());
    }

    #[test]
    fn a_rotation_whose_record_is_in_the_log_is_finished_on_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let keys = open(dir.path(), None, 3);
        let old = keys.signer().verifier_key();
        let next = keys.prepare_rotation().unwrap();
        let new_key = next.signer().verifier_key();
        drop(keys); // crash after the record, before the statement
        let reopened = open(dir.path(), Some(public(next.signer())), 4);
        assert_eq!(reopened.signer().verifier_key(), new_key);
        let stated = &reopened.rotations()[0];
        assert_eq!(
            (stated.old_key.as_str(), stated.new_key.as_str()),
            (old.as_str(), new_key.as_str())
        );
        let (_, at) = Rotation::parse(&stated.render()).unwrap();
        assert_eq!(at, checkpoint(4), "cosigned over the log as it stands");
    }

    #[test]
    fn a_rotation_stated_but_not_installed_is_installed_on_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut keys = open(dir.path(), None, 3);
        let next = keys.prepare_rotation().unwrap();
        let note = keys.signer().sign(&checkpoint(4));
        let rotation = keys.state_rotation(next.signer(), &note, 4).unwrap();
        drop(keys); // crash before the new key replaced the old
        let reopened = open(dir.path(), Some(public(next.signer())), 4);
        assert_eq!(reopened.signer().verifier_key(), rotation.new_key);
        assert_eq!(reopened.rotations().len(), 1, "stated once");
    }

    #[test]
    fn another_writer_takes_up_a_rotation_once_it_is_stated_and_installed() {
        let dir = tempfile::tempdir().unwrap();
        let mut rotating = open(dir.path(), None, 3);
        let mut other = open(dir.path(), None, 3);
        let next = rotating.prepare_rotation().unwrap();
        let to = public(next.signer());
        // The record is in the log, the key still pending: not yet.
        assert!(!other.adopt(&to).unwrap());
        assert_eq!(
            other.signer().verifier_key(),
            rotating.signer().verifier_key()
        );
        let note = rotating.signer().sign(&checkpoint(4));
        let rotation = rotating.complete_rotation(next, &note, 4).unwrap();
        assert!(other.adopt(&to).unwrap());
        assert_eq!(other.signer().verifier_key(), rotation.new_key);
        assert_eq!(other.rotations(), std::slice::from_ref(&rotation));
        assert_eq!(
            other.verifiers().unwrap().len(),
            2,
            "the old key still verifies"
        );
        // A key nobody installed is never taken up.
        assert!(!other.adopt(&[1; 32]).unwrap());
    }

    #[test]
    fn a_pending_key_discarded_by_another_writers_start_is_written_again_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let mut rotating = open(dir.path(), None, 3);
        let next = rotating.prepare_rotation().unwrap();
        let to = public(next.signer());
        // Another writer starts before the record commits: to it, the rotation never happened.
        let started = open(dir.path(), None, 3);
        assert!(!dir.path().join("log-signing.pk8.new").exists());
        drop(started);
        let note = rotating.signer().sign(&checkpoint(4));
        let rotation = rotating.complete_rotation(next, &note, 4).unwrap();
        assert_eq!(rotating.signer().verifier_key(), rotation.new_key);
        let mut other = open(dir.path(), None, 4);
        assert_eq!(other.signer().verifier_key(), rotation.new_key, "installed");
        assert!(other.adopt(&to).unwrap());
    }
}
