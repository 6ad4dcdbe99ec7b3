//! An append-only log of opaque entries in segment files, each entry framed with its length and
//! a CRC32C, made durable with `fdatasync`. A write may end with a *mark*: a frame that is not an
//! entry (the length's top bit set), synced with the entries before it. The log keeps the last
//! intact mark; the ledger's is the signed checkpoint of its batch, so the checkpoint is durable
//! in the same `fdatasync` as the records it covers. A write may begin with *attachments*
//! (the length's next bit set): frames that are not entries either, found by position, synced
//! with the entries after them, and rewritable in place (`overwrite`); the ledger's are the
//! sealed bodies of its batch's records. Attachments at the end of the log, with no entry or
//! mark after them, are a write cut short and go with its torn tail.
//!
//! ```text
//! segment file  <first index, 20 digits>.seg
//!   header      magic:[8] first_index:u64le
//!   frame*      len:u32le crc32c(len ‖ payload):u32le payload:[len & !(MARK | ATTACHMENT)]
//! ```
//!
//! Entries are numbered from 1. Opening reads only the last segment, whatever the log's size:
//! every frame of it is checked, and a bad frame at its end is a write torn by a crash (it was
//! never acknowledged, because acknowledgement waits for the sync): it is moved to a quarantine
//! file and cut off, unless it is `protected`. Older segments were checked while they were the
//! last; they are checked again by [`scan_read_only`] (`--verify-log`, and the ledger's log
//! check after every start), which names the first bad entry.
//!
//! The last segment is written ahead with zeros, [`PREALLOC_CHUNK`] at a time: by a thread of its
//! own once less than half a chunk is left (`room`), or else in the same write and `fdatasync` as
//! the batch that needs the room. A batch that lands in bytes already
//! allocated changes only data, so its `fdatasync` writes no new length (no inode write-back,
//! and on a journalled file system no journal commit: the reason PostgreSQL zero-fills its WAL
//! segments). Measured here, a batch's sync 0.25 → 0.17 ms at 1 KB a batch, 0.36 → 0.22 ms at
//! 30 KB, p99 no worse with chunks of 256 KiB (larger chunks put multi-millisecond stalls on the
//! batch that writes them). Zeros never pass a frame's check (the CRC covers the length), so
//! the end of the frames followed by nothing but zeros is the clean end of the log; anything
//! else after the last good frame is a torn write. A finished segment is cut to its frames (and
//! synced) before the next is begun, so only the last segment has such a tail.
//!
//! An indexed log keeps beside each segment `<first>.idx`: where each entry lies (offset:u64le
//! len:u32le), written with each append and synced when its segment is finished, so that an
//! entry is found by number without holding every position in memory. The last segment's index
//! is rebuilt at every open; an older one of the wrong length is rebuilt from its segment.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::durable;

mod frame;
mod index;
mod read;
mod room;
mod stream;

use frame::{
    ATTACHMENT, FRAME, MARK, check_header, corrupt, frame_crc, last_mark_in, push_frame,
    read_segment, written_end,
};
pub use frame::{Frame, check_frame};
pub use index::SegmentIndex;
use index::{ensure_index, index_bytes, index_path};
pub use read::{Scanned, SegmentReader, scan_attachments, scan_range, scan_read_only};

/// Size of a segment header.
const HEADER: u64 = 16;
/// Largest entry accepted; anything larger in a file is corruption.
pub const MAX_ENTRY: usize = 4 << 20;
/// A new segment is started once the current one passes this size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Zeros written ahead of the last frame when a batch needs more room (see the module's notes).
pub const PREALLOC_CHUNK: u64 = 256 << 10;

/// Where an entry's payload lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The first index of the segment holding it.
    pub segment: u64,
    /// Byte offset of its frame in the segment file.
    pub offset: u64,
    /// Payload length.
    pub len: u32,
}

/// Errors of the segment log.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    /// An I/O call failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// No entry of that number.
    #[error("entry {0} is not in the log")]
    Missing(u64),
    /// A frame failed its check somewhere other than the torn tail.
    #[error("{path}: entry {index} at byte {offset} is corrupt ({what})")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// The first entry index that is not intact.
        index: u64,
        /// Byte offset in the file.
        offset: u64,
        /// What was wrong.
        what: &'static str,
    },
}

