//! The whole log checked against its signed checkpoint, after start-up and off the writer.
//! Start-up opens the tree from its tiles and rehashes only the last partial tile's records, so
//! it is fast whatever the log's size; this check rehashes every record, as start-up used to,
//! while the broker serves. It rewrites any tile that disagrees with the log (a tile torn by a
//! power cut), and if the records no longer hash to the signed root it stops every write
//! (fail-stop) and says so: the shell then stops the server as start-up used to refuse it.

use std::sync::{Arc, Mutex};

use infoshare_tlog::merkle::Hash;
use infoshare_tlog::tiles::TileStore;
use infoshare_tlog::{Tree, leaf_hash};
use tokio::sync::watch;

use crate::backend::Reader;
use crate::checkpoint::CheckpointError;

/// Where the check of the whole log stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogCheck {
    /// Rehashing the log.
    Running,
    /// Every record up to `records` hashes to the signed root.
    Passed {
        /// Records checked.
        records: u64,
        /// Tiles rewritten because they disagreed with the log.
        tiles_repaired: u64,
    },
    /// The log does not match its signed checkpoint: writes are refused.
    Failed(String),
}

/// A store that, as the check's tree writes each full tile, compares it with the stored one and
/// rewrites it if they differ.
struct Repairing {
    store: Arc<dyn TileStore>,
    repaired: Mutex<u64>,
}

impl TileStore for Repairing {
    fn read(&self, level: u8, index: u64) -> Option<Vec<Hash>> {
        self.store.read(level, index)
    }

    fn write(&self, level: u8, index: u64, hashes: &[Hash]) {
        if self.store.read(level, index).as_deref() != Some(hashes) {
            tracing::warn!(level, index, "a tile disagreed with the log; rewritten");
            self.store.write(level, index, hashes);
            *self.repaired.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
    }
}

/// What the check holds the log to: the signed checkpoint (size, root) and the tree's root at
/// the size the log had at start-up.
pub(crate) struct Expected {
    pub(crate) signed_size: u64,
    pub(crate) signed_root: Hash,
    pub(crate) size: u64,
    pub(crate) root: Hash,
}

/// Starts the check on a thread of its own; `fault` is set (and the writer then refuses every
/// write) if the log is found changed.
pub(crate) fn spawn(
    reader: Arc<dyn Reader>,
    tiles: Arc<dyn TileStore>,
    expected: Expected,
    fault: Arc<Mutex<Option<String>>>,
) -> watch::Receiver<LogCheck> {
    let (tx, rx) = watch::channel(LogCheck::Running);
    let fault_of_thread = fault.clone();
    let spawned = std::thread::Builder::new()
        .name("log-check".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let outcome = check(&*reader, tiles, &expected);
            if let LogCheck::Failed(why) = &outcome {
                tracing::error!(error = %why, "the log does not match its signed checkpoint; writes refused");
                *fault_lock(&fault_of_thread) = Some(why.clone());
            } else {
                tracing::info!(records = expected.size, secs = started.elapsed().as_secs_f64(), "the whole log matches its signed checkpoint");
            }
            let _ = tx.send(outcome);
        });
    if let Err(e) = spawned {
        // Without the check the log is not known to be sound: refuse writes, as a failed one would.
        let why = format!("the log check could not start: {e}");
        *fault_lock(&fault) = Some(why.clone());
        return watch::channel(LogCheck::Failed(why)).1;
    }
    rx
}

fn fault_lock(fault: &Mutex<Option<String>>) -> std::sync::MutexGuard<'_, Option<String>> {
    fault.lock().unwrap_or_else(|e| e.into_inner())
}

fn check(reader: &dyn Reader, tiles: Arc<dyn TileStore>, expected: &Expected) -> LogCheck {
    let repairing = Arc::new(Repairing {
        store: tiles,
        repaired: Mutex::new(0),
    });
    let mut tree = Tree::with_store(repairing.clone());
    let mut read = 0u64;
    let scanned = reader.for_each_record(1, &mut |index, raw| {
        if index <= expected.size {
            tree.push(leaf_hash(raw));
            read = index;
        }
        Ok(())
    });
    if let Err(e) = scanned {
        return LogCheck::Failed(format!("the log could not be read: {e}"));
    }
    if read < expected.size {
        return LogCheck::Failed(
            CheckpointError::Removed {
                held: read,
                signed: expected.size,
            }
            .to_string(),
        );
    }
    let changed = |size| LogCheck::Failed(CheckpointError::Changed { size }.to_string());
    if tree.root(expected.signed_size) != Some(expected.signed_root) {
        return changed(expected.signed_size);
    }
    if tree.root(expected.size) != Some(expected.root) {
        return changed(expected.size);
    }
    LogCheck::Passed {
        records: expected.size,
        tiles_repaired: *repairing.repaired.lock().unwrap_or_else(|e| e.into_inner()),
    }
}
