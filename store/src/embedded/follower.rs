//! The views written behind the log. A batch is acknowledged once its bodies, records and
//! checkpoint are synced; its view writes then wait here, visible to every reader at once (so
//! each caller reads its own writes, and the writer decides the next batch against everything
//! sequenced), while a follower thread folds them into the view store, many batches to a
//! transaction, off the writer's path. The view store's periodic durable commit stalls only the
//! follower.
//!
//! Each pending write carries the number of its batch; the follower, having committed batches
//! up to `n`, drops the writes of batches up to `n` (a key rewritten by a later batch stays
//! pending with the later value). Pending writes are bounded: the writer waits while more than
//! [`MAX_PENDING`] are queued.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, RwLock};

use super::view_store::ViewStore;
use crate::backend::VisitEntry;
use crate::views::ViewError;

/// View writes queued for the follower, at most (about 20 MiB of keys and values).
pub(super) const MAX_PENDING: usize = 200_000;

/// Key → (the number of the batch that wrote it, value).
type Writes = BTreeMap<Vec<u8>, (u64, Vec<u8>)>;

/// Writes acknowledged but not yet in the view store.
#[derive(Default)]
pub(super) struct Pending {
    writes: RwLock<Writes>,
    /// Signalled whenever the follower drains writes (or fails).
    drained: (Mutex<()>, Condvar),
    /// Why the follower stopped, if it did: every later batch is refused.
    failed: Mutex<Option<String>>,
}

/// One batch's writes for the follower, with the marks the store carries once they are in.
pub(super) struct Job {
    pub(super) batch: u64,
    pub(super) writes: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) marks: (u64, u64),
}

impl Pending {
    /// A pending value, if `key` has one.
    pub(super) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.read().get(key).map(|(_, v)| v.clone())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Writes> {
        self.writes.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a batch's writes visible, all at once.
    pub(super) fn insert(&self, batch: u64, writes: &[(Vec<u8>, Vec<u8>)]) {
        let mut map = self.writes.write().unwrap_or_else(|e| e.into_inner());
        for (k, v) in writes {
            map.insert(k.clone(), (batch, v.clone()));
        }
    }

    /// Waits while too many writes are pending; the follower's failure, if it failed.
    pub(super) fn wait_for_room(&self) -> Result<(), String> {
        let (lock, signal) = &self.drained;
        let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(why) = self.failure() {
                return Err(why);
            }
            if self.read().len() <= MAX_PENDING {
                return Ok(());
            }
            guard = signal
                .wait_timeout(guard, std::time::Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub(super) fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Visits the entries with `from <= key < to` of the pending writes over `store`, in key
    /// order, a pending write taking the place of the stored value of its key.
    pub(super) fn scan(
        &self,
        store: &ViewStore,
        from: &[u8],
        to: &[u8],
        visit: &mut VisitEntry<'_>,
    ) -> Result<(), ViewError> {
        if from >= to {
            return Ok(());
        }
        // Pending first, the store after: a write the follower moves in between is then found
        // in the store (it leaves the pending set only once committed there).
        let pending: Vec<(Vec<u8>, Vec<u8>)> = self
            .read()
            .range(from.to_vec()..to.to_vec())
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect();
        let mut next = pending.iter().peekable();
        let mut going = true;
        store.scan(from, to, &mut |k, v| {
            while let Some((pk, pv)) = next.next_if(|(pk, _)| pk.as_slice() < k) {
                if !visit(pk, pv)? {
                    going = false;
                    return Ok(false);
                }
            }
            if let Some((pk, pv)) = next.next_if(|(pk, _)| pk.as_slice() == k) {
                going = visit(pk, pv)?;
                return Ok(going);
            }
            going = visit(k, v)?;
            Ok(going)
        })?;
        if going {
            for (pk, pv) in next {
                if !visit(pk, pv)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// Runs the follower until `jobs` closes: each round takes every job queued, commits their
/// writes in one transaction with the last one's marks, then drops them from the pending set.
pub(super) fn run(
    store: Arc<super::EmbeddedReader>,
    pending: Arc<Pending>,
    jobs: mpsc::Receiver<Job>,
) {
    while let Ok(first) = jobs.recv() {
        let mut round = vec![first];
        while round.len() < 1024
            && let Ok(more) = jobs.try_recv()
        {
            round.push(more);
        }
        let last = round.last().expect("a job");
        let (batch, marks) = (last.batch, last.marks);
        let mut writes: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for job in round {
            writes.extend(job.writes);
        }
        if let Err(e) = store.views.apply(writes, marks) {
            tracing::error!(error = %e, "the view store failed; writes are refused until restart");
            *pending.failed.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(format!("view store: {e}"));
            pending.drained.1.notify_all();
            return;
        }
        pending
            .writes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, (b, _)| *b > batch);
        pending.drained.1.notify_all();
    }
}

/// The handle the engine keeps: where jobs go.
pub(super) struct Follower {
    pub(super) jobs: Option<mpsc::Sender<Job>>,
    pub(super) thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Follower {
    /// Lets the follower finish what is queued, so a clean stop leaves the views up to the log.
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> (Vec<u8>, Vec<u8>) {
        (k.as_bytes().to_vec(), v.as_bytes().to_vec())
    }

    fn scan(pending: &Pending, store: &ViewStore, from: &str, to: &str, most: usize) -> String {
        let mut out = Vec::new();
        pending
            .scan(store, from.as_bytes(), to.as_bytes(), &mut |k, v| {
                out.push(format!(
                    "{}{}",
                    String::from_utf8_lossy(k),
                    String::from_utf8_lossy(v)
                ));
                Ok(out.len() < most)
            })
            .unwrap();
        out.join(" ")
    }

    /// Readers see pending writes over the store, in key order, a pending write in place of the
    /// stored value; a scan stops where its visitor says.
    #[test]
    fn pending_writes_read_over_the_store_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = ViewStore::recreate(dir.path(), 8 << 20).unwrap();
        store
            .apply([kv("a", "1"), kv("c", "3"), kv("e", "5")], (3, 0))
            .unwrap();
        let pending = Pending::default();
        pending.insert(1, &[kv("b", "2"), kv("c", "33")]);
        pending.insert(2, &[kv("f", "6")]);
        assert_eq!(scan(&pending, &store, "a", "l", 100), "a1 b2 c33 e5 f6");
        assert_eq!(scan(&pending, &store, "a", "l", 3), "a1 b2 c33");
        assert_eq!(scan(&pending, &store, "b", "e", 100), "b2 c33");
        assert_eq!(scan(&pending, &store, "d", "l", 1), "e5");
        assert_eq!(pending.get(b"c"), Some(b"33".to_vec()));
        assert_eq!(pending.get(b"a"), None);
    }
}
