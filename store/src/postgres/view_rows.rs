//! The views as rows of the `views` table: every key as it is, except two kinds.
//! - The audit index entries are stored as posting chunks ([`crate::postings`]): a batch's
//!   entries under one prefix one row, instead of a row each (a record adds five to seven).
//! - A request's work and expiry entries are kept in its meta's row, in the columns `work` and
//!   `expiry` (each with an index of its own), not in two rows of their own: the meta implies
//!   them (`work::entries`). They are read through those columns, under their own keys, as
//!   every engine's are. (Measured: 3.3 rows and 9.1 WAL records a record instead of 5.3 and
//!   11.2; the rate gained less, as the index entries stay — see the README.)

use std::collections::HashSet;

use super::PgReader;
use crate::backend::{Created, Reader, StorageError, ViewWrites, prefix_end};
use crate::postings;
use crate::views::{RequestMeta, ViewError, is_meta_key, work};

/// Rows of the views table, as the arrays a statement takes: keys, values, and for an
/// exchange's meta the work and expiry entries it implies.
#[derive(Default)]
pub(super) struct Rows {
    pub(super) keys: Vec<Vec<u8>>,
    pub(super) values: Vec<Vec<u8>>,
    pub(super) work: Vec<Option<Vec<u8>>>,
    pub(super) expiry: Vec<Option<Vec<u8>>>,
}

impl Rows {
    fn push(&mut self, key: Vec<u8>, value: Vec<u8>, entries: work::Entries) {
        self.keys.push(key);
        self.values.push(value);
        self.work.push(entries.work);
        self.expiry.push(entries.expiry);
    }
}

/// What one transaction writes to the views table: rows new to it (a plain insert, measured
/// 8% faster for the ledger alone than an upsert of every row), rows that may exist (an
/// upsert), and keys deleted.
#[derive(Default)]
pub(super) struct ViewRows {
    pub(super) new: Rows,
    pub(super) set: Rows,
    pub(super) deleted: Vec<Vec<u8>>,
}

/// Whether `key` is a work or expiry entry (kept in its meta's row).
pub(super) fn is_entry_key(key: &[u8]) -> bool {
    key.starts_with(work::WORK) || key.starts_with(work::EXPIRY)
}

