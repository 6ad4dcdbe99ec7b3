//! One frame of a segment file, and a segment's header: the checks every reader makes.

use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{HEADER, MAX_ENTRY, SegmentError, io_err};

/// Size of a frame header.
pub(super) const FRAME: usize = 8;

/// The length's flag of a mark frame.
pub(super) const MARK: u32 = 1 << 31;
/// The length's flag of an attachment frame.
pub(super) const ATTACHMENT: u32 = 1 << 30;

/// One intact frame: where its payload lies in the data, and what kind of frame it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame {
    /// First byte of the payload.
    pub start: usize,
    /// One past its last byte.
    pub end: usize,
    /// A mark, not an entry.
    pub mark: bool,
    /// An attachment, not an entry.
    pub attachment: bool,
}

impl Frame {
    /// An entry: neither a mark nor an attachment (these are not numbered).
    pub fn is_entry(&self) -> bool {
        !self.mark && !self.attachment
    }
}

pub(super) fn frame_crc(len: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), payload)
}

/// Checks one frame at `pos` in `data` (a segment file's bytes).
pub fn check_frame(data: &[u8], pos: usize) -> Result<Frame, &'static str> {
    let head = data.get(pos..pos + FRAME).ok_or("truncated frame header")?;
    let flagged = u32::from_le_bytes(head[..4].try_into().expect("4"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4"));
    let len = payload_len(flagged);
    if len > MAX_ENTRY {
        return Err("impossible length");
    }
    if flagged & MARK != 0 && flagged & ATTACHMENT != 0 {
        return Err("a mark and an attachment at once");
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
        attachment: flagged & ATTACHMENT != 0,
    })
}

/// The bytes of the frame whose header starts `head` (header and payload; a length past
/// [`MAX_ENTRY`] counts as the header alone, which [`check_frame`] then refuses).
pub(super) fn frame_len(head: &[u8]) -> usize {
    let Some(head) = head.get(..4) else {
        return FRAME;
    };
    match payload_len(u32::from_le_bytes(head.try_into().expect("4"))) {
        len if len <= MAX_ENTRY => FRAME + len,
        _ => FRAME,
    }
}

/// The payload's length in a frame header's first word (`flagged`: the length and its flags).
fn payload_len(flagged: u32) -> usize {
    (flagged & !(MARK | ATTACHMENT)) as usize
}

/// One past the last byte at or after `pos` that is not zero (`pos` if there is none): where
/// what was written ends and the zeros written ahead begin.
pub(super) fn written_end(data: &[u8], pos: usize) -> usize {
    data.get(pos..)
        .and_then(|rest| rest.iter().rposition(|&b| b != 0))
        .map_or(pos, |i| pos + i + 1)
}

pub(super) fn push_frame(buf: &mut Vec<u8>, flagged: u32, payload: &[u8]) {
    buf.extend_from_slice(&flagged.to_le_bytes());
    buf.extend_from_slice(&frame_crc(flagged, payload).to_le_bytes());
    buf.extend_from_slice(payload);
}

/// What is wrong with a segment that starts with `data`, if anything: it must carry this log's
/// magic, and begin at its first entry `first`, where the log is (`next`).
pub(super) fn header_error(
    data: &[u8],
    magic: [u8; 8],
    first: u64,
    next: u64,
) -> Option<&'static str> {
    if data.len() < HEADER as usize || data[..8] != magic {
        return Some("bad segment header");
    }
    if u64::from_le_bytes(data[8..16].try_into().expect("8")) != first || first != next {
        return Some("segment does not continue the log");
    }
    None
}

/// The error for a segment file that is not intact at entry `index`, byte `offset`.
pub(super) fn corrupt(path: &Path, index: u64, offset: u64, what: &'static str) -> SegmentError {
    SegmentError::Corrupt {
        path: path.to_path_buf(),
        index,
        offset,
        what,
    }
}

/// Checks a segment's header: this log's magic, and the first entry where the log is.
pub(super) fn check_header(
    path: &Path,
    magic: [u8; 8],
    first: u64,
    next: u64,
) -> Result<(), SegmentError> {
    let mut header = [0u8; HEADER as usize];
    File::open(path)
        .and_then(|f| f.read_exact_at(&mut header, 0))
        .map_err(io_err(path))?;
    match header_error(&header, magic, first, next) {
        Some(what) => Err(corrupt(path, next, 0, what)),
        None => Ok(()),
    }
}

/// A segment file read whole, its header checked as [`check_header`] does.
pub(super) fn read_segment(
    path: &Path,
    magic: [u8; 8],
    first: u64,
    next: u64,
) -> Result<Vec<u8>, SegmentError> {
    let data = fs::read(path).map_err(io_err(path))?;
    match header_error(&data, magic, first, next) {
        Some(what) => Err(corrupt(path, next, 0, what)),
        None => Ok(data),
    }
}

/// The last mark in a segment file, if any.
pub(super) fn last_mark_in(path: &Path, magic: [u8; 8]) -> Result<Option<Vec<u8>>, SegmentError> {
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
