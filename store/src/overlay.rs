//! Pending view writes over a reader: what a batch (or a rebuild step) has folded but not yet
//! committed. Reads see the pending writes first, so each change in a batch is decided against
//! the ones before it.

use std::collections::BTreeMap;

use crate::views::{KvRead, KvWrite, ViewError};

/// View writes pending over `base`.
pub struct Overlay<'a> {
    base: &'a dyn KvRead,
    pending: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl<'a> Overlay<'a> {
    /// Nothing pending over `base`.
    pub fn new(base: &'a dyn KvRead) -> Self {
        Self {
            base,
            pending: BTreeMap::new(),
        }
    }

    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The pending writes, for the engine to commit.
    pub fn into_writes(self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        self.pending
    }
}

impl KvRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        match self.pending.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None => self.base.get(key),
        }
    }
}

impl KvWrite for Overlay<'_> {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.pending.insert(key, value);
    }
}
