//! The audit indexes as posting lists in redb (see [`crate::postings`] for the layout). What
//! the follower folds is held here until the store's next durable commit, and written then:
//! each prefix's entries of all the rounds in between become one chunk, so a prefix that is
//! written to rarely (a subject, a staff member) costs one B-tree leaf per durable commit
//! rather than one per round. A crash loses nothing: it takes the store back to its last
//! durable commit, whose entries are all in it, and opening replays the log from there.
//!
//! Measured (10 M records, the benchmark's scale run): written each round, the postings put the
//! append rate at 0.68–0.84 of an empty log's (every subject's new chunk another leaf of a
//! 10 GB tree copied and written); with the subject postings left out altogether, 0.91; held
//! to the durable commit, 0.85–0.99 (three runs).

use std::sync::RwLock;

use redb::ReadableTable;

pub(super) use crate::postings::is_index_key;
use crate::postings::{Groups, chunk_key, chunks_of, read_chunks, split};
use crate::views::ViewError;

/// Entries folded into the views but not yet written into the table. Readers MUST look here
/// before they take the store's snapshot: entries leave this set only after the snapshot that
/// holds them is published.
#[derive(Default)]
pub(super) struct Held(RwLock<Groups>);

impl Held {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Groups> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Groups> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a round's entries (each above everything held: the log is folded in order).
    pub(super) fn extend(&self, round: Groups) {
        let mut held = self.write();
        for (prefix, indexes) in round {
            held.entry(prefix).or_default().extend(indexes);
        }
    }

    /// Up to `limit` held indexes from `from` on under `prefix`, ascending.
    pub(super) fn indexed(&self, prefix: &[u8], from: u64, limit: usize) -> Vec<u64> {
        let held = self.read();
        let Some(indexes) = held.get(prefix) else {
            return Vec::new();
        };
        let at = indexes.partition_point(|i| *i < from);
        indexes[at..].iter().take(limit).copied().collect()
    }

    /// Whether the audit index entry `key` is held.
    pub(super) fn contains(&self, key: &[u8]) -> Result<bool, ViewError> {
        let (prefix, index) = split(key)?;
        Ok(self
            .read()
            .get(prefix)
            .is_some_and(|indexes| indexes.binary_search(&index).is_ok()))
    }

    /// Writes every held entry and `round`'s (above them) into `table`, one chunk per prefix
    /// and [`crate::postings::CHUNK`] indexes; they stay held until [`Self::clear`].
    pub(super) fn write_into(
        &self,
        table: &mut redb::Table<'_, &[u8], &[u8]>,
        round: &Groups,
    ) -> Result<(), ViewError> {
        let held = self.read();
        let mut merged = Vec::new();
        let mut insert = |prefix: &[u8], indexes: &[u64]| {
            for (key, value) in chunks_of(prefix, indexes) {
                table
                    .insert(key.as_slice(), value.as_slice())
                    .map_err(store_err)?;
            }
            Ok::<_, ViewError>(())
        };
        for (prefix, indexes) in held.iter() {
            match round.get(prefix) {
                Some(more) => {
                    merged.clear();
                    merged.extend_from_slice(indexes);
                    merged.extend_from_slice(more);
                    insert(prefix, &merged)?;
                }
                None => insert(prefix, indexes)?,
            }
        }
        for (prefix, indexes) in round {
            if !held.contains_key(prefix) {
                insert(prefix, indexes)?;
            }
        }
        Ok(())
    }

    /// The held entries are in the published snapshot: readers find them there now.
    pub(super) fn clear(&self) {
        self.write().clear();
    }
}

fn store_err(e: impl std::fmt::Display) -> ViewError {
    ViewError::Store(e.to_string())
}

