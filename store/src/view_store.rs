//! The sled-backed view store. Everything in it is derived from the log and the body segments
//! and carries "applied through" marks; sled is never the only copy of anything (sled 0.34 does
//! not fsync on `flush()` and has open corruption-after-kill reports).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::domain::MessageKind;
use crate::records::{Record, RequestId};
use crate::segment::Position;
use crate::views::{self, InboxEntry, KvRead, KvWrite, ViewError};

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

/// Pending writes over the view store: what a batch (or a rebuild step) has applied but not yet
/// committed. Reads see the pending writes first.
pub struct Overlay<'a> {
    base: &'a ViewStore,
    pending: BTreeMap<Vec<u8>, Vec<u8>>,
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

impl Overlay<'_> {
    /// Number of pending writes.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Records the location of a body.
    pub fn put_body(&mut self, kind: MessageKind, id: &RequestId, pos: Position) {
        let mut v = Vec::with_capacity(20);
        v.extend_from_slice(&pos.segment.to_be_bytes());
        v.extend_from_slice(&pos.offset.to_be_bytes());
        v.extend_from_slice(&pos.len.to_be_bytes());
        self.pending.insert(body_key(kind, id), v);
    }

    /// Sets the applied-through marks.
    pub fn set_marks(&mut self, log: u64, bodies: u64) {
        self.pending
            .insert(MARK_LOG.to_vec(), log.to_be_bytes().to_vec());
        self.pending
            .insert(MARK_BODIES.to_vec(), bodies.to_be_bytes().to_vec());
    }

    /// Writes everything pending in one atomic sled batch.
    pub fn commit(self) -> Result<(), ViewError> {
        let mut batch = sled::Batch::default();
        for (k, v) in self.pending {
            batch.insert(k, v);
        }
        self.base.tree.apply_batch(batch).map_err(store_err)
    }
}

fn body_key(kind: MessageKind, id: &RequestId) -> Vec<u8> {
    [b"b".as_slice(), &id.0, &[kind.code()]].concat()
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

    /// An empty overlay over this store.
    pub fn overlay(&self) -> Overlay<'_> {
        Overlay {
            base: self,
            pending: BTreeMap::new(),
        }
    }

    /// The (log, bodies) indexes applied through.
    pub fn marks(&self) -> Result<(u64, u64), ViewError> {
        Ok((
            read_u64(self.get(MARK_LOG)?)?,
            read_u64(self.get(MARK_BODIES)?)?,
        ))
    }

    /// Every exchange (request or proactive disclosure) with its meta, in id order.
    pub fn exchanges(
        &self,
    ) -> impl Iterator<Item = Result<(RequestId, views::RequestMeta), ViewError>> + '_ {
        self.tree.scan_prefix(b"r").map(|item| {
            let (k, v) = item.map_err(store_err)?;
            let id = k[1..]
                .try_into()
                .map_err(|_| ViewError::Store("bad request meta key".into()))?;
            Ok((RequestId(id), views::RequestMeta::decode(&v)?))
        })
    }

    /// Up to `limit` inbox items of `agency` with cursor > `after`.
    pub fn inbox_page(
        &self,
        agency: &str,
        after: u64,
        limit: usize,
        unacknowledged_only: bool,
    ) -> Result<(Vec<(u64, InboxEntry)>, bool), ViewError> {
        let mut out = Vec::new();
        for item in self.inbox(agency, after) {
            let (cursor, entry) = item?;
            if unacknowledged_only && entry.acknowledged {
                continue;
            }
            if out.len() == limit {
                return Ok((out, true));
            }
            out.push((cursor, entry));
        }
        Ok((out, false))
    }

    /// How many of `agency`'s inbox items are unacknowledged.
    pub fn unacknowledged(&self, agency: &str) -> Result<u64, ViewError> {
        let mut n = 0;
        for item in self.inbox(agency, 0) {
            n += u64::from(!item?.1.acknowledged);
        }
        Ok(n)
    }

    /// `agency`'s inbox items with cursor > `after`, in order.
    fn inbox(
        &self,
        agency: &str,
        after: u64,
    ) -> impl Iterator<Item = Result<(u64, InboxEntry), ViewError>> + use<> {
        let prefix_len = views::inbox_prefix(agency).len();
        let start = views::inbox_key(agency, after.saturating_add(1));
        let mut end = views::inbox_prefix(agency);
        *end.last_mut().expect("prefix ends in 0") = 1;
        self.tree.range(start..end).map(move |item| {
            let (k, v) = item.map_err(store_err)?;
            let cursor = u64::from_be_bytes(
                k[prefix_len..]
                    .try_into()
                    .map_err(|_| ViewError::Store("bad inbox key".into()))?,
            );
            Ok((cursor, InboxEntry::decode(&v)?))
        })
    }

    /// Log indexes of a request's records, oldest first.
    pub fn timeline(&self, id: &RequestId) -> Result<Vec<u64>, ViewError> {
        let prefix = views::timeline_prefix(id);
        self.tree
            .scan_prefix(&prefix)
            .keys()
            .map(|k| {
                let k = k.map_err(store_err)?;
                Ok(u64::from_be_bytes(k[prefix.len()..].try_into().map_err(
                    |_| ViewError::Store("bad timeline key".into()),
                )?))
            })
            .collect()
    }

    /// The protocol register records, in log order.
    pub fn protocol_records(&self) -> Result<Vec<Record>, ViewError> {
        self.tree
            .scan_prefix(views::PROTOCOL_RECORDS)
            .map(|item| {
                let (_, v) = item.map_err(store_err)?;
                Ok(Record::decode(&v)?)
            })
            .collect()
    }

    /// Log indexes under an audit index prefix, after `after`, ascending, at most `limit`.
    pub fn indexed(&self, prefix: &[u8], after: u64, limit: usize) -> Result<Vec<u64>, ViewError> {
        let start = [prefix, &after.saturating_add(1).to_be_bytes()].concat();
        let mut out = Vec::new();
        for item in self.tree.range(start..) {
            let (k, _) = item.map_err(store_err)?;
            if !k.starts_with(prefix) || k.len() != prefix.len() + 8 || out.len() == limit {
                break;
            }
            out.push(u64::from_be_bytes(k[prefix.len()..].try_into().expect("8")));
        }
        Ok(out)
    }

    /// The legal holds in place, with the index of the record that placed each, in target
    /// order.
    pub fn holds(&self) -> Result<Vec<(crate::records::HoldTarget, u64)>, ViewError> {
        use crate::records::HoldTarget;
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"h") {
            let (k, v) = item.map_err(store_err)?;
            let Ok(index) = <[u8; 8]>::try_from(v.as_ref()) else {
                continue; // released
            };
            let target = match (k.get(1), k.len()) {
                (Some(1), 18) => HoldTarget::Exchange(RequestId(k[2..].try_into().expect("16"))),
                (Some(2), 34) => HoldTarget::Subject(k[2..].try_into().expect("32")),
                _ => return Err(ViewError::Store("bad legal hold key".into())),
            };
            out.push((target, u64::from_be_bytes(index)));
        }
        Ok(out)
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
