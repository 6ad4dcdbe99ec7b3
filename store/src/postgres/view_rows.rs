//! The views as rows of the `views` table: every key as it is, except the audit index entries,
//! which are stored as posting chunks ([`crate::postings`]): a batch's entries under one prefix
//! one row, instead of a row each (a record adds five to seven of them).

use super::PgReader;
use crate::backend::{Created, Reader, StorageError, ViewWrites, prefix_end};
use crate::postings;
use crate::views::ViewError;

/// What one transaction writes to the views table: rows new to it (a plain insert, measured
/// 8% faster for the ledger alone than an upsert of every row), rows that may exist (an
/// upsert), and keys deleted.
#[derive(Default)]
pub(super) struct ViewRows {
    pub(super) new: (Vec<Vec<u8>>, Vec<Vec<u8>>),
    pub(super) set: (Vec<Vec<u8>>, Vec<Vec<u8>>),
    pub(super) deleted: Vec<Vec<u8>>,
}

/// The rows `writes` make (`created` the keys among them no earlier transaction wrote), over
/// views that hold the posting lists' entries of records up to `applied` (each new entry
/// must be above it, so each chunk's key is new too).
pub(super) fn rows(
    writes: ViewWrites,
    created: &Created,
    applied: u64,
) -> Result<ViewRows, StorageError> {
    let mut rows = ViewRows::default();
    let mut entries = Vec::new();
    for (key, value) in writes {
        match value {
            Some(_) if postings::is_index_key(&key) => entries.push(key),
            None if postings::is_index_key(&key) => {
                return Err(StorageError::new(
                    "an audit index entry deleted (they are never deleted)",
                ));
            }
            Some(v) => {
                let into = match created.contains(&key) {
                    true => &mut rows.new,
                    false => &mut rows.set,
                };
                into.0.push(key);
                into.1.push(v);
            }
            None => rows.deleted.push(key),
        }
    }
    for (key, value) in
        postings::chunks(applied, entries).map_err(|e| StorageError(e.to_string()))?
    {
        rows.new.0.push(key);
        rows.new.1.push(value);
    }
    Ok(rows)
}

/// Up to `limit` indexes above `after` under the audit index `prefix`, ascending.
pub(super) fn indexed(
    reader: &PgReader,
    prefix: &[u8],
    after: u64,
    limit: usize,
) -> Result<Vec<u64>, ViewError> {
    let from = after.saturating_add(1);
    let mut out = Vec::new();
    reader.scan(
        &postings::chunk_key(prefix, from),
        &prefix_end(prefix),
        &mut |k, v| {
            // Keys of longer prefixes that begin with this one are not its chunks.
            if k.len() == prefix.len() + 8 {
                // The first chunk may begin below `from`: only what is at or above it counts.
                out.extend(postings::decode(k, v)?.into_iter().filter(|i| *i >= from));
            }
            Ok(out.len() < limit)
        },
    )?;
    out.truncate(limit);
    Ok(out)
}

/// Whether the audit index entry `key` is stored.
pub(super) fn contains(reader: &PgReader, key: &[u8]) -> Result<bool, ViewError> {
    let (prefix, index) = postings::split(key)?;
    Ok(indexed(reader, prefix, index - 1, 1)?.first() == Some(&index))
}
