//! The audit indexes, inboxes and outboxes as posting lists. The views post each entry
//! (`views::KvWrite::post`: prefix and index; as a key of its own, `x… ‖ index:u64be` with an
//! empty value); a record adds five to nine of them, each one more B-tree insert for the view
//! store if stored so. Here the entries one transaction adds under one prefix become one
//! value: key `prefix ‖ last index:u64be`, value the indexes ascending, delta-encoded (LEB128).
//! A chunk's key sorts by its last index, so a range scan from `prefix ‖ n` starts at the first
//! chunk that can hold an index ≥ n.
//!
//! Chunks of one prefix are disjoint and ascending: the log is folded in order, once, so a
//! transaction only adds indexes above the last record already folded in; [`group`] refuses
//! anything else rather than leave a chunk that readers would misplace.
//!
//! Both durable engines keep them so: the embedded one in redb (`embedded::postings`), the
//! PostgreSQL one as rows of its views table, a batch's entries under one prefix one row.
//!
//! Measured (benchmark, same session, 2 cores): dropping the audit-index keys from the view
//! store altogether raised the ledger alone from 23,484 to 31,105 records/s; the README gives
//! what the posting lists, with the rest of the follower's rework, measured.

use std::collections::BTreeMap;

use crate::views::ViewError;

/// Indexes per chunk, at most: a reader decodes one chunk to find its place.
pub(crate) const CHUNK: usize = 2048;

/// Whether `key` belongs to a posting list: the audit indexes, the inboxes and the outboxes, all
/// under `x`.
pub fn is_index_key(key: &[u8]) -> bool {
    key.first() == Some(&b'x')
}

fn bad(what: &str) -> ViewError {
    ViewError::Store(format!("audit index: {what}"))
}

/// `(prefix, index)` of an audit index entry's key.
pub(crate) fn split(key: &[u8]) -> Result<(&[u8], u64), ViewError> {
    let at = key
        .len()
        .checked_sub(8)
        .filter(|at| *at > 0)
        .ok_or_else(|| bad("key too short"))?;
    let index = u64::from_be_bytes(key[at..].try_into().expect("8 bytes"));
    Ok((&key[..at], index))
}

pub(crate) fn chunk_key(prefix: &[u8], last: u64) -> Vec<u8> {
    [prefix, &last.to_be_bytes()].concat()
}

/// Posting list entries as the view writes of keys of their own (`prefix ‖ index`, empty).
pub fn keys(posted: crate::backend::Posted) -> impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)> {
    posted
        .into_iter()
        .map(|(prefix, index)| (chunk_key(&prefix, index), Some(Vec::new())))
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
pub(crate) fn decode(key: &[u8], value: &[u8]) -> Result<Vec<u64>, ViewError> {
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

/// A stored chunk: its key (`prefix ‖ last index`) and its value (the indexes).
pub(crate) type Chunk = (Vec<u8>, Vec<u8>);

/// Audit index entries by prefix, each prefix's indexes ascending and distinct.
pub(crate) type Groups = BTreeMap<Vec<u8>, Vec<u64>>;

/// Audit index entries `keys` (keys for which [`is_index_key`] holds) by prefix. `applied` is
/// the last record whose entries are already stored: every entry must be above it, so that
/// chunks stay disjoint and ascending (checked against the mark, not per prefix: a lookup per
/// prefix per transaction is what the chunks save).
pub(crate) fn group(
    applied: u64,
    keys: impl IntoIterator<Item = Vec<u8>>,
) -> Result<Groups, ViewError> {
    let mut by_prefix = Groups::new();
    for key in keys {
        let (prefix, index) = split(&key)?;
        by_prefix.entry(prefix.to_vec()).or_default().push(index);
    }
    for indexes in by_prefix.values_mut() {
        indexes.sort_unstable();
        indexes.dedup();
        if indexes[0] <= applied {
            return Err(bad(
                "an entry for a record already folded in (the log folded twice?)",
            ));
        }
    }
    Ok(by_prefix)
}

/// Adds `index` to `prefix`'s list (kept ascending and distinct); whether it was not there.
/// Entries come in log order, so it is almost always a push.
pub(crate) fn insert(groups: &mut Groups, prefix: Vec<u8>, index: u64) -> bool {
    let list = groups.entry(prefix).or_default();
    match list.last() {
        Some(&last) if last >= index => match list.binary_search(&index) {
            Ok(_) => false,
            Err(at) => {
                list.insert(at, index);
                true
            }
        },
        _ => {
            list.push(index);
            true
        }
    }
}

/// Adds the lists of `more` to `groups`, every entry above `applied` (see [`group`]).
pub(crate) fn merge(groups: &mut Groups, more: &Groups, applied: u64) -> Result<(), ViewError> {
    for (prefix, indexes) in more {
        if indexes.first().is_some_and(|first| *first <= applied) {
            return Err(bad(
                "an entry for a record already folded in (the log folded twice?)",
            ));
        }
        match groups.get_mut(prefix) {
            None => {
                groups.insert(prefix.clone(), indexes.clone());
            }
            Some(list) => {
                list.extend_from_slice(indexes);
                list.sort_unstable();
                list.dedup();
            }
        }
    }
    Ok(())
}

/// The chunks (key, value) that store one prefix's `indexes` (ascending): one per [`CHUNK`].
pub(crate) fn chunks_of<'a>(
    prefix: &'a [u8],
    indexes: &'a [u64],
) -> impl Iterator<Item = Chunk> + 'a {
    indexes.chunks(CHUNK).map(move |chunk| {
        let last = *chunk.last().expect("chunks are not empty");
        (chunk_key(prefix, last), encode(chunk))
    })
}