/// What opening found.
#[derive(Debug, Default, Clone)]
pub struct Recovery {
    /// Intact entries.
    pub entries: u64,
    /// Bytes cut from a torn tail (kept in a quarantine file beside the segments).
    pub truncated_bytes: u64,
}

/// The writable log.
pub struct SegmentLog {
    dir: PathBuf,
    magic: [u8; 8],
    segments: Vec<u64>,
    file: File,
    /// The end of the last segment's frames: where the next write goes.
    file_len: u64,
    /// The last segment's length: zeros from `file_len` to here.
    allocated: u64,
    next: u64,
    max_segment_bytes: u64,
    last_mark: Option<Vec<u8>>,
    /// The positions of an indexed log, shared with its readers, and the current segment's
    /// index file, kept open for appending.
    index: Option<(Arc<SegmentIndex>, File)>,
    /// The bytes of the batch being written, kept between batches: a fresh buffer of a chunk's
    /// zeros each time was a fresh allocation of the allocator's, whose first touch faulted in
    /// (and the kernel zeroed) new pages — 11% of the writer thread's time in a profile.
    scratch: Vec<u8>,
    /// The next chunk of room, made ahead off the writer's path (see `room`).
    room: room::Room,
}

/// A write buffer larger than this (after an unusually large batch) is not kept.
const SCRATCH_KEPT: usize = 2 * PREALLOC_CHUNK as usize;

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SegmentError + '_ {
    move |source| SegmentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

impl SegmentLog {
    /// Opens (or creates) the log in `dir`, checking every frame of its last segment.
    pub fn open(dir: &Path, magic: [u8; 8]) -> Result<(Self, Recovery), SegmentError> {
        Self::open_with(dir, magic, DEFAULT_SEGMENT_BYTES)
    }

    /// As [`open`](Self::open), with a segment size (tests use small ones).
    pub fn open_with(
        dir: &Path,
        magic: [u8; 8],
        max_segment_bytes: u64,
    ) -> Result<(Self, Recovery), SegmentError> {
        Self::open_protecting(dir, magic, max_segment_bytes, 0)
    }

    /// As [`open_with`](Self::open_with), treating a bad frame at or below entry `protected`
    /// (entries known to have been acknowledged, e.g. covered by a signed checkpoint) as
    /// corruption even in the last segment: only a tail beyond it can be a torn write.
    pub fn open_protecting(
        dir: &Path,
        magic: [u8; 8],
        max_segment_bytes: u64,
        protected: u64,
    ) -> Result<(Self, Recovery), SegmentError> {
        Self::open_full(dir, magic, max_segment_bytes, protected, false)
    }

    /// As [`open_protecting`](Self::open_protecting), keeping (or making) the index files.
    pub fn open_indexed(
        dir: &Path,
        magic: [u8; 8],
        max_segment_bytes: u64,
        protected: u64,
    ) -> Result<(Self, Recovery), SegmentError> {
        Self::open_full(dir, magic, max_segment_bytes, protected, true)
    }

