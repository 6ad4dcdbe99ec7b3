//! Reading a log without writing to it: the scans of the whole log (or a range of it) and the
//! reads of one entry by position.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::frame::{FRAME, Frame, check_frame, corrupt, read_segment, written_end};
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
    let segments = list_segments(dir)?;
    let start = segments.partition_point(|&first| first <= from).max(1) - 1;
    let mut next = segments.get(start).copied().unwrap_or(1);
    let mut last_mark = None;
    for &first in &segments[start.min(segments.len())..] {
        if next > to {
            break;
        }
        let path = segment_path(dir, first);
        let data = read_segment(&path, magic, first, next)?;
        let mut pos = HEADER as usize;
        while pos < data.len() && next <= to {
            let frame = match check_frame(&data, pos) {
                Ok(frame) => frame,
                // The zeros written ahead of the last segment's frames.
                Err(_) if written_end(&data, pos) == pos => break,
                Err(what) => return Err(corrupt(&path, next, pos as u64, what)),
            };
            let (start, end) = (frame.start, frame.end);
            if frame.mark {
                last_mark = Some(data[start..end].to_vec());
            } else if frame.is_entry() {
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

/// Calls `f` with the position and payload of every attachment in the log in `dir`, in order,
/// without changing anything; stops at the first frame that fails its checks, as
/// [`scan_read_only`] does.
pub fn scan_attachments(
    dir: &Path,
    magic: [u8; 8],
    mut f: impl FnMut(Position, &[u8]),
) -> Result<(), SegmentError> {
    let mut next = 1;
    for first in list_segments(dir)? {
        let path = segment_path(dir, first);
        let data = read_segment(&path, magic, first, next)?;
        let mut pos = HEADER as usize;
        while pos < data.len() {
            let frame = match check_frame(&data, pos) {
                Ok(frame) => frame,
                Err(_) if written_end(&data, pos) == pos => break,
                Err(what) => return Err(corrupt(&path, next, pos as u64, what)),
            };
            if frame.attachment {
                let at = Position {
                    segment: first,
                    offset: pos as u64,
                    len: (frame.end - frame.start) as u32,
                };
                f(at, &data[frame.start..frame.end]);
            } else if frame.is_entry() {
                next += 1;
            }
            pos = frame.end;
        }
    }
    Ok(())
}

pub(super) fn read_frame(file: &File, path: &Path, pos: Position) -> Result<Vec<u8>, SegmentError> {
    let mut buf = vec![0u8; FRAME + pos.len as usize];
    file.read_exact_at(&mut buf, pos.offset)
        .map_err(io_err(path))?;
    // Read by position, the entry's number is not known here (0).
    let bad = |what| corrupt(path, 0, pos.offset, what);
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
