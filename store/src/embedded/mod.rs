//! The embedded engine: the log and the bodies in numbered, checksummed segment files, the views
//! in redb, all under one data directory.
//!
//! ```text
//! <data>/LOCK              held for the engine's life: one writer per directory
//! <data>/log/              the log segments (the source of truth): each batch one write of its
//!                          sealed bodies (attachments), its records, and its signed checkpoint
//!                          (a mark frame)
//! <data>/bodies/           body segments of directories made before bodies moved into the log:
//!                          read and erased, never appended to
//! <data>/views/            redb: the derived views, with their applied-through marks
//! <data>/tile/             the Merkle tree's full tiles (C2SP tlog-tiles), derived from the log
//! <data>/checkpoint.witness  the latest checkpoint, written after its batch is synced (`witness`)
//! <data>/keys/             the log signing key and its rotations (see `log_keys`)
//! ```
//!
//! A batch: bodies (sealed, AES-256-GCM, keys/body/), records and the batch's signed checkpoint
//! appended in one write and one fdatasync, then the witness rewritten; the callers are then
//! answered, and the batch's view writes go to the follower (`follower`), which folds them into
//! redb behind the log while readers see them at once. One sync a batch, not one for the bodies
//! and another for the records after them: measured in alternating runs of the benchmark, the
//! ledger alone +21% records/s, broker calls +9%, submit p50 at 1,000 round trips/s 0.88–1.09 →
//! 0.61–0.70 ms. The bodies are
//! attachments, not entries: the records alone are numbered and hashed into the tree; a body is
//! found by its position (a view), and erased in place at the end of retention (its segment
//! rewritten whole, records untouched). What start-up relies on is synced in the order it
//! assumes (a batch's bodies, records and checkpoint together; every new file's name in its
//! directory); the witness, the views, the tiles and the last segment's index are not synced
//! per batch:
//! - the witness is written only after the log sync, so it never claims more than the log holds
//!   durably; it survives `kill -9` (the page cache does), and then protects the last batch
//!   from being cut as a torn write if it is damaged, or refuses a log cut short. After a power
//!   cut it may be stale, empty or torn: a torn one is ignored (the log's own checkpoint is
//!   used); a whole one must verify.
//! - the views, tiles and indexes are derived: views behind the log are replayed on open (the
//!   bodies' locations with the records they came with), ahead of it or unreadable rebuilt;
//!   tiles that do not give the signed root are rebuilt; the last index is rebuilt at every
//!   open.
//!
//! Opening reads the last segment of each log, the last partial tile's records and at most 255
//! tiles per level: its cost does not grow with the log. The whole log is rehashed after it
//! (`log_check`).

mod follower;
mod postings;
#[cfg(test)]
pub(crate) mod power_cut;
mod recovery;
pub mod segment;
mod sorted_runs;
pub mod tile_files;
pub mod view_store;
mod witness;
pub(crate) use witness::read as read_witness;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::seal::BodyKeys;
use segment::{SegmentIndex, SegmentLog, SegmentReader};
use view_store::{BodyFile, ViewStore, body_location};

use crate::backend::{Backend, Batch, Reader, StorageError, VisitEntry, VisitRecord};
use crate::bodies::{BODY_MAGIC, BodyEntry};
use crate::domain::MessageKind;
use crate::open_error::OpenError;
use crate::records::RequestId;
use crate::views::{KvRead, ViewError};

/// Magic of the log segments.
pub const LOG_MAGIC: [u8; 8] = *b"ISLOGv01";

/// What opening found and did.
#[derive(Debug, Clone, Default)]
pub struct OpenReport {
    /// Records in the log.
    pub records: u64,
    /// Bodies in the body segments of an older directory (newer ones are in the log).
    pub bodies: u64,
    /// Records replayed into the views.
    pub replayed: u64,
    /// Whether the view store was rebuilt from nothing.
    pub rebuilt: bool,
    /// Bytes cut from torn tails (log, bodies).
    pub truncated: (u64, u64),
}

/// The engine over one data directory.
pub struct EmbeddedEngine {
    tiles: Arc<tile_files::TileFiles>,
    log: SegmentLog,
    bodies: SegmentLog,
    witness: witness::Witness,
    reader: Arc<EmbeddedReader>,
    /// The last field: dropping it waits for the follower to fold in what is queued.
    follower: follower::Follower,
}

