//! The tree's full tiles as files beside the log, at their C2SP tlog-tiles paths
//! (`<data>/tile/0/x001/x234/067`), so that any tlog-tiles client can read them as they are.
//! Tiles are derived from the log: written once each (through a temporary name, so a reader
//! never sees half a tile), not synced. A tile lost or torn by a power cut is found at start-up
//! (the root no longer matches the signed checkpoint: the tiles are rebuilt from the log) or by
//! the verification that follows it (which rewrites any tile that disagrees with the log).
//!
//! Files are made by a thread of their own, not by the log's writer that fills the tiles: making
//! a file can take a millisecond or more (measured: ext4's search for a free inode, with many
//! files recently deleted, was 15% of the writer's time, one tile every 256 records), and the
//! writer's every millisecond is on some caller's acknowledgement. A tile waiting for its file
//! is read from memory; at most [`MAX_WAITING`] wait, beyond which the caller writes it itself.
//! The last handle dropped writes every tile still waiting.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use infoshare_tlog::merkle::Hash;
use infoshare_tlog::tiles::{TILE_WIDTH, TileStore, tile_path};

/// Tiles that may wait for their files (8 KiB each).
pub const MAX_WAITING: usize = 1024;

/// Full tiles under `<data>/tile/`.
pub struct TileFiles {
    root: PathBuf,
    waiting: Arc<Waiting>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct Waiting {
    state: Mutex<WaitingState>,
    wake: Condvar,
}

#[derive(Default)]
struct WaitingState {
    /// Tiles not yet in their files, and the order they came in.
    tiles: HashMap<(u8, u64), Arc<[Hash]>>,
    queue: std::collections::VecDeque<(u8, u64)>,
    stop: bool,
}

impl Waiting {
    fn lock(&self) -> MutexGuard<'_, WaitingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TileFiles {
    /// The tiles of the data directory `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.to_path_buf(),
            waiting: Arc::default(),
            thread: Mutex::new(None),
        }
    }

    /// Hands the tile to the file thread (started at the first tile); false if it cannot take
    /// it (full, or no thread), and the caller writes it.
    fn hand_over(&self, key: (u8, u64), hashes: &[Hash]) -> bool {
        let mut state = self.waiting.lock();
        if state.tiles.len() >= MAX_WAITING {
            return false;
        }
        let mut thread = self.thread.lock().unwrap_or_else(|e| e.into_inner());
        if thread.is_none() {
            let (root, waiting) = (self.root.clone(), self.waiting.clone());
            match std::thread::Builder::new()
                .name("tile-files".into())
                .spawn(move || make_files(&root, &waiting))
            {
                Ok(handle) => *thread = Some(handle),
                Err(e) => {
                    tracing::warn!(error = %e, "no tile file thread; tiles written inline");
                    return false;
                }
            }
        }
        state.tiles.insert(key, hashes.into());
        state.queue.push_back(key);
        self.waiting.wake.notify_one();
        true
    }
}

/// The file thread: writes each waiting tile, then lets it go from memory; on stop, writes
/// what is left first.
fn make_files(root: &Path, waiting: &Waiting) {
    let mut state = waiting.lock();
    loop {
        let Some(&key) = state.queue.front() else {
            if state.stop {
                return;
            }
            state = waiting.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            continue;
        };
        let hashes = state.tiles.get(&key).cloned();
        drop(state);
        if let Some(hashes) = &hashes {
            write_file(root, key.0, key.1, hashes);
        }
        state = waiting.lock();
        state.queue.pop_front();
        // Let go of what was written, not of a newer copy handed over meanwhile (queued again).
        if let (Some(written), Some(held)) = (&hashes, state.tiles.get(&key))
            && Arc::ptr_eq(written, held)
        {
            state.tiles.remove(&key);
        }
    }
}

fn path_of(root: &Path, level: u8, index: u64) -> PathBuf {
    root.join(tile_path(level, index, TILE_WIDTH))
}

fn write_file(root: &Path, level: u8, index: u64, hashes: &[Hash]) {
    let path = path_of(root, level, index);
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

impl TileStore for TileFiles {
    fn read(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        if let Some(hashes) = self.waiting.lock().tiles.get(&(level, index)) {
            return Some(hashes.to_vec());
        }
        let bytes = std::fs::read(path_of(&self.root, level, index)).ok()?;
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
        if !self.hand_over((level, index), hashes) {
            write_file(&self.root, level, index, hashes);
        }
    }
}

impl Drop for TileFiles {
    fn drop(&mut self) {
        self.waiting.lock().stop = true;
        self.waiting.wake.notify_one();
        let thread = self.thread.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = thread.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tile(seed: u8) -> Vec<Hash> {
        (0..TILE_WIDTH).map(|i| [seed ^ i as u8; 32]).collect()
    }

    #[test]
    fn a_tile_is_read_back_before_and_after_its_file_is_made_and_every_file_is_made_by_drop() {
        let dir = tempfile::tempdir().unwrap();
        let tiles = TileFiles::new(dir.path());
        for i in 0..300u64 {
            tiles.write(0, i, &tile(i as u8));
            assert_eq!(tiles.read(0, i), Some(tile(i as u8)), "tile {i}");
        }
        tiles.write(1, 0, &tile(7));
        drop(tiles);
        let again = TileFiles::new(dir.path());
        for i in 0..300u64 {
            assert!(dir.path().join(tile_path(0, i, TILE_WIDTH)).exists());
            assert_eq!(again.read(0, i), Some(tile(i as u8)));
        }
        assert_eq!(again.read(1, 0), Some(tile(7)));
        assert_eq!(again.read(1, 1), None);
    }

    #[test]
    fn beyond_the_waiting_limit_the_caller_writes_the_tile_itself() {
        let dir = tempfile::tempdir().unwrap();
        let tiles = TileFiles::new(dir.path());
        {
            // As many waiting as may wait (not queued: the thread leaves them be).
            let mut state = tiles.waiting.lock();
            for i in 0..MAX_WAITING as u64 {
                state.tiles.insert((3, i), tile(1).into());
            }
        }
        // Full: written inline, so its file is there as soon as the call returns, and no thread
        // was started to take it.
        tiles.write(0, 5, &tile(5));
        assert!(dir.path().join(tile_path(0, 5, TILE_WIDTH)).exists());
        assert!(
            tiles.thread.lock().unwrap().is_none(),
            "handed over, not written inline"
        );
        tiles.waiting.lock().tiles.clear();
    }
}
