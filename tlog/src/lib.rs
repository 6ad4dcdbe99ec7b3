//! Transparency-log primitives shared by the broker and its auditors, so that what the server
//! proves and what a client verifies are the same code:
//!
//! - [`merkle`]: the RFC 9162 (Certificate Transparency v2) Merkle tree — leaf hash
//!   `SHA-256(0x00 ‖ entry)`, node hash `SHA-256(0x01 ‖ left ‖ right)` — with inclusion and
//!   consistency proofs and their verification, tested against the transparency-dev/merkle
//!   vectors.
//! - [`note`]: checkpoints in the C2SP `tlog-checkpoint` format, signed with Ed25519 as C2SP
//!   `signed-note`s.
//! - [`receipt`]: a record with its inclusion proof under a signed checkpoint.
//! - [`rotation`]: a signing-key rotation statement, cosigned by the old and new keys.
//! - [`tiles`]: the tree as C2SP tlog-tiles, behind a `TileStore` (the tree's memory does not
//!   grow with the log).
//!
//! It knows nothing of infoshare's records: entries are bytes. No I/O (tile stores are the caller's).

#![forbid(unsafe_code)]

pub mod merkle;
pub mod note;
pub mod receipt;
pub mod rotation;
pub mod tiles;
mod tree;

pub use merkle::{Frontier, Hash, Tree, leaf_hash};
pub use note::{Checkpoint, NoteSigner, NoteVerifier};
pub use receipt::Receipt;
pub use rotation::Rotation;
