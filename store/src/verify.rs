//! Offline verification of a data directory's log (`infoshare-server --verify-log DIR`): every
//! frame's checksum, every record's encoding, and the Merkle root against the last checkpoint the
//! server signed. Changes nothing; names the first record that fails.

use std::path::Path;

use infoshare_tlog::{Frontier, Hash, leaf_hash};

use crate::checkpoint::check_signed_at;
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

/// Records handed from one stage of the verification to the next, in one buffer.
struct Chunk {
    first: u64,
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Chunk {
    const RECORDS: usize = 4096;

    fn starting(first: u64) -> Self {
        Self {
            first,
            bytes: Vec::with_capacity(Self::RECORDS * 320),
            ends: Vec::with_capacity(Self::RECORDS),
        }
    }

    fn records(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .enumerate()
            .map(|(i, (a, b))| (self.first + i as u64, &self.bytes[a..b]))
    }
}

/// The leaf hashes of a chunk's records, and the first that does not decode.
fn hash_chunk(chunk: &Chunk) -> (Vec<Hash>, Option<VerifyError>) {
    let mut bad = None;
    let hashes = chunk
        .records()
        .map(|(index, raw)| {
            if bad.is_none()
                && let Err(e) = Record::decode(raw)
            {
                bad = Some(VerifyError::Record {
                    index,
                    detail: e.to_string(),
                });
            }
            leaf_hash(raw)
        })
        .collect();
    (hashes, bad)
}

/// Verifies the log in `data_dir`. Three stages on threads of their own, so that it takes the
/// machine's cores: reading the segments and checking their frames; hashing and decoding each
/// record; folding the leaf hashes into the tree's root (a frontier: O(log n) memory, whatever
/// the log's size).
pub fn verify_data_dir(data_dir: &Path) -> Result<Verified, VerifyError> {
    let witness = read_witness(data_dir);
    let witness_size = witness
        .as_deref()
        .and_then(|n| n.lines().nth(1)?.parse::<u64>().ok());
    // Hashing is the heavy stage: as many hashers as cores, chunks dealt to them in turn and
    // their results taken back in the same turn, so the leaves reach the fold in order.
    let hashers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 8));
    let (chunk_senders, chunk_receivers): (Vec<_>, Vec<_>) = (0..hashers)
        .map(|_| std::sync::mpsc::sync_channel::<Chunk>(2))
        .unzip();
    let (hash_senders, hash_receivers): (Vec<_>, Vec<_>) = (0..hashers)
        .map(|_| std::sync::mpsc::sync_channel::<(Vec<Hash>, Option<VerifyError>)>(2))
        .unzip();
    let (scanned, (frontier, at_witness, bad_record)) = std::thread::scope(|scope| {
        for (to_hash, hashed) in chunk_receivers.into_iter().zip(hash_senders) {
            scope.spawn(move || {
                for chunk in to_hash {
                    if hashed.send(hash_chunk(&chunk)).is_err() {
                        return;
                    }
                }
            });
        }
        let folder = scope.spawn(move || {
            let mut frontier = Frontier::default();
            let mut at_witness = None;
            let mut first_bad = None;
            'all: for turn in 0.. {
                let Ok((hashes, bad)) = hash_receivers[turn % hashers].recv() else {
                    break 'all;
                };
                for h in hashes {
                    frontier.push(h);
                    if Some(frontier.size()) == witness_size {
                        at_witness = Some(frontier.root());
                    }
                }
                first_bad = first_bad.or(bad);
            }
            (frontier, at_witness, first_bad)
        });
        let mut chunk = Chunk::starting(1);
        let mut turn = 0;
        let scanned = scan_read_only(&data_dir.join("log"), LOG_MAGIC, |index, raw| {
            chunk.bytes.extend_from_slice(raw);
            chunk.ends.push(chunk.bytes.len());
            if chunk.ends.len() == Chunk::RECORDS {
                let full = std::mem::replace(&mut chunk, Chunk::starting(index + 1));
                let _ = chunk_senders[turn % hashers].send(full);
                turn += 1;
            }
        });
        if !chunk.ends.is_empty() {
            let _ = chunk_senders[turn % hashers].send(chunk);
        }
        drop(chunk_senders);
        (
            scanned,
            folder.join().expect("the folding stage does not panic"),
        )
    });
    let scanned = scanned.map_err(|e| match e {
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
    let held = frontier.size();
    let root = frontier.root();
    // The roots this verifier kept: the whole log's and the witness's size's. The log's own
    // checkpoint ends the last batch written, so it is of the whole log.
    let root_at = |size: u64| {
        if size == held {
            Some(root)
        } else if Some(size) == witness_size {
            at_witness
        } else if size == 0 {
            Some(infoshare_tlog::merkle::empty_root())
        } else {
            None
        }
    };
    // The log's own checkpoint (synced with its batch), and the witness written after it.
    let note_path = data_dir.join("checkpoint.witness");
    let notes = [
        scanned.last_mark.map(|m| {
            (
                String::from_utf8_lossy(&m).into_owned(),
                "the log's checkpoint".to_string(),
            )
        }),
        witness.map(|n| (n, note_path.display().to_string())),
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
        let cp = check_signed_at(
            &note,
            verifiers.as_deref().unwrap_or_default(),
            held,
            &root_at,
        )
        .map_err(|e| VerifyError::Checkpoint(format!("{from}: {e}")))?;
        checkpoint_size = checkpoint_size.max(cp.size);
    }
    Ok(Verified {
        records: scanned.entries,
        checkpoint_size,
    })
}
