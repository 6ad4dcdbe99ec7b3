//! The sled-backed view store. Everything in it is derived from the log and the body segments
//! and carries "applied through" marks; sled is never the only copy of anything (sled 0.34 does
//! not fsync on `flush()` and has open corruption-after-kill reports).

use std::path::{Path, PathBuf};

use super::segment::Position;
use crate::backend::VisitEntry;
use crate::domain::MessageKind;
use crate::records::RequestId;
use crate::views::{KvRead, ViewError};

/// Bump when the layout of views changes: a store of another format is rebuilt.
const VIEW_FORMAT: u64 = 5;
const MARK_FORMAT: &[u8] = b"m:format";
const MARK_LOG: &[u8] = b"m:log";
const MARK_BODIES: &[u8] = b"m:bodies";

fn store_err(e: sled::Error) -> ViewError {
    ViewError::Store(e.to_string())
}

/// The derived views.
pub struct ViewStore {
    _db: sled::Db,
    tree: sled::Tree,
    path: PathBuf,
}

impl KvRead for ViewStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        Ok(self.tree.get(key).map_err(store_err)?.map(|v| v.to_vec()))
    }
}

fn body_key(kind: MessageKind, id: &RequestId) -> Vec<u8> {
    [b"b".as_slice(), &id.0, &[kind.code()]].concat()
}

/// The view write recording where a body is stored (keys under `b` are this engine's own).
pub fn body_location(kind: MessageKind, id: &RequestId, pos: Position) -> (Vec<u8>, Vec<u8>) {
    let mut v = Vec::with_capacity(20);
    v.extend_from_slice(&pos.segment.to_be_bytes());
    v.extend_from_slice(&pos.offset.to_be_bytes());
    v.extend_from_slice(&pos.len.to_be_bytes());
    (body_key(kind, id), v)
}

fn read_u64(v: Option<Vec<u8>>) -> Result<u64, ViewError> {
    match v {
        None => Ok(0),
        Some(b) => {
            Ok(u64::from_be_bytes(b.as_slice().try_into().map_err(
                |_| ViewError::Store("mark is not 8 bytes".into()),
            )?))
        }
    }
}

impl ViewStore {
    /// Opens the store at `path`. A store that cannot be opened, or is of another format, is
    /// deleted and made anew (empty: the caller replays the log into it).
    pub fn open(path: &Path) -> Result<(Self, bool), ViewError> {
        match Self::try_open(path) {
            Ok(store) if store.format_ok() => Ok((store, false)),
            Ok(store) => {
                drop(store);
                Ok((Self::recreate(path)?, true))
            }
            Err(e) => {
                tracing::warn!(error = %e, path = %path.display(), "view store unreadable; rebuilding from the log");
                Ok((Self::recreate(path)?, true))
            }
        }
    }

    fn try_open(path: &Path) -> Result<Self, ViewError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(64 << 20)
            .open()
            .map_err(store_err)?;
        let tree = db.open_tree("views").map_err(store_err)?;
        Ok(Self {
            _db: db,
            tree,
            path: path.to_path_buf(),
        })
    }

    fn format_ok(&self) -> bool {
        matches!(self.tree.get(MARK_FORMAT), Ok(Some(v)) if v.as_ref() == VIEW_FORMAT.to_be_bytes())
    }

    /// Deletes the store and makes an empty one.
    pub fn recreate(path: &Path) -> Result<Self, ViewError> {
        if path.exists() {
            std::fs::remove_dir_all(path).map_err(|e| ViewError::Store(e.to_string()))?;
        }
        let store = Self::try_open(path)?;
        store
            .tree
            .insert(MARK_FORMAT, &VIEW_FORMAT.to_be_bytes())
            .map_err(store_err)?;
        Ok(store)
    }

    /// Deletes and recreates this store in place.
    pub fn reset(self) -> Result<Self, ViewError> {
        let path = self.path.clone();
        drop(self);
        Self::recreate(&path)
    }

    /// The (log, bodies) indexes applied through.
    pub fn marks(&self) -> Result<(u64, u64), ViewError> {
        Ok((
            read_u64(self.get(MARK_LOG)?)?,
            read_u64(self.get(MARK_BODIES)?)?,
        ))
    }

    /// Visits the entries with `from <= key < to` in key order while `visit` says go on.
    pub fn scan(
        &self,
        from: &[u8],
        to: &[u8],
        visit: &mut VisitEntry<'_>,
    ) -> Result<(), ViewError> {
        if from >= to {
            return Ok(());
        }
        for item in self.tree.range(from..to) {
            let (k, v) = item.map_err(store_err)?;
            if !visit(&k, &v)? {
                break;
            }
        }
        Ok(())
    }

    /// Applies `writes` and the applied-through marks `(log, bodies)` in one atomic sled batch.
    pub fn apply(
        &self,
        writes: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
        marks: (u64, u64),
    ) -> Result<(), ViewError> {
        let mut batch = sled::Batch::default();
        for (k, v) in writes {
            batch.insert(k, v);
        }
        batch.insert(MARK_LOG, &marks.0.to_be_bytes());
        batch.insert(MARK_BODIES, &marks.1.to_be_bytes());
        self.tree.apply_batch(batch).map_err(store_err)
    }

    /// Where a body is, if it is stored.
    pub fn body_position(
        &self,
        kind: MessageKind,
        id: &RequestId,
    ) -> Result<Option<Position>, ViewError> {
        let Some(v) = self.get(&body_key(kind, id))? else {
            return Ok(None);
        };
        if v.len() != 20 {
            return Err(ViewError::Store("bad body position".into()));
        }
        Ok(Some(Position {
            segment: u64::from_be_bytes(v[..8].try_into().expect("8")),
            offset: u64::from_be_bytes(v[8..16].try_into().expect("8")),
            len: u32::from_be_bytes(v[16..].try_into().expect("4")),
        }))
    }
}