/// Up to `limit` indexes from `from` on stored under `prefix`, ascending.
pub(super) fn read(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    prefix: &[u8],
    from: u64,
    limit: usize,
) -> Result<Vec<u64>, ViewError> {
    let (start, end) = (chunk_key(prefix, from), chunk_key(prefix, u64::MAX));
    let range = table
        .range(start.as_slice()..=end.as_slice())
        .map_err(store_err)?;
    read_chunks(
        range.map(|item| {
            item.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                .map_err(store_err)
        }),
        from,
        limit,
    )
}

/// Whether `key` (an audit index entry) is stored.
pub(super) fn contains(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    key: &[u8],
) -> Result<bool, ViewError> {
    let (prefix, index) = split(key)?;
    Ok(read(table, prefix, index, 1)?.first() == Some(&index))
}

#[cfg(test)]
mod tests {
    use crate::postings::{CHUNK, is_index_key};

    fn store() -> (tempfile::TempDir, super::super::view_store::ViewStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = super::super::view_store::ViewStore::recreate(dir.path(), 8 << 20).unwrap();
        (dir, store)
    }

    fn entry(prefix: &[u8], index: u64) -> (Vec<u8>, Option<Vec<u8>>) {
        ([prefix, &index.to_be_bytes()].concat(), Some(Vec::new()))
    }

    /// Entries added over several transactions, in chunks of at most CHUNK, read back from any
    /// point with any limit exactly as a plain sorted set would give them; other prefixes and
    /// ordinary keys stay apart.
    #[test]
    fn indexes_read_back_from_any_point_as_a_sorted_set_would() {
        let (_dir, store) = store();
        let (a, b): (&[u8], &[u8]) = (b"xa police\0", b"xa policf\0");
        let mut expected = Vec::new();
        let mut next = 1u64;
        for round in 0..4u64 {
            let mut writes = vec![(b"r-meta".to_vec(), Some(b"v".to_vec()))];
            for _ in 0..(CHUNK as u64 + 300 * round) {
                if !next.is_multiple_of(3) {
                    writes.push(entry(a, next));
                    expected.push(next);
                } else {
                    writes.push(entry(b, next));
                }
                next += 1;
            }
            store.apply(writes, (next - 1, 0)).unwrap();
        }
        for from in [
            0,
            1,
            2,
            7,
            CHUNK as u64,
            CHUNK as u64 + 1,
            next / 2,
            next - 2,
            next,
            next + 5,
        ] {
            for limit in [1, 3, 50, CHUNK, 10 * CHUNK] {
                let want: Vec<u64> = expected
                    .iter()
                    .copied()
                    .filter(|i| *i >= from)
                    .take(limit)
                    .collect();
                assert_eq!(
                    store.indexed(a, from, limit).unwrap(),
                    want,
                    "from {from} limit {limit}"
                );
            }
        }
        assert_eq!(store.indexed(b, 0, 2).unwrap(), vec![3, 6]);
        assert_eq!(
            store.indexed(b"xa polic\0", 0, 10).unwrap(),
            Vec::<u64>::new()
        );
        use crate::views::KvRead;
        assert_eq!(store.get(&entry(a, 4).0).unwrap(), Some(Vec::new()));
        assert_eq!(store.get(&entry(a, 3).0).unwrap(), None);
        assert_eq!(store.get(b"r-meta").unwrap(), Some(b"v".to_vec()));
        // Ordinary scans do not see the chunks.
        let mut seen = Vec::new();
        store
            .scan(b"", &[0xff], &mut |k, _| {
                seen.push(k.to_vec());
                Ok(true)
            })
            .unwrap();
        assert!(seen.iter().all(|k| !is_index_key(k)), "{seen:?}");
    }

