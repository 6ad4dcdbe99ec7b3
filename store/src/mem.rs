//! The in-memory engine: the log, bodies and views in process memory, for fast tests of
//! everything above the seam. It keeps the [`Backend`] contract except durability — nothing
//! survives the process — and is never what a broker serves from.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::backend::{Backend, Batch, Reader, StorageError, VisitEntry};
use crate::bodies::BodyEntry;
use crate::domain::MessageKind;
use crate::records::RequestId;
use crate::views::{KvRead, ViewError};

#[derive(Default)]
struct State {
    records: Vec<Vec<u8>>,
    /// `None`: stored once, now erased.
    bodies: HashMap<(MessageKind, RequestId), Option<BodyEntry>>,
    views: BTreeMap<Vec<u8>, Vec<u8>>,
    checkpoint: Option<String>,
}

/// A log kept in memory.
#[derive(Default)]
pub struct MemEngine {
    state: Arc<RwLock<State>>,
}

impl MemEngine {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }
}

fn read(state: &RwLock<State>) -> std::sync::RwLockReadGuard<'_, State> {
    state.read().unwrap_or_else(|e| e.into_inner())
}

impl Backend for MemEngine {
    fn commit(&mut self, batch: Batch<'_>) -> Result<(), StorageError> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        let next = state.records.len() as u64 + 1;
        if batch.first_index != next {
            return Err(StorageError(format!(
                "batch starts at {} but the log's next index is {next}",
                batch.first_index
            )));
        }
        // The contract of `create`, held to here so that every test on this engine checks it.
        if let Some(key) = batch.created.iter().find(|k| state.views.contains_key(*k)) {
            return Err(StorageError(format!(
                "view key {key:?} created, but it exists: the views and the log disagree"
            )));
        }
        // One lock: readers see the batch whole or not at all.
        for b in batch.bodies {
            state.bodies.insert((b.kind, b.request_id), Some(b.clone()));
        }
        state.records.extend(batch.records.iter().cloned());
        for (key, value) in batch
            .views
            .into_iter()
            .chain(crate::postings::keys(batch.postings))
        {
            match value {
                Some(v) => state.views.insert(key, v),
                None => state.views.remove(&key),
            };
        }
        state.checkpoint = Some(batch.checkpoint.to_string());
        Ok(())
    }

    fn erase_bodies(&mut self, bodies: &[(MessageKind, RequestId)]) -> Result<(), StorageError> {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        for key in bodies {
            if let Some(stored) = state.bodies.get_mut(key) {
                *stored = None;
            }
        }
        Ok(())
    }

    fn wants_created(&self) -> bool {
        true
    }

    fn store_checkpoint(&mut self, note: &str) -> Result<(), StorageError> {
        self.state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .checkpoint = Some(note.to_string());
        Ok(())
    }

    fn reader(&self) -> Arc<dyn Reader> {
        Arc::new(MemReader {
            state: self.state.clone(),
        })
    }
}

struct MemReader {
    state: Arc<RwLock<State>>,
}

impl KvRead for MemReader {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        Ok(read(&self.state).views.get(key).cloned())
    }
}

impl Reader for MemReader {
    fn scan(&self, from: &[u8], to: &[u8], visit: &mut VisitEntry<'_>) -> Result<(), ViewError> {
        if from >= to {
            return Ok(());
        }
        let state = read(&self.state);
        for (k, v) in state.views.range(from.to_vec()..to.to_vec()) {
            if !visit(k, v)? {
                break;
            }
        }
        Ok(())
    }

    fn records(&self) -> u64 {
        read(&self.state).records.len() as u64
    }

    fn record(&self, index: u64) -> Result<Vec<u8>, StorageError> {
        let state = read(&self.state);
        index
            .checked_sub(1)
            .and_then(|i| state.records.get(i as usize))
            .cloned()
            .ok_or_else(|| StorageError(format!("record {index} is not in the log")))
    }

    fn body(&self, kind: MessageKind, id: &RequestId) -> Result<Option<BodyEntry>, StorageError> {
        Ok(read(&self.state)
            .bodies
            .get(&(kind, *id))
            .cloned()
            .flatten())
    }

    fn body_stored(&self, kind: MessageKind, id: &RequestId) -> Result<bool, StorageError> {
        Ok(read(&self.state).bodies.contains_key(&(kind, *id)))
    }

    fn checkpoint(&self) -> Option<String> {
        read(&self.state).checkpoint.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Created, ViewWrites};

    fn batch<'a>(first_index: u64, records: &'a [Vec<u8>], key: &[u8]) -> Batch<'a> {
        Batch {
            first_index,
            records,
            bodies: &[],
            views: ViewWrites::from([(key.to_vec(), Some(b"v".to_vec()))]),
            postings: Vec::new(),
            created: Created::from([key.to_vec()]),
            checkpoint: "note",
        }
    }

    /// A batch that creates a key an earlier one wrote is refused whole: the views and the log
    /// disagree, and every test on this engine would show it.
    #[test]
    fn a_key_created_twice_is_refused() {
        let mut engine = MemEngine::new();
        let records = [b"r".to_vec()];
        engine.commit(batch(1, &records, b"k")).unwrap();
        engine.commit(batch(2, &records, b"j")).unwrap();
        let err = engine.commit(batch(3, &records, b"k")).unwrap_err();
        assert!(err.0.contains("created, but it exists"), "{err}");
        assert_eq!(engine.reader().records(), 2, "nothing of the refused batch");
    }
}
