//! An append-only log of opaque entries in segment files, each entry framed with its length and
//! a CRC32C, made durable with `fdatasync`. A write may end with a *mark*: a frame that is not an
//! entry (the length's top bit set), synced with the entries before it. The log keeps the last
//! intact mark; the ledger's is the signed checkpoint of its batch, so the checkpoint is durable
//! in the same `fdatasync` as the records it covers.
//!
//! ```text
//! segment file  <first index, 20 digits>.seg
//!   header      magic:[8] first_index:u64le
//!   frame*      len:u32le crc32c(len ‖ payload):u32le payload:[len & !MARK]
//! ```
//!
//! Entries are numbered from 1. Opening reads only the last segment, whatever the log's size:
//! every frame of it is checked, and a bad frame at its end is a write torn by a crash (it was
//! never acknowledged, because acknowledgement waits for the sync): it is moved to a quarantine
//! file and cut off, unless it is `protected`. Older segments were checked while they were the
//! last; they are checked again by [`scan_read_only`] (`--verify-log`, and the ledger's log
//! check after every start), which names the first bad entry.
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

/// Size of a segment header.
const HEADER: u64 = 16;
/// Size of a frame header.
const FRAME: usize = 8;
/// Largest entry accepted; anything larger in a file is corruption.
pub const MAX_ENTRY: usize = 4 << 20;
/// A new segment is started once the current one passes this size.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// The length's flag of a mark frame.
const MARK: u32 = 1 << 31;

/// One intact frame: where its payload lies in the data, and whether it is a mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// First byte of the payload.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// A mark, not an entry.
    pub mark: bool,
}

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

/// What a read-only scan found.
#[derive(Debug, Default, Clone)]
pub struct Scanned {
    /// Intact entries.
    pub entries: u64,
    /// The last mark, if any.
    pub last_mark: Option<Vec<u8>>,
}

/// The writable log.
pub struct SegmentLog {
    dir: PathBuf,
    magic: [u8; 8],
    segments: Vec<u64>,
    file: File,
    file_len: u64,
    next: u64,
    max_segment_bytes: u64,
    last_mark: Option<Vec<u8>>,
    /// The positions of an indexed log, shared with its readers.
    index: Option<Arc<SegmentIndex>>,
}

/// Bytes of one index entry.
const INDEX_ENTRY: u64 = 12;

fn index_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.idx"))
}

fn index_bytes(positions: &[Position]) -> Vec<u8> {
    let mut out = Vec::with_capacity(positions.len() * INDEX_ENTRY as usize);
    for p in positions {
        out.extend_from_slice(&p.offset.to_le_bytes());
        out.extend_from_slice(&p.len.to_le_bytes());
    }
    out
}

/// Where the entries of an indexed log lie, read from the index files: memory O(segments).
pub struct SegmentIndex {
    dir: PathBuf,
    /// The first entry of each segment, and the number of entries, as published by the writer.
    state: std::sync::RwLock<(Vec<u64>, u64)>,
    files: std::sync::Mutex<std::collections::HashMap<u64, Arc<File>>>,
}

impl SegmentIndex {
    /// Entries in the log.
    pub fn entries(&self) -> u64 {
        self.state.read().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Where entry `index` (1-based) lies.
    pub fn position(&self, index: u64) -> Result<Position, SegmentError> {
        let segment = {
            let state = self.state.read().unwrap_or_else(|e| e.into_inner());
            if index == 0 || index > state.1 {
                return Err(SegmentError::Missing(index));
            }
            let at = state.0.partition_point(|&first| first <= index);
            state.0[at - 1]
        };
        let path = index_path(&self.dir, segment);
        let file = {
            let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            match files.get(&segment) {
                Some(f) => f.clone(),
                None => {
                    let f = Arc::new(File::open(&path).map_err(io_err(&path))?);
                    files.insert(segment, f.clone());
                    f
                }
            }
        };
        let mut entry = [0u8; INDEX_ENTRY as usize];
        file.read_exact_at(&mut entry, (index - segment) * INDEX_ENTRY)
            .map_err(io_err(&path))?;
        Ok(Position {
            segment,
            offset: u64::from_le_bytes(entry[..8].try_into().expect("8")),
            len: u32::from_le_bytes(entry[8..].try_into().expect("4")),
        })
    }

    fn publish(&self, segments: &[u64], entries: u64) {
        let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
        if state.0.len() != segments.len() {
            state.0 = segments.to_vec();
        }
        state.1 = entries;
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SegmentError + '_ {
    move |source| SegmentError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.seg"))
}

fn frame_crc(len: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), payload)
}

