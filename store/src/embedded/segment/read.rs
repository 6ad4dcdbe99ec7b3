//! Reading a log without writing to it: the scans of the whole log (or a range of it) and the
//! reads of one entry by position.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::frame::{FRAME, Frame, check_frame, corrupt, frame_len, header_error};
use super::stream::Stream;
use super::{HEADER, Position, SegmentError, io_err, list_segments, segment_path};

/// What a read-only scan found.
#[derive(Debug, Default, Clone)]
pub struct Scanned {
    /// Intact entries.
    pub entries: u64,
    /// The last mark, if any.
    pub last_mark: Option<Vec<u8>>,
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
    let mut last_mark = None;
    let entries = walk(dir, magic, from, to, |frame| match frame {
        Walked::Entry(index, payload) if index >= from => f(index, payload),
        Walked::Mark(payload) => last_mark = Some(payload.to_vec()),
        _ => {}
    })?;
    Ok(Scanned { entries, last_mark })
}

/// Calls `f` with the position and payload of every attachment in the log in `dir`, in order,
/// without changing anything; stops at the first frame that fails its checks, as
/// [`scan_read_only`] does.
pub fn scan_attachments(
    dir: &Path,
    magic: [u8; 8],
    mut f: impl FnMut(Position, &[u8]),
) -> Result<(), SegmentError> {
    walk(dir, magic, 1, u64::MAX, |frame| {
        if let Walked::Attachment(at, payload) = frame {
            f(at, payload);
        }
    })
    .map(drop)
}

/// A frame met by [`walk`].
enum Walked<'a> {
    /// An entry and its number.
    Entry(u64, &'a [u8]),
    Attachment(Position, &'a [u8]),
    Mark(&'a [u8]),
}

/// The one walk over a log's frames that the scans share: from the segment holding entry `from`
/// (every frame of it, entries before `from` included) until the entry after `to`, checking
/// every frame and stopping at the zeros written ahead of the last one. Returns the number of
/// the last entry walked (0 if none).
fn walk(
    dir: &Path,
    magic: [u8; 8],
    from: u64,
    to: u64,
    mut visit: impl FnMut(Walked<'_>),
) -> Result<u64, SegmentError> {
    let segments = list_segments(dir)?;
    let start = segments.partition_point(|&first| first <= from).max(1) - 1;
    let mut next = segments.get(start).copied().unwrap_or(1);
    for &first in &segments[start.min(segments.len())..] {
        if next > to {
            break;
        }
        let path = segment_path(dir, first);
        let mut data = Stream::new(File::open(&path).map_err(io_err(&path))?);
        let header = data.bytes(0, HEADER as usize).map_err(io_err(&path))?;
        if let Some(what) = header_error(header, magic, first, next) {
            return Err(corrupt(&path, next, 0, what));
        }
        let mut pos = HEADER;
        while next <= to {
            let head = data.bytes(pos, FRAME).map_err(io_err(&path))?;
            if head.is_empty() {
                break;
            }
            let len = frame_len(head);
            let bytes = data.bytes(pos, len).map_err(io_err(&path))?;
            let frame = match check_frame(bytes, 0) {
                Ok(frame) => frame,
                Err(what) => {
                    // The zeros written ahead of the last segment's frames.
                    if data.zeros_from(pos).map_err(io_err(&path))? {
                        break;
                    }
                    return Err(corrupt(&path, next, pos, what));
                }
            };
            let payload = &bytes[frame.start..frame.end];
            if frame.mark {
                visit(Walked::Mark(payload));
            } else if frame.attachment {
                let at = Position {
                    segment: first,
                    offset: pos,
                    len: payload.len() as u32,
                };
                visit(Walked::Attachment(at, payload));
            } else {
                visit(Walked::Entry(next, payload));
                next += 1;
            }
            pos += frame.end as u64;
        }
    }
    Ok(next - 1)
}

fn read_frame(
    file: &File,
    path: impl Fn() -> PathBuf,
    pos: Position,
) -> Result<Vec<u8>, SegmentError> {
    let mut buf = vec![0u8; FRAME + pos.len as usize];
    file.read_exact_at(&mut buf, pos.offset)
        .map_err(|e| io_err(&path())(e))?;
    // Read by position, the entry's number is not known here (0).
    let bad = |what| corrupt(&path(), 0, pos.offset, what);
    // An entry or an attachment; a mark is never read by position.
    let Frame {
        start, end, mark, ..
    } = check_frame(&buf, 0).map_err(bad)?;
    if mark || end - start != pos.len as usize {
        return Err(bad("length differs from index"));
    }
    buf.drain(..FRAME);
    Ok(buf)
}

/// Tells the kernel that `len` bytes at `offset` of `file` will be read soon, so that it starts
/// reading them from the disk now. A batch of reads advised first, then made, waits about one
/// disk round trip for all of them instead of one each (an audit query's 50 records on a log
/// bigger than the page cache). Advice only: a failure is ignored, and the read still happens.
pub(super) fn will_need(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::WillNeed,
    );
}

/// Files of a log kept open by segment, each opened at its first read: one `open` per file, not
/// one per read (deliveries and audit reads are on the hot path), and no path made for a read
/// that finds its file open.
#[derive(Default)]
pub(super) struct OpenFiles(Mutex<HashMap<u64, Arc<File>>>);

impl OpenFiles {
    /// The open file of `segment`, opened at `path()` if it is not open yet.
    pub(super) fn get(
        &self,
        segment: u64,
        path: impl FnOnce() -> PathBuf,
    ) -> Result<Arc<File>, SegmentError> {
        let mut files = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = files.get(&segment) {
            return Ok(f.clone());
        }
        let path = path();
        let f = Arc::new(File::open(&path).map_err(io_err(&path))?);
        files.insert(segment, f.clone());
        Ok(f)
    }

    fn forget(&self, segment: u64) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&segment);
    }
}

/// Reads entries by position for many readers at once, keeping each segment file open.
pub struct SegmentReader {
    dir: PathBuf,
    files: OpenFiles,
}

impl SegmentReader {
    /// A reader of the segments in `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            files: OpenFiles::default(),
        }
    }

    /// Reads one entry by position, checking its frame. Safe while the log is appended to.
    pub fn read(&self, pos: Position) -> Result<Vec<u8>, SegmentError> {
        let path = || segment_path(&self.dir, pos.segment);
        read_frame(&*self.files.get(pos.segment, path)?, path, pos)
    }

    /// [`read`](Self::read) of each of `positions`, in their order, with every frame outside
    /// segment `current` asked of the disk before the first is read (as
    /// [`SegmentIndex::positions`](super::SegmentIndex::positions) does).
    pub fn read_many(
        &self,
        positions: &[Position],
        current: u64,
    ) -> Result<Vec<Vec<u8>>, SegmentError> {
        let files = positions
            .iter()
            .map(|pos| {
                self.files
                    .get(pos.segment, || segment_path(&self.dir, pos.segment))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if positions.len() > 1 {
            for (file, pos) in files.iter().zip(positions) {
                if pos.segment != current {
                    will_need(file, pos.offset, FRAME as u64 + u64::from(pos.len));
                }
            }
        }
        files
            .iter()
            .zip(positions)
            .map(|(file, &pos)| read_frame(file, || segment_path(&self.dir, pos.segment), pos))
            .collect()
    }

    /// Closes a segment's file (before it is deleted, so a later read fails rather than
    /// reading a deleted file through an old handle).
    pub fn forget(&self, segment: u64) {
        self.files.forget(segment);
    }
}