struct EmbeddedReader {
    views: ViewStore,
    /// View writes acknowledged and not yet in the view store (see `follower`).
    pending: Arc<follower::Pending>,
    records: SegmentReader,
    log_dir: PathBuf,
    /// Where each record lies (the log's index files).
    index: Arc<SegmentIndex>,
    bodies: SegmentReader,
    body_keys: BodyKeys,
    checkpoint: RwLock<Option<String>>,
    /// The data directory's exclusive lock, held until the last reader is gone: the last field,
    /// so it is released only after the view store is closed (with its last durable commit).
    /// Released any sooner, a new opener would find the view store still open in this process
    /// and take its views for unreadable.
    _lock: std::fs::File,
}

impl EmbeddedEngine {
    /// Opens (or makes) the engine in `data_dir`: takes its lock, cuts torn tails not covered by
    /// the stored checkpoint, and brings the views up to the log.
    pub fn open(data_dir: &Path) -> Result<(Self, OpenReport), OpenError> {
        Self::open_with(
            data_dir,
            &data_dir.join("keys"),
            view_store::DEFAULT_CACHE_BYTES,
        )
    }

    /// As [`open`](Self::open), with the body keys in `keys_dir/body` and `view_cache_bytes` of
    /// view pages cached in memory.
    pub fn open_with(
        data_dir: &Path,
        keys_dir: &Path,
        view_cache_bytes: usize,
    ) -> Result<(Self, OpenReport), OpenError> {
        // One writer per data directory: a second server must not append to the log or, worse,
        // decide the views are unreadable and rebuild them under the first.
        let lock_path = data_dir.join("LOCK");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| OpenError::LockFile {
                path: lock_path.display().to_string(),
                source,
            })?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => OpenError::Locked(data_dir.display().to_string()),
            std::fs::TryLockError::Error(source) => OpenError::LockFile {
                path: lock_path.display().to_string(),
                source,
            },
        })?;
        // Entries under the witness were acknowledged: a bad frame among them is tampering or
        // damage, never a torn write to cut away.
        let witness = witness::read(data_dir);
        let signed = witness.as_deref().and_then(note_size).unwrap_or(0);
        let (log, log_rec) = SegmentLog::open_indexed(
            &data_dir.join("log"),
            LOG_MAGIC,
            segment::DEFAULT_SEGMENT_BYTES,
            signed,
        )?;
        let (bodies, body_rec) = SegmentLog::open(&data_dir.join("bodies"), BODY_MAGIC)?;
        // The strongest claim stored: start-up holds the log to it.
        let in_log = log
            .last_mark()
            .map(|m| String::from_utf8_lossy(m).into_owned());
        let stored_note = match (in_log, witness) {
            (Some(a), Some(b)) => Some(if note_size(&b) > note_size(&a) { b } else { a }),
            (a, b) => a.or(b),
        };
        let (mut views, mut rebuilt) = ViewStore::open(&data_dir.join("views"), view_cache_bytes)?;
        let last_record = log.next_index() - 1;
        let last_body = bodies.next_index() - 1;
        let (mut applied, mut applied_bodies) = views.marks()?;
        if applied > last_record || applied_bodies > last_body {
            // Views ahead of the log cannot be trusted: the log is the truth.
            tracing::warn!(applied, last_record, "views ahead of the log; rebuilding");
            views = views.reset()?;
            rebuilt = true;
            (applied, applied_bodies) = (0, 0);
        }
        recovery::replay(&views, &log, &bodies, applied, applied_bodies)?;
        let body_keys_dir = keys_dir.join("body");
        let body_keys =
            BodyKeys::load_or_create(&body_keys_dir).map_err(|message| OpenError::SigningKey {
                path: body_keys_dir.display().to_string(),
                message,
            })?;
        let report = OpenReport {
            records: last_record,
            bodies: last_body,
            replayed: last_record - applied,
            rebuilt,
            truncated: (log_rec.truncated_bytes, body_rec.truncated_bytes),
        };
        let reader = Arc::new(EmbeddedReader {
            views,
            records: SegmentReader::new(log.dir()),
            log_dir: log.dir().to_path_buf(),
            index: log.index().expect("the log is indexed"),
            bodies: SegmentReader::new(bodies.dir()),
            body_keys,
            checkpoint: RwLock::new(stored_note),
            pending: Arc::default(),
            _lock: lock,
        });
        let (wake, woken) = std::sync::mpsc::channel();
        let thread = {
            let (reader, pending) = (reader.clone(), reader.pending.clone());
            std::thread::Builder::new()
                .name("view-follower".into())
                .spawn(move || follower::run(reader, pending, woken))
                .map_err(|e| OpenError::Storage(format!("cannot start the view follower: {e}")))?
        };
        Ok((
            Self {
                tiles: Arc::new(tile_files::TileFiles::new(data_dir)),
                log,
                bodies,
                witness: witness::Witness::open(data_dir),
                reader,
                follower: follower::Follower {
                    wake: Some(wake),
                    thread: Some(thread),
                },
            },
            report,
        ))
    }

    /// Replaces the witness (after the log holds `note` durably) and the checkpoint readers see.
    fn write_witness(&self, note: &str) {
        self.witness.write(note);
        *self
            .reader
            .checkpoint
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(note.to_string());
    }
}