/// Checks one frame at `pos` in `data` (a segment file's bytes).
pub fn check_frame(data: &[u8], pos: usize) -> Result<Frame, &'static str> {
    let head = data.get(pos..pos + FRAME).ok_or("truncated frame header")?;
    let flagged = u32::from_le_bytes(head[..4].try_into().expect("4"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4"));
    let len = (flagged & !MARK) as usize;
    if len > MAX_ENTRY {
        return Err("impossible length");
    }
    let start = pos + FRAME;
    let payload = data.get(start..start + len).ok_or("truncated payload")?;
    if frame_crc(flagged, payload) != crc {
        return Err("checksum mismatch");
    }
    Ok(Frame {
        start,
        end: start + len,
        mark: flagged & MARK != 0,
    })
}

fn push_frame(buf: &mut Vec<u8>, flagged: u32, payload: &[u8]) {
    buf.extend_from_slice(&flagged.to_le_bytes());
    buf.extend_from_slice(&frame_crc(flagged, payload).to_le_bytes());
    buf.extend_from_slice(payload);
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
            let data = fs::read(&path).map_err(io_err(&path))?;
            let corrupt = |index, offset, what| SegmentError::Corrupt {
                path: path.clone(),
                index,
                offset,
                what,
            };
            if let Some(what) = header_error(&data, magic, first, next) {
                return Err(corrupt(next, 0, what));
            }
            let mut pos = HEADER as usize;
            while pos < data.len() {
                match check_frame(&data, pos) {
                    Ok(frame) => {
                        if frame.mark {
                            last_mark = Some(data[frame.start..frame.end].to_vec());
                        } else {
                            last_positions.push(Position {
                                segment: first,
                                offset: pos as u64,
                                len: (frame.end - frame.start) as u32,
                            });
                            next += 1;
                        }
                        pos = frame.end;
                    }
                    Err(what) if !last || next <= protected => {
                        return Err(corrupt(next, pos as u64, what));
                    }
                    Err(_) => {
                        quarantine(dir, &data[pos..])?;
                        recovery.truncated_bytes = (data.len() - pos) as u64;
                        let f = OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .map_err(io_err(&path))?;
                        f.set_len(pos as u64).map_err(io_err(&path))?;
                        durable::sync_all(&f, &path).map_err(io_err(&path))?;
                        break;
                    }
                }
            }
            keep.push(first);
        }
        segments = keep;
        recovery.entries = next - 1;
        if last_mark.is_none() && segments.len() >= 2 {
            // The last segment was begun but holds no mark yet: the last is in the one before.
            let before = segments[segments.len() - 2];
            last_mark = last_mark_in(&segment_path(dir, before), magic)?;
        }
        let (file, file_len) = match segments.last() {
            Some(&first) => {
                let path = segment_path(dir, first);
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                let len = file.metadata().map_err(io_err(&path))?.len();
                (file, len)
            }
            None => {
                segments.push(next);
                (create_segment(dir, magic, next)?, HEADER)
            }
        };
        let index = if indexed {
            let last = *segments.last().expect("always one segment");
            let path = index_path(dir, last);
            // Always rebuilt: the last segment may have been cut, or its index not kept up.
            fs::write(&path, index_bytes(&last_positions)).map_err(io_err(&path))?;
            Some(Arc::new(SegmentIndex {
                dir: dir.to_path_buf(),
                state: std::sync::RwLock::new((segments.clone(), next - 1)),
                files: Default::default(),
            }))
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
                next,
                max_segment_bytes,
                last_mark,
                index,
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
        self.index.clone()
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
        if payloads.is_empty() && mark.is_none() {
            return Ok(Vec::new());
        }
        if self.file_len >= self.max_segment_bytes {
            self.rotate()?;
        }
        let segment = *self.segments.last().expect("always one segment");
        let path = segment_path(&self.dir, segment);
        let total: usize = payloads
            .iter()
            .map(|p| FRAME + p.as_ref().len())
            .sum::<usize>()
            + mark.map_or(0, |m| FRAME + m.len());
        let mut buf = Vec::with_capacity(total);
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
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| durable::sync_data(&self.file, &path));
        if let Err(e) = written {
            // Best effort: leave no partial batch for the next append to build on.
            let _ = self.file.set_len(self.file_len);
            return Err(SegmentError::Io { path, source: e });
        }
        self.file_len += buf.len() as u64;
        self.next += payloads.len() as u64;
        if let Some(m) = mark {
            self.last_mark = Some(m.to_vec());
        }
        if let Some(index) = &self.index {
            let path = index_path(&self.dir, segment);
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .and_then(|mut f| f.write_all(&index_bytes(&positions)))
                .map_err(io_err(&path))?;
            index.publish(&self.segments, self.next - 1);
        }
        Ok(positions)
    }

    /// Replaces the payloads of existing entries with payloads of the same length (erasure at
    /// the end of retention), keeping every position valid. Each affected segment is rewritten
    /// to a new file, synced, and renamed over the old one, so a crash leaves either the old
    /// or the new segment, never a torn frame.
    pub fn overwrite(&mut self, patches: &[(Position, Vec<u8>)]) -> Result<(), SegmentError> {
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
                let Frame { start, end, mark } =
                    check_frame(&data, at).map_err(|what| SegmentError::Corrupt {
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
                data[at + 4..at + 8].copy_from_slice(&frame_crc(pos.len, payload).to_le_bytes());
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
                self.file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
            }
        }
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), SegmentError> {
        if self.index.is_some() {
            // The finished segment's index is kept for good: synced once, now.
            let last = *self.segments.last().expect("always one segment");
            let path = index_path(&self.dir, last);
            OpenOptions::new()
                .append(true)
                .create(true)
                .open(&path)
                .and_then(|f| durable::sync_data(&f, &path))
                .map_err(io_err(&path))?;
        }
        self.file = create_segment(&self.dir, self.magic, self.next)?;
        self.file_len = HEADER;
        self.segments.push(self.next);
        Ok(())
    }

    /// Calls `f` with each entry from index `from` on, in order.
    pub fn for_each_from<E: From<SegmentError>>(
        &self,
        from: u64,
        mut f: impl FnMut(u64, Position, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let start = self.segments.partition_point(|&first| first <= from).max(1) - 1;
        for &first in &self.segments[start..] {
            let path = segment_path(&self.dir, first);
            let data = fs::read(&path).map_err(io_err(&path))?;
            let mut pos = HEADER as usize;
            let mut index = first;
            while pos < data.len() && index < self.next {
                let Frame { start, end, mark } =
                    check_frame(&data, pos).map_err(|what| SegmentError::Corrupt {
                        path: path.clone(),
                        index,
                        offset: pos as u64,
                        what,
                    })?;
                if mark {
                    pos = end;
                    continue;
                }
                if index >= from {
                    let position = Position {
                        segment: first,
                        offset: pos as u64,
                        len: (end - start) as u32,
                    };
                    f(index, position, &data[start..end])?;
                }
                pos = end;
                index += 1;
            }
        }
        Ok(())
    }
}