    /// Entries are held between durable commits, read as if stored (by `indexed` and `get`),
    /// and written with the next one merged with its round's; the file as a crash would leave
    /// it holds exactly the entries through its own mark; a close writes what is held.
    #[test]
    fn held_entries_read_as_stored_and_a_crash_keeps_the_marks_exact() {
        use crate::views::KvRead;
        let dir = tempfile::tempdir().unwrap();
        let mut store = super::super::view_store::ViewStore::recreate(dir.path(), 8 << 20).unwrap();
        // Durable only every DURABLE_EVERY (100,000) records from here, and on close.
        store.durable_by_count_only();
        let (p, q): (&[u8], &[u8]) = (b"xs\x07", b"xa a\0");
        let meta = |i: u64| (b"r-meta".to_vec(), Some(i.to_be_bytes().to_vec()));
        for i in 1..=3u64 {
            store.apply([entry(p, i), meta(i)], (i, 0)).unwrap();
        }
        store.apply([entry(q, 4)], (4, 0)).unwrap();
        assert!(
            !store.stored(&entry(p, 2).0),
            "written before a durable commit"
        );
        assert_eq!(store.indexed(p, 0, 10).unwrap(), vec![1, 2, 3]);
        assert_eq!(store.indexed(p, 2, 1).unwrap(), vec![2]);
        assert_eq!(store.get(&entry(p, 3).0).unwrap(), Some(Vec::new()));
        assert_eq!(store.get(&entry(p, 4).0).unwrap(), None);
        // The round that makes the durable commit: held and new entries of a prefix together.
        let at = 100_000u64;
        store.apply([entry(p, at)], (at, 0)).unwrap();
        assert!(store.stored(&entry(p, 2).0) && store.stored(&entry(p, at).0));
        assert!(store.stored(&entry(q, 4).0));
        for i in at + 1..=at + 2 {
            store.apply([entry(p, i)], (i, 0)).unwrap();
        }
        let all = vec![1, 2, 3, at, at + 1, at + 2];
        assert_eq!(store.indexed(p, 0, 10).unwrap(), all);
        assert_eq!(store.indexed(p, 3, 2).unwrap(), vec![3, at]);
        // The files now, as a crash would leave them: the durable commit, exactly.
        let crashed = tempfile::tempdir().unwrap();
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            std::fs::copy(f.path(), crashed.path().join(f.file_name())).unwrap();
        }
        let (copy, rebuilt) =
            super::super::view_store::ViewStore::open(crashed.path(), 8 << 20).unwrap();
        assert!(!rebuilt);
        assert_eq!(copy.marks().unwrap().0, at);
        assert_eq!(copy.indexed(p, 0, 10).unwrap(), vec![1, 2, 3, at]);
        // What the log replays from there is taken; an entry replayed twice is refused.
        copy.apply([entry(p, at + 1), entry(p, at + 2)], (at + 2, 0))
            .unwrap();
        assert_eq!(copy.indexed(p, 0, 10).unwrap(), all);
        assert!(copy.apply([entry(p, at + 2)], (at + 3, 0)).is_err());
        drop(copy);
        // A clean close writes what is held.
        drop(store);
        let (store, _) = super::super::view_store::ViewStore::open(dir.path(), 8 << 20).unwrap();
        assert_eq!(store.marks().unwrap().0, at + 2);
        assert!(store.stored(&entry(p, at + 1).0));
        assert_eq!(store.indexed(p, 0, 10).unwrap(), all);
    }

    /// Folding entries at or below one already stored (the log folded twice) is refused, and
    /// changes nothing.
    #[test]
    fn entries_below_a_stored_one_are_refused() {
        let (_dir, store) = store();
        let p: &[u8] = b"xe\x01";
        store.apply([entry(p, 5), entry(p, 9)], (9, 0)).unwrap();
        assert!(store.apply([entry(p, 9)], (10, 0)).is_err());
        assert!(store.apply([entry(p, 7), entry(p, 12)], (12, 0)).is_err());
        assert_eq!(store.indexed(p, 0, 10).unwrap(), vec![5, 9]);
        assert_eq!(store.marks().unwrap(), (9, 0));
        store.apply([entry(p, 10)], (10, 0)).unwrap();
        assert_eq!(store.indexed(p, 6, 10).unwrap(), vec![9, 10]);
    }
}
