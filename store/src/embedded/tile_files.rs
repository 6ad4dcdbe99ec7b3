//! The tree's full tiles as files beside the log, at their C2SP tlog-tiles paths
//! (`<data>/tile/0/x001/x234/067`), so that any tlog-tiles client can read them as they are.
//! Tiles are derived from the log: written once each (through a temporary name, so a reader
//! never sees half a tile), not synced. A tile lost or torn by a power cut is found at start-up
//! (the root no longer matches the signed checkpoint: the tiles are rebuilt from the log) or by
//! the verification that follows it (which rewrites any tile that disagrees with the log).

use std::path::{Path, PathBuf};

use infoshare_tlog::merkle::Hash;
use infoshare_tlog::tiles::{TILE_WIDTH, TileStore, tile_path};

/// Full tiles under `<data>/tile/`.
pub struct TileFiles {
    root: PathBuf,
}

impl TileFiles {
    /// The tiles of the data directory `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.to_path_buf(),
        }
    }

    fn path(&self, level: u8, index: u64) -> PathBuf {
        self.root.join(tile_path(level, index, TILE_WIDTH))
    }
}

impl TileStore for TileFiles {
    fn read(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        let bytes = std::fs::read(self.path(level, index)).ok()?;
        if bytes.len() as u64 != TILE_WIDTH * 32 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(32)
                .map(|c| c.try_into().expect("32 bytes"))
                .collect(),
        )
    }

    fn write(&self, level: u8, index: u64, hashes: &[Hash]) {
        let path = self.path(level, index);
        let tmp = path.with_extension("tmp");
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&tmp, hashes.concat()))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            // Proofs that need it fail until the next start rebuilds it from the log.
            tracing::warn!(error = %e, path = %path.display(), "could not write a tile");
        }
    }
}
