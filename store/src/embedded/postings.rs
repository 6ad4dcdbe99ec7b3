//! The audit indexes as posting lists. The views fold writes one empty-valued key per entry
//! (`x… ‖ index:u64be`, see `views`); a record adds five to seven of them, each one more B-tree
//! insert for the view store. Here the entries one transaction adds under one prefix become one
//! value: key `prefix ‖ last index:u64be`, value the indexes ascending, delta-encoded (LEB128).
//! A chunk's key sorts by its last index, so a range scan from `prefix ‖ n` starts at the first
//! chunk that can hold an index ≥ n.
//!
//! Chunks of one prefix are disjoint and ascending: the log is folded in order, once, so a
//! transaction only adds indexes above the last record already folded in; [`add`] refuses
//! anything else rather than leave a chunk that readers would misplace.
//!
//! Measured (benchmark, same session, 2 cores): dropping the audit-index keys from the view
//! store altogether raised the ledger alone from 23,484 to 31,105 records/s; the README gives
//! what the posting lists, with the rest of the follower's rework, measured.

use std::collections::BTreeMap;

use redb::ReadableTable;

use crate::views::ViewError;

/// Indexes per chunk, at most: a reader decodes one chunk to find its place.
const CHUNK: usize = 2048;

/// Whether `key` belongs to the audit indexes (stored here as postings).
pub(super) fn is_index_key(key: &[u8]) -> bool {
    key.first() == Some(&b'x')
}

fn bad(what: &str) -> ViewError {
    ViewError::Store(format!("audit index: {what}"))
}

/// `(prefix, index)` of an audit index entry's key.
fn split(key: &[u8]) -> Result<(&[u8], u64), ViewError> {
    let at = key
        .len()
        .checked_sub(8)
        .filter(|at| *at > 0)
        .ok_or_else(|| bad("key too short"))?;
    let index = u64::from_be_bytes(key[at..].try_into().expect("8 bytes"));
    Ok((&key[..at], index))
}

fn chunk_key(prefix: &[u8], last: u64) -> Vec<u8> {
    [prefix, &last.to_be_bytes()].concat()
}

fn encode(indexes: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(indexes.len() * 2);
    let mut previous = 0;
    for &i in indexes {
        let mut delta = i - previous;
        previous = i;
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// The indexes of a chunk stored under `key`, checked: ascending, the last one the key's.
pub(super) fn decode(key: &[u8], value: &[u8]) -> Result<Vec<u64>, ViewError> {
    let (_, last) = split(key)?;
    let mut out = Vec::new();
    let (mut previous, mut delta, mut shift) = (0u64, 0u64, 0u32);
    for &byte in value {
        if shift > 63 {
            return Err(bad("overlong delta"));
        }
        delta |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            if delta == 0 && !out.is_empty() {
                return Err(bad("repeated index"));
            }
            previous = previous.checked_add(delta).ok_or_else(|| bad("overflow"))?;
            out.push(previous);
            (delta, shift) = (0, 0);
        }
    }
    if shift != 0 || out.last() != Some(&last) {
        return Err(bad("chunk does not end at its key"));
    }
    Ok(out)
}

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
    let mut by_prefix: BTreeMap<Vec<u8>, Vec<u64>> = BTreeMap::new();
    for key in keys {
        let (prefix, index) = split(&key)?;
        by_prefix.entry(prefix.to_vec()).or_default().push(index);
    }
    for (prefix, mut indexes) in by_prefix {
        indexes.sort_unstable();
        indexes.dedup();
        if indexes[0] <= applied {
            return Err(bad(
                "an entry for a record already folded in (the log folded twice?)",
            ));
        }
        for chunk in indexes.chunks(CHUNK) {
            let last = *chunk.last().expect("chunks are not empty");
            table
                .insert(
                    chunk_key(&prefix, last).as_slice(),
                    encode(chunk).as_slice(),
                )
                .map_err(store_err)?;
        }
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
    let mut out = Vec::new();
    let (start, end) = (chunk_key(prefix, from), chunk_key(prefix, u64::MAX));
    for item in table
        .range(start.as_slice()..=end.as_slice())
        .map_err(store_err)?
    {
        if out.len() >= limit {
            break;
        }
        let (k, v) = item.map_err(store_err)?;
        out.extend(
            decode(k.value(), v.value())?
                .into_iter()
                .filter(|i| *i >= from),
        );
    }
    out.truncate(limit);
    Ok(out)
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
    use super::*;

    #[test]
    fn chunks_decode_to_what_was_encoded_and_refuse_damage() {
        let key = chunk_key(b"xe\x01", 1 << 40);
        let indexes = [1, 2, 300, 70_000, 1 << 40];
        let value = encode(&indexes);
        assert_eq!(decode(&key, &value).unwrap(), indexes);
        // Cut, repeated, or not ending at the key's index.
        assert!(decode(&key, &value[..value.len() - 1]).is_err());
        assert!(decode(&chunk_key(b"xe\x01", 5), &encode(&[1, 2])).is_err());
        assert!(decode(&chunk_key(b"xe\x01", 2), &[1, 0, 1]).is_err());
        assert!(decode(&key, &[0xff; 11]).is_err());
        assert!(decode(b"short", &[]).is_err());
    }

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