/// Reads every entry of the log in `dir` without changing anything, calling `f` with each
/// index and payload. Stops at the first frame that fails its checks and reports it as
/// corruption (a verifier cannot tell a torn tail from tampering; the server's own open can,
/// because it knows what it acknowledged).
pub fn scan_read_only(
    dir: &Path,
    magic: [u8; 8],
    f: impl FnMut(u64, &[u8]),
) -> Result<Scanned, SegmentError> {
    scan_range(dir, magic, 1, u64::MAX, f)
}

/// As [`scan_read_only`], for the entries `from..=to` only: segments wholly before `from` are
/// not read, and the scan stops after `to` (a log being appended to may have a write in
/// progress after it). `last_mark` is the last mark among the segments read.
pub fn scan_range(
    dir: &Path,
    magic: [u8; 8],
    from: u64,
    to: u64,
    mut f: impl FnMut(u64, &[u8]),
) -> Result<Scanned, SegmentError> {
    let segments = list_segments(dir)?;
    let start = segments.partition_point(|&first| first <= from).max(1) - 1;
    let mut next = segments.get(start).copied().unwrap_or(1);
    let mut last_mark = None;
    for &first in &segments[start.min(segments.len())..] {
        if next > to {
            break;
        }
        let path = segment_path(dir, first);
        let data = fs::read(&path).map_err(io_err(&path))?;
        let corrupt = |index, offset, what| SegmentError::Corrupt {
            path: path.clone(),
            index,
            offset,
            what,
        };
        if let Some(what) = header_error(&data, magic, first, next) {
            return Err(corrupt(next, 0, what));
        }
        let mut pos = HEADER as usize;
        while pos < data.len() && next <= to {
            let Frame { start, end, mark } =
                check_frame(&data, pos).map_err(|what| corrupt(next, pos as u64, what))?;
            if mark {
                last_mark = Some(data[start..end].to_vec());
            } else {
                if next >= from {
                    f(next, &data[start..end]);
                }
                next += 1;
            }
            pos = end;
        }
    }
    Ok(Scanned {
        entries: next - 1,
        last_mark,
    })
}