/// The query that reads `key`: from its meta's row for a work or expiry entry (its value is
/// the exchange's id), else from the row of its own.
pub(super) fn get_query(key: &[u8]) -> &'static str {
    use super::queries::{SELECT_EXPIRY, SELECT_VIEW, SELECT_WORK};
    if key.starts_with(work::WORK) {
        SELECT_WORK
    } else if key.starts_with(work::EXPIRY) {
        SELECT_EXPIRY
    } else {
        SELECT_VIEW
    }
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
    let mut entries_written = Vec::new();
    let mut implied = HashSet::new();
    for (key, value) in writes {
        match value {
            Some(_) if postings::is_index_key(&key) => entries.push(key),
            None if postings::is_index_key(&key) => {
                return Err(StorageError::new(
                    "an audit index entry deleted (they are never deleted)",
                ));
            }
            // Moved with its meta's row (its deletion too: the meta no longer implies it).
            Some(_) if is_entry_key(&key) => entries_written.push(key),
            None if is_entry_key(&key) => {}
            Some(v) => {
                let implies = match is_meta_key(&key) {
                    true => RequestMeta::decode(&v)
                        .map(|meta| work::entries(&meta))
                        .map_err(|e| StorageError(format!("an exchange's meta: {e}")))?,
                    false => work::Entries::default(),
                };
                implied.extend(implies.work.iter().chain(&implies.expiry).cloned());
                let into = match created.contains(&key) {
                    true => &mut rows.new,
                    false => &mut rows.set,
                };
                into.push(key, v, implies);
            }
            None => rows.deleted.push(key),
        }
    }
    // The columns hold what the metas imply; the views' own entries must agree.
    if entries_written.iter().any(|k| !implied.contains(k)) {
        return Err(StorageError::new(
            "a work or expiry entry written that no meta written with it implies",
        ));
    }
    for (key, value) in
        postings::chunks(applied, entries).map_err(|e| StorageError(e.to_string()))?
    {
        rows.new.push(key, value, work::Entries::default());
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

/// The parts of `[from, to)` in key order, each with the query that scans it: the entry
/// columns under the work and expiry prefixes, the table's keys elsewhere.
pub(super) fn scan_parts(from: &[u8], to: &[u8]) -> Vec<(Vec<u8>, Vec<u8>, &'static str)> {
    use super::queries::{SCAN_EXPIRY, SCAN_VIEWS, SCAN_WORK};
    let (expiry_end, work_end) = (prefix_end(work::EXPIRY), prefix_end(work::WORK));
    let parts: [(&[u8], &[u8], &'static str); 5] = [
        (b"", work::EXPIRY, SCAN_VIEWS),
        (work::EXPIRY, &expiry_end, SCAN_EXPIRY),
        (&expiry_end, work::WORK, SCAN_VIEWS),
        (work::WORK, &work_end, SCAN_WORK),
        (&work_end, to, SCAN_VIEWS),
    ];
    parts
        .into_iter()
        .map(|(lo, hi, query)| (lo.max(from), hi.min(to), query))
        .filter(|(lo, hi, _)| lo < hi)
        .map(|(lo, hi, query)| (lo.to_vec(), hi.to_vec(), query))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::queries::{SCAN_EXPIRY, SCAN_VIEWS, SCAN_WORK};
    use super::{rows, scan_parts};
    use crate::backend::{Created, ViewWrites};
    use crate::domain::MessageKind;
    use crate::records::RequestId;
    use crate::views::{RequestMeta, meta_key, work};

    /// A request's meta row carries the entries its meta implies, and the entries' own keys
    /// make no rows; an entry that no meta of the batch implies refuses the batch.
    #[test]
    fn a_metas_row_carries_its_entries_and_a_stray_entry_is_refused() {
        let id = RequestId([7; 16]);
        let mut meta = RequestMeta::opened(MessageKind::Request, "police", "oranga-tamariki", 9);
        meta.expires_ms = 5_000;
        let implied = work::entries(&meta);
        let (w, c) = (
            implied.work.clone().unwrap(),
            implied.expiry.clone().unwrap(),
        );
        let writes = ViewWrites::from([
            (meta_key(&id), Some(meta.encode())),
            (w.clone(), Some(id.0.to_vec())),
            (c.clone(), Some(id.0.to_vec())),
        ]);
        let created = Created::from([meta_key(&id), w.clone(), c.clone()]);
        let made = rows(writes, &created, 8).unwrap();
        assert_eq!(made.new.keys, [meta_key(&id)]);
        assert_eq!(
            (made.new.work[0].as_ref(), made.new.expiry[0].as_ref()),
            (Some(&w), Some(&c))
        );
        assert!(made.set.keys.is_empty() && made.deleted.is_empty());

        let stray = ViewWrites::from([(w, Some(id.0.to_vec()))]);
        assert!(rows(stray, &Created::new(), 8).is_err());
        // A deleted entry goes with its meta's row: nothing to write for it alone.
        let gone = ViewWrites::from([(c, None)]);
        let made = rows(gone, &Created::new(), 8).unwrap();
        assert!(made.new.keys.is_empty() && made.set.keys.is_empty() && made.deleted.is_empty());
    }

    #[test]
    fn a_scan_reads_the_entry_columns_under_their_prefixes_only() {
        let queries = |from: &[u8], to: &[u8]| -> Vec<&str> {
            scan_parts(from, to).into_iter().map(|p| p.2).collect()
        };
        assert_eq!(queries(b"w\x01", b"w\x02"), [SCAN_WORK]);
        assert_eq!(queries(b"c", b"d"), [SCAN_EXPIRY]);
        assert_eq!(queries(b"r", b"s"), [SCAN_VIEWS]);
        assert_eq!(
            queries(b"", &[0xff; 8]),
            [SCAN_VIEWS, SCAN_EXPIRY, SCAN_VIEWS, SCAN_WORK, SCAN_VIEWS]
        );
        let parts = scan_parts(b"b", b"e");
        assert_eq!(parts[0].0, b"b");
        assert_eq!(parts[1].0, b"c");
        assert_eq!(parts[2].0, b"d");
        assert_eq!(parts[2].1, b"e");
    }
}