    fn open_full(
        dir: &Path,
        magic: [u8; 8],
        max_segment_bytes: u64,
        protected: u64,
        indexed: bool,
    ) -> Result<(Self, Recovery), SegmentError> {
        durable::create_dir_all(dir).map_err(io_err(dir))?;
        let mut segments = list_segments(dir)?;
        if let Some(&last) = segments.last() {
            let path = segment_path(dir, last);
            if fs::metadata(&path).map_err(io_err(&path))?.len() < HEADER {
                // A segment whose header never reached the disk: it holds nothing.
                fs::remove_file(&path).map_err(io_err(&path))?;
                segments.pop();
            }
        }
        let mut recovery = Recovery::default();
        let mut next = 1u64;
        let mut last_mark = None;
        let mut last_positions = Vec::new();
        let mut frames_end = HEADER;
        let count = segments.len();
        let mut keep = Vec::with_capacity(count);
        for (i, &first) in segments.iter().enumerate() {
            let last = i + 1 == count;
            let path = segment_path(dir, first);
            if !last {
                // Checked while it was the last; only its header and place are checked now.
                check_header(&path, magic, first, next)?;
                next = segments[i + 1];
                if indexed {
                    ensure_index(dir, first, next - first)?;
                }
                keep.push(first);
                continue;
            }
            let data = read_segment(&path, magic, first, next)?;
            let mut pos = HEADER as usize;
            // The first of the attachments after the last entry or mark: a write always ends
            // with one of those, so attachments at the end are a batch cut short.
            let mut orphans = None;
            let failed = loop {
                if pos >= data.len() {
                    break None;
                }
                match check_frame(&data, pos) {
                    Ok(frame) => {
                        if frame.mark {
                            last_mark = Some(data[frame.start..frame.end].to_vec());
                            orphans = None;
                        } else if frame.attachment {
                            orphans.get_or_insert(pos);
                        } else {
                            last_positions.push(Position {
                                segment: first,
                                offset: pos as u64,
                                len: (frame.end - frame.start) as u32,
                            });
                            next += 1;
                            orphans = None;
                        }
                        pos = frame.end;
                    }
                    Err(what) => break Some(what),
                }
            };
            // Past `pos`: nothing but the zeros written ahead (the clean end), or a torn write.
            let written = written_end(&data, pos);
            if let Some(what) = failed
                && written > pos
                && next <= protected
            {
                return Err(corrupt(&path, next, pos as u64, what));
            }
            // Orphaned attachments go with the torn write, unless acknowledged entries are
            // missing after them (then they are evidence, kept for the caller's refusal).
            let cut = orphans.filter(|_| next > protected).unwrap_or(pos);
            if written > cut {
                quarantine(dir, &data[cut..written])?;
                recovery.truncated_bytes = (written - cut) as u64;
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.set_len(cut as u64).map_err(io_err(&path))?;
                durable::sync_all(&f, &path).map_err(io_err(&path))?;
            }
            pos = cut;
            frames_end = pos as u64;
            keep.push(first);
        }
        segments = keep;
        recovery.entries = next - 1;
        if last_mark.is_none() && segments.len() >= 2 {
            // The last segment was begun but holds no mark yet: the last is in the one before.
            let before = segments[segments.len() - 2];
            last_mark = last_mark_in(&segment_path(dir, before), magic)?;
        }
        let (file, file_len, allocated) = match segments.last() {
            Some(&first) => {
                let path = segment_path(dir, first);
                let file = open_for_writing(&path)?;
                let len = file.metadata().map_err(io_err(&path))?.len();
                (file, frames_end, len)
            }
            None => {
                segments.push(next);
                (create_segment(dir, magic, next)?, HEADER, HEADER)
            }
        };
        let index = if indexed {
            let last = *segments.last().expect("always one segment");
            let path = index_path(dir, last);
            // Always rebuilt: the last segment may have been cut, or its index not kept up.
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(io_err(&path))?;
            file.write_all(&index_bytes(&last_positions))
                .map_err(io_err(&path))?;
            let shared = Arc::new(SegmentIndex::new(dir, segments.clone(), next - 1));
            Some((shared, file))
        } else {
            None
        };
        Ok((
            Self {
                dir: dir.to_path_buf(),
                magic,
                segments,
                file,
                file_len,
                allocated,
                next,
                max_segment_bytes,
                last_mark,
                index,
                scratch: Vec::new(),
                room: room::Room::default(),
            },
            recovery,
        ))
    }

    /// The index the next appended entry will get.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// The directory of the segments.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The positions of an indexed log, for its readers.
    pub fn index(&self) -> Option<Arc<SegmentIndex>> {
        self.index.as_ref().map(|(shared, _)| shared.clone())
    }

    /// The last intact mark.
    pub fn last_mark(&self) -> Option<&[u8]> {
        self.last_mark.as_deref()
    }

    /// Appends `payloads` as consecutive entries with one write and one `fdatasync`. Returns
    /// their positions. On error nothing is acknowledged and the file is cut back.
    pub fn append<P: AsRef<[u8]>>(
        &mut self,
        payloads: &[P],
    ) -> Result<Vec<Position>, SegmentError> {
        self.append_marked(payloads, None)
    }