/// The tree size a note claims (its second line), unverified.
fn note_size(note: &str) -> Option<u64> {
    note.lines().nth(1).and_then(|l| l.parse().ok())
}

impl Backend for EmbeddedEngine {
    fn commit(&mut self, batch: Batch<'_>) -> Result<(), StorageError> {
        let next = self.log.next_index();
        if batch.first_index != next {
            return Err(StorageError(format!(
                "batch starts at {} but the log's next index is {next}",
                batch.first_index
            )));
        }
        // A follower that failed, or is too far behind, holds the batch back before it is logged.
        self.reader.pending.wait_for_room().map_err(StorageError)?;
        let sealed = self.reader.body_keys.seal_all(batch.bodies);
        // Bodies, records and checkpoint in one write and one `fdatasync` (see the module's notes).
        let (body_positions, _) = self
            .log
            .append_batch(&sealed, batch.records, Some(batch.checkpoint.as_bytes()))
            .map_err(StorageError::new)?;
        // Before the views, before anyone is answered (see the module's notes).
        self.write_witness(batch.checkpoint);
        let locations = batch
            .bodies
            .iter()
            .zip(body_positions)
            .map(|(b, pos)| body_location(b.kind, &b.request_id, BodyFile::Log, pos));
        let marks = (self.log.next_index() - 1, self.bodies.next_index() - 1);
        let mut writes = batch.views;
        writes.extend(locations.map(|(k, v)| (k, Some(v))));
        if !self.reader.pending.insert(writes, batch.postings, marks) {
            // The follower is folding or gathering: it will look (a failure of its shows in
            // `wait_for_room`).
            return Ok(());
        }
        self.follower
            .wake
            .as_ref()
            .and_then(|wake| wake.send(()).ok())
            .ok_or_else(|| StorageError("the view follower has stopped".into()))
    }

    fn erase_bodies(&mut self, bodies: &[(MessageKind, RequestId)]) -> Result<(), StorageError> {
        let (mut in_log, mut in_bodies) = (Vec::new(), Vec::new());
        for (kind, id) in bodies {
            if let Some((file, pos)) = self.reader.body_position(*kind, id)? {
                let stored = self.reader.read_body(file, pos)?;
                if !BodyEntry::is_erased(&stored) {
                    let patches = match file {
                        BodyFile::Log => &mut in_log,
                        BodyFile::Bodies => &mut in_bodies,
                    };
                    patches.push((pos, BodyEntry::erased(&stored)));
                }
            }
        }
        self.log.overwrite(&in_log).map_err(StorageError::new)?;
        self.bodies
            .overwrite(&in_bodies)
            .map_err(StorageError::new)?;
        // Rewritten files: no read goes on through a handle on the old one.
        for (pos, _) in &in_log {
            self.reader.records.forget(pos.segment);
        }
        for (pos, _) in &in_bodies {
            self.reader.bodies.forget(pos.segment);
        }
        Ok(())
    }

