//! The idempotency entries (view keys under `k`), in an LSM of their own (`fjall`) beside the
//! view store. Their keys are hashes: in a B-tree each new one dirties a random page, which the
//! view store's durable commit then writes whole (about 3 KiB a request, 4.5–9.8 MiB a second at
//! 1,000 round trips/s, and the log's next `fdatasync` waits behind it on a disk without FUA).
//! An LSM appends them to its journal and sorts them in the background.
//!
//! Like the views, everything here is derived from the log. The entries are written with the
//! view store's rounds and carry its log mark; the journal is synced before each durable
//! commit of the view store, so a durable mark of the view store never covers entries this
//! store lost. Opening checks that (this store's mark is at or past the view store's) and the
//! caller rebuilds both otherwise.

use std::path::Path;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};

use crate::views::ViewError;

/// The key under which this store keeps the log mark of its last round (not a `k` key).
const MARK_LOG: &[u8] = b"m:log";
const DIR: &str = "idempotency";
/// Memtable size: the entries are 60–80 bytes; a flush every ~100,000 of them.
const MEMTABLE_BYTES: u64 = 8 << 20;
const WORKERS: usize = 1;

fn store_err(e: impl std::fmt::Display) -> ViewError {
    ViewError::Store(format!("idempotency entries: {e}"))
}

/// Whether `key` is an idempotency entry's (see `views::idempotency_key`).
pub(super) fn is_key(key: &[u8]) -> bool {
    key.first() == Some(&b'k')
}

/// The idempotency entries.
pub(super) struct Entries {
    db: Database,
    keys: Keyspace,
}

impl Entries {
    /// Opens (or creates) the entries in `views_dir`.
    pub(super) fn open(views_dir: &Path, cache_bytes: usize) -> Result<Self, ViewError> {
        let db = Database::builder(views_dir.join(DIR))
            .manual_journal_persist(true)
            .cache_size(cache_bytes as u64)
            .worker_threads(WORKERS)
            .open()
            .map_err(store_err)?;
        let keys = db
            .keyspace("k", || {
                KeyspaceCreateOptions::default()
                    .manual_journal_persist(true)
                    .max_memtable_size(MEMTABLE_BYTES)
            })
            .map_err(store_err)?;
        Ok(Self { db, keys })
    }

    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        Ok(self.keys.get(key).map_err(store_err)?.map(|v| v.to_vec()))
    }

    /// The log mark of the last round written.
    pub(super) fn mark(&self) -> Result<u64, ViewError> {
        match self.keys.get(MARK_LOG).map_err(store_err)? {
            None => Ok(0),
            Some(v) => Ok(u64::from_be_bytes(
                v.as_ref().try_into().map_err(|_| store_err("bad mark"))?,
            )),
        }
    }

    /// Writes a round's entries with its log mark, in one batch (not yet durable).
    pub(super) fn write<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        mark: u64,
    ) -> Result<(), ViewError> {
        let mut batch = self.db.batch();
        for (k, v) in entries {
            batch.insert(&self.keys, k, v);
        }
        batch.insert(&self.keys, MARK_LOG, mark.to_be_bytes());
        batch.commit().map_err(store_err)
    }

    /// Makes every round written so far durable.
    pub(super) fn sync(&self) -> Result<(), ViewError> {
        self.db.persist(PersistMode::SyncData).map_err(store_err)
    }
}

#[cfg(test)]
mod tests {
    use super::super::view_store::{ViewStore, copy_files};
    use crate::views::{KvRead, idempotency_key};

    const CACHE: usize = 8 << 20;

    fn entry(i: u8) -> (Vec<u8>, Option<Vec<u8>>) {
        (idempotency_key("police", &[i; 32]), Some(vec![i; 24]))
    }

    /// Entries are written beside the table, not in it, read back with `get`, kept across a
    /// close, and never deleted.
    #[test]
    fn entries_are_kept_apart_read_back_and_outlive_a_close() {
        let dir = tempfile::tempdir().unwrap();
        let store = ViewStore::recreate(dir.path(), CACHE).unwrap();
        let (k, v) = entry(1);
        let meta = (b"r-meta".to_vec(), Some(b"m".to_vec()));
        store.apply([(k.clone(), v.clone()), meta], (1, 0)).unwrap();
        assert_eq!(store.get(&k).unwrap(), v);
        assert!(!store.in_table(&k) && store.in_table(b"r-meta"));
        assert_eq!(store.get(&entry(2).0).unwrap(), None);
        let deleted = store.apply([(k.clone(), None::<Vec<u8>>)], (2, 0));
        assert!(deleted.is_err(), "an idempotency entry deleted");
        assert_eq!(store.get(&k).unwrap(), v);
        drop(store);
        let (store, rebuilt) = ViewStore::open(dir.path(), CACHE).unwrap();
        assert!(!rebuilt);
        assert_eq!(store.marks().unwrap(), (1, 0));
        assert_eq!(store.get(&k).unwrap(), v);
    }

    /// The files as a crash leaves them hold every entry the view store's durable mark covers:
    /// the entries are synced before that commit.
    #[test]
    fn a_crash_keeps_the_entries_the_durable_mark_covers() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = ViewStore::recreate(dir.path(), CACHE).unwrap();
        // Durable only every DURABLE_EVERY (100,000) records from here, and on close.
        store.durable_by_count_only();
        store.apply([entry(1)], (1, 0)).unwrap();
        store.apply([entry(2)], (100_000, 0)).unwrap();
        store.apply([entry(3)], (100_001, 0)).unwrap();
        let crashed = tempfile::tempdir().unwrap();
        copy_files(dir.path(), crashed.path());
        let (copy, rebuilt) = ViewStore::open(crashed.path(), CACHE).unwrap();
        assert!(!rebuilt);
        assert_eq!(copy.marks().unwrap().0, 100_000);
        for i in [1, 2] {
            let (k, v) = entry(i);
            assert_eq!(copy.get(&k).unwrap(), v, "entry {i}");
        }
    }

    /// Views whose idempotency entries fall behind their marks (the entries' files older than
    /// the table's, or gone) are rebuilt, not trusted: a replay of a submission must not be
    /// taken for a new one.
    #[test]
    fn views_whose_entries_fall_behind_are_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let older = tempfile::tempdir().unwrap();
        let entries_dir = dir.path().join(super::DIR);
        let store = ViewStore::recreate(dir.path(), CACHE).unwrap();
        store.apply([entry(1)], (1, 0)).unwrap();
        drop(store);
        copy_files(&entries_dir, older.path());
        let (store, _) = ViewStore::open(dir.path(), CACHE).unwrap();
        store.apply([entry(2)], (2, 0)).unwrap();
        drop(store);
        for (what, restore) in [("older", Some(older.path())), ("gone", None)] {
            let views = tempfile::tempdir().unwrap();
            copy_files(dir.path(), views.path());
            let entries = views.path().join(super::DIR);
            std::fs::remove_dir_all(&entries).unwrap();
            if let Some(from) = restore {
                std::fs::create_dir_all(&entries).unwrap();
                copy_files(from, &entries);
            }
            let (store, rebuilt) = ViewStore::open(views.path(), CACHE).unwrap();
            assert!(rebuilt, "{what}");
            assert_eq!(store.marks().unwrap(), (0, 0), "{what}");
            assert_eq!(store.get(&entry(1).0).unwrap(), None, "{what}");
        }
    }
}