/// What is wrong with a segment that starts with `data`, if anything: it must carry this log's
/// magic, and begin at its first entry `first`, where the log is (`next`).
fn header_error(data: &[u8], magic: [u8; 8], first: u64, next: u64) -> Option<&'static str> {
    if data.len() < HEADER as usize || data[..8] != magic {
        return Some("bad segment header");
    }
    if u64::from_le_bytes(data[8..16].try_into().expect("8")) != first || first != next {
        return Some("segment does not continue the log");
    }
    None
}

/// Checks a segment's header: this log's magic, and the first entry where the log is.
fn check_header(path: &Path, magic: [u8; 8], first: u64, next: u64) -> Result<(), SegmentError> {
    let mut header = [0u8; HEADER as usize];
    File::open(path)
        .and_then(|f| f.read_exact_at(&mut header, 0))
        .map_err(io_err(path))?;
    match header_error(&header, magic, first, next) {
        Some(what) => Err(SegmentError::Corrupt {
            path: path.to_path_buf(),
            index: next,
            offset: 0,
            what,
        }),
        None => Ok(()),
    }
}

/// Makes sure a finished segment's index holds `entries` entries, rebuilding it from the
/// segment if not (lost, or cut short by a power cut before it was synced).
fn ensure_index(dir: &Path, first: u64, entries: u64) -> Result<(), SegmentError> {
    let path = index_path(dir, first);
    if fs::metadata(&path).is_ok_and(|m| m.len() == entries * INDEX_ENTRY) {
        return Ok(());
    }
    tracing::warn!(path = %path.display(), "segment index missing or incomplete; rebuilding it");
    let seg = segment_path(dir, first);
    let data = fs::read(&seg).map_err(io_err(&seg))?;
    let mut positions = Vec::new();
    let mut pos = HEADER as usize;
    while pos < data.len() {
        let frame = check_frame(&data, pos).map_err(|what| SegmentError::Corrupt {
            path: seg.clone(),
            index: first + positions.len() as u64,
            offset: pos as u64,
            what,
        })?;
        if !frame.mark {
            positions.push(Position {
                segment: first,
                offset: pos as u64,
                len: (frame.end - frame.start) as u32,
            });
        }
        pos = frame.end;
    }
    if positions.len() as u64 != entries {
        return Err(SegmentError::Corrupt {
            path: seg,
            index: first,
            offset: 0,
            what: "segment holds another number of entries than its place says",
        });
    }
    let file = File::create(&path)
        .and_then(|mut f| f.write_all(&index_bytes(&positions)).map(|()| f))
        .map_err(io_err(&path))?;
    durable::sync_data(&file, &path).map_err(io_err(&path))
}