    fn store_checkpoint(&mut self, note: &str) -> Result<(), StorageError> {
        self.log
            .append_marked::<&[u8]>(&[], Some(note.as_bytes()))
            .map_err(StorageError::new)?;
        self.write_witness(note);
        Ok(())
    }

    fn reader(&self) -> Arc<dyn Reader> {
        self.reader.clone()
    }

    fn tiles(&self) -> Option<Arc<dyn infoshare_tlog::tiles::TileStore>> {
        Some(self.tiles.clone())
    }
}

impl EmbeddedReader {
    fn body_position(
        &self,
        kind: MessageKind,
        id: &RequestId,
    ) -> Result<Option<(BodyFile, segment::Position)>, ViewError> {
        self.get(&view_store::body_key(kind, id))?
            .map(|v| view_store::parse_body_position(&v))
            .transpose()
    }

    /// A body's stored (sealed, or erased) bytes.
    fn read_body(&self, file: BodyFile, pos: segment::Position) -> Result<Vec<u8>, StorageError> {
        match file {
            BodyFile::Log => self.records.read(pos),
            BodyFile::Bodies => self.bodies.read(pos),
        }
        .map_err(StorageError::new)
    }
}

impl KvRead for EmbeddedReader {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, ViewError> {
        // Pending first (a pending deletion included), the store after (see
        // `follower::Pending::scan`).
        match self.pending.get(key) {
            Some(v) => Ok(v),
            None => self.views.get(key),
        }
    }
}

/// A failed read of a record (`which`: its number, or the numbers of a batch) as the store
/// reports it.
fn record_error(which: &dyn std::fmt::Display, e: segment::SegmentError) -> StorageError {
    match e {
        segment::SegmentError::Missing(index) => {
            StorageError(format!("record {index} is not in the log"))
        }
        other => StorageError(format!("record {which}: {other}")),
    }
}

impl Reader for EmbeddedReader {
    fn scan(&self, from: &[u8], to: &[u8], visit: &mut VisitEntry<'_>) -> Result<(), ViewError> {
        self.pending.scan(&self.views, from, to, visit)
    }

    fn indexed(&self, prefix: &[u8], after: u64, limit: usize) -> Result<Vec<u64>, ViewError> {
        let Some(from) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        // Pending first, the store after (see `follower::Pending::scan`).
        let mut found = self.pending.indexed(prefix, from, limit);
        found.extend(self.views.indexed(prefix, from, limit)?);
        Ok(crate::postings::first(found, limit))
    }

    fn records(&self) -> u64 {
        self.index.entries()
    }

    fn record(&self, index: u64) -> Result<Vec<u8>, StorageError> {
        let pos = self
            .index
            .position(index)
            .map_err(|e| record_error(&index, e))?;
        self.records.read(pos).map_err(|e| record_error(&index, e))
    }

    fn records_at(&self, indexes: &[u64]) -> Result<Vec<Vec<u8>>, StorageError> {
        // All at once: on a log bigger than the page cache, each cold read would otherwise
        // wait for the disk in turn (two reads a record: its index entry, then its frame).
        let which = format_args!("among {} read at once", indexes.len());
        // The segment being written was just written through the page cache: not asked for.
        let current = self.index.last_segment();
        let positions = self
            .index
            .positions(indexes, current)
            .map_err(|e| record_error(&which, e))?;
        self.records
            .read_many(&positions, current)
            .map_err(|e| record_error(&which, e))
    }

    fn for_each_record(&self, from: u64, visit: &mut VisitRecord<'_>) -> Result<(), StorageError> {
        // One sequential read of the segments, not a read per record.
        let last = self.records();
        let mut failed = None;
        segment::scan_range(&self.log_dir, LOG_MAGIC, from, last, |index, raw| {
            if failed.is_none() {
                failed = visit(index, raw).err();
            }
        })
        .map_err(StorageError::new)?;
        failed.map_or(Ok(()), Err)
    }

    fn body(&self, kind: MessageKind, id: &RequestId) -> Result<Option<BodyEntry>, StorageError> {
        let Some((file, pos)) = self.body_position(kind, id)? else {
            return Ok(None);
        };
        let bytes = self.read_body(file, pos)?;
        if BodyEntry::is_erased(&bytes) {
            return Ok(None);
        }
        self.body_keys
            .open(&bytes)
            .map(Some)
            .map_err(|e| StorageError(format!("body of {id}: {e}")))
    }