    /// As [`append`](Self::append), the write ending with `mark` (if any), in the same write and
    /// the same `fdatasync`: the mark is durable exactly when the entries before it are.
    pub fn append_marked<P: AsRef<[u8]>>(
        &mut self,
        payloads: &[P],
        mark: Option<&[u8]>,
    ) -> Result<Vec<Position>, SegmentError> {
        self.append_batch::<&[u8], P>(&[], payloads, mark)
            .map(|(_, entries)| entries)
    }

    /// As [`append_marked`](Self::append_marked), the write beginning with `attachments`:
    /// frames that are not entries (not numbered, not in the index, skipped by scans), found by
    /// the positions returned first, and durable in the same `fdatasync` as the entries after
    /// them. Attachments MUST come with entries or a mark (a caller's error otherwise, which
    /// panics): opening takes attachments at the end of a segment for a write cut short.
    pub fn append_batch<A: AsRef<[u8]>, P: AsRef<[u8]>>(
        &mut self,
        attachments: &[A],
        payloads: &[P],
        mark: Option<&[u8]>,
    ) -> Result<(Vec<Position>, Vec<Position>), SegmentError> {
        if payloads.is_empty() && mark.is_none() {
            assert!(attachments.is_empty(), "attachments with no entry or mark");
            return Ok((Vec::new(), Vec::new()));
        }
        self.take_room(false);
        if self.file_len >= self.max_segment_bytes {
            self.rotate()?;
        }
        let segment = *self.segments.last().expect("always one segment");
        let path = segment_path(&self.dir, segment);
        let total: usize = attachments
            .iter()
            .map(|a| FRAME + a.as_ref().len())
            .chain(payloads.iter().map(|p| FRAME + p.as_ref().len()))
            .sum::<usize>()
            + mark.map_or(0, |m| FRAME + m.len());
        let end = self.file_len + total as u64;
        if end > self.allocated {
            // The chunk being made ahead may be the room the batch needs; and the writer never
            // writes where that chunk is being written.
            self.take_room(true);
        }
        // Room for the batch, else zeros ahead to the next chunk boundary in the same write. The
        // bytes past the frames up to `allocated` are zeros on disk already (synced by the batch
        // that made the room, or left by a cut at open): a batch that fits writes only its
        // frames, or every sync would flush up to a chunk of unchanged pages.
        let (allocated, written_to) = if end > self.allocated {
            let allocated = end.next_multiple_of(PREALLOC_CHUNK);
            (allocated, allocated)
        } else {
            (self.allocated, end)
        };
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        buf.reserve((written_to - self.file_len) as usize);
        let mut attached = Vec::with_capacity(attachments.len());
        for a in attachments {
            let a = a.as_ref();
            assert!(a.len() <= MAX_ENTRY, "attachment exceeds MAX_ENTRY");
            attached.push(Position {
                segment,
                offset: self.file_len + buf.len() as u64,
                len: a.len() as u32,
            });
            push_frame(&mut buf, a.len() as u32 | ATTACHMENT, a);
        }
        let mut positions = Vec::with_capacity(payloads.len());
        for p in payloads {
            let p = p.as_ref();
            assert!(
                p.len() <= MAX_ENTRY,
                "entry of {} bytes exceeds MAX_ENTRY",
                p.len()
            );
            let len = p.len() as u32;
            positions.push(Position {
                segment,
                offset: self.file_len + buf.len() as u64,
                len,
            });
            push_frame(&mut buf, len, p);
        }
        if let Some(m) = mark {
            assert!(m.len() <= MAX_ENTRY, "mark exceeds MAX_ENTRY");
            push_frame(&mut buf, m.len() as u32 | MARK, m);
        }
        debug_assert_eq!(buf.len(), total);
        buf.resize((written_to - self.file_len) as usize, 0);
        let written = self
            .file
            .write_all_at(&buf, self.file_len)
            .and_then(|()| durable::sync_data(&self.file, &path));
        if buf.capacity() <= SCRATCH_KEPT {
            self.scratch = buf;
        }
        if let Err(e) = written {
            // Best effort: leave no partial batch for the next append to build on (the zeros
            // ahead go with it; the next append writes them again).
            self.take_room(true);
            let _ = self.file.set_len(self.file_len);
            self.allocated = self.file_len;
            return Err(SegmentError::Io { path, source: e });
        }
        self.file_len = end;
        self.allocated = allocated;
        if self.allocated - end < PREALLOC_CHUNK / 2 && self.allocated < self.max_segment_bytes {
            let to = self.allocated + PREALLOC_CHUNK;
            self.room.ask(&self.file, path.clone(), self.allocated, to);
        }
        self.next += payloads.len() as u64;
        if let Some(m) = mark {
            self.last_mark = Some(m.to_vec());
        }
        if let Some((shared, file)) = &mut self.index {
            file.write_all(&index_bytes(&positions))
                .map_err(io_err(&index_path(&self.dir, segment)))?;
            shared.publish(&self.segments, self.next - 1);
        }
        Ok((attached, positions))
    }

