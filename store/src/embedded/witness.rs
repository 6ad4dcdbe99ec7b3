//! The checkpoint witness: the latest signed checkpoint, written after the log holds it durably,
//! never synced (see the engine's notes for what it protects).
//!
//! ```text
//! <data>/checkpoint.witness   4096 bytes, rewritten in place: len:u32le crc32c(note):u32le note 0…
//! ```
//!
//! Rewritten in place, not through a new file and a rename: a new file per batch made every
//! `fdatasync` of the log wait for the journal to write that file's data too (ext4 in ordered
//! mode); measured, writing it so cost 28% of the ledger's append rate and doubled the median
//! submit latency at 1,000/s. A rewrite torn by a power cut fails its checksum and is set aside;
//! one that checks must verify.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

const NAME: &str = "checkpoint.witness";
/// Its older form, a text file replaced by rename (still read).
const LEGACY: &str = "checkpoint.note";
const BYTES: usize = 4096;
const HEADER: usize = 8;

/// The witness file, opened for rewriting.
pub(super) struct Witness {
    file: Option<File>,
}

impl Witness {
    /// Opens (or makes) the witness of `data_dir`; without one, the engine runs on (warned).
    pub(super) fn open(data_dir: &Path) -> Self {
        let path = data_dir.join(NAME);
        let opened = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .and_then(|f| {
                if f.metadata()?.len() != BYTES as u64 {
                    f.set_len(BYTES as u64)?;
                }
                Ok(f)
            });
        match opened {
            Ok(file) => Self { file: Some(file) },
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "no checkpoint witness");
                Self { file: None }
            }
        }
    }

    /// Rewrites the witness with `note`.
    pub(super) fn write(&self, note: &str) {
        let Some(file) = &self.file else { return };
        if note.len() > BYTES - HEADER {
            tracing::warn!("checkpoint too long for its witness; not witnessed");
            return;
        }
        let mut buf = vec![0u8; BYTES];
        buf[..4].copy_from_slice(&(note.len() as u32).to_le_bytes());
        buf[4..8].copy_from_slice(&crc32c::crc32c(note.as_bytes()).to_le_bytes());
        buf[HEADER..HEADER + note.len()].copy_from_slice(note.as_bytes());
        if let Err(e) = file.write_all_at(&buf, 0) {
            tracing::warn!(error = %e, "could not write the checkpoint witness");
        }
    }
}

/// The witness of `data_dir`, if there is a whole one: empty, torn or missing, it is `None`.
pub(crate) fn read(data_dir: &Path) -> Option<String> {
    let path = data_dir.join(NAME);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let whole = bytes.get(..HEADER).and_then(|h| {
                let len = u32::from_le_bytes(h[..4].try_into().expect("4")) as usize;
                let crc = u32::from_le_bytes(h[4..].try_into().expect("4"));
                let note = bytes.get(HEADER..HEADER + len)?;
                (len > 0 && crc32c::crc32c(note) == crc)
                    .then(|| String::from_utf8(note.to_vec()).ok())
                    .flatten()
            });
            if whole.is_none() && bytes.iter().any(|&b| b != 0) {
                tracing::warn!(path = %path.display(), "checkpoint witness torn (a power cut?); the log's own checkpoint is used");
            }
            whole
        }
        Err(_) => read_legacy(&data_dir.join(LEGACY)),
    }
}

/// The older text witness, if it is a whole note.
fn read_legacy(path: &Path) -> Option<String> {
    let note = std::fs::read_to_string(path).ok()?;
    let whole = note.ends_with('\n')
        && note
            .split_once("\n\n")
            .is_some_and(|(_, sigs)| sigs.lines().next().is_some_and(|l| l.starts_with("— ")));
    whole.then_some(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_witness_is_read_back_and_a_torn_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        let witness = Witness::open(dir.path());
        witness.write("origin\n3\nroot\n\n— key sig\n");
        witness.write("origin\n4\nroot\n\n— key sig\n");
        assert_eq!(
            read(dir.path()).as_deref(),
            Some("origin\n4\nroot\n\n— key sig\n")
        );
        // A rewrite half on disk: the checksum gives it away.
        let path = dir.path().join(NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER + 7] = b'5';
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(dir.path()), None);
        std::fs::write(&path, []).unwrap();
        assert_eq!(read(dir.path()), None);
    }
}