/// The chunks (key, value) that store audit index entries `keys`: one per prefix and [`CHUNK`]
/// indexes, every entry above `applied` (see [`group`]).
pub(crate) fn chunks(
    applied: u64,
    keys: impl IntoIterator<Item = Vec<u8>>,
) -> Result<Vec<Chunk>, ViewError> {
    Ok(group(applied, keys)?
        .iter()
        .flat_map(|(prefix, indexes)| chunks_of(prefix, indexes))
        .collect())
}

/// The first `limit` of the indexes several sources found (each its own first `limit`, so the
/// first `limit` of all of them are among these), ascending and distinct.
pub(crate) fn first(mut found: Vec<u64>, limit: usize) -> Vec<u64> {
    found.sort_unstable();
    found.dedup();
    found.truncate(limit);
    found
}

/// Up to `limit` indexes from `from` on, from the chunks of one prefix in key order starting
/// at the first whose key is at or above `prefix ‖ from`.
pub(crate) fn read_chunks(
    chunks: impl IntoIterator<Item = Result<Chunk, ViewError>>,
    from: u64,
    limit: usize,
) -> Result<Vec<u64>, ViewError> {
    let mut out = Vec::new();
    for chunk in chunks {
        if out.len() >= limit {
            break;
        }
        let (k, v) = chunk?;
        out.extend(decode(&k, &v)?.into_iter().filter(|i| *i >= from));
    }
    out.truncate(limit);
    Ok(out)
}

/// The audit index entries (one key each, as the views fold wrote them) a stored chunk holds:
/// for checking what an engine stored against a fold of the log.
pub fn expand(key: &[u8], value: &[u8]) -> Result<Vec<Vec<u8>>, ViewError> {
    let (prefix, _) = split(key)?;
    Ok(decode(key, value)?
        .into_iter()
        .map(|i| chunk_key(prefix, i))
        .collect())
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
        assert_eq!(
            expand(&key, &value).unwrap(),
            indexes.map(|i| chunk_key(b"xe\x01", i)).to_vec()
        );
    }

    #[test]
    fn entries_become_chunks_per_prefix_above_the_mark() {
        let entry = |p: &[u8], i: u64| chunk_key(p, i);
        let made = chunks(4, [entry(b"xa", 7), entry(b"xb", 5), entry(b"xa", 6)]).unwrap();
        assert_eq!(
            made,
            vec![
                (chunk_key(b"xa", 7), encode(&[6, 7])),
                (chunk_key(b"xb", 5), encode(&[5]))
            ]
        );
        assert!(
            chunks(5, [entry(b"xa", 5)]).is_err(),
            "at or below the mark"
        );
    }
}