    /// Replaces the payloads of existing entries or attachments with payloads of the same length
    /// (erasure at the end of retention), keeping every position valid. Each affected segment is rewritten
    /// to a new file, synced, and renamed over the old one, so a crash leaves either the old
    /// or the new segment, never a torn frame.
    pub fn overwrite(&mut self, patches: &[(Position, Vec<u8>)]) -> Result<(), SegmentError> {
        // The last segment may be rewritten below: no chunk is being made in the old file then.
        self.take_room(true);
        let mut by_segment: std::collections::BTreeMap<u64, Vec<&(Position, Vec<u8>)>> =
            Default::default();
        for patch in patches {
            by_segment.entry(patch.0.segment).or_default().push(patch);
        }
        for (segment, patches) in by_segment {
            let path = segment_path(&self.dir, segment);
            let mut data = fs::read(&path).map_err(io_err(&path))?;
            for (pos, payload) in patches {
                let at = pos.offset as usize;
                // The frame must be exactly where the index says, and the same length.
                let Frame {
                    start, end, mark, ..
                } = check_frame(&data, at).map_err(|what| SegmentError::Corrupt {
                    path: path.clone(),
                    index: 0,
                    offset: pos.offset,
                    what,
                })?;
                if mark || end - start != payload.len() || payload.len() != pos.len as usize {
                    return Err(SegmentError::Corrupt {
                        path,
                        index: 0,
                        offset: pos.offset,
                        what: "overwrite of another length",
                    });
                }
                // The frame keeps its flags (an attachment stays one); its checksum covers them.
                let flagged = u32::from_le_bytes(data[at..at + 4].try_into().expect("4"));
                data[at + 4..at + 8].copy_from_slice(&frame_crc(flagged, payload).to_le_bytes());
                data[start..end].copy_from_slice(payload);
            }
            let tmp = path.with_extension("seg.tmp");
            let written = File::create(&tmp)
                .and_then(|mut f| {
                    f.write_all(&data)
                        .and_then(|()| durable::sync_all(&f, &tmp))
                })
                .and_then(|()| durable::rename(&tmp, &path));
            written.map_err(io_err(&path))?;
            sync_dir(&self.dir)?;
            if Some(&segment) == self.segments.last() {
                // Appends go on in the new file.
                self.file = open_for_writing(&path)?;
            }
        }
        Ok(())
    }

    /// Counts the chunk made ahead into the room, if one is done (`wait`: once it is done, so
    /// that nothing is being written past the room any more).
    fn take_room(&mut self, wait: bool) {
        if let Some(made) = self.room.made(wait) {
            self.allocated = self.allocated.max(made);
        }
    }