/// The last mark in a segment file, if any.
fn last_mark_in(path: &Path, magic: [u8; 8]) -> Result<Option<Vec<u8>>, SegmentError> {
    let data = fs::read(path).map_err(io_err(path))?;
    if data.len() < HEADER as usize || data[..8] != magic {
        return Ok(None);
    }
    let mut last = None;
    let mut pos = HEADER as usize;
    while let Ok(frame) = check_frame(&data, pos) {
        if frame.mark {
            last = Some(data[frame.start..frame.end].to_vec());
        }
        pos = frame.end;
    }
    Ok(last)
}

fn read_frame(file: &File, path: &Path, pos: Position) -> Result<Vec<u8>, SegmentError> {
    let mut buf = vec![0u8; FRAME + pos.len as usize];
    file.read_exact_at(&mut buf, pos.offset)
        .map_err(io_err(path))?;
    let corrupt = |what| SegmentError::Corrupt {
        path: path.to_path_buf(),
        index: 0,
        offset: pos.offset,
        what,
    };
    let Frame { start, end, mark } = check_frame(&buf, 0).map_err(corrupt)?;
    if mark || end - start != pos.len as usize {
        return Err(corrupt("length differs from index"));
    }
    buf.drain(..FRAME);
    Ok(buf)
}

/// Reads entries by position for many readers at once, keeping each segment file open: one
/// `open` per segment, not one per read (deliveries and audit reads are on the hot path).
pub struct SegmentReader {
    dir: PathBuf,
    files: std::sync::Mutex<std::collections::HashMap<u64, std::sync::Arc<File>>>,
}

impl SegmentReader {
    /// A reader of the segments in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            files: Default::default(),
        }
    }

    /// Reads one entry by position, checking its frame. Safe while the log is appended to.
    pub fn read(&self, pos: Position) -> Result<Vec<u8>, SegmentError> {
        let path = segment_path(&self.dir, pos.segment);
        let file = {
            let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
            match files.get(&pos.segment) {
                Some(f) => f.clone(),
                None => {
                    let f = std::sync::Arc::new(File::open(&path).map_err(io_err(&path))?);
                    files.insert(pos.segment, f.clone());
                    f
                }
            }
        };
        read_frame(&file, &path, pos)
    }

    /// Closes a segment's file (before it is deleted, so a later read fails rather than
    /// reading a deleted file through an old handle).
    pub fn forget(&self, segment: u64) {
        self.files
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&segment);
    }
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