    fn body_stored(&self, kind: MessageKind, id: &RequestId) -> Result<bool, StorageError> {
        Ok(self.body_position(kind, id)?.is_some())
    }

    fn checkpoint(&self) -> Option<String> {
        self.checkpoint
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader still open keeps the directory locked: a second opener waits for the view store
    /// to close instead of finding the view store busy, taking its views for unreadable and rebuilding
    /// them (deleting them under the reader).
    #[test]
    fn the_lock_is_held_until_the_last_reader_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (engine, _) = EmbeddedEngine::open(dir.path()).unwrap();
        let reader = engine.reader();
        drop(engine);
        assert!(matches!(
            EmbeddedEngine::open(dir.path()),
            Err(OpenError::Locked(_))
        ));
        assert_eq!(reader.records(), 0, "the reader still reads");
        drop(reader);
        let (_, report) = EmbeddedEngine::open(dir.path()).unwrap();
        assert!(!report.rebuilt, "the views were taken for unreadable");
    }

    /// The follower is woken by a write only while it listens for one, and no write goes
    /// unheard: batches coming 0–9 ms apart (some while a round gathers, some after the
    /// follower has gone back to waiting) all reach the view store while the engine is open.
    #[test]
    fn every_batch_is_folded_while_the_engine_stays_open() {
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let (mut engine, _) = EmbeddedEngine::open(dir.path()).unwrap();
        let gaps = [0, 1, 9, 0, 0, 7, 3, 9, 9, 2, 0, 6];
        for (at, gap) in (1u64..).zip(gaps) {
            let key = format!("k{at:03}").into_bytes();
            engine
                .commit(Batch {
                    first_index: at,
                    records: &[format!("record {at}").into_bytes()],
                    bodies: &[],
                    views: crate::backend::ViewWrites::from([(key, Some(b"v".to_vec()))]),
                    postings: Vec::new(),
                    created: crate::backend::Created::new(),
                    checkpoint: &format!("test\n{at}\nroot\n"),
                })
                .unwrap();
            std::thread::sleep(Duration::from_millis(gap));
        }
        let last = gaps.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while engine.reader.views.marks().unwrap().0 < last {
            assert!(
                Instant::now() < deadline,
                "folded through {:?} of {last}: the follower missed a write",
                engine.reader.views.marks()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(
            engine.reader.views.get(b"k012").unwrap(),
            Some(b"v".to_vec())
        );
    }

    /// A data directory from before bodies moved into the log keeps its bodies in the body
    /// segments: opening finds them there, they are read, and retention erases them there.
    #[test]
    fn bodies_in_the_body_segments_of_an_older_directory_are_read_and_erased() {
        let dir = tempfile::tempdir().unwrap();
        let keys = BodyKeys::load_or_create(&dir.path().join("keys/body")).unwrap();
        let entry = BodyEntry {
            kind: MessageKind::Request,
            request_id: RequestId([7; 16]),
            salt: [1; 32],
            body: b"older body".to_vec(),
        };
        let (mut bodies, _) = SegmentLog::open(&dir.path().join("bodies"), BODY_MAGIC).unwrap();
        bodies.append(&[keys.seal(&entry)]).unwrap();
        drop(bodies);
        let (kind, id) = (entry.kind, entry.request_id);
        let (mut engine, report) = EmbeddedEngine::open(dir.path()).unwrap();
        assert_eq!(report.bodies, 1);
        let reader = engine.reader();
        assert_eq!(reader.body(kind, &id).unwrap().unwrap().body, entry.body);
        engine.erase_bodies(&[(kind, id)]).unwrap();
        assert!(reader.body(kind, &id).unwrap().is_none());
        assert!(reader.body_stored(kind, &id).unwrap());
        let mut erased = Vec::new();
        segment::scan_read_only(&dir.path().join("bodies"), BODY_MAGIC, |_, stored| {
            erased.push(BodyEntry::is_erased(stored))
        })
        .unwrap();
        assert_eq!(erased, [true], "erased in the body segments themselves");
    }
}
