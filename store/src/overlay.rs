//! Pending view writes over a reader: what a batch (or a rebuild step) has folded but not yet
//! committed. Reads see the pending writes first, so each change in a batch is decided against
//! the ones before it. What the base answered is kept for the overlay's life (the writer is the
//! only one while it folds), so a key is read from the engine once however often the batch
//! asks: on PostgreSQL each read is a round trip.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::backend::{Created, ViewWrites};
use crate::views::{KvRead, KvWrite, ViewError};

/// View writes pending over `base`.
pub struct Overlay<'a> {
    base: &'a dyn KvRead,
    pending: ViewWrites,
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

    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
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

    /// The pending writes (a deletion as `None`), for the engine to commit.
    pub fn into_writes(self) -> ViewWrites {
        self.pending
    }

    /// The pending writes and the keys among them set by `create` (empty unless noted).
    pub fn into_parts(self) -> (ViewWrites, Created) {
        (self.pending, self.created.unwrap_or_default())
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

    fn create(&mut self, key: Vec<u8>, value: Vec<u8>) {
        if let Some(created) = &mut self.created {
            created.insert(key.clone());
        }
        self.pending.insert(key, Some(value));
    }
}