    fn rotate(&mut self) -> Result<(), SegmentError> {
        // A chunk made ahead, even one that failed half-way, may lie past `allocated`: the
        // file's own length says what to cut.
        self.take_room(true);
        let last = *self.segments.last().expect("always one segment");
        let path = segment_path(&self.dir, last);
        let on_disk = self.file.metadata().map_err(io_err(&path))?.len();
        if on_disk > self.file_len {
            // A finished segment ends at its last frame, durably, before the next is begun:
            // only the last segment has zeros ahead.
            self.file
                .set_len(self.file_len)
                .and_then(|()| durable::sync_all(&self.file, &path))
                .map_err(io_err(&path))?;
            self.allocated = self.file_len;
        }
        if let Some((_, file)) = &mut self.index {
            // The finished segment's index is kept for good: synced once, now; the new
            // segment's is made before the directory is synced with the segment.
            let last = *self.segments.last().expect("always one segment");
            let path = index_path(&self.dir, last);
            durable::sync_data(file, &path).map_err(io_err(&path))?;
            let path = index_path(&self.dir, self.next);
            *file = OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .map_err(io_err(&path))?;
        }
        self.file = create_segment(&self.dir, self.magic, self.next)?;
        self.file_len = HEADER;
        self.allocated = HEADER;
        self.segments.push(self.next);
        Ok(())
    }

    /// Calls `f` with each entry from index `from` on, in order.
    pub fn for_each_from<E: From<SegmentError>>(
        &self,
        from: u64,
        mut f: impl FnMut(u64, Position, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        self.for_each_frame_from(from, |item| match item {
            Item::Entry(index, position, payload) => f(index, position, payload),
            Item::Attachment(..) => Ok(()),
        })
    }

    /// Calls `f` with each entry from index `from` on and each attachment written with them
    /// (those of `from`'s own batch included: they lie after the entry before it), in order.
    pub fn for_each_frame_from<E: From<SegmentError>>(
        &self,
        from: u64,
        mut f: impl FnMut(Item<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.segments.partition_point(|&first| first <= from).max(1) - 1;
        for &first in &self.segments[start..] {
            let path = segment_path(&self.dir, first);
            let data = fs::read(&path).map_err(io_err(&path))?;
            let mut pos = HEADER as usize;
            let mut index = first;
            // The last segment's frames end where the next write goes (zeros after that).
            let end = match self.segments.last() {
                Some(&last) if last == first => data.len().min(self.file_len as usize),
                _ => data.len(),
            };
            while pos < end {
                let frame = check_frame(&data, pos)
                    .map_err(|what| corrupt(&path, index, pos as u64, what))?;
                let position = Position {
                    segment: first,
                    offset: pos as u64,
                    len: (frame.end - frame.start) as u32,
                };
                let payload = &data[frame.start..frame.end];
                if frame.attachment && index >= from {
                    f(Item::Attachment(position, payload))?;
                } else if frame.is_entry() {
                    if index >= from {
                        f(Item::Entry(index, position, payload))?;
                    }
                    index += 1;
                }
                pos = frame.end;
            }
        }
        Ok(())
    }
}

/// A frame as [`SegmentLog::for_each_frame_from`] visits it.
pub enum Item<'a> {
    /// An entry: its index, position and payload.
    Entry(u64, Position, &'a [u8]),
    /// An attachment: its position and payload.
    Attachment(Position, &'a [u8]),
}

/// The segments in `dir`, oldest first. A rewrite cut short by a crash (`*.seg.tmp`) is
/// deleted: it may hold payloads that were being erased.
fn list_segments(dir: &Path) -> Result<Vec<u64>, SegmentError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(".seg.tmp")) {
            fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
            continue;
        }
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if let Ok(first) = stem.parse::<u64>() {
            out.push(first);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The last segment, opened for writes at explicit offsets (not `O_APPEND`, under which Linux
/// ignores a `pwrite`'s offset).
fn open_for_writing(path: &Path) -> Result<File, SegmentError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))
}

fn create_segment(dir: &Path, magic: [u8; 8], first: u64) -> Result<File, SegmentError> {
    let path = segment_path(dir, first);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let mut header = magic.to_vec();
    header.extend_from_slice(&first.to_le_bytes());
    file.write_all_at(&header, 0).map_err(io_err(&path))?;
    durable::sync_all(&file, &path).map_err(io_err(&path))?;
    sync_dir(dir)?;
    Ok(file)
}

fn sync_dir(dir: &Path) -> Result<(), SegmentError> {
    durable::sync_dir(dir).map_err(io_err(dir))
}

fn quarantine(dir: &Path, bytes: &[u8]) -> Result<(), SegmentError> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = dir.join(format!("torn-tail-{stamp}.quarantine"));
    fs::write(&path, bytes).map_err(io_err(&path))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests;
