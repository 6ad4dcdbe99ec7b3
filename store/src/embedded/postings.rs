//! The audit indexes as posting lists in redb (see [`crate::postings`] for the layout): what
//! one transaction adds under one prefix is one value.

use redb::ReadableTable;

pub(super) use crate::postings::is_index_key;
use crate::postings::{chunk_key, chunks, read_chunks, split};
use crate::views::ViewError;

/// Adds audit index entries (keys for which [`is_index_key`] holds; their values are empty) to
/// `table`, one chunk per prefix and [`CHUNK`] indexes. `applied` is the last record the table
/// holds the views of: every stored chunk ends at or below it, so entries above it keep chunks
/// disjoint and ascending (checked against the mark, not per prefix: a lookup per prefix per
/// transaction is what the chunks save).
pub(super) fn add(
    table: &mut redb::Table<'_, &[u8], &[u8]>,
    applied: u64,
    keys: impl IntoIterator<Item = Vec<u8>>,
) -> Result<(), ViewError> {
    for (key, value) in chunks(applied, keys)? {
        table
            .insert(key.as_slice(), value.as_slice())
            .map_err(store_err)?;
    }
    Ok(())
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
