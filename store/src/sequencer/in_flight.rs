//! Batches the writer has handed to the engine that readers cannot see yet. The writer decides
//! the next batch while the last one is being made durable, so it must see that batch's view
//! writes and bodies, which no reader may see before the engine has them durably: they are kept
//! here, over the engine's reader, until the engine's reader shows them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::backend::{Reader, ViewWrites};
use crate::bodies::BodyEntry;
use crate::domain::MessageKind;
use crate::records::RequestId;
use crate::views::{KvRead, ViewError};

struct Entry {
    first_index: u64,
    views: Arc<ViewWrites>,
    bodies: Arc<Vec<BodyEntry>>,
}

/// The batches on their way to the engine, oldest first.
#[derive(Default)]
pub(super) struct InFlight {
    batches: Mutex<VecDeque<Entry>>,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.batches.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A batch handed to the engine.
    pub(super) fn push(
        &self,
        first_index: u64,
        views: Arc<ViewWrites>,
        bodies: Arc<Vec<BodyEntry>>,
    ) {
        self.lock().push_back(Entry {
            first_index,
            views,
            bodies,
        });
    }

    /// The batch at `first_index` is what the engine's reader shows now (or never will: it
    /// failed, and nothing is written after it). Called only once the reader shows it, so a
    /// read finds it in one place or the other.
    pub(super) fn landed(&self, first_index: u64) {
        self.lock().retain(|e| e.first_index != first_index);
    }

    /// Whether no batch is on its way.
    pub(super) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The newest write of `key` in flight (`Some(None)`: a deletion).
    fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.lock()
            .iter()
            .rev()
            .find_map(|e| e.views.get(key))
            .cloned()
    }

    /// A body in flight.
    pub(super) fn body(&self, kind: MessageKind, id: &RequestId) -> Option<BodyEntry> {
        self.lock()
            .iter()
            .rev()
            .find_map(|e| {
                e.bodies
                    .iter()
                    .rev()
                    .find(|b| b.kind == kind && b.request_id == *id)
            })
            .cloned()
    }
}

/// What the writer decides against: the batches in flight over the engine's reader.
pub(super) struct Ahead<'a> {
    pub(super) in_flight: &'a InFlight,
    pub(super) reader: &'a dyn Reader,
}

impl KvRead for Ahead<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        // In flight first, the reader after: a batch leaves the flight only once the reader
        // shows it.
        match self.in_flight.get(key) {
            Some(v) => Ok(v),
            None => self.reader.get(key),
        }
    }

    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, ViewError> {
        let mut found: Vec<Option<Option<Vec<u8>>>> =
            keys.iter().map(|k| self.in_flight.get(k)).collect();
        let rest: Vec<Vec<u8>> = keys
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(k, _)| k.clone())
            .collect();
        if !rest.is_empty() {
            let mut read = self.reader.get_many(&rest)?.into_iter();
            for slot in found.iter_mut().filter(|f| f.is_none()) {
                *slot = Some(read.next().flatten());
            }
        }
        Ok(found.into_iter().map(Option::flatten).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(pairs: &[(&str, Option<&str>)]) -> Arc<ViewWrites> {
        Arc::new(
            pairs
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
                .collect(),
        )
    }

    /// The newest batch in flight wins over an older one and over the reader; a deletion in
    /// flight hides what the reader holds; a landed batch is read from the reader again.
    #[test]
    fn the_newest_batch_in_flight_is_read_first() {
        use crate::backend::{Backend, Batch};
        let mut engine = crate::mem::MemEngine::new();
        engine
            .commit(Batch {
                first_index: 1,
                records: &[],
                bodies: &[],
                views: writes(&[("a", Some("0")), ("c", Some("0"))]),
                checkpoint: "",
            })
            .unwrap();
        let reader = engine.reader();
        let in_flight = InFlight::default();
        let ahead = Ahead {
            in_flight: &in_flight,
            reader: &*reader,
        };
        assert_eq!(ahead.get(b"a").unwrap(), Some(b"0".to_vec()));
        in_flight.push(
            1,
            writes(&[("a", Some("1")), ("b", Some("1"))]),
            Arc::default(),
        );
        in_flight.push(3, writes(&[("a", Some("3")), ("b", None)]), Arc::default());
        assert_eq!(ahead.get(b"a").unwrap(), Some(b"3".to_vec()));
        assert_eq!(ahead.get(b"b").unwrap(), None);
        let keys = [b"b".to_vec(), b"a".to_vec(), b"c".to_vec()];
        assert_eq!(
            ahead.get_many(&keys).unwrap(),
            vec![None, Some(b"3".to_vec()), Some(b"0".to_vec())]
        );
        in_flight.landed(3);
        assert_eq!(ahead.get(b"a").unwrap(), Some(b"1".to_vec()));
        assert_eq!(ahead.get(b"b").unwrap(), Some(b"1".to_vec()));
        in_flight.landed(1);
        assert!(in_flight.is_empty());
        assert_eq!(ahead.get(b"a").unwrap(), Some(b"0".to_vec()));
    }
}
