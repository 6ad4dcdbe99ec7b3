//! Pending view writes over a reader: what a batch (or a rebuild step) has folded but not yet
//! committed. Reads see the pending writes first, so each change in a batch is decided against
//! the ones before it. What the base answered is kept for the overlay's life (the writer is the
//! only one while it folds), so a key is read from the engine once however often the batch
//! asks: on PostgreSQL each read is a round trip.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::backend::{Created, Posted, ViewWrites};
use crate::views::{KvRead, KvWrite, ViewError};

/// View writes pending over `base`.
pub struct Overlay<'a> {
    base: &'a dyn KvRead,
    pending: ViewWrites,
    /// Posting list entries, apart from `pending` (see `KvWrite::post`).
    posted: Posted,
    read: RefCell<HashMap<Vec<u8>, Option<Vec<u8>>>>,
    /// The keys set by `create`, when asked for (`noting_created`).
    created: Option<Created>,
}

impl<'a> Overlay<'a> {
    /// Nothing pending over `base`.
    pub fn new(base: &'a dyn KvRead) -> Self {
        Self {
            base,
            pending: ViewWrites::new(),
            posted: Posted::new(),
            read: RefCell::default(),
            created: None,
        }
    }

    /// Notes the keys set by `create` (see [`Self::into_parts`]) if `wanted`; engines that do
    /// not use them are spared the copies.
    pub fn noting_created(mut self, wanted: bool) -> Self {
        self.created = wanted.then(Created::new);
        self
    }

    /// Makes room for the posting list entries of about `records` records at once (a record
    /// posts five to nine), rather than growing the list again and again while they are folded.
    pub fn expecting(mut self, records: usize) -> Self {
        self.posted.reserve(records * 8);
        self
    }

    /// Number of pending writes, posting list entries included.
    pub fn len(&self) -> usize {
        self.pending.len() + self.posted.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Reads `keys` from the base at once (those not read or written yet), so that what is
    /// decided after asks the base nothing more for them.
    pub fn prefetch(&self, keys: &[Vec<u8>]) -> Result<(), ViewError> {
        let wanted: Vec<Vec<u8>> = {
            let read = self.read.borrow();
            keys.iter()
                .filter(|k| !self.pending.contains_key(*k) && !read.contains_key(*k))
                .cloned()
                .collect()
        };
        if wanted.is_empty() {
            return Ok(());
        }
        let values = self.base.get_many(&wanted)?;
        self.read
            .borrow_mut()
            .extend(wanted.into_iter().zip(values));
        Ok(())
    }

    /// The pending writes (a deletion as `None`), posting list entries as keys of their own,
    /// for the engine to commit.
    pub fn into_writes(self) -> ViewWrites {
        let mut writes = self.pending;
        writes.extend(crate::postings::keys(self.posted));
        writes
    }

    /// The pending writes, the posting list entries apart, and the keys among the writes set by
    /// `create` (empty unless noted).
    pub fn into_parts(self) -> (ViewWrites, Posted, Created) {
        (self.pending, self.posted, self.created.unwrap_or_default())
    }
}

impl Overlay<'_> {
    /// Whether `key` is a posting list entry posted here (entries are read by key rarely, if
    /// ever, while a batch is folded: a search of the batch's few hundred will do).
    fn is_posted(&self, key: &[u8]) -> bool {
        let Ok((prefix, index)) = crate::postings::split(key) else {
            return false;
        };
        self.posted
            .iter()
            .any(|(p, i)| *i == index && p.as_slice() == prefix)
    }
}

impl KvRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        if let Some(v) = self.pending.get(key) {
            return Ok(v.clone());
        }
        if let Some(v) = self.read.borrow().get(key) {
            return Ok(v.clone());
        }
        if crate::postings::is_index_key(key) && self.is_posted(key) {
            return Ok(Some(Vec::new()));
        }
        let v = self.base.get(key)?;
        self.read.borrow_mut().insert(key.to_vec(), v.clone());
        Ok(v)
    }
}

impl KvWrite for Overlay<'_> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.pending.insert(key, None);
    }

    fn post(&mut self, prefix: Vec<u8>, index: u64) {
        self.posted.push((prefix, index));
    }

    fn create(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if let Some(created) = &mut self.created {
            created.insert(key.clone());
        }
        self.pending.insert(key, Some(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;

    /// Posting list entries are kept apart from the other writes, each once, and read back by
    /// key; handed over as writes, they are keys of their own.
    #[test]
    fn posted_entries_are_kept_apart_and_read_back() {
        let reader = crate::mem::MemEngine::new().reader();
        let mut ov = Overlay::new(&*reader);
        let entry = |prefix: &[u8], index: u64| [prefix, &index.to_be_bytes()].concat();
        ov.put(b"r-meta".to_vec(), b"v".to_vec());
        ov.post(b"xa police\0".to_vec(), 7);
        ov.post(b"xs\x01".to_vec(), 7);
        assert_eq!(ov.len(), 3);
        assert_eq!(ov.get(&entry(b"xa police\0", 7)).unwrap(), Some(Vec::new()));
        assert_eq!(ov.get(&entry(b"xa police\0", 6)).unwrap(), None);
        assert_eq!(ov.get(&entry(b"xa polic", 7)).unwrap(), None);
        let writes = ov.into_writes();
        assert_eq!(
            writes.keys().cloned().collect::<Vec<_>>(),
            [
                b"r-meta".to_vec(),
                entry(b"xa police\0", 7),
                entry(b"xs\x01", 7)
            ]
        );
        assert!(
            writes
                .iter()
                .all(|(k, v)| k.as_slice() == b"r-meta" || v.as_deref() == Some(&[][..]))
        );
    }
}