fn create_segment(dir: &Path, magic: [u8; 8], first: u64) -> Result<File, SegmentError> {
    let path = segment_path(dir, first);
    let mut file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let mut header = magic.to_vec();
    header.extend_from_slice(&first.to_le_bytes());
    file.write_all(&header).map_err(io_err(&path))?;
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
mod tests {
    use super::*;

    const MAGIC: [u8; 8] = *b"TESTLOG1";

    fn entries(log: &SegmentLog) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        log.for_each_from(1, |i, _, p| {
            out.push((i, p.to_vec()));
            Ok::<_, SegmentError>(())
        })
        .unwrap();
        out
    }

    #[test]
    fn appends_numbered_entries_across_segments_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
        assert_eq!(rec.entries, 0);
        let mut positions = Vec::new();
        for i in 0..10u8 {
            positions.extend(log.append(&[vec![i; 20], vec![i + 100; 3]]).unwrap());
        }
        assert_eq!(log.next_index(), 21);
        assert!(list_segments(dir.path()).unwrap().len() > 1);
        assert_eq!(
            SegmentReader::new(dir.path()).read(positions[5]).unwrap(),
            vec![102; 3]
        );
        drop(log);
        let (log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
        assert_eq!(rec.entries, 20);
        let all = entries(&log);
        assert_eq!(all.len(), 20);
        assert_eq!(all[0], (1, vec![0; 20]));
        assert_eq!(all[19], (20, vec![109; 3]));
        let mut tail = Vec::new();
        log.for_each_from(18, |i, _, _| {
            tail.push(i);
            Ok::<_, SegmentError>(())
        })
        .unwrap();
        assert_eq!(tail, vec![18, 19, 20]);
    }

    #[test]
    fn overwrite_replaces_payloads_in_place_across_segments_and_appends_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
        let mut positions = Vec::new();
        for i in 0..6u8 {
            positions.extend(log.append(&[vec![i; 20]]).unwrap());
        }
        let (first, last) = (positions[0], positions[5]);
        assert_ne!(
            first.segment, last.segment,
            "spans segments, the active one included"
        );
        log.overwrite(&[(first, vec![0xee; 20]), (last, vec![0xdd; 20])])
            .unwrap();
        // The active segment's file was replaced: appends must land in the new one.
        let appended = log.append(&[vec![42; 5]]).unwrap()[0];
        assert!(
            log.overwrite(&[(positions[1], vec![1; 3])]).is_err(),
            "another length is refused"
        );
        // A rewrite cut short by a crash leaves a .tmp that opening deletes.
        fs::write(dir.path().join("00000000000000000001.seg.tmp"), b"stale").unwrap();
        drop(log);
        let (log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 64).unwrap();
        assert_eq!(rec.entries, 7);
        assert!(!dir.path().join("00000000000000000001.seg.tmp").exists());
        let reader = SegmentReader::new(dir.path());
        assert_eq!(reader.read(first).unwrap(), vec![0xee; 20]);
        assert_eq!(reader.read(last).unwrap(), vec![0xdd; 20]);
        assert_eq!(reader.read(positions[2]).unwrap(), vec![2; 20]);
        assert_eq!(reader.read(appended).unwrap(), vec![42; 5]);
        let mut seen = Vec::new();
        log.for_each_from(1, |i, _, p| {
            seen.push((i, p[0]));
            Ok::<_, SegmentError>(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (1, 0xee),
                (2, 1),
                (3, 2),
                (4, 3),
                (5, 4),
                (6, 0xdd),
                (7, 42)
            ]
        );
    }

    #[test]
    fn marks_are_not_entries_and_the_last_intact_one_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
        log.append_marked(&[b"a", b"b"], Some(b"m1")).unwrap();
        log.append_marked::<&[u8]>(&[], Some(b"m2")).unwrap();
        log.append(&[b"c"]).unwrap();
        drop(log);
        let (mut log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
        assert_eq!((rec.entries, log.next_index()), (3, 4));
        assert_eq!(log.last_mark(), Some(&b"m2"[..]));
        let payloads: Vec<Vec<u8>> = entries(&log).into_iter().map(|(_, p)| p).collect();
        assert_eq!(payloads, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        let scanned = scan_read_only(dir.path(), MAGIC, |_, _| {}).unwrap();
        assert_eq!(
            (scanned.entries, scanned.last_mark.as_deref()),
            (3, Some(&b"m2"[..]))
        );
        // A mark torn off with its write: the entries before it stand, the last whole mark is
        // the one before.
        log.append_marked(&[b"d"], Some(b"m3")).unwrap();
        drop(log);
        let path = segment_path(dir.path(), 1);
        let len = fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        let (log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
        assert_eq!((rec.entries, rec.truncated_bytes), (4, 9));
        assert_eq!(log.last_mark(), Some(&b"m2"[..]));
    }

    #[test]
    fn torn_tail_is_cut_and_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
        log.append(&[b"one".to_vec(), b"two".to_vec()]).unwrap();
        drop(log);
        let seg = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap(); // half a frame header
        drop(f);
        let (mut log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
        assert_eq!(rec.entries, 2);
        assert_eq!(rec.truncated_bytes, 6);
        log.append(&[b"three".to_vec()]).unwrap();
        assert_eq!(entries(&log).last().unwrap(), &(3, b"three".to_vec()));
        let quarantined = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".quarantine"))
            .count();
        assert_eq!(quarantined, 1);
    }

    #[test]
    fn a_bad_frame_in_a_protected_entry_is_corruption_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
        log.append(&[b"one".to_vec(), b"two".to_vec(), b"three".to_vec()])
            .unwrap();
        drop(log);
        let seg = segment_path(dir.path(), 1);
        let mut data = fs::read(&seg).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1; // the payload of entry 3
        fs::write(&seg, &data).unwrap();
        match SegmentLog::open_protecting(dir.path(), MAGIC, DEFAULT_SEGMENT_BYTES, 3) {
            Err(SegmentError::Corrupt { index, .. }) => assert_eq!(index, 3),
            other => panic!("expected corruption, got {:?}", other.map(|_| ())),
        }
        assert_eq!(fs::read(&seg).unwrap(), data, "nothing was cut");
        // Unprotected, the same bytes are a torn tail.
        let (log, rec) = SegmentLog::open(dir.path(), MAGIC).unwrap();
        assert_eq!((log.next_index(), rec.entries), (3, 2));
    }

    #[test]
    fn corruption_before_the_tail_is_named_by_the_scan_not_paid_for_at_every_open() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = SegmentLog::open_with(dir.path(), MAGIC, 40).unwrap();
        for _ in 0..4 {
            log.append(&[vec![7u8; 30]]).unwrap();
        }
        drop(log);
        // Entry 2 is the only entry of the second segment; flip a payload byte.
        let seg = segment_path(dir.path(), 2);
        let mut data = fs::read(&seg).unwrap();
        data[HEADER as usize + FRAME + 3] ^= 1;
        fs::write(&seg, data).unwrap();
        // Opening reads the last segment only (its cost does not grow with the log)...
        let (log, rec) = SegmentLog::open_with(dir.path(), MAGIC, 40).unwrap();
        assert_eq!((rec.entries, log.next_index()), (4, 5));
        // ...the scan that checks the whole log names the entry.
        match scan_read_only(dir.path(), MAGIC, |_, _| {}) {
            Err(SegmentError::Corrupt { index, what, .. }) => {
                assert_eq!(index, 2);
                assert_eq!(what, "checksum mismatch");
            }
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    /// An indexed log finds entries by number from its index files; an index lost or cut short
    /// is rebuilt from its segment, and the last segment's at every open.
    #[test]
    fn the_index_finds_every_entry_and_is_rebuilt_when_lost() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            SegmentLog::open_indexed(dir.path(), MAGIC, 100, 0)
                .unwrap()
                .0
        };
        let mut log = open();
        let mut expected = Vec::new();
        for i in 0..20u8 {
            let batch = [vec![i; 10 + usize::from(i)], vec![i + 100; 3]];
            log.append_marked(&batch, Some(b"mark")).unwrap();
            expected.extend(batch);
        }
        assert!(list_segments(dir.path()).unwrap().len() > 3);
        let check = |log: &SegmentLog| {
            let index = log.index().unwrap();
            let reader = SegmentReader::new(dir.path());
            assert_eq!(index.entries(), expected.len() as u64);
            for (i, payload) in expected.iter().enumerate() {
                let pos = index.position(i as u64 + 1).unwrap();
                assert_eq!(&reader.read(pos).unwrap(), payload, "entry {}", i + 1);
            }
            assert!(matches!(
                index.position(expected.len() as u64 + 1),
                Err(SegmentError::Missing(_))
            ));
        };
        check(&log);
        drop(log);
        let segments = list_segments(dir.path()).unwrap();
        fs::remove_file(index_path(dir.path(), segments[0])).unwrap();
        let second = index_path(dir.path(), segments[1]);
        let len = fs::metadata(&second).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&second)
            .unwrap()
            .set_len(len - 5)
            .unwrap();
        fs::remove_file(index_path(dir.path(), *segments.last().unwrap())).unwrap();
        check(&open());
    }

    #[test]
    fn a_segment_from_another_log_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut log, _) = SegmentLog::open(dir.path(), MAGIC).unwrap();
        log.append(&[b"x".to_vec()]).unwrap();
        drop(log);
        assert!(matches!(
            SegmentLog::open(dir.path(), *b"OTHERLOG"),
            Err(SegmentError::Corrupt { .. })
        ));
    }
}
